"""Text that came from outside (encodings, frame ids, formats, file keys), made safe to log.

A camera driver or a bag decides these strings, so a log line or a diagnostics value must
never carry them verbatim: a 1 MB ``frame_id`` would be logged whole, control characters
could forge log lines. :func:`show` quotes, escapes and cuts them.
"""

from __future__ import annotations

#: Longest excerpt of an outside string shown in a log line or diagnostics value.
SHOW_CHARS = 48


def show(value: object, limit: int = SHOW_CHARS) -> str:
    """``repr``-style quoted, escaped (no control characters) and cut to ``limit`` chars.

    >>> show("rgb8")
    "'rgb8'"
    >>> show("x" * 1000, 8)
    "'xxxxxxxx'... (1000 chars)"
    """
    text = str(value)
    cut = text[:limit]
    shown = repr(cut)  # escapes control characters and non-printables
    if len(text) > limit:
        return f"{shown}... ({len(text)} chars)"
    return shown
