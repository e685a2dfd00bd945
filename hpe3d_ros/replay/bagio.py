"""rosbag2 bags (sqlite3 and MCAP) in and out, without a ROS install: ``rosbags`` + our types.

* :func:`typestore` knows the ROS 2 Jazzy standard types plus our ``msg/*.msg`` (found in a
  checkout or in an installed workspace's ``share/hpe3d_ros/msg``), with RIHS01 hashes equal
  to rosidl's, so bags we write are read by rosbag2 and vice versa.
* :class:`BagReader` reads what a bag holds, damaged or not, in bounded memory and without
  temporary copies: MCAP files through :mod:`.bag_mcap` (the ``mcap`` package's records),
  sqlite3 files in place through :mod:`.bag_sqlite`, after :mod:`.bag_files` has checked
  that they are regular files. A damaged record, chunk or page is skipped and counted and
  the reading goes on; the damage is raised as one :class:`BagReadError` line *after* every
  readable message has been yielded.
* :class:`BagWriter` writes a bag (MCAP by default) from serialised CDR bytes;
  :func:`serialize_ros` serialises an rclpy message to the same bytes on every run (rclpy leaves
  the CDR alignment padding uninitialised; here it is zero).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, ClassVar

import zstandard
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from hpe3d_ros.replay.bag_files import SQLITE_MAGIC, BagReadError, Tally, bag_layout, open_regular
from hpe3d_ros.replay.bag_mcap import McapFile
from hpe3d_ros.replay.bag_sqlite import Sqlite3File

__all__ = ["BagReadError", "BagReader", "BagWriter", "canonical_cdr", "deserialize",
           "msgtype_of", "serialize_ros", "typestore"]  # fmt: skip
MAX_RECORD_BYTES = 512 << 20  # the largest chunk or message a reader loads (bit flips claim more)
PACKAGE = "hpe3d_ros"
_MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 0x03, 0x04, 0x05, 0x06


# ------------------------------------------------------------------------------ types
def msg_dir() -> Path:
    """Folder of our ``.msg`` files: the checkout's ``msg/`` or the installed share folder."""
    here = Path(__file__).resolve().parents[2] / "msg"
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
    """An rclpy message object -> CDR bytes as a publisher sends them, with zeroed padding.

    rclpy's ``serialize_message`` leaves the alignment padding of its CDR buffer uninitialised,
    so two runs write different bytes for equal messages; passing the bytes through the rosbags
    typestore (:func:`canonical_cdr`) writes every padding byte as zero.
    """
    from rclpy.serialization import serialize_message  # no DDS involved

    return canonical_cdr(serialize_message(msg), msgtype_of(msg))


def canonical_cdr(raw: bytes | memoryview, msgtype: str) -> bytes:
    """CDR bytes of ``msgtype`` re-serialised with zero padding (equal messages, equal bytes)."""
    store = typestore()
    return bytes(store.serialize_cdr(store.deserialize_cdr(raw, msgtype), msgtype))


def msgtype_of(msg: Any) -> str:
    """``"pkg/msg/Name"`` of an rclpy message object."""
    return f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"


