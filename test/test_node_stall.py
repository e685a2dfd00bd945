"""Stall detector: a node that stops finishing frames while they arrive goes WARN, then
ERROR on /diagnostics (never "0.0 Hz processed" and OK), recovers when the worker does, and
a stalled node still exits on SIGTERM with one line and status 1, not an abort."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from hpe3d_ros.pipeline import Pipeline  # noqa: E402
from hpe3d_ros.ros.diagnostics import stream_level  # noqa: E402
from hpe3d_ros.ros.slot import LatestSlot  # noqa: E402
from test.conftest import REPO  # noqa: E402
from test.helpers.node_harness import NoLifter, running_node, wait_for  # noqa: E402
from test.helpers.ros_io import camera_for, image_msg, info_msg  # noqa: E402
from test.test_node_dds import RELIABLE  # noqa: E402

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class BlockingDetector:
    """Hangs in detect() until released, like a backend stuck in a driver call."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def detect(self, image_rgb):
        self.release.wait()
        return []


def test_slot_measures_the_oldest_unfinished_frame():
    slot = LatestSlot()
    assert slot.waiting_s(now=10.0) == 0.0
    slot.put("a", now=1.0)
    slot.put("b", now=2.0)  # a dropped; the wait started with a
    assert slot.waiting_s(now=3.0) == 2.0
    assert slot.take() == "b"
    assert slot.waiting_s(now=4.0) == 3.0  # in the worker: still not finished
    slot.put("c", now=5.0)
    slot.done()  # b finished; c waits since 5
    assert slot.waiting_s(now=6.0) == 1.0
    assert slot.take() == "c"
    slot.done()
    assert slot.waiting_s(now=9.0) == 0.0


def test_stall_levels():
    base = {"silent_s": 0.1, "processed_rate_hz": 0.0, "failed": 0, "last_error": "",
            "worker": "busy with camera a for 3.0 s"}  # fmt: skip
    assert stream_level({**base, "waiting_s": 0.2}, 2.0, True, 1.0, 3.0)[0] == OK
    level, msg = stream_level({**base, "waiting_s": 1.5}, 2.0, True, 1.0, 3.0)
    assert level == WARN and "stalled" in msg and "camera a" in msg
    assert stream_level({**base, "waiting_s": 3.5}, 2.0, True, 1.0, 3.0)[0] == ERROR
    # a silent camera whose last frame never finished is stalled, not just silent
    silent = {**base, "waiting_s": 9, "silent_s": 9}
    assert stream_level(silent, 2.0, True, 1.0, 3.0)[1].startswith("stalled")
    assert stream_level({**base, "waiting_s": 0}, 2.0, True)[0] == OK  # thresholds optional


def _levels(diags, camera):
    return [(s.level, s.message) for d in list(diags) for s in d.status if s.hardware_id == camera]


