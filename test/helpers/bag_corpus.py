"""Small healthy bags for the damaged-bag corpus (test_bag_corpus, test_bag_folders): both
rosbag2 storages written by :class:`BagWriter`, and single MCAP files from ``mcap``'s own
writer (zstd and lz4, small chunks with CRCs); and reading one back, errors and all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mcap import writer as mcap_writer

from hpe3d_ros.replay.bag_files import BagReadError
from hpe3d_ros.replay.bagio import BagReader, BagWriter

TOPICS = {"/front/camera/image_raw": "sensor_msgs/msg/Image",
          "/front/camera/camera_info": "sensor_msgs/msg/CameraInfo"}  # fmt: skip
T0 = 1_700_000_000_000_000_000


def messages(n: int = 40, size: int = 60_000) -> list[tuple[str, str, int, bytes]]:
    """Distinct CDR-like payloads (the reader never decodes them): image, info, image..."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        topic = list(TOPICS)[i % 2]
        body = rng.integers(0, 256, size if i % 2 == 0 else 300, dtype=np.uint8).tobytes()
        out.append((topic, TOPICS[topic], T0 + i * 50_000_000, b"\x00\x01\x00\x00" + body))
    return out


def mcap_file(path: Path, msgs, compression: str, chunk_size: int) -> None:
    kind = getattr(mcap_writer.CompressionType, compression.upper())
    with open(path, "wb") as f:
        w = mcap_writer.Writer(f, chunk_size=chunk_size, compression=kind)
        w.start("ros2", "test")
        ids = {}
        for topic, msgtype in TOPICS.items():
            sid = w.register_schema(msgtype, "ros2msg", b"")
            ids[topic] = w.register_channel(topic, "cdr", sid, {"offered_qos_profiles": ""})
        for seq, (topic, _, t, raw) in enumerate(msgs):
            w.add_message(ids[topic], t, raw, t, sequence=seq)
        w.finish()


def healthy_bags(root: Path) -> list[tuple[str, str, int, bytes]]:
    """Healthy bags under ``root``: rosbags' MCAP folder ``mcap`` (1 MiB uncompressed chunks,
    no CRC), a ``sqlite3`` folder, mcap's ``zstd.mcap`` and ``lz4.mcap``; their messages."""
    msgs = messages()
    for storage in ("mcap", "sqlite3"):
        with BagWriter(root / storage, storage) as w:
            for topic, msgtype, t, raw in msgs:
                w.write(topic, msgtype, t, raw)
    mcap_file(root / "zstd.mcap", msgs, "zstd", 100_000)
    mcap_file(root / "lz4.mcap", msgs, "lz4", 100_000)
    return msgs


def put(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def read_all(path: Path):
    """(messages read, error line or None); BagReadError at open -> (None, line)."""
    try:
        reader = BagReader(path)
    except BagReadError as exc:
        return None, str(exc)
    got, err = [], None
    with reader:
        try:
            for m in reader.messages(reader.topics):
                got.append(m)
        except BagReadError as exc:
            err = str(exc)
    return got, err


def storage_file(folder: Path) -> Path:
    return next(p for p in folder.iterdir() if p.suffix in (".mcap", ".db3"))
