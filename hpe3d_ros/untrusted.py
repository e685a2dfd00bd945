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


#: Longest log line or diagnostics value built around outside text.
LINE_CHARS = 300


def one_line(text: object, limit: int = LINE_CHARS) -> str:
    """A message made safe for one log line: control characters escaped, and at most
    ``limit`` characters in all, the ``... (N chars)`` note of a cut message included.

    For messages that may embed outside text someone else did not :func:`show` (an
    exception's text, a library's error).
    """
    text = str(text)
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    if len(text) <= limit and len(out) <= limit:
        return out
    note = f"... ({len(text)} chars)"
    return out[: max(limit - len(note), 0)] + note


def error_line(exc: BaseException, limit: int = LINE_CHARS) -> str:
    """``Type: first line of the message``, made safe by :func:`one_line` (for CLI errors and
    reports: an exception's text may carry what a file or a camera said)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return one_line(f"{type(exc).__name__}: {lines[0] if lines else ''}", limit)
