"""1,000+ malformed messages into a running node over real DDS: no crash, clear throttled
warnings per kind, counters in diagnostics, and the healthy camera keeps its rate."""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from benchmarks.fuzz_messages import Fuzzer  # noqa: E402
from test.helpers.ros_io import camera_for, image_msg, info_msg, load_rgb  # noqa: E402
from test.test_node_dds import RELIABLE, NodeUnderTest  # noqa: E402

pytestmark = [pytest.mark.dds, pytest.mark.slow]
DEEP = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)


def _values(diags, camera):
    for d in reversed(diags):
        for s in d.status:
            if s.hardware_id == camera:
                return {kv.key: kv.value for kv in s.values}, s
    return {}, None


@pytest.fixture
def node(tmp_path):
    cams = {
        "good": {"image_topic": "/f/good/image", "camera_info_topic": "/f/good/info"},
        "raw": {"image_topic": "/f/raw/image", "camera_info_topic": "/f/raw/info"},
        "jpeg": {
            "image_topic": "/f/jpeg/image/compressed",
            "camera_info_topic": "/f/jpeg/info",
            "compressed": True,
        },
    }
    params = {
        "camera_names": list(cams),
        "cameras": cams,
        "lifter": {"num_hypotheses": 10},
        "detector": {"input_size": 384},
        "diagnostics": {"period_s": 0.5},
        # deliver every fuzz message so the node really sees >= 1000 of them
        "qos": {"image_reliability": "reliable", "image_depth": 100},
    }
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"hpe3d_pipeline": {"ros__parameters": params}}))
    under = NodeUnderTest(f, tmp_path / "node.log")
    yield under
    under.close()


def test_fuzzed_cameras_never_disturb_the_node(node):
    t = node
    fuzzer = Fuzzer(1234)
    rgb = load_rgb("vtest_0040.jpg")
    cam = camera_for(rgb)
    diags: list[DiagnosticArray] = []
    t.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
    good_img = t.node.create_publisher(Image, "/f/good/image", RELIABLE)
    good_info = t.node.create_publisher(CameraInfo, "/f/good/info", RELIABLE)
    raw_img = t.node.create_publisher(Image, "/f/raw/image", DEEP)
    raw_info = t.node.create_publisher(CameraInfo, "/f/raw/info", DEEP)
    jpeg_img = t.node.create_publisher(CompressedImage, "/f/jpeg/image/compressed", DEEP)
    last_good = [0.0]

    def good_tick():
        now = time.monotonic()
        if now - last_good[0] >= 0.5:
            last_good[0] = now
            stamp = int(now * 1e9)
            good_info.publish(info_msg(cam, stamp, "good_optical"))
            good_img.publish(image_msg(rgb, stamp, "good_optical"))

    def good_processed():
        return int(_values(diags, "good")[0].get("processed", 0))

    # baseline: the healthy camera alone
    assert t.spin_until(lambda: good_processed() >= 2, 90, good_tick), t.log()
    p0, t0 = good_processed(), time.monotonic()
    t.spin_until(lambda: False, 8, good_tick)
    base_rate = (good_processed() - p0) / (time.monotonic() - t0)

    # fuzz: >= 1000 malformed messages while the healthy camera keeps publishing
    sent = {"raw": 0, "jpeg": 0, "info": 0}
    p1, t1 = good_processed(), time.monotonic()
    small = camera_for(np.zeros((48, 64, 3), np.uint8))
    raw_info.publish(info_msg(small, 1, "raw_optical"))
    t.node.create_publisher(CameraInfo, "/f/jpeg/info", DEEP).publish(
        info_msg(small, 1, "jpeg_optical")
    )
    for i in range(1200):
        stamp = int(time.monotonic() * 1e9)
        which = i % 3
        if which == 0:
            raw_img.publish(fuzzer.message("raw", i // 3, stamp, "raw_optical")[1])
            sent["raw"] += 1
        elif which == 1:
            jpeg_img.publish(fuzzer.message("compressed", i // 3, stamp, "jpeg_optical")[1])
            sent["jpeg"] += 1
        else:
            raw_info.publish(fuzzer.message("info", i // 3, stamp, "raw_optical")[1])
            sent["info"] += 1
        good_tick()
        rclpy.spin_once(t.node, timeout_sec=0.0)
        if i % 8 == 0:  # spread over ~8 s so the worker meets every kind of bad JPEG
            time.sleep(0.05)
    t.spin_until(lambda: False, 8, good_tick)
    fuzz_rate = (good_processed() - p1) / (time.monotonic() - t1)
    assert t.proc.poll() is None, t.log()
    assert sum(sent.values()) >= 1000

    raw_v, raw_s = _values(diags, "raw")
    jpeg_v, _ = _values(diags, "jpeg")
    assert int(raw_v["received"]) >= 0.95 * sent["raw"]  # the node saw them
    assert int(jpeg_v["received"]) >= 0.95 * sent["jpeg"]
    assert int(jpeg_v["failed"]) > 0
    assert int(raw_v["failed"]) > 0 and raw_s.level != 0
    for v in (raw_v, jpeg_v):  # exact accounting: every received frame is one of these
        assert int(v["received"]) == int(v["processed"]) + int(v["dropped"]) + int(v["failed"])
    # the healthy camera kept (most of) its rate
    assert fuzz_rate >= 0.6 * base_rate, (base_rate, fuzz_rate)

    log = t.log(tail=0)
    for needle in ("unsupported encoding", "non-intensity data", "JPEG", "depth image",
                   "invalid CameraInfo"):  # fmt: skip
        assert needle in log, needle
    warnings = [ln for ln in log.splitlines() if "WARN" in ln]
    assert len(warnings) < 120, f"{len(warnings)} warning lines: not throttled"
