"""What one camera stream did, for ``/diagnostics`` (ROS-free, thread-safe).

* :class:`StreamStats` counts and times every frame a runner received, processed, dropped or
  failed, with rates over a window of the driver's clock (monotonic time live, log time in a
  replay).
* :class:`StampGaps` counts the frames lost before they reached the node: from holes in the
  publisher's sequence numbers where the transport gives them, else estimated from holes in
  the image stamps.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hpe3d_ros.untrusted import one_line


@dataclass
class StreamStats:
    """Counters and timings of one camera stream (reported on /diagnostics)."""

    window_s: float = 5.0
    received: int = 0
    processed: int = 0
    dropped: int = 0
    failed: int = 0
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    last_receive_monotonic: float | None = None
    _rx_times: deque = field(default_factory=lambda: deque(maxlen=2000))
    _done_times: deque = field(default_factory=lambda: deque(maxlen=2000))
    _latencies_ms: deque = field(default_factory=lambda: deque(maxlen=500))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_receive(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.received += 1
            self.last_receive_monotonic = now
            self._rx_times.append(now)

    def on_drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def on_processed(self, latency_ms: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.processed += 1
            self._done_times.append(now)
            self._latencies_ms.append(latency_ms)

    def on_failed(self, kind: str, message: str) -> None:
        with self._lock:
            self.failed += 1
            self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + 1
            self.last_error = one_line(f"{kind}: {message}")  # shown on /diagnostics

    def _rate(self, times: deque, now: float) -> float:
        recent = [t for t in times if now - t <= self.window_s]
        return len(recent) / self.window_s

    def snapshot(self, now: float | None = None) -> dict[str, float | int | str]:
        """Everything diagnostics show, as plain values."""
        now = time.monotonic() if now is None else now
        with self._lock:
            lat = np.asarray(self._latencies_ms, dtype=np.float64)
            silent = (
                None if self.last_receive_monotonic is None else now - self.last_receive_monotonic
            )
            return {
                "received": self.received,
                "processed": self.processed,
                "dropped": self.dropped,
                "failed": self.failed,
                "input_rate_hz": self._rate(self._rx_times, now),
                "processed_rate_hz": self._rate(self._done_times, now),
                "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "silent_s": float("inf") if silent is None else silent,
                "last_error": self.last_error,
            }


class StampGaps:
    """Frames lost before they reached us: counted from sequence numbers, or estimated from
    the image stamps.

    A camera publishes at a steady period. Frames that DDS loses (a best-effort frame larger
    than the transport's segment, a publisher without the shared-memory profile, a reader
    history that a starved subscriber could not empty in time) never reach a callback, so
    receive and drop counters cannot see them. Where the transport numbers each publisher's
    messages (rclpy's message info from Iron on, with Fast DDS), a hole of ``n`` numbers is
    ``n`` frames lost, exactly, and a number that goes backwards is a restarted publisher.
    Otherwise holes in the stamp sequence estimate them: the period is the median of the last
    :attr:`HISTORY` regular stamp steps (after :attr:`WARMUP` of them); a step over 1.5
    periods counts ``round(step / period) - 1`` lost frames. A stamp that goes backwards (a
    restarted driver, a looped bag) starts over. ``lost_rate_hz`` is the loss over the last
    ``window_s`` of the driver's clock; ``lost_counted_from`` says which evidence the last
    frame gave.
    """

    HISTORY, WARMUP = 64, 8

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._steps: deque[int] = deque(maxlen=self.HISTORY)
        self._recent: deque[tuple[float, int]] = deque(maxlen=2000)  # (now, frames lost)
        self._last: int | None = None
        self._last_sequence: int | None = None
        self.lost = 0
        self.gaps = 0

    def add(self, stamp_ns: int, now: float = 0.0, sequence: int | None = None) -> None:
        """One received frame's stamp; ``now``: the driver's clock, seconds; ``sequence``: its
        publisher's number for it where the transport gives one (None: unknown)."""
        last, self._last = self._last, stamp_ns
        last_sequence, self._last_sequence = self._last_sequence, sequence
        if sequence is not None and last_sequence is not None:
            if sequence <= last_sequence:  # a restarted publisher
                self._steps.clear()
            elif sequence > last_sequence + 1:
                self._lose(sequence - last_sequence - 1, now)
            elif last is not None and stamp_ns > last:  # a regular step: the period
                self._steps.append(stamp_ns - last)
            return
        if last is None or stamp_ns == last:
            return
        step = stamp_ns - last
        if step < 0:
            self._steps.clear()
            return
        if len(self._steps) >= self.WARMUP:
            period = float(np.median(self._steps))
            if step > 1.5 * period:
                self._lose(max(1, round(step / period) - 1), now)
                return
        self._steps.append(step)

    def _lose(self, n: int, now: float) -> None:
        self.lost += n
        self.gaps += 1
        self._recent.append((now, n))

    def snapshot(self, now: float = 0.0) -> dict[str, float | int]:
        period = float(np.median(self._steps)) if len(self._steps) >= self.WARMUP else 0.0
        recent = sum(n for t, n in self._recent if now - t <= self.window_s)
        source = "image stamps" if self._last_sequence is None else "sequence numbers"
        return {"lost_before_node": self.lost, "stamp_gaps": self.gaps,
                "lost_rate_hz": recent / self.window_s, "period_ms": period / 1e6,
                "lost_counted_from": source}  # fmt: skip
