"""A corpus of damaged bags, built here from small healthy ones, each with its defined outcome.

Outcomes: ``all`` (every message of the healthy bag, no error from ``messages``), ``lose``
(every message except a known set, then one BagReadError line), ``some`` (at least a known
set of messages, nothing that the healthy bag does not hold, then one BagReadError line) and
``refused`` (one BagReadError line when opening). No other exception type is allowed, no
message may differ from the healthy bag's, and nothing may be left in ``$TMPDIR`` or the bag.
Memory and the special files that could hang or flood are checked in subprocesses.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from mcap import writer as mcap_writer
from mcap.data_stream import ReadDataStream
from mcap.records import Chunk
from mcap.stream_reader import breakup_chunk

from hpe3d_ros.replay.bag_files import BagReadError
from hpe3d_ros.replay.bagio import BagReader, BagWriter

ROOT = Path(__file__).resolve().parents[1]
TOPICS = {"/front/camera/image_raw": "sensor_msgs/msg/Image",
          "/front/camera/camera_info": "sensor_msgs/msg/CameraInfo"}  # fmt: skip
T0 = 1_700_000_000_000_000_000


def _messages(n: int = 40, size: int = 60_000) -> list[tuple[str, str, int, bytes]]:
    """Distinct CDR-like payloads (the reader never decodes them): image, info, image..."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        topic = list(TOPICS)[i % 2]
        body = rng.integers(0, 256, size if i % 2 == 0 else 300, dtype=np.uint8).tobytes()
        out.append((topic, TOPICS[topic], T0 + i * 50_000_000, b"\x00\x01\x00\x00" + body))
    return out


def _mcap_file(path: Path, msgs, compression: str, chunk_size: int) -> None:
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


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """Healthy bags: rosbags' MCAP folder (1 MiB uncompressed chunks, no CRC), mcap's zstd
    and lz4 files (small chunks with CRCs), a sqlite3 folder; and their messages."""
    root = tmp_path_factory.mktemp("healthy")
    msgs = _messages()
    for storage in ("mcap", "sqlite3"):
        with BagWriter(root / storage, storage) as w:
            for topic, msgtype, t, raw in msgs:
                w.write(topic, msgtype, t, raw)
    _mcap_file(root / "zstd.mcap", msgs, "zstd", 100_000)
    _mcap_file(root / "lz4.mcap", msgs, "lz4", 100_000)
    return root, msgs


def _chunks(data: bytes) -> list[tuple[int, int, list[int]]]:
    """(offset, record length, log times of its messages) of every chunk, parsed by mcap."""
    out, pos = [], 8
    while pos + 9 <= len(data):
        op, n = struct.unpack_from("<BQ", data, pos)
        if op == 0x06:
            chunk = Chunk.read(ReadDataStream(io.BytesIO(data[pos + 9 : pos + 9 + n])))
            times = [r.log_time for r in breakup_chunk(chunk) if hasattr(r, "log_time")]
            out.append((pos, n, times))
        if op == 0x0F:
            break
        pos += 9 + n
    return out


def _flip(data: bytes, at: int, mask: int = 0x10) -> bytes:
    b = bytearray(data)
    b[at] ^= mask
    return bytes(b)


