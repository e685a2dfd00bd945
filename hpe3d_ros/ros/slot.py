"""The node's newest-frame mailbox between a subscription callback and the worker."""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

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
