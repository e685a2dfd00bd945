"""One-Euro filtering of keypoints per track (Casiez, Roussel, Vogel, CHI 2012).

A first-order low-pass whose cutoff rises with speed: still joints are smoothed hard (less
jitter), moving joints lightly (less lag). ``min_cutoff`` (Hz) sets the smoothing at rest,
``beta`` (1/px) how fast the cutoff opens with speed (px/s), ``d_cutoff`` (Hz) the filter on
the speed estimate. Timestamps are seconds, so irregular frame rates are handled.
"""

from __future__ import annotations

import math

import numpy as np

from hpe3d_ros.detection.base import Person2D


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """One-Euro filter over arrays of any fixed shape (e.g. (17, 2) pixels)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t_s: float) -> np.ndarray:
        """Filtered value of ``x`` observed at time ``t_s`` (seconds, increasing)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t_s <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t_s)
            return x.copy()
        dt = t_s - self._t
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = _alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = float(t_s)
        return self._x.copy()


class KeypointSmoother:
    """One-Euro filter per ``track_id`` over each person's (17, 2) keypoints.

    People with ``track_id < 0`` pass through unchanged. Filters of tracks not seen for
    ``forget_after_s`` seconds are dropped.
    """

    def __init__(
        self,
        min_cutoff: float = 1.0,
        beta: float = 0.05,
        d_cutoff: float = 1.0,
        forget_after_s: float = 2.0,
    ) -> None:
        self.params = (float(min_cutoff), float(beta), float(d_cutoff))
        self.forget_after_s = float(forget_after_s)
        self._filters: dict[int, tuple[OneEuroFilter, float]] = {}

    def smooth(self, people: list[Person2D], t_s: float) -> list[Person2D]:
        """Return ``people`` with filtered keypoints; scores, boxes and ids unchanged."""
        self._filters = {
            k: v for k, v in self._filters.items() if t_s - v[1] <= self.forget_after_s
        }
        out = []
        for p in people:
            if p.track_id < 0:
                out.append(p)
                continue
            filt = self._filters.get(p.track_id, (OneEuroFilter(*self.params), t_s))[0]
            self._filters[p.track_id] = (filt, t_s)
            out.append(p.with_keypoints(filt(p.keypoints, t_s).astype(np.float32)))
        return out