@pytest.mark.dds
def test_a_blocked_worker_goes_warn_then_error_and_recovers(monkeypatch):
    detector = BlockingDetector()
    overrides = {"camera_names": ["a", "b"], "diagnostics.period_s": 0.2,
                 "diagnostics.stall_warn_s": 0.6, "diagnostics.stall_error_s": 1.5}  # fmt: skip
    pipeline = Pipeline(detector, NoLifter())
    with running_node(monkeypatch, pipeline, overrides, "stall_driver") as (node, drv):
        diags = []
        drv.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
        pubs = {c: (drv.create_publisher(Image, f"/{c}/camera/image_raw", RELIABLE),
                    drv.create_publisher(CameraInfo, f"/{c}/camera/camera_info", RELIABLE))
                for c in "ab"}  # fmt: skip
        rgb = np.zeros((48, 64, 3), np.uint8)
        cam = camera_for(rgb)
        assert wait_for(lambda: all(p[0].get_subscription_count() for p in pubs.values()), 20)

        def send_for(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for c, (img, info) in pubs.items():
                    stamp = time.time_ns()
                    info.publish(info_msg(cam, stamp, f"{c}_optical"))
                    img.publish(image_msg(rgb, stamp, f"{c}_optical"))
                time.sleep(0.1)

        try:
            send_for(2.5)  # frames arrive, none finishes
        finally:
            threading.Timer(5.0, detector.release.set).start()  # never leave it hanging
        for c in "ab":
            levels = _levels(diags, c)
            assert any(lv == WARN and "stalled" in m for lv, m in levels), (c, levels)
            assert levels[-1][0] == ERROR and "stalled" in levels[-1][1], (c, levels[-1])
            first_warn = next(i for i, (lv, _) in enumerate(levels) if lv == WARN)
            first_error = next(i for i, (lv, _) in enumerate(levels) if lv == ERROR)
            assert first_warn < first_error  # WARN, then ERROR
        assert "busy with camera" in _levels(diags, "a")[-1][1]
        assert node.channels[0].runner.stats.snapshot()["processed"] == 0

        detector.release.set()  # the backend comes back
        n = len(diags)
        send_for(1.5)
        for c in "ab":
            after = [lv for d in diags[n:] for s in d.status if s.hardware_id == c
                     for lv in [s.level]]  # fmt: skip
            assert after and after[-1] == OK, (c, _levels(diags, c)[-3:])
        assert all(ch.runner.stats.snapshot()["processed"] > 0 for ch in node.channels)


class SlowDetector:
    """0.3 s per frame: slow, but working."""

    def detect(self, image_rgb):
        time.sleep(0.3)
        return []


@pytest.mark.dds
def test_a_slow_worker_serving_many_cameras_is_not_stalled(monkeypatch):
    """Four cameras at 10 Hz and 0.3 s per frame: each camera's frame waits ~1.2 s for its
    turn, longer than stall_warn_s, yet the worker finishes a frame every 0.3 s."""
    cams = ["a", "b", "c", "d"]
    overrides = {"camera_names": cams, "diagnostics.period_s": 0.2,
                 "diagnostics.stall_warn_s": 1.0, "diagnostics.stall_error_s": 3.0}  # fmt: skip
    with running_node(monkeypatch, Pipeline(SlowDetector(), NoLifter()), overrides, "slow") as (
        node, drv,
    ):  # fmt: skip
        diags = []
        drv.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
        pubs = {c: (drv.create_publisher(Image, f"/{c}/camera/image_raw", RELIABLE),
                    drv.create_publisher(CameraInfo, f"/{c}/camera/camera_info", RELIABLE))
                for c in cams}  # fmt: skip
        rgb = np.zeros((48, 64, 3), np.uint8)
        assert wait_for(lambda: all(p[0].get_subscription_count() for p in pubs.values()), 20)
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            for c, (img, info) in pubs.items():
                stamp = time.time_ns()
                info.publish(info_msg(camera_for(rgb), stamp, f"{c}_optical"))
                img.publish(image_msg(rgb, stamp, f"{c}_optical"))
            time.sleep(0.1)
        waited = max(ch.slot.waiting_s() for ch in node.channels)
        for c in cams:
            assert not [m for _, m in _levels(diags, c) if "stalled" in m], _levels(diags, c)
        assert all(ch.runner.stats.snapshot()["processed"] >= 2 for ch in node.channels)
    assert waited > 0.6  # frames did wait long; the worker kept finishing others


HANGING_NODE = """
import sys, threading
import hpe3d_ros.ros.node as node
from hpe3d_ros.pipeline import Pipeline
from test.helpers.node_harness import NoLifter

class Hang:
    def detect(self, image_rgb):
        threading.Event().wait()  # never returns

node.build_pipeline = lambda cfg: Pipeline(Hang(), NoLifter())
sys.exit(node.main(["hpe3d-pipeline", "--params-file", sys.argv[1]]))
"""


@pytest.mark.dds
@pytest.mark.slow
def test_sigterm_while_stalled_exits_with_one_line_not_an_abort(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters:\n    diagnostics:\n      period_s: 0.2\n"
                      "      stall_warn_s: 0.5\n      stall_error_s: 1.0\n")  # fmt: skip
    log = tmp_path / "node.log"
    proc = subprocess.Popen([sys.executable, "-c", HANGING_NODE, str(params)], cwd=REPO,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
    rclpy.init()
    drv = rclpy.create_node("hang_driver")
    try:
        diags = []
        drv.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
        img = drv.create_publisher(Image, "/front/camera/image_raw", RELIABLE)
        info = drv.create_publisher(CameraInfo, "/front/camera/camera_info", RELIABLE)
        rgb = np.zeros((48, 64, 3), np.uint8)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            lv == ERROR and "stalled" in m for lv, m in _levels(diags, "front")
        ):
            assert proc.poll() is None, log.read_text()
            stamp = time.time_ns()
            info.publish(info_msg(camera_for(rgb), stamp, "front_optical"))
            img.publish(image_msg(rgb, stamp, "front_optical"))
            rclpy.spin_once(drv, timeout_sec=0.1)
        assert any(lv == ERROR for lv, _ in _levels(diags, "front")), log.read_text()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        drv.destroy_node()
        rclpy.try_shutdown()
    out = log.read_text()
    assert rc == 1, (rc, out)  # not -6 (SIGABRT)
    assert "worker still busy after 5 s (busy with camera front" in out
    assert "terminate called" not in out and "Traceback" not in out
    assert took < 10
