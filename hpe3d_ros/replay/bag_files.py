"""The files of a rosbag2 bag, opened safely: regular files only, metadata read with bounds.

A bag is a folder (``metadata.yaml`` + ``*.mcap`` / ``*.db3`` storage files) or one storage file.
Everything here answers bad input with one :class:`BagReadError` line:

* Only regular files are read. A symlink is followed when it ends at a regular file (bags are
  often symlinked onto a data disk); one that ends at a device, FIFO, socket or folder is refused
  like the special file itself. Files are opened with ``O_NONBLOCK`` and checked with ``fstat`` on
  the open descriptor, so a FIFO cannot block the open and a file swapped after a check is
  caught.
* ``metadata.yaml`` is read only when it is a regular file of at most ``METADATA_MAX_BYTES``;
  its storage file names must stay inside the bag folder.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

STORAGE_SUFFIXES = (".mcap", ".db3")
METADATA_MAX_BYTES = 1 << 20
MCAP_MAGIC = b"\x89MCAP0\r\n"
SQLITE_MAGIC = b"SQLite format 3\x00"
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))  # fmt: skip


class BagReadError(RuntimeError):
    """A bag that cannot be opened, or that is damaged part-way (the message says where)."""


def file_kind(mode: int) -> str:
    """``"a FIFO"``, ``"a folder"``... for a ``st_mode`` that is not a regular file."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading when it is (or links to) a regular file; else BagReadError."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BagReadError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            link = " (through a symlink)" if path.is_symlink() else ""
            raise BagReadError(f"{path} is {file_kind(mode)}{link}, not a regular file: refused")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


class Tally:
    """Damage met while reading one storage file: where, why, what it cost, what was kept."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.lost = 0
        self.lost_unknown = False
        self.kept = 0

    def add(self, where: str, why: str, lost: int | None) -> None:
        """One damaged place; ``lost``: messages it cost (None: not known)."""
        cost = "" if lost == 0 else (", messages lost" if lost is None else f", {lost} lost")
        self.problems.append(f"{where}: {why}{cost}")
        if lost is None:
            self.lost_unknown = True
        else:
            self.lost += lost


@dataclass
class BagLayout:
    """What a bag path holds: its storage files and what ``metadata.yaml`` says about them.

    Attributes:
        files: storage files to read, in order.
        notes: problems of the folder or its metadata that lose no message (one phrase each).
        topics: ``topic -> type`` declared by the metadata (empty without one).
        counts: ``topic -> message count`` declared by the metadata.
        message_compression: ``"zstd"`` when every message is compressed on its own.
    """

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    topics: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    message_compression: str = ""


def bag_layout(path: Path) -> BagLayout:
    """Storage files and metadata of the bag at ``path`` (a folder or one storage file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        what = "is a broken symlink" if path.is_symlink() else "does not exist"
        raise BagReadError(f"bag {path} {what}") from None
    except OSError as exc:
        raise BagReadError(f"bag {path}: {exc.strerror or exc}") from exc
    layout = BagLayout()
    if stat.S_ISREG(st.st_mode):
        layout.files = [path]
        return layout
    if not stat.S_ISDIR(st.st_mode):
        raise BagReadError(f"bag {path} is {file_kind(st.st_mode)}, not a bag: refused")
    meta = _read_metadata(path / "metadata.yaml", layout)
    listed = sorted(p for p in path.iterdir() if p.name.endswith(STORAGE_SUFFIXES))
    layout.files = _metadata_files(path, meta, layout) if meta else []
    if not layout.files:
        layout.files = listed
    elif unlisted := [p.name for p in listed if p not in layout.files]:
        layout.notes.append(f"storage files not in metadata.yaml ignored: {', '.join(unlisted)}")
    if not layout.files:
        found = sorted(p.name for p in path.iterdir())[:5]
        raise BagReadError(
            f"bag {path} holds no .mcap or .db3 file"
            + (f" (found: {', '.join(found)})" if found else " (the folder is empty)")
        )
    return layout


def _read_metadata(meta: Path, layout: BagLayout) -> dict[str, Any] | None:
    if not meta.exists() and not meta.is_symlink():
        layout.notes.append("metadata.yaml is missing")
        return None
    try:
        with open_regular(meta) as fh:
            text = fh.read(METADATA_MAX_BYTES + 1)
        if len(text) > METADATA_MAX_BYTES:
            raise BagReadError(f"{meta.name} is larger than {METADATA_MAX_BYTES} bytes")
        doc = yaml.safe_load(text.decode("utf-8"))
        info = doc["rosbag2_bagfile_information"]
        if not isinstance(info, dict):
            raise TypeError("rosbag2_bagfile_information is not a mapping")
    except (BagReadError, OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        layout.notes.append(f"metadata.yaml unreadable ({why[:200]})")
        return None
    try:
        for entry in info.get("topics_with_message_count") or []:
            meta_t = entry["topic_metadata"]
            name, msgtype = str(meta_t["name"]), str(meta_t["type"])
            layout.topics[name] = msgtype
            layout.counts[name] = layout.counts.get(name, 0) + int(entry["message_count"])
        if str(info.get("compression_mode", "")).lower() == "message":
            layout.message_compression = str(info.get("compression_format", ""))
        if str(info.get("compression_mode", "")).lower() == "file":
            raise BagReadError(
                f"bag {meta.parent} is file-compressed ({info.get('compression_format')}): "
                "decompress its storage files first"
            )
    except BagReadError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        layout.notes.append(f"metadata.yaml topic list unreadable ({type(exc).__name__}: {exc})")
        layout.topics.clear()
        layout.counts.clear()
    return info


def _metadata_files(folder: Path, info: dict[str, Any], layout: BagLayout) -> list[Path]:
    names = info.get("relative_file_paths")
    if not isinstance(names, list):
        layout.notes.append("metadata.yaml lists no storage file")
        return []
    files: list[Path] = []
    for name in names:
        rel = Path(str(name))
        if rel.is_absolute() or ".." in rel.parts or str(name) in ("", "."):
            layout.notes.append(
                f"metadata.yaml names {str(name)[:100]!r} outside the bag: ignored"
            )
            continue
        p = folder / rel
        if p in files:
            layout.notes.append(f"metadata.yaml lists {rel} twice: read once")
        elif not p.exists() and not p.is_symlink():
            layout.notes.append(f"{rel} (listed in metadata.yaml) is missing")
        else:
            files.append(p)
    return files
