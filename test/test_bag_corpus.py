"""A corpus of damaged bags, built here from small healthy ones, each with its defined outcome.

Outcomes: ``all`` (every message of the healthy bag, no error from ``messages``), ``lose``
(every message except a known set, then one BagReadError line), ``some`` (at least a known
set of messages, nothing that the healthy bag does not hold, then one BagReadError line) and
``refused`` (one BagReadError line when opening). No other exception type is allowed, no
message may differ from the healthy bag's, and nothing may be left in ``$TMPDIR`` or the bag.
This file damages the storage files; ``test_bag_folders`` damages a bag's folder and checks
memory and the special files that could hang or flood, in subprocesses.
"""

from __future__ import annotations

import io
import shutil
import struct
from collections import Counter

import numpy as np
import pytest
from mcap.data_stream import ReadDataStream
from mcap.records import Chunk
from mcap.stream_reader import breakup_chunk

from test.helpers.bag_corpus import healthy_bags, put, read_all, storage_file


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """Healthy bags (:func:`~test.helpers.bag_corpus.healthy_bags`) and their messages."""
    root = tmp_path_factory.mktemp("healthy")
    return root, healthy_bags(root)


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
        lambda d, ch: put(d, ch[1][0] + 1, struct.pack("<Q", 2**63)),
        "all-error",
        None,
    )
    c["zstd flip chunk 2 opcode"] = ("zstd", lambda d, ch: _flip(d, ch[1][0]), "lose", "c1")
    c["zstd chunk 2 compression name"] = (
        "zstd",
        lambda d, ch: put(d, ch[1][0] + 9 + 32, b"zzzz"),
        "lose",
        "c1",
    )
    c["zstd chunk 2 records length"] = (
        "zstd",
        lambda d, ch: put(d, ch[1][0] + 9 + 36, b"\xff" * 4),
        "all-error",
        None,
    )
    c["zstd chunk 2 claims 2^60 bytes"] = (
        "zstd",
        lambda d, ch: put(d, ch[1][0] + 9 + 16, struct.pack("<Q", 2**60)),
        "lose",
        "c1",
    )
    c["zstd 4 KiB zeroed mid-file"] = (
        "zstd",
        lambda d, ch: put(d, len(d) // 2, bytes(4096)),
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
        lambda d, ch: put(d, 9, struct.pack("<Q", 2**63)),
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
    return put(d, _first_message(d, ch, 1) + 9, struct.pack("<H", 99))


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
        lambda d, ch: put(d, 28, b"\xff" * 4),
        "all",
        None,
    )
    c["sqlite header claims 2^32-1 pages, cut"] = (
        "sqlite3",
        lambda d, ch: put(d, 28, b"\xff" * 4)[: len(d) // 2],
        "some",
        None,
    )
    c["sqlite zeroed pages mid-file"] = (
        "sqlite3",
        lambda d, ch: put(d, len(d) // 2 // 4096 * 4096, bytes(3 * 4096)),
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
        target = storage_file(bag)
    else:
        bag = target = tmp_path / "x.mcap"
        shutil.copy(root / f"{source}.mcap", bag)
    data = target.read_bytes()
    chunks = _chunks(data) if source != "sqlite3" else []
    target.write_bytes(damage(data, chunks))
    before = sorted(p.name for p in bag.parent.rglob("*"))
    got, err = read_all(bag)
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


def test_corpus_has_at_least_forty_kinds_of_damaged_file():
    assert len(CASES) >= 40
