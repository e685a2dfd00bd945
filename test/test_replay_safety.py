"""hpe3d-replay never destroys or loses data: its own input, earlier results, links out of
OUT, two bags of one name; it says when nothing could be processed; and SIGINT/SIGTERM
(once, twice, while loading or mid-run) leave readable bags, whole tables and a summary."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.lifting import DEFAULT_WEIGHTS
from hpe3d_ros.replay import main
from hpe3d_ros.replay.bagio import BagReader
from hpe3d_ros.replay.make_bag import read_images, write_image_bag
from hpe3d_ros.replay.output import MARKER, OutputError, check_output, sequence_names
from hpe3d_ros.ros.topics import output_topic
from test.conftest import REPO, TEST_DATA

pytestmark = pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no lifter weights yet")
FAST = ["--quiet", "--no-pictures", "--set", "lifter.num_hypotheses=5"]
TINY = CameraModel.from_fov(64, 48, 60.0)


def _tiny_bag(path: Path, n: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]
    write_image_bag(path, imgs, TINY)
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _err_lines(capsys) -> list[str]:
    return [e for e in capsys.readouterr().err.splitlines() if e.startswith("hpe3d-replay")]


def test_input_bag_inside_the_output_folder_is_never_deleted(tmp_path, capsys):
    ws = tmp_path / "ws"
    bag = _tiny_bag(ws / "bags" / "run1")
    before = _tree(ws)
    assert main([str(bag), "-o", str(ws), *FAST]) == 1
    (line,) = _err_lines(capsys)
    assert "not written by hpe3d-replay" in line and "bags" in line
    assert _tree(ws) == before
    # --overwrite does not delete data a replay did not write either
    assert main([str(bag), "-o", str(ws), "--overwrite", *FAST]) == 1
    assert _tree(ws) == before


def test_results_are_replaced_only_when_asked_and_only_after_the_checks(tmp_path, capsys):
    bag = _tiny_bag(tmp_path / "seq")
    out = tmp_path / "out"
    assert main([str(bag), "-o", str(out), *FAST]) == 0
    assert (out / MARKER).is_file()
    first = _tree(out)
    capsys.readouterr()
    # no --overwrite: refused, untouched
    assert main([str(bag), "-o", str(out), *FAST]) == 1
    assert "pass --overwrite" in _err_lines(capsys)[0] and _tree(out) == first
    # --overwrite with a mistyped bag path: refused before anything is deleted
    assert main([str(tmp_path / "sqe"), "-o", str(out), "--overwrite", *FAST]) == 1
    (line,) = _err_lines(capsys)
    assert "no such bag" in line and _tree(out) == first
    # --overwrite with a bad parameter: the same
    assert main([str(bag), "-o", str(out), "--overwrite", "--set", "lifter.num_hypotheses=0"]) == 1
    assert "lifter.num_hypotheses" in _err_lines(capsys)[0] and _tree(out) == first
    # an input bag inside OUT/bags that --overwrite would replace
    inner = _tiny_bag(out / "bags" / "mine")
    assert main([str(inner), "-o", str(out), "--overwrite", *FAST]) == 1
    assert "would replace" in _err_lines(capsys)[0] and (inner / "metadata.yaml").is_file()
    # a good --overwrite replaces the results
    assert main([str(bag), "-o", str(out), "--overwrite", *FAST]) == 0
    assert (out / "bags" / "seq").is_dir() and not (out / "bags" / "mine").exists()
    assert _rows(out / "frames.csv") == _rows(tmp_path / "out" / "frames.csv")


def test_a_symlinked_output_entry_is_refused(tmp_path, capsys):
    bag = _tiny_bag(tmp_path / "seq")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "bags").symlink_to(elsewhere, target_is_directory=True)
    assert main([str(bag), "-o", str(out), "--overwrite", *FAST]) == 1
    assert "symbolic link" in _err_lines(capsys)[0]
    assert list(elsewhere.iterdir()) == [] and not (out / "frames.csv").exists()


def test_check_output_rules(tmp_path):
    out = tmp_path / "out"
    check_output(out, [], False)  # missing: fine, created later
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_output(tmp_path / "file", [], False)
    with pytest.raises(OutputError, match="inside the input bag"):
        check_output(tmp_path / "bag" / "out", [tmp_path / "bag"], False)
    out.mkdir()
    (out / "summary.json").mkdir()
    with pytest.raises(OutputError, match="should be a file"):
        check_output(out, [], True)


def test_two_bags_with_one_name_are_two_sequences(tmp_path, capsys):
    a = _tiny_bag(tmp_path / "day1" / "run1", n=2, seed=1)
    b = _tiny_bag(tmp_path / "day2" / "run1", n=3, seed=2)
    out = tmp_path / "out"
    assert main([str(a), str(b), "-o", str(out), *FAST]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [x["sequence"] for x in summary["bags"]] == ["run1", "run1_2"]
    assert summary["complete"] and summary["frames"] == summary["frames_ok"] == 5
    for seq, n in (("run1", 2), ("run1_2", 3)):
        with BagReader(out / "bags" / seq) as r:
            assert r.damage is None and r.counts[output_topic("front", "hypotheses")] == n


def test_sequence_names(tmp_path, monkeypatch):
    (tmp_path / "drive").mkdir()
    (tmp_path / "x.mcap").write_bytes(b"")
    monkeypatch.chdir(tmp_path / "drive")
    bags = [Path("."), tmp_path / "x.mcap", Path(".."), tmp_path / "drive"]
    assert sequence_names(bags) == ["drive", "x", tmp_path.name, "drive_2"]


def test_every_frame_failed_exits_non_zero(tmp_path, capsys):
    from rclpy.serialization import serialize_message

    from hpe3d_ros.replay.bag_messages import camera_info_msg, image_msgs
    from hpe3d_ros.replay.bagio import BagWriter

    with BagWriter(tmp_path / "bad") as w:  # CameraInfo 640x480, frames 64x48
        for i in range(3):
            stamp = 10**9 * (i + 1)
            info = camera_info_msg(CameraModel.from_fov(640, 480, 60.0), stamp, "f")
            w.write("/cam/camera_info", "sensor_msgs/msg/CameraInfo", stamp,
                    serialize_message(info))  # fmt: skip
            msg = image_msgs(np.zeros((48, 64, 3), np.uint8), stamp, "f", False)
            w.write("/cam/image_raw", "sensor_msgs/msg/Image", stamp, serialize_message(msg))
    assert main([str(tmp_path / "bad"), "-o", str(tmp_path / "out"), *FAST]) == 1
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "no frame could be processed: 3 frames" in lines[0]
    assert "size mismatch" in lines[0]
    assert main([str(_tiny_bag(tmp_path / "seq")), "-o", str(tmp_path / "ok"), *FAST]) == 0


# ------------------------------------------------------------------------- interrupts
@pytest.fixture(scope="module")
def long_bag(tmp_path_factory) -> Path:
    """40 real 768x576 frames: a few seconds of work, long enough to interrupt."""
    frames = list(read_images(TEST_DATA))
    path = tmp_path_factory.mktemp("long") / "street"
    write_image_bag(path, [frames[i % len(frames)] for i in range(40)],
                    CameraModel.from_fov(768, 576, 60.0), compressed=True)  # fmt: skip
    return path


def _start(bag: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "hpe3d_ros.replay", str(bag), "-o", str(out), "--quiet",
           "--set", "lifter.num_hypotheses=5", "--video-max-frames", "100",
           "--overlays", "2"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def _wait_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        try:
            if (out / "frames.csv").read_text().count("\n") - 1 >= n:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"no {n} rows after {timeout} s")


@pytest.mark.parametrize(
    "signals,after_rows",
    [
        ((signal.SIGINT,), 2),
        ((signal.SIGTERM,), 2),
        ((signal.SIGINT, signal.SIGINT), 5),  # the second one aborts the frame in hand
        ((signal.SIGTERM, signal.SIGINT, signal.SIGTERM), 1),
    ],
)
def test_interrupt_keeps_readable_results(tmp_path, long_bag, signals, after_rows):
    out = tmp_path / "out"
    proc = _start(long_bag, out)
    _wait_rows(out, after_rows, proc)
    for s in signals:
        proc.send_signal(s)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=120)
    # signals that arrive during one C call (a detector run) are handled in signal-number
    # order, so the "first" one is whichever Python saw first
    assert proc.returncode - 128 in signals, err
    assert "Traceback" not in err and "interrupted by" in err.splitlines()[-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] == signal.Signals(proc.returncode - 128).name
    assert summary["complete"] is False
    rows = _rows(out / "frames.csv")
    assert after_rows <= len(rows) < 40 and summary["frames"] == len(rows)
    assert [int(r["index"]) for r in rows] == list(range(len(rows)))
    assert all(r["status"] == "ok" for r in rows)
    people = _rows(out / "people.csv")
    assert {int(p["index"]) for p in people} <= {int(r["index"]) for r in rows}
    assert sum(int(r["people"]) for r in rows) == len(people)
    with BagReader(out / "bags" / "street") as r:  # readable by rosbags, metadata and all
        assert r.damage is None
        assert r.counts[output_topic("front", "hypotheses")] == len(rows)
    video = cv2.VideoCapture(str(out / "pictures" / "street" / "overlay_front.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(rows)
    ok, frame = video.read()
    assert ok and frame.shape == (576, 768, 3)


def test_sigterm_while_loading_writes_nothing(tmp_path, monkeypatch, capsys):
    import hpe3d_ros.build as build

    real = build.build_pipeline

    def slow_load(cfg):  # SIGTERM arrives while the models load
        os.kill(os.getpid(), signal.SIGTERM)
        return real(cfg)

    monkeypatch.setattr(build, "build_pipeline", slow_load)
    bag, out = _tiny_bag(tmp_path / "seq"), tmp_path / "out"
    assert main([str(bag), "-o", str(out), *FAST]) == 128 + signal.SIGTERM
    (line,) = _err_lines(capsys)
    assert "while loading" in line and not out.exists()
    try:  # on its way out, a late signal is only counted
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_output_stamps_are_the_input_stamps(tmp_path):
    """Extreme and invalid stamps come out exactly as they went in (not normalised, not 1901)."""
    from builtin_interfaces.msg import Time
    from rclpy.serialization import deserialize_message, serialize_message

    from hpe3d_ros.msg import PoseHypothesesArray
    from hpe3d_ros.replay.bag_messages import camera_info_msg, image_msgs
    from hpe3d_ros.replay.bagio import BagWriter

    stamps = [(-3, 500), (1, 5), (2**31 - 1, 999_999_999), (7, 10**9 + 7), (8, 2**32 - 1)]
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    with BagWriter(tmp_path / "odd") as w:
        for i, (sec, nsec) in enumerate(stamps):
            log = 10**9 * (i + 1)
            info, msg = camera_info_msg(TINY, 0, "f"), image_msgs(img, 0, "f", False)
            for m in (info, msg):
                m.header.stamp = Time(sec=sec, nanosec=nsec)
            w.write("/cam/camera_info", "sensor_msgs/msg/CameraInfo", log, serialize_message(info))
            w.write("/cam/image_raw", "sensor_msgs/msg/Image", log, serialize_message(msg))
    out = tmp_path / "out"
    assert main([str(tmp_path / "odd"), "-o", str(out), *FAST]) == 0
    assert all(r["status"] == "ok" for r in _rows(out / "frames.csv"))
    with BagReader(out / "bags" / "odd") as r:
        got = [deserialize_message(raw, PoseHypothesesArray).header.stamp
               for _, _, _, raw in r.messages([output_topic("cam", "hypotheses")])]  # fmt: skip
    assert [(t.sec, t.nanosec) for t in got] == stamps


def test_results_are_byte_identical_wherever_the_run_writes(tmp_path):
    bag = _tiny_bag(tmp_path / "seq", n=25)  # 2.5 s at 10 Hz: /diagnostics twice
    runs = [tmp_path / "a", tmp_path / "deeper" / "b"]
    for out in runs:
        assert main([str(bag), "-o", str(out), *FAST]) == 0
    for name in ("frames.csv", "people.csv", "summary.json"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    bag_files = sorted(p.name for p in (runs[0] / "bags" / "seq").iterdir())
    assert any(f.endswith(".mcap") for f in bag_files)
    for name in bag_files:  # the output bag too, /diagnostics included (no wall-clock values)
        a, b = (r / "bags" / "seq" / name for r in runs)
        assert a.read_bytes() == b.read_bytes(), name
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert "timings" not in summary and summary["bags"][0]["output_bag"] == "bags/seq"
    timings = json.loads((runs[0] / "timings.json").read_text())
    assert timings["frames_per_s"] > 0 and timings["stage_ms"]["frame_ms"]["n"] == 25
    with BagReader(runs[0] / "bags" / "seq") as r:
        assert r.counts["/diagnostics"] == 2
