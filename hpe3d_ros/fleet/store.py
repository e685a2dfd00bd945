"""The fleet's output folder: where each bag's results appear, whole or not at all.

Layout of ``OUT`` (on a file system every node sees at the same path)::

    .hpe3d-fleet                marker: this folder is a fleet's, its results replaceable
    bags/<name>/                one bag: exactly what ``hpe3d-replay <bag> -o ...`` writes,
                                plus fleet.json (its record: key, status, per-camera stats)
    .attempts/<name>.<id>/      a bag being replayed (renamed to bags/<name> when finished)
    bags.csv, cameras.csv, by_*.csv, summary.json, distributions.*, timings.json

A bag is replayed into its own attempt folder, its record written last, and the folder
renamed into ``bags/`` (one ``rename``: atomic on a POSIX file system). A worker killed
mid-bag leaves only an attempt folder, which no later step reads and the next run removes; a
finished bag is never half there. Only one run writes into ``OUT`` at a time (a lock file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MARKER = ".hpe3d-fleet"
RECORD = "fleet.json"
BAGS = "bags"
ATTEMPTS = ".attempts"
LOCK = ".lock"


class StoreError(ValueError):
    """``OUT`` cannot be used (the message says why, in one line)."""


def check_out(out: Path) -> None:
    """Refuse an ``OUT`` that holds anything but a fleet's results (nothing is deleted).

    Raises:
        StoreError: ``out`` is a file, or a non-empty folder without the fleet marker.
    """
    if out.exists() and not out.is_dir():
        raise StoreError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise StoreError(
            f"{out} is not empty and was not written by hpe3d-fleet; choose another output folder"
        )


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``OUT``'s lock for the run (another run on the same ``OUT`` is refused)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"written_by": "hpe3d-fleet"}) + "\n")
    with open(out / LOCK, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise StoreError(f"another hpe3d-fleet run is writing to {out}") from exc
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_record(folder: Path) -> dict[str, Any] | None:
    """The record of a finished bag folder (None: absent or unreadable)."""
    try:
        return json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: Any) -> None:
    """Write ``path`` through a temporary file and ``os.replace`` (never half written)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def new_attempt(out: Path, name: str) -> Path:
    """A fresh, not yet existing attempt folder for ``name`` (the replay creates it)."""
    (out / ATTEMPTS).mkdir(parents=True, exist_ok=True)
    return out / ATTEMPTS / f"{name}.{uuid.uuid4().hex[:12]}"


def publish(out: Path, attempt: Path, name: str, key: str) -> str:
    """Move a finished attempt to ``bags/<name>``; returns ``"published"`` or ``"duplicate"``.

    A folder already there with the same key (another attempt of the same bag finished
    first) wins and this attempt is dropped; one with another key (the bag, the weights or
    the configuration changed) is replaced.

    Raises:
        StoreError: ``bags/<name>`` exists and is not a fleet's result.
    """
    final = out / BAGS / name
    final.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a concurrent attempt may publish between the checks
        if os.path.lexists(final):
            old = read_record(final)
            if old is None or final.is_symlink():
                raise StoreError(f"{final} exists and was not written by hpe3d-fleet")
            if old.get("key") == key:
                shutil.rmtree(attempt)
                return "duplicate"
            trash = new_attempt(out, f"{name}.replaced")
            os.rename(final, trash)
            shutil.rmtree(trash)
        with contextlib.suppress(FileExistsError, OSError):
            os.rename(attempt, final)
            return "published"
    raise StoreError(f"could not publish {name}: {final} keeps changing")


def abandoned_attempts(out: Path) -> list[Path]:
    """Attempt folders left by killed workers or interrupted runs (call under the lock,
    when no task of this run is in flight)."""
    folder = out / ATTEMPTS
    return sorted(folder.iterdir()) if folder.is_dir() else []


def remove_attempts(out: Path) -> int:
    """Remove abandoned attempt folders; returns how many there were."""
    stale = abandoned_attempts(out)
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)
