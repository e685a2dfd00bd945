"""Per-camera stream bookkeeping for the live node (ROS-free, thread-safe where it must be).

* :class:`LatestSlot` keeps only the newest frame: a frame that arrives while the previous
  one still waits is dropped *and counted* (a stale frame is worth less than a fresh one).
* :class:`CameraInfoCache` matches an image to the CameraInfo nearest in stamp.
* :class:`StreamStats` counts and times everything diagnostics report.
* :class:`Throttle` turns a flood of identical problems into one line per period.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.untrusted import one_line

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Single-item mailbox between a subscription callback and the worker.

    It also knows how long the oldest frame accepted and not yet finished has waited
    (:meth:`waiting_s`), in the slot or in the worker: the measure of a stalled worker.
    """

    def __init__(self) -> None:
        self._item: T | None = None
        self._item_t = 0.0
        self._pending_since: float | None = None
        self._lock = threading.Lock()

    def put(self, item: T, now: float | None = None) -> bool:
        """Store ``item``; True when it replaced one that was never taken (a drop)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            dropped = self._item is not None
            self._item, self._item_t = item, now
            if self._pending_since is None:
                self._pending_since = now
            return dropped

    def take(self) -> T | None:
        with self._lock:
            item, self._item = self._item, None
            return item

    def done(self) -> None:
        """The frame taken last is finished (processed or failed)."""
        with self._lock:
            self._pending_since = self._item_t if self._item is not None else None

    def waiting_s(self, now: float | None = None) -> float:
        """Age of the oldest accepted frame that is not finished; 0 when none waits."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return 0.0 if self._pending_since is None else max(0.0, now - self._pending_since)


class MissingCameraInfo(LookupError):
    """No usable CameraInfo for an image (none yet, or none close enough in time)."""


class CameraInfoCache:
    """Recent camera models by stamp. ``tolerance_s == 0`` means: always use the latest."""

    def __init__(self, tolerance_s: float = 0.0, maxlen: int = 32) -> None:
        self.tolerance_ns = int(tolerance_s * 1e9)
        self._stamps: deque[int] = deque(maxlen=maxlen)
        self._models: deque[CameraModel] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.last_error: str = ""

    def add(self, stamp_ns: int, model: CameraModel) -> None:
        with self._lock:
            if self._stamps and stamp_ns < self._stamps[-1]:
                # out-of-order or restarted clock: start over rather than mis-sort
                self._stamps.clear()
                self._models.clear()
            self._stamps.append(int(stamp_ns))
            self._models.append(model)

    def __len__(self) -> int:
        return len(self._stamps)

    def lookup(self, stamp_ns: int) -> CameraModel:
        with self._lock:
            if not self._stamps:
                why = (
                    f" (last CameraInfo was invalid: {self.last_error})" if self.last_error else ""
                )
                raise MissingCameraInfo(f"no CameraInfo received yet{why}")
            if self.tolerance_ns <= 0:
                return self._models[-1]
            stamps = list(self._stamps)
            i = bisect.bisect_left(stamps, stamp_ns)
            best = min(
                (j for j in (i - 1, i) if 0 <= j < len(stamps)),
                key=lambda j: abs(stamps[j] - stamp_ns),
            )
            gap = abs(stamps[best] - stamp_ns)
            if gap > self.tolerance_ns:
                raise MissingCameraInfo(
                    f"nearest CameraInfo is {gap / 1e9:.3f} s from the image stamp "
                    f"(tolerance {self.tolerance_ns / 1e9:.3f} s)"
                )
            return self._models[best]


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


class Throttle:
    """At most one report per ``period_s`` per key; counts what it suppressed.

    Keys must name a *kind* of problem (camera, failure kind, reason code), never its text:
    text that carries outside data (an encoding, a frame id) makes every message a new key.
    Past ``max_keys`` distinct keys, the rest share one key, so the log stays bounded
    whatever the keys.
    """

    OVERFLOW = "<other>"

    def __init__(self, period_s: float = 5.0, max_keys: int = 512) -> None:
        self.period_s = period_s
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, now: float | None = None) -> int | None:
        """None: stay quiet. Otherwise report now; the value is how many were suppressed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if key not in self._last and len(self._last) >= self.max_keys:
                key = self.OVERFLOW
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._suppressed.pop(key, 0)
