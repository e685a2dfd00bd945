"""SIGINT and SIGTERM during a replay: finish cleanly, keep everything done so far.

``timeout``, systemd, docker and CI stop a process with SIGTERM; a user presses Ctrl-C
(SIGINT), sometimes twice. Inside :class:`GracefulStop`:

* the first signal asks the replay to stop after the frame in hand (:attr:`requested`);
* a second signal also aborts the frame in hand, but only inside :meth:`abortable` blocks
  (the pipeline call), never while a table row, a bag record or a video frame is written,
  so every output stays readable;
* every later signal is ignored while the results are closed (summary, bag footer, MP4),
  and after that until the process exits.

The replay then marks its summary ``interrupted`` and exits with 128 + the signal number.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class Interrupted(BaseException):
    """Raised inside an :meth:`GracefulStop.abortable` block by a second signal."""


class GracefulStop:
    """Context manager that turns SIGINT/SIGTERM into a polite stop request."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.count = 0
        self._abortable = False
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        return 128 + self.signum if self.signum else 0

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.signum is None:
            self.signum = signum
        if self.count >= 2 and self._abortable:
            self._abortable = False
            raise Interrupted(signal.Signals(signum).name)

    @contextlib.contextmanager
    def abortable(self) -> Iterator[None]:
        """A block that a second signal may abort with :class:`Interrupted`."""
        if self.count >= 2:
            raise Interrupted(self.name)
        self._abortable = True
        try:
            yield
        finally:
            self._abortable = False

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        """Restore the old handlers, unless a stop was requested: the caller is on its way out,
        and a late signal (the third Ctrl-C) must not kill it with a traceback or lose its
        exit code, so later ones are ignored (SIG_IGN: Python's own shutdown resets a Python
        handler to the default action, which would kill the process after all)."""
        for s, old in self._old.items():
            signal.signal(s, signal.SIG_IGN if self.requested else old)
        self._old.clear()
