"""Faults inside a running node (in-process, real DDS): a detector that raises mid-stream
costs one frame each time; a camera going silent turns diagnostics WARN then ERROR, and they
recover when it returns."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

import hpe3d_ros.ros.node as node_mod  # noqa: E402
from hpe3d_ros.msg import PoseHypothesesArray  # noqa: E402
from hpe3d_ros.pipeline import Pipeline  # noqa: E402
from hpe3d_ros.ros.diagnostics import stream_level  # noqa: E402
from test.helpers.ros_io import camera_for, image_msg, info_msg  # noqa: E402
from test.test_node_dds import RELIABLE  # noqa: E402

pytestmark = pytest.mark.dds


class FlakyDetector:
    """Raises on every third call, like a GPU backend hiccup."""

    def __init__(self):
        self.calls = 0

    def detect(self, image_rgb):
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return []


class NoLifter:
    joint_names = ()

    def sample(self, *a, **k):  # never reached: the detector finds nobody
        raise AssertionError


@pytest.fixture
def running_node(monkeypatch):
    monkeypatch.setattr(
        node_mod, "build_pipeline", lambda cfg: Pipeline(FlakyDetector(), NoLifter())
    )
    rclpy.init()
    node = node_mod.PipelineNode(
        parameter_overrides=[
            Parameter("diagnostics.period_s", value=0.2),
            Parameter("diagnostics.stale_timeout_s", value=0.6),
        ]
    )
    driver = rclpy.create_node("fault_driver")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(driver)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    yield node, driver
    ex.shutdown()
    node.shutdown()
    node.destroy_node()
    driver.destroy_node()
    rclpy.try_shutdown()


def test_backend_errors_cost_frames_not_the_node_and_silence_is_reported(running_node):
    node, driver = running_node
    diags, outs = [], []
    driver.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
    driver.create_subscription(
        PoseHypothesesArray, "/hpe3d_pipeline/front/hypotheses", outs.append, RELIABLE
    )
    img_pub = driver.create_publisher(Image, "/front/camera/image_raw", RELIABLE)
    info_pub = driver.create_publisher(CameraInfo, "/front/camera/camera_info", RELIABLE)
    rgb = np.zeros((48, 64, 3), np.uint8)
    cam = camera_for(rgb)

    def send(n):
        for _ in range(n):
            stamp = time.monotonic_ns()
            info_pub.publish(info_msg(cam, stamp, "front_optical"))
            img_pub.publish(image_msg(rgb, stamp, "front_optical"))
            time.sleep(0.1)

    def status():
        return [s for d in list(diags) for s in d.status][-1]

    time.sleep(1.0)
    send(12)
    time.sleep(0.5)
    stats = node.channels[0].runner.stats.snapshot()
    assert stats["failed"] >= 3 and stats["processed"] >= 6
    assert "CUDA error" in stats["last_error"]
    assert len(outs) == stats["processed"]  # every processed frame was published
    assert stats["received"] == stats["processed"] + stats["dropped"] + stats["failed"]

    time.sleep(1.0)  # > stale timeout
    assert status().level == DiagnosticStatus.WARN and "no image" in status().message
    time.sleep(1.5)  # > 3 x stale timeout
    assert status().level == DiagnosticStatus.ERROR
    send(3)
    time.sleep(0.5)
    assert status().level in (DiagnosticStatus.OK, DiagnosticStatus.WARN)
    assert "no image" not in status().message  # recovered


def test_stream_levels():
    base = {"silent_s": 0.1, "processed_rate_hz": 5.0, "failed": 0, "last_error": ""}
    assert stream_level(base, 1.0, True)[0] == DiagnosticStatus.OK
    assert stream_level({**base, "silent_s": float("inf")}, 1.0, True)[0] == DiagnosticStatus.WARN
    assert stream_level({**base, "silent_s": 1.5}, 1.0, True)[0] == DiagnosticStatus.WARN
    assert stream_level({**base, "silent_s": 3.5}, 1.0, True)[0] == DiagnosticStatus.ERROR
    assert stream_level(base, 1.0, False) == (
        DiagnosticStatus.WARN,
        "images arrive but no valid CameraInfo yet",
    )


def test_use_sim_time_stamps_diagnostics_with_the_bag_clock(monkeypatch):
    from rosgraph_msgs.msg import Clock

    from hpe3d_ros.ros.conversions import ns_to_stamp, stamp_to_ns

    monkeypatch.setattr(
        node_mod, "build_pipeline", lambda cfg: Pipeline(FlakyDetector(), NoLifter())
    )
    rclpy.init()
    node = node_mod.PipelineNode(
        parameter_overrides=[
            Parameter("use_sim_time", value=True),
            Parameter("diagnostics.period_s", value=0.1),
        ]
    )
    driver = rclpy.create_node("clock_driver")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(driver)
    diags = []
    driver.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
    clock = driver.create_publisher(Clock, "/clock", 10)
    start = sim_ns = 1_234_000_000_000
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not [
            d for d in diags if stamp_to_ns(d.header.stamp) >= start
        ]:
            clock.publish(Clock(clock=ns_to_stamp(sim_ns)))
            ex.spin_once(timeout_sec=0.05)
            sim_ns += 50_000_000
        stamped = [stamp_to_ns(d.header.stamp) for d in diags]
        assert stamped and max(stamped) >= 1_234_000_000_000
        assert max(stamped) < 1_300_000_000_000  # sim time, not the wall clock (~1.7e18 ns)
    finally:
        node.shutdown()
        node.destroy_node()
        driver.destroy_node()
        rclpy.try_shutdown()