def _put(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


# Each case: name -> (source, damage(data, chunks) -> bytes, outcome, lost times or regex).
# source: "mcap" / "sqlite3" (folders, the storage file damaged in place), "zstd" / "lz4"
# (a single .mcap file). ``lost`` for "lose": log times (by chunk number via "c<k>").
def _mcap_cases() -> dict:
    c: dict = {}
    for frac in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        c[f"zstd cut at {frac:.0%}"] = (
            "zstd",
            lambda d, ch, f=frac: d[: int(len(d) * f)],
            "some",
            None,
        )
    for frac in (0.001, 0.25, 0.45, 0.8):
        c[f"rosbags mcap cut at {frac:.1%}"] = (
            "mcap",
            lambda d, ch, f=frac: d[: int(len(d) * f)],
            "some",
            None,
        )
    c["lz4 cut in chunk 5"] = ("lz4", lambda d, ch: d[: ch[4][0] + ch[4][1] // 2], "some", None)
    c["zstd cut inside the footer (data complete)"] = ("zstd", lambda d, ch: d[:-3], "all", None)
    c["zstd cut at the magic"] = ("zstd", lambda d, ch: d[:8], "refused", "no topic is readable")
    c["zstd flip in chunk 2 payload"] = (
        "zstd",
        lambda d, ch: _flip(d, ch[1][0] + 9 + ch[1][1] // 2),
        "lose",
        "c1",
    )
    c["lz4 flip in chunk 3 payload"] = (
        "lz4",
        lambda d, ch: _flip(d, ch[2][0] + 9 + ch[2][1] // 2),
        "lose",
        "c2",
    )
    c["zstd flip chunk 2 CRC"] = (
        "zstd",
        lambda d, ch: _flip(d, ch[1][0] + 9 + 24, 1),
        "lose",
        "c1",
    )
    c["zstd flip chunk 2 length (high)"] = (
        "zstd",
        lambda d, ch: _flip(d, ch[1][0] + 3),
        "all-error",
        None,
    )
    c["zstd flip chunk 2 length (low)"] = (
        "zstd",
        lambda d, ch: _flip(d, ch[1][0] + 1),
        "all-error",
        None,
    )
    c["zstd chunk 2 length 2^63"] = (
        "zstd",
        lambda d, ch: _put(d, ch[1][0] + 1, struct.pack("<Q", 2**63)),
        "all-error",
        None,
    )
    c["zstd flip chunk 2 opcode"] = ("zstd", lambda d, ch: _flip(d, ch[1][0]), "lose", "c1")
    c["zstd chunk 2 compression name"] = (
        "zstd",
        lambda d, ch: _put(d, ch[1][0] + 9 + 32, b"zzzz"),
        "lose",
        "c1",
    )
    c["zstd chunk 2 records length"] = (
        "zstd",
        lambda d, ch: _put(d, ch[1][0] + 9 + 36, b"\xff" * 4),
        "all-error",
        None,
    )
    c["zstd chunk 2 claims 2^60 bytes"] = (
        "zstd",
        lambda d, ch: _put(d, ch[1][0] + 9 + 16, struct.pack("<Q", 2**60)),
        "lose",
        "c1",
    )
    c["zstd 4 KiB zeroed mid-file"] = (
        "zstd",
        lambda d, ch: _put(d, len(d) // 2, bytes(4096)),
        "some",
        None,
    )
    c["zstd flip message index"] = (
        "zstd",
        lambda d, ch: _flip(d, ch[2][0] + 9 + ch[2][1] + 12),
        "all",
        None,
    )
    c["zstd flip summary (chunk index)"] = (
        "zstd",
        lambda d, ch: _flip(d, len(d) - 300, 0xFF),
        "all",
        None,
    )
    c["zstd flip footer summary offset"] = (
        "zstd",
        lambda d, ch: _flip(d, len(d) - 8 - 20 + 2, 0x40),
        "all",
        None,
    )
    c["zstd flip header record"] = ("zstd", lambda d, ch: _flip(d, 8 + 12), "all", None)
    c["zstd bad magic"] = ("zstd", lambda d, ch: b"\x89MCAX0\r\n" + d[8:], "refused", "bad magic")
    c["random bytes named .mcap"] = (
        "zstd",
        lambda d, ch: np.random.default_rng(3).bytes(5000),
        "refused",
        "bad magic",
    )
    c["zero-length .mcap"] = ("zstd", lambda d, ch: b"", "refused", "empty")
    c["first record length 2^63"] = (
        "zstd",
        lambda d, ch: _put(d, 9, struct.pack("<Q", 2**63)),
        "all-error",
        None,
    )
    c["rosbags mcap bad channel id in chunk 2"] = (
        "mcap",
        lambda d, ch: _bad_channel(d, ch),
        "lose",
        "m-first-c1",
    )
    c["rosbags mcap bad channel id, then cut"] = (
        "mcap",
        lambda d, ch: _bad_channel(d, ch)[: ch[1][0] + ch[1][1] // 2],
        "some",
        None,
    )
    c["rosbags mcap message length flipped"] = (
        "mcap",
        lambda d, ch: _inner(d, ch, 1, 0x01),
        "lose",
        "m-first-c1",
    )
    return c


def _first_message(d: bytes, ch, k: int) -> int:
    body = ch[k][0] + 9
    clen = struct.unpack_from("<I", d, body + 28)[0]
    at = body + 32 + clen + 8
    while d[at] != 0x05:  # skip schema/channel records
        at += 9 + struct.unpack_from("<Q", d, at + 1)[0]
    return at


def _bad_channel(d: bytes, ch) -> bytes:
    return _put(d, _first_message(d, ch, 1) + 9, struct.pack("<H", 99))


def _inner(d: bytes, ch, k: int, mask: int) -> bytes:
    return _flip(d, _first_message(d, ch, k) + 2, mask)


def _sqlite_cases() -> dict:
    c: dict = {}
    c["sqlite cut at 0.5%"] = (
        "sqlite3",
        lambda d, ch: d[: len(d) // 200],
        "refused",
        "damaged: no topic table",
    )
    for frac in (0.2, 0.5, 0.8, 0.97):
        c[f"sqlite cut at {frac:.1%}"] = (
            "sqlite3",
            lambda d, ch, f=frac: d[: int(len(d) * f)],
            "some",
            None,
        )
    c["sqlite header claims 2^32-1 pages"] = (
        "sqlite3",
        lambda d, ch: _put(d, 28, b"\xff" * 4),
        "all",
        None,
    )
    c["sqlite header claims 2^32-1 pages, cut"] = (
        "sqlite3",
        lambda d, ch: _put(d, 28, b"\xff" * 4)[: len(d) // 2],
        "some",
        None,
    )
    c["sqlite zeroed pages mid-file"] = (
        "sqlite3",
        lambda d, ch: _put(d, len(d) // 2 // 4096 * 4096, bytes(3 * 4096)),
        "some",
        "later",
    )
    c["sqlite bad magic"] = (
        "sqlite3",
        lambda d, ch: b"SQLite format 4" + d[15:],
        "refused",
        "bad magic",
    )
    c["sqlite zero-length"] = ("sqlite3", lambda d, ch: b"", "refused", "empty")
    c["sqlite first page zeroed"] = (
        "sqlite3",
        lambda d, ch: b"SQLite format 3\x00" + bytes(4080) + d[4096:],
        "refused",
        "no topic table",
    )
    return c


CASES = {**_mcap_cases(), **_sqlite_cases()}


def _read(path: Path):
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


def _storage(folder: Path) -> Path:
    return next(p for p in folder.iterdir() if p.suffix in (".mcap", ".db3"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_damaged_bag_has_its_defined_outcome(healthy, tmp_path, monkeypatch, name):
    root, msgs = healthy
    source, damage, outcome, detail = CASES[name]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    if source in ("mcap", "sqlite3"):
        bag = tmp_path / "bag"
        shutil.copytree(root / source, bag)
        target = _storage(bag)
    else:
        bag = target = tmp_path / "x.mcap"
        shutil.copy(root / f"{source}.mcap", bag)
    data = target.read_bytes()
    chunks = _chunks(data) if source != "sqlite3" else []
    target.write_bytes(damage(data, chunks))
    before = sorted(p.name for p in bag.parent.rglob("*"))
    got, err = _read(bag)
    assert sorted(p.name for p in bag.parent.rglob("*")) == before, "files left beside the bag"
    assert not list(tmp.iterdir()), "temporary files left behind"
    if outcome == "refused":
        assert got is None and err and detail in err and "\n" not in err, err
        return
    assert got is not None, err
    healthy_set = Counter(msgs)
    assert not Counter(got) - healthy_set, "a message that the healthy bag does not hold"
    times = [m[2] for m in got]
    assert times == sorted(times), "not in log-time order"
    if outcome == "all":
        assert err is None and Counter(got) == healthy_set, err
        return
    assert err and "damaged" in err and str(bag) in err and "\n" not in err, err
    if outcome == "all-error":
        assert Counter(got) == healthy_set, err
    elif outcome == "lose":
        lost = _expected_lost(detail, chunks, data)
        assert sorted(m[2] for m in msgs if m[2] not in lost) == times, err
    elif outcome == "some" and source == "sqlite3" and detail == "later":
        assert times and times[-1] == msgs[-1][2], "rows after the damaged pages are read"
    elif outcome == "some" and chunks:  # every chunk before the cut or the damage is kept
        first_bad = _first_damaged_byte(data, damage(data, chunks))
        whole = [t for pos, n, ts in chunks if pos + 9 + n <= first_bad for t in ts]
        assert set(whole) <= set(times), f"{len(whole)} whole-chunk messages, {len(times)} read"


def _expected_lost(detail: str, chunks, data: bytes) -> set[int]:
    if detail.startswith("c"):
        return set(chunks[int(detail[1:])][2])
    k = int(detail.rsplit("c", 1)[1])
    return {chunks[k][2][0]}


def _first_damaged_byte(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    diff = np.flatnonzero(np.frombuffer(a[:n], np.uint8) != np.frombuffer(b[:n], np.uint8))
    return int(diff[0]) if diff.size else n


def test_corpus_has_at_least_forty_kinds():
    assert len(CASES) + len(FOLDER_CASES) >= 40


# ---------------------------------------------------------------------------- folders
def _folder(root: Path, tmp: Path, source: str = "mcap") -> Path:
    bag = tmp / "bag"
    shutil.copytree(root / source, bag)
    return bag


def _meta(text: str):
    def build(root, tmp):
        bag = _folder(root, tmp)
        (bag / "metadata.yaml").write_text(text)
        return bag

    return build


def _edit_meta(old: str, new: str):
    def build(root, tmp):
        bag = _folder(root, tmp)
        meta = bag / "metadata.yaml"
        meta.write_text(meta.read_text().replace(old, new))
        return bag

    return build


def _replace(name: str, make):
    """The bag's storage file replaced by a special file (make(path))."""

    def build(root, tmp):
        bag = _folder(root, tmp)
        f = _storage(bag)
        f.unlink()
        make(bag / name)
        return bag

    return build


def _no_meta(root, tmp):
    bag = _folder(root, tmp)
    (bag / "metadata.yaml").unlink()
    return bag


def _meta_fifo(root, tmp):
    bag = _folder(root, tmp)
    (bag / "metadata.yaml").unlink()
    os.mkfifo(bag / "metadata.yaml")
    return bag


def _empty_folder(root, tmp):
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _both_storages(root, tmp):
    bag = _no_meta(root, tmp)
    shutil.copy(_storage(root / "sqlite3"), bag / "mcap.db3")  # same stem: mcap.mcap, mcap.db3
    return bag


def _linked(root, tmp):
    real = _folder(root, tmp)
    (tmp / "link").mkdir()
    for p in real.iterdir():
        (tmp / "link" / p.name).symlink_to(p)
    return tmp / "link"


def _bag_is_fifo(root, tmp):
    os.mkfifo(tmp / "fifo.mcap")
    return tmp / "fifo.mcap"


# name -> (build(root, tmp) -> bag path, outcome, detail): "all" (+ a phrase in .damage or
# None), "double" (every message twice), "refused" (phrase in the line).
FOLDER_CASES = {
    "metadata.yaml missing": (_no_meta, "all", "metadata.yaml is missing"),
    "metadata.yaml not YAML": (_meta("::: [unclosed\n\t- x"), "all", "metadata.yaml unreadable"),
    "metadata.yaml empty": (_meta(""), "all", "metadata.yaml unreadable"),
    "metadata.yaml 2 MB": (_meta("#" * (2 << 20)), "all", "larger than"),
    "metadata.yaml a FIFO": (_meta_fifo, "all", "FIFO"),
    "metadata.yaml names a missing file": (
        _edit_meta("- mcap.mcap", "- gone.mcap"),
        "all",
        "missing",
    ),
    "metadata.yaml names ../": (
        _edit_meta("- mcap.mcap", "- ../../etc/passwd"),
        "all",
        "outside the bag",
    ),
    "metadata.yaml names the file twice": (
        _edit_meta("- mcap.mcap", "- mcap.mcap\n  - mcap.mcap"),
        "all",
        "twice",
    ),
    "metadata.yaml bad topic list": (
        _edit_meta("message_count: 20", "message_count: lots"),
        "all",
        "topic list",
    ),
    "empty folder": (_empty_folder, "refused", "folder is empty"),
    "x.mcap symlink to /dev/zero": (
        _replace("mcap.mcap", lambda p: p.symlink_to("/dev/zero")),
        "refused",
        "character device (through a symlink)",
    ),
    "x.db3 symlink to /dev/zero": (
        _replace("mcap.db3", lambda p: p.symlink_to("/dev/zero")),
        "refused",
        "character device",
    ),
    "x.mcap a FIFO": (_replace("mcap.mcap", os.mkfifo), "refused", "a FIFO"),
    "x.mcap a folder": (_replace("mcap.mcap", os.mkdir), "refused", "a folder"),
    "x.mcap a dangling symlink": (
        _replace("mcap.mcap", lambda p: p.symlink_to(p.parent / "nowhere")),
        "refused",
        "cannot open",
    ),
    "the bag path a FIFO": (_bag_is_fifo, "refused", "a FIFO"),
    "same stem in two storages": (_both_storages, "double", "metadata.yaml is missing"),
    "every file a symlink to a regular file": (_linked, "all", None),
}


@pytest.mark.parametrize("name", sorted(FOLDER_CASES))
def test_bag_folder_has_its_defined_outcome(healthy, tmp_path, monkeypatch, name):
    root, msgs = healthy
    build, outcome, detail = FOLDER_CASES[name]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    bag = build(root, tmp_path)
    t = time.monotonic()
    try:
        with BagReader(bag) as r:
            damage = r.damage
            got = list(r.messages(r.topics))
    except BagReadError as exc:
        assert outcome == "refused", exc
        assert detail in str(exc) and "\n" not in str(exc), exc
        return
    finally:
        assert time.monotonic() - t < 1.0, "took over a second (a FIFO followed?)"
        assert not list(tmp.iterdir()), "temporary files left behind"
    assert outcome != "refused", f"read {len(got)} messages"
    want = Counter(msgs) if outcome == "all" else Counter(msgs + msgs)
    assert Counter(got) == want
    assert (damage is None) if detail is None else (detail in damage), damage


def test_relative_paths_and_dot(healthy, tmp_path, monkeypatch):
    root, msgs = healthy
    bag = _folder(root, tmp_path)
    monkeypatch.chdir(bag)
    for path in (".", "./", "../bag", "mcap.mcap"):
        with BagReader(path) as r:
            assert Counter(r.messages(r.topics)) == Counter(msgs), path
            assert r.counts == {t: 20 for t in TOPICS}


# ---------------------------------------------------------------------------- subprocesses
_PROBE = textwrap.dedent(
    """
    import resource, sys, time, tracemalloc
    from hpe3d_ros.replay.bagio import BagReader, BagReadError
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t, n, line = time.monotonic(), 0, ""
    try:
        with BagReader(sys.argv[1]) as r:
            for m in r.messages(r.topics):
                n += 1
    except BagReadError as exc:
        line = str(exc)
    peak = tracemalloc.get_traced_memory()[1] >> 20
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) >> 10
    print(n, max(peak, grew), round(time.monotonic() - t, 2), line)
    """
)


def _probe(bag: Path, tmp: Path) -> tuple[int, int, float, str]:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _PROBE, str(bag)], capture_output=True,
                         text=True, timeout=60, env=env, check=True)  # fmt: skip
    n, mb, secs, line = out.stdout.split(" ", 3)
    return int(n), int(mb), float(secs), line.strip()


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """~48 MB bags in both storages (800 images of 60 kB, 800 small messages)."""
    root = tmp_path_factory.mktemp("big")
    msgs = _messages(1600, 60_000)
    for storage in ("mcap", "sqlite3"):
        with BagWriter(root / storage, storage) as w:
            for topic, msgtype, t, raw in msgs:
                w.write(topic, msgtype, t, raw)
    return root


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_recovering_a_big_cut_bag_streams_it(big, tmp_path, storage):
    """A cut bag without its metadata is read in memory bounded by a chunk, not by the bag."""
    bag = tmp_path / "bag"
    shutil.copytree(big / storage, bag)
    (bag / "metadata.yaml").unlink()
    f = _storage(bag)
    size = f.stat().st_size
    if storage == "sqlite3":
        f.write_bytes(_put(f.read_bytes(), 28, b"\xff" * 4))  # and a header of 2^32-1 pages
    os.truncate(f, int(size * 0.9))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    n, grew_mb, _, line = _probe(bag, tmp)
    assert 1300 < n < 1600 and "damaged" in line, (n, line)
    assert grew_mb < 12, f"{grew_mb} MB at the peak for a {size >> 20} MB bag"
    assert not list(tmp.iterdir())
    assert sorted(p.name for p in bag.iterdir()) == [f.name]


def test_symlink_to_dev_zero_is_refused_at_once(tmp_path):
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "x.mcap").symlink_to("/dev/zero")
    (tmp_path / "bag" / "y.db3").symlink_to("/dev/zero")
    n, grew_mb, secs, line = _probe(tmp_path / "bag", tmp_path)
    assert n == 0 and "character device" in line and grew_mb < 20 and secs < 1.0, line
