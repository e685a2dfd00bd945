"""Damaged bag *folders* (metadata, storage files missing, doubled, linked, special files)
and the memory and time of reading big damaged bags, each with its defined outcome; the
damaged storage files themselves are ``test_bag_corpus``. Same rules: one BagReadError line,
no other exception, no message that the healthy bag does not hold, nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from hpe3d_ros.replay.bag_files import BagReadError
from hpe3d_ros.replay.bagio import BagReader, BagWriter
from test.helpers.bag_corpus import TOPICS, healthy_bags, messages, put, storage_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """Healthy bags (:func:`~test.helpers.bag_corpus.healthy_bags`) and their messages."""
    root = tmp_path_factory.mktemp("healthy")
    return root, healthy_bags(root)


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
        f = storage_file(bag)
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
    shutil.copy(storage_file(root / "sqlite3"), bag / "mcap.db3")  # same stem: mcap.mcap, mcap.db3
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


def test_at_least_fifteen_kinds_of_damaged_folder():
    assert len(FOLDER_CASES) >= 15


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
    msgs = messages(1600, 60_000)
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
    f = storage_file(bag)
    size = f.stat().st_size
    if storage == "sqlite3":
        f.write_bytes(put(f.read_bytes(), 28, b"\xff" * 4))  # and a header of 2^32-1 pages
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
