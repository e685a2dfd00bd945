"""Content-checked cache files (exported ONNX, TensorRT engines): atomic writes, no corrupt hits.

A cached file is stored as ``<prefix>.<16 hex>.<ext>``, the hex being the first 16 digits of
the SHA-256 of its own bytes. It is written under a temporary name and renamed into place in
one step (:func:`os.replace`), so an interrupted export never leaves a file under a final name,
and two processes filling the same cache at once each publish a complete file.
:func:`find_cached` returns a file only if its bytes still hash to its name; one that does not
(truncated, overwritten, bit rot) is removed with a warning naming it, and the caller rebuilds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

LOG = logging.getLogger(__name__)

DIGITS = 16
_HEX = re.compile(rf"[0-9a-f]{{{DIGITS}}}")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _candidates(prefix: Path, ext: str) -> list[Path]:
    head = prefix.name + "."
    found = []
    if prefix.parent.is_dir():
        for p in prefix.parent.iterdir():
            middle = p.name[len(head) : -len(ext)] if p.name.endswith(ext) else ""
            if p.name.startswith(head) and _HEX.fullmatch(middle):
                found.append(p)
    return sorted(found)


def find_cached(
    prefix: str | Path, ext: str, what: str = "cache file", sidecars: tuple[str, ...] = ()
) -> Path | None:
    """The intact ``<prefix>.<hash><ext>`` file, if any; corrupt ones are removed (warning).

    Args:
        prefix: folder and name stem, e.g. ``cache/lifter_default_ab12_op17``.
        ext: suffix with its dot, e.g. ``".onnx"``.
        what: what the file is, for the warning ("cached ONNX", "cached TensorRT engine").
        sidecars: suffixes of files kept beside each entry (``".json"``), removed with it.
    """
    prefix = Path(prefix)
    for path in _candidates(prefix, ext):
        want = path.name[len(prefix.name) + 1 : -len(ext)]
        try:
            got = file_sha256(path)[:DIGITS]
        except OSError as exc:
            LOG.warning("%s %s is unreadable (%s): ignoring it", what, path, exc)
            continue
        if got == want:
            return path
        LOG.warning(
            "%s %s is corrupt (its content hashes to %s, not %s): removing it and rebuilding",
            what,
            path,
            got,
            want,
        )
        for p in (path, *(path.with_suffix(s) for s in sidecars)):
            try:
                p.unlink(missing_ok=True)
            except OSError as exc:
                LOG.warning("could not remove %s: %s", p, exc)
    return None


def store(prefix: str | Path, ext: str, write: Callable[[Path], object]) -> Path:
    """Write a cache file atomically: ``write(tmp_path)``, hash it, rename into place.

    Returns the final ``<prefix>.<hash><ext>`` path. The temporary file (same folder, so the
    rename is atomic) is removed if ``write`` raises, including on KeyboardInterrupt.
    """
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp = prefix.with_name(f"{prefix.name}.{os.getpid()}.tmp{ext}")
    try:
        write(tmp)
        final = prefix.with_name(f"{prefix.name}.{file_sha256(tmp)[:DIGITS]}{ext}")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace a small text file (engine keys) in one step."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
