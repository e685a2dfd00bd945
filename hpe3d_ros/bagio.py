"""rosbag2 bags (sqlite3 and MCAP) in and out, without a ROS install: ``rosbags`` + our types.

* :func:`typestore` knows the ROS 2 Jazzy standard types plus our ``msg/*.msg`` (found in a
  checkout or in an installed workspace's ``share/hpe3d_ros/msg``), with RIHS01 hashes equal
  to rosidl's, so bags we write are read by rosbag2 and vice versa.
* :class:`BagReader` reads what a bag holds in log-time order. A bag that ``rosbags`` cannot
  open (truncated MCAP without its footer, truncated sqlite3 database, missing
  ``metadata.yaml``) is read record by record up to the damage; the damage itself is raised
  as one :class:`BagReadError` line naming the bag and where it broke, *after* every good
  message has been yielded, so callers keep everything that was readable.
* :class:`BagWriter` writes a bag (MCAP by default) from already serialised CDR bytes.
"""

from __future__ import annotations

import functools
import io
import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, ClassVar

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import decompress
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "hpe3d_ros"
_MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 0x03, 0x04, 0x05, 0x06


class BagReadError(RuntimeError):
    """A bag that cannot be opened, or that is damaged part-way (the message says where)."""


# ------------------------------------------------------------------------------ types
def msg_dir() -> Path:
    """Folder of our ``.msg`` files: the checkout's ``msg/`` or the installed share folder."""
    here = Path(__file__).resolve().parents[1] / "msg"
    if here.is_dir():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory(PACKAGE)) / "msg"
    except Exception as exc:  # PackageNotFoundError, or ament_index_python missing
        raise FileNotFoundError(f"cannot find {PACKAGE}'s msg/ folder: {exc}") from exc
    if not share.is_dir():
        raise FileNotFoundError(f"{share} does not exist")
    return share


@functools.cache
def typestore() -> Typestore:
    """ROS 2 Jazzy types + ``hpe3d_ros/msg/*`` registered from their ``.msg`` text."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict[str, Any] = {}
    for path in sorted(msg_dir().glob("*.msg")):
        types.update(
            get_types_from_msg(path.read_text(encoding="utf-8"), f"{PACKAGE}/msg/{path.stem}")
        )
    store.register(types)
    return store


def deserialize(raw: bytes | memoryview, msgtype: str) -> Any:
    """CDR bytes -> a ``rosbags`` message object (arrays as numpy)."""
    return typestore().deserialize_cdr(raw, msgtype)


def serialize_ros(msg: Any) -> bytes:
    """An rclpy message object -> CDR bytes, exactly as a live publisher sends them."""
    from rclpy.serialization import serialize_message  # no DDS involved

    return serialize_message(msg)


# ------------------------------------------------------------------------------ reading
class BagReader:
    """Messages of a rosbag2 bag (folder, ``.mcap`` or ``.db3``), damaged or not.

    Attributes:
        path: the bag.
        topics: ``topic -> message type`` (e.g. ``"sensor_msgs/msg/Image"``).
        counts: ``topic -> message count`` (from the metadata; None when recovering).
        damage: why the normal reader failed (None for a healthy bag).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagReadError(f"bag {self.path} does not exist")
        self.damage: str | None = None
        self._reader: Reader | None = None
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as exc:  # ReaderError, sqlite3 errors, YAML errors...
            self._reader = None
            self.damage = f"{type(exc).__name__}: {exc}"
            self._files = _storage_files(self.path)
            if not self._files:
                raise BagReadError(f"cannot open bag {self.path}: {exc}") from exc
            self.topics = {}
            for f in self._files:
                self.topics.update(_recover_topics(f))
            self.counts: dict[str, int | None] = {t: None for t in self.topics}
            return
        self.topics = {c.topic: c.msgtype for c in self._reader.connections}
        self.counts = {t: 0 for t in self.topics}
        for c in self._reader.connections:
            self.counts[c.topic] = (self.counts[c.topic] or 0) + c.msgcount

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """Yield ``(topic, msgtype, log_time_ns, cdr_bytes)`` of ``topics`` in bag order.

        Raises:
            BagReadError: after the last good message of a damaged bag.
        """
        wanted = set(topics)
        count, last = 0, None
        if self._reader is None:
            for f in self._files:
                for topic, msgtype, t, raw in _recover_messages(self.path, f, self.damage):
                    count, last = count + 1, t
                    if topic in wanted:
                        yield topic, msgtype, t, raw
            return
        conns = [c for c in self._reader.connections if c.topic in wanted]
        if not conns:
            return
        it = self._reader.messages(connections=conns)
        while True:
            try:
                conn, t, raw = next(it)
            except StopIteration:
                return
            except Exception as exc:
                where = f"after {count} messages" + (f" (log time {last} ns)" if last else "")
                raise BagReadError(
                    f"bag {self.path} is damaged {where}: {type(exc).__name__}: {exc}"
                ) from exc
            count, last = count + 1, t
            yield conn.topic, conn.msgtype, t, raw


