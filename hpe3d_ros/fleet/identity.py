"""What makes a bag's result reusable: the bag's content, the weights, the configuration.

A finished bag is skipped by a later run only when its **key** is the same:
``sha256(run key, bag content hash, side-car GT hash)``, where the run key covers the
package version, the version of the fleet's per-bag record, every parameter value (seed
included), the parameters file's path (it is written into ``summary.json``), the replay
options (storage, cameras, pictures) and the bytes of every weights file the run may load.
Any of these changed gives a new key, and the bag is replayed again. Source code changed
without a new package version is not seen: use ``--rerun`` (or a new ``OUT``) then.

Hashing a long campaign means reading it, so a cheaper check runs first: the bag's file list
with sizes and modification times (:func:`fingerprint`). A bag whose fingerprint and run key
match its record is skipped without being opened; any other is hashed where it is replayed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import hpe3d_ros

#: version of the per-bag record (its stats and their bins): a new one replays every bag
RECORD_VERSION = 1
#: shipped weights (detector ONNX files, lifter checkpoints, calibration)
WEIGHTS_DIR = Path(hpe3d_ros.__file__).resolve().parent / "weights"
_CHUNK = 1 << 20


def bag_files(bag: Path) -> list[Path]:
    """Regular files of a bag (a folder, recursively, sorted; or the file itself)."""
    if bag.is_dir():
        return sorted(p for p in bag.rglob("*") if p.is_file() and not p.is_symlink())
    return [bag]


def _rel(path: Path, bag: Path) -> str:
    return path.name if path == bag else path.relative_to(bag).as_posix()


def fingerprint(bag: Path) -> list[list[Any]]:
    """``[[relative path, size, mtime_ns], ...]``: changes when a file is touched."""
    out = []
    for p in bag_files(bag):
        st = p.stat()
        out.append([_rel(p, bag), st.st_size, st.st_mtime_ns])
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def content_hash(bag: Path) -> str:
    """sha256 over the bag's files (relative path, size, bytes): its identity wherever it lies."""
    h = hashlib.sha256()
    for p in bag_files(bag):
        h.update(f"{_rel(p, bag)}\0{p.stat().st_size}\0".encode())
        h.update(bytes.fromhex(file_sha256(p)))
    return h.hexdigest()


def weights_digest(values: dict[str, Any]) -> dict[str, str]:
    """sha256 of every weights file a run may load: the shipped ones and any file a parameter
    names (``lifter.weights``, ``detector.model_path``)."""
    files = {p.name: p for p in sorted(WEIGHTS_DIR.iterdir()) if p.is_file()}
    for name, value in sorted(values.items()):
        if isinstance(value, str) and value and os.path.isfile(value):
            files[f"{name}={value}"] = Path(value)
    return {k: file_sha256(p) for k, p in files.items() if not k.endswith(".md")}


def run_identity(values: dict[str, Any], params_file: str, options: dict[str, Any]) -> dict:
    """Everything that, with the bag, decides the results (JSON-able; hashed by :func:`digest`)."""
    return {
        "hpe3d_ros": hpe3d_ros.__version__,
        "record": RECORD_VERSION,
        "params_file": params_file,
        "params": values,
        "options": options,
        "weights": weights_digest(values),
    }


def digest(value: Any) -> str:
    """sha256 of a JSON-able value (sorted keys): a stable key."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def bag_key(run_key: str, bag_sha256: str, gt_sha256: str | None) -> str:
    """The key under which one bag's results are reused."""
    return digest([run_key, bag_sha256, gt_sha256 or ""])
