"""The replay's output folder: what it may write, and what it may never delete.

A replay owns seven entries of its output folder ``OUT`` (:data:`MANAGED`) and marks the folder
with :data:`MARKER` when it starts writing. Rules, checked before anything is written or
deleted (:func:`check_output`), so a typo never costs data:

* an ``OUT`` that already holds any managed entry is refused unless ``--overwrite`` is given;
* ``--overwrite`` replaces only results that a replay wrote (the marker, or ``frames.csv`` of
  a replay older than the marker); anything else is refused, never deleted;
* an input bag inside an entry that would be replaced (``OUT/bags/run1`` given as input with
  ``-o OUT``) is refused;
* a managed entry that is a symbolic link (or not a folder/file as expected) is refused:
  replay writes only inside ``OUT``.

The old results are removed by :func:`clear_previous` only after every other check of the
run has passed (configuration, bag paths, models), right before the first new file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

MANAGED_FILES = ("frames.csv", "people.csv", "vehicle_people.csv", "summary.json", "timings.json")
MANAGED_DIRS = ("bags", "pictures")
MANAGED = (*MANAGED_FILES, *MANAGED_DIRS)
MARKER = ".hpe3d-replay"


class OutputError(ValueError):
    """The output folder cannot be used as asked (the message says why, in one line)."""


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_output(out: Path, bags: Sequence[Path], overwrite: bool) -> None:
    """Refuse an output folder that this run could not use without losing data.

    Raises:
        OutputError: ``out`` is not a folder, holds results without ``overwrite``, holds
            entries a replay did not write, has a symlinked entry, or contains an input.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} exists and is not a folder")
    present = [name for name in MANAGED if os.path.lexists(out / name)]
    for name in present:
        entry = out / name
        if entry.is_symlink():
            raise OutputError(
                f"{entry} is a symbolic link; replay writes only inside {out}: remove the link "
                f"or choose another output folder"
            )
        want_dir = name in MANAGED_DIRS
        if entry.is_dir() != want_dir:
            kind = "a folder" if want_dir else "a file"
            raise OutputError(f"{entry} should be {kind}; choose another output folder")
    for bag in bags:
        if _inside(out, bag):
            raise OutputError(f"output {out} lies inside the input bag {bag}")
    if not present:
        return
    ours = (out / MARKER).is_file() or (out / "frames.csv").is_file()
    if not overwrite:
        if ours:
            raise OutputError(f"{out} already holds replay results; pass --overwrite")
        raise OutputError(
            f"{out} already holds {', '.join(present)} not written by hpe3d-replay; "
            f"choose another output folder"
        )
    if not ours:
        raise OutputError(
            f"--overwrite refused: {', '.join(present)} in {out} were not written by "
            f"hpe3d-replay (no {MARKER}); choose another output folder"
        )
    for bag in bags:
        for name in MANAGED_DIRS:
            if (out / name).is_dir() and _inside(bag, out / name):
                raise OutputError(
                    f"--overwrite refused: the input bag {bag} lies inside {out / name}, "
                    f"which --overwrite would replace; move it or choose another output folder"
                )


def clear_previous(out: Path) -> None:
    """Remove an earlier replay's results (call only after :func:`check_output` passed)."""
    for name in MANAGED_DIRS:
        if (out / name).is_dir() and not (out / name).is_symlink():
            shutil.rmtree(out / name)
    for name in MANAGED_FILES:
        if (out / name).is_file():
            (out / name).unlink()


def mark(out: Path, bags: Sequence[Path]) -> None:
    """Create ``out`` and the marker that makes its results replaceable by ``--overwrite``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"written_by": "hpe3d-replay",
                                          "bags": [str(b) for b in bags]}) + "\n")  # fmt: skip


def sequence_names(bags: Sequence[Path]) -> list[str]:
    """One distinct, non-empty sequence name per bag (its folder or file name).

    ``.`` and other paths without a name use the resolved folder's name; a name used by an
    earlier bag gets ``_2``, ``_3``… (two ``run1`` folders from two days stay two sequences).
    """
    names: list[str] = []
    for bag in bags:
        base = bag.stem if bag.is_file() else bag.name
        if not base or base in (".", ".."):
            base = bag.resolve().name or "bag"
        name, i = base, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names