def _storage_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix in (".mcap", ".db3") else []
    return sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))


def _recover_topics(f: Path) -> dict[str, str]:
    if f.suffix == ".db3":
        with _padded_sqlite(f) as con:
            try:
                return {n: t for n, t in con.execute("SELECT name, type FROM topics")}
            except sqlite3.DatabaseError:
                return {}
    out: dict[str, str] = {}
    try:
        for rec in _mcap_records(f):
            if rec[0] == _OP_CHANNEL:
                out[rec[1]] = rec[2]
    except BagReadError:
        pass
    return out


def _recover_messages(
    bag: Path, f: Path, why: str | None
) -> Iterator[tuple[str, str, int, bytes]]:
    n, last = 0, None
    if f.suffix == ".db3":
        with _padded_sqlite(f) as con:
            try:
                topics = {
                    i: (n_, t) for i, n_, t in con.execute("SELECT id, name, type FROM topics")
                }
                rows = con.execute("SELECT topic_id, timestamp, data FROM messages ORDER BY id")
                for tid, t, data in rows:
                    if tid not in topics or t is None or data is None:  # a zeroed page
                        raise sqlite3.DatabaseError("row of zeros (file cut short)")
                    n, last = n + 1, t
                    yield (*topics[tid], int(t), bytes(data))
            except sqlite3.DatabaseError as exc:
                size = f.stat().st_size
                raise BagReadError(
                    f"bag {bag} is damaged: {f.name} ({size} bytes) breaks after {n} messages"
                    + (f" (last log time {last} ns)" if last is not None else "")
                    + f": {exc} (rosbags: {why})"
                ) from exc
        return
    for rec in _mcap_records(f, bag):
        if rec[0] == _OP_MESSAGE:
            yield rec[1], rec[2], rec[3], rec[4]


