"""At most one log line per kind of problem and period (the node's warnings)."""

from __future__ import annotations

import threading
import time


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
