"""The detector's work per frame: a bound, what a frame used and gave up, said once a minute.

Work is counted in network runs of 512 x 512 input pixels (:func:`~.scales.run_cost`). The
planner fits the passes into the budget by giving up the smallest people first; what is left
pays for running crowded regions again in halves and for top-down crops. Whatever a frame
gives up is in :class:`FrameWork` (the detector's ``last_work``) and in one log line per kind
per minute, not one per frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

LOG = logging.getLogger("hpe3d_ros.detection")

#: Seconds between two log lines of the same kind.
NOTE_PERIOD_S = 60.0


@dataclass
class FrameWork:
    """One frame's detector work, in network runs of 512 x 512 input pixels."""

    budget: float
    planned: float = 0.0  # the passes' regions
    used: float = 0.0  # planned + crowd halves + crops actually run
    asked_person_px: float = 0.0  # min_person_px asked for (0: explicit tiles)
    smallest_person_px: float = 0.0  # what the plan that fits the budget is sized for
    limited: bool = False  # the budget made the plan coarser than asked
    skipped_splits: int = 0  # crowded regions not run again in halves: no budget left
    skipped_crops: int = 0  # top-down proposals not refined: no budget left

    @property
    def left(self) -> float:
        return self.budget - self.used

    @property
    def gave_up(self) -> bool:
        """Whether this frame was planned or run with less than was asked for."""
        return self.limited or self.skipped_splits > 0 or self.skipped_crops > 0


class Notes:
    """Log each kind of message at most once per :data:`NOTE_PERIOD_S`, counting the rest."""

    def __init__(self, period_s: float = NOTE_PERIOD_S) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def note(self, kind: str, message: str) -> bool:
        """Log ``message`` (WARNING) unless ``kind`` was logged less than a period ago."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.period_s:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return False
        quiet = self._quiet.pop(kind, 0)
        more = f" ({quiet} more since the last such line)" if quiet else ""
        LOG.warning("%s%s", message, more)
        self._last[kind] = now
        return True

    def report(self, work: FrameWork, size: tuple[int, int]) -> None:
        """Log what ``work`` gave up, one line per kind per period."""
        w, h = size
        if work.limited:
            self.note(
                "plan",
                f"detector: {w}x{h} frames need more than the budget of {work.budget:g} "
                f"network runs of 512 px for people down to {work.asked_person_px:g} px; "
                f"finding people from {work.smallest_person_px:.0f} px tall",
            )
        if work.skipped_splits:
            self.note(
                "crowd",
                f"detector: {work.skipped_splits} crowded region(s) of a {w}x{h} frame not run "
                f"again in halves (budget of {work.budget:g} runs spent): people beyond the "
                "network's slots may be missed",
            )
        if work.skipped_crops:
            self.note(
                "crops",
                f"detector: {work.skipped_crops} top-down proposal(s) of a {w}x{h} frame not "
                f"refined (budget of {work.budget:g} runs spent)",
            )