class _padded_sqlite:
    """A read-only copy of a truncated sqlite3 file, zero-padded to the size its header gives.

    SQLite refuses a file shorter than its header's page count; padded, it reads every intact
    page and reports the zeroed ones as malformed, which is where the damage starts.
    """

    def __init__(self, f: Path) -> None:
        self.f = f

    def __enter__(self) -> sqlite3.Connection:
        self.tmp = tempfile.mkdtemp(prefix="hpe3d_bag_")
        dst = Path(self.tmp) / self.f.name
        shutil.copyfile(self.f, dst)
        header = dst.read_bytes()[:100]
        if len(header) == 100:
            page = struct.unpack(">H", header[16:18])[0]
            page = 65536 if page == 1 else page
            pages = struct.unpack(">I", header[28:32])[0]
            with open(dst, "r+b") as fh:
                fh.truncate(max(dst.stat().st_size, page * pages))
        self.con = sqlite3.connect(f"file:{dst}?mode=ro&immutable=1", uri=True)
        return self.con

    def __exit__(self, *exc: object) -> None:
        self.con.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _mcap_records(f: Path, bag: Path | None = None) -> Iterator[tuple]:
    """Stream an MCAP file record by record (chunks expanded), stopping at the damage.

    Yields ``(_OP_CHANNEL, topic, msgtype)`` and ``(_OP_MESSAGE, topic, msgtype, log_ns, raw)``.
    """
    bag = bag or f
    data = f.read_bytes()
    if not data.startswith(_MCAP_MAGIC):
        raise BagReadError(f"bag {bag}: {f.name} is not an MCAP file (bad magic)")
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    count, last = 0, None

    def damaged(pos: int, why: str) -> BagReadError:
        where = f"after {count} messages" + (f" (last log time {last} ns)" if last else "")
        return BagReadError(
            f"bag {bag} is damaged: {f.name} breaks at byte {pos} of {len(data)} {where}: {why}"
        )

    def records(buf: bytes, base: int, top: bool) -> Iterator[tuple]:
        nonlocal count, last
        pos = len(_MCAP_MAGIC) if top else 0
        while pos < len(buf):
            if top and buf[pos:] == _MCAP_MAGIC:
                complete.append(True)
                return
            if pos + 9 > len(buf):
                raise damaged(base + pos, "record header cut short")
            op, length = buf[pos], struct.unpack_from("<Q", buf, pos + 1)[0]
            body = pos + 9
            if body + length > len(buf):
                if op == _OP_CHUNK and top:  # an uncompressed chunk: keep its whole records
                    yield from _partial_chunk(buf[body:], base + body, records)
                raise damaged(base + pos, f"record (opcode {op:#x}) cut short")
            rec = io.BytesIO(buf[body : body + length])
            if op == _OP_SCHEMA:
                sid = struct.unpack("<H", rec.read(2))[0]
                schemas[sid] = _mcap_str(rec)
            elif op == _OP_CHANNEL:
                cid, sid = struct.unpack("<HH", rec.read(4))
                channels[cid] = (_mcap_str(rec), schemas.get(sid, ""))
                yield (_OP_CHANNEL, *channels[cid])
            elif op == _OP_MESSAGE:
                cid, _seq, log_ns, _pub = struct.unpack("<HIQQ", rec.read(22))
                count, last = count + 1, log_ns
                yield (_OP_MESSAGE, *channels[cid], int(log_ns), rec.read())
            elif op == _OP_CHUNK:
                _s, _e, size, crc = struct.unpack("<QQQI", rec.read(28))
                comp = _mcap_str(rec)
                n = struct.unpack("<Q", rec.read(8))[0]
                try:
                    inner = decompress(rec.read(n), comp, size, crc)
                except Exception as exc:
                    raise damaged(base + pos, f"chunk unreadable ({exc})") from exc
                yield from records(inner, base + pos, False)
            pos = body + length

    complete: list[bool] = []
    yield from records(data, 0, True)
    if not complete:
        raise damaged(len(data), "file ends without the MCAP footer (truncated)")


def _partial_chunk(body: bytes, base: int, records: Any) -> Iterator[tuple]:
    """Records of a chunk cut short, when it is uncompressed (compressed: nothing to save)."""
    head = 28
    if len(body) < head + 4:
        return
    n = struct.unpack_from("<I", body, head)[0]
    comp = body[head + 4 : head + 4 + n]
    start = head + 4 + n + 8
    if comp != b"" or len(body) <= start:
        return
    try:
        yield from records(body[start:], base + start, False)
    except BagReadError:
        return  # the caller raises the damage of the enclosing chunk


def _mcap_str(bio: io.BytesIO) -> str:
    n = struct.unpack("<I", bio.read(4))[0]
    return bio.read(n).decode("utf-8")


# ------------------------------------------------------------------------------ writing
class BagWriter:
    """A new rosbag2 bag; connections are added on first use of a topic."""

    STORAGES: ClassVar[dict[str, StoragePlugin]] = {
        "mcap": StoragePlugin.MCAP,
        "sqlite3": StoragePlugin.SQLITE3,
    }

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in self.STORAGES:
            raise ValueError(f"storage must be one of {sorted(self.STORAGES)}, got {storage!r}")
        self.path = Path(path)
        self._writer = Writer(self.path, version=9, storage_plugin=self.STORAGES[storage])
        self._writer.open()
        self._conns: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def write(self, topic: str, msgtype: str, log_time_ns: int, raw: bytes) -> None:
        """Append one serialised message (``log_time_ns``: the bag's receive time)."""
        conn = self._conns.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._conns[topic] = conn
            self.counts[topic] = 0
        self._writer.write(conn, int(log_time_ns), raw)
        self.counts[topic] += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