# ------------------------------------------------------------------------------ reading
class BagReader:
    """Messages of a rosbag2 bag (folder, ``.mcap`` or ``.db3``), damaged or not.

    Attributes:
        path: the bag.
        topics: ``topic -> message type`` (e.g. ``"sensor_msgs/msg/Image"``).
        counts: ``topic -> message count`` (metadata.yaml's, else the storage's; None: unknown).
        damage: one line on what was found damaged or missing when opening (None: nothing).
    """

    def __init__(self, path: str | Path, *, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.path = Path(path)
        layout = bag_layout(self.path)
        self._files: list[McapFile | Sqlite3File] = []
        self._zstd = layout.message_compression == "zstd"
        self._limit = max_record_bytes
        notes = list(layout.notes)
        if layout.message_compression not in ("", "zstd"):
            raise BagReadError(
                f"bag {self.path}: messages compressed with {layout.message_compression!r} "
                "cannot be read"
            )
        refused: list[str] = []
        for f in layout.files:
            try:
                self._files.append(_open_storage(f, max_record_bytes))
            except BagReadError as exc:
                refused.append(str(exc))
        for storage in self._files:
            notes += storage.notes
        notes += refused
        self.damage = "; ".join(notes) or None
        if not self._files:
            raise BagReadError(f"cannot read bag {self.path}: " + "; ".join(refused))
        self.topics = dict(layout.topics)
        found: dict[str, int | None] = {}
        for storage in self._files:
            if isinstance(storage, McapFile):
                n = storage.counts
            else:  # a table scan, only when metadata.yaml gives no counts
                n = None if layout.counts else storage.count()
            for topic, msgtype in storage.channels.values():
                self.topics.setdefault(topic, msgtype)
            for topic in {t for t, _ in storage.channels.values()}:
                have = found.get(topic, 0)
                found[topic] = None if n is None or have is None else have + n.get(topic, 0)
        self.counts: dict[str, int | None] = {
            t: layout.counts.get(t) if found.get(t) is None else found[t] for t in self.topics
        }
        if not self.topics and self.damage:
            raise BagReadError(f"bag {self.path} is damaged: {self.damage}; no topic is readable")

    def close(self) -> None:
        for storage in self._files:
            storage.close()
        self._files = []

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def messages(self, topics: Collection[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """Yield ``(topic, msgtype, log_time_ns, cdr_bytes)`` of ``topics``, in log-time order
        within each storage file (MCAP) or in write order (sqlite3), files one after another.

        Damaged records are skipped and counted; the reading goes on after them.

        Raises:
            BagReadError: after the last readable message, when messages were lost (one line:
                where, why, how many kept and lost).
        """
        wanted = set(topics)
        problems: list[str] = []
        kept, lost, unknown = 0, 0, False
        for storage in list(self._files):
            tally = Tally()
            for log_ns, cid, raw in storage.messages(wanted, tally):
                topic, msgtype = storage.channels[cid]
                if self._zstd:
                    try:
                        raw = _unzstd(raw, self._limit)
                    except zstandard.ZstdError as exc:
                        tally.add(f"{topic} at {log_ns} ns", f"does not decompress ({exc})", 1)
                        continue
                kept += 1
                yield topic, msgtype, log_ns, raw
            problems += [f"{storage.name} {p}" for p in tally.problems]
            lost, unknown = lost + tally.lost, unknown or tally.lost_unknown
        if problems:
            shown = "; ".join(problems[:3]) + (
                f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
            )
            cost = f"{lost}{'+' if unknown else ''} lost" if lost or not unknown else "some lost"
            raise BagReadError(
                f"bag {self.path} is damaged: {shown} ({kept} messages read, {cost})"
            )


def _open_storage(f: Path, limit: int) -> McapFile | Sqlite3File:
    """An MCAP or sqlite3 storage file, told apart by its first bytes."""
    with open_regular(f) as fh:
        magic = fh.read(16)
    if magic.startswith(SQLITE_MAGIC[:6]):
        return Sqlite3File(f, f.name)
    fh = open_regular(f)
    try:
        return McapFile(fh, f.name, limit)
    except BaseException:
        fh.close()
        raise


def _unzstd(raw: bytes, limit: int) -> bytes:
    """One message compressed on its own (rosbag2 ``compression_mode: message``)."""
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)) as r:
        out = r.read(limit + 1)
    if len(out) > limit:
        raise zstandard.ZstdError(f"more than {limit} bytes")
    return out


# ------------------------------------------------------------------------------ writing
#: What tf2's static broadcaster offers (reliable, transient local, keep last 1): ``ros2 bag
#: play`` republishes a topic with the QoS its metadata records, so a /tf_static recorded as
#: volatile would never reach a node that starts after the first message (tf2 listeners ask
#: for transient local and get nothing).
LATCHED_QOS = Qos(
    QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
    QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False,
)  # fmt: skip
LATCHED_TOPICS = frozenset({"/tf_static"})


class BagWriter:
    """A new rosbag2 bag; connections are added on first use of a topic (``/tf_static`` with
    the latched QoS tf2 publishes it with, :data:`LATCHED_QOS`)."""

    STORAGES: ClassVar[dict[str, StoragePlugin]] = {
        "mcap": StoragePlugin.MCAP,
        "sqlite3": StoragePlugin.SQLITE3,
    }

    def __init__(self, path: str | Path, storage: str = "mcap", version: int = 8) -> None:
        """``version``: rosbag2 metadata format, 8 (the default: QoS profiles as a YAML string,
        read by Humble and Jazzy alike) or 9 (QoS profiles as a YAML list, which Humble's
        parser refuses)."""
        if storage not in self.STORAGES:
            raise ValueError(f"storage must be one of {sorted(self.STORAGES)}, got {storage!r}")
        if version not in (8, 9):
            raise ValueError(f"version must be 8 or 9, got {version!r}")
        self.path = Path(path)
        self._writer = Writer(self.path, version=version, storage_plugin=self.STORAGES[storage])
        self._writer.open()
        self._conns: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def write(self, topic: str, msgtype: str, log_time_ns: int, raw: bytes) -> None:
        """Append one serialised message (``log_time_ns``: the bag's receive time)."""
        conn = self._conns.get(topic)
        if conn is None:
            qos = (LATCHED_QOS,) if topic in LATCHED_TOPICS else ()
            conn = self._writer.add_connection(
                topic, msgtype, typestore=typestore(), offered_qos_profiles=qos
            )
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
