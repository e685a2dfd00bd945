"""Every custom message crosses real Fast DDS between two processes, field by field."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy  # noqa: E402

from hpe3d_ros.msg import Keypoints2DArray, PoseHypothesesArray  # noqa: E402
from hpe3d_ros.ros.conversions import (  # noqa: E402
    hypotheses_from_msg,
    keypoints_from_msg,
    stamp_to_ns,
)
from test.conftest import REPO  # noqa: E402
from test.helpers.sample_results import make_sample_result  # noqa: E402

pytestmark = pytest.mark.dds


@pytest.fixture
def received():
    """Start the publisher process, collect one message per topic (30 s budget)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "test.helpers.publish_samples", "40"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    rclpy.init()
    node = rclpy.create_node("sample_subscriber")
    got: dict[str, object] = {}
    qos = QoSProfile(
        depth=1,
        reliability=QoSReliabilityPolicy.RELIABLE,
        durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
    )
    node.create_subscription(
        PoseHypothesesArray, "/test/hypotheses", lambda m: got.setdefault("h", m), qos
    )
    node.create_subscription(
        Keypoints2DArray, "/test/keypoints", lambda m: got.setdefault("k", m), qos
    )
    try:
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline and proc.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        yield got, proc
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode(errors="replace")
        if len(got) < 2:
            print(out)


def test_custom_messages_cross_processes_field_by_field(received):
    got, proc = received
    assert set(got) == {"h", "k"}, f"publisher exited with {proc.poll()} before both arrived"
    sent = make_sample_result()

    h = got["h"]
    assert h.header.frame_id == sent.frame_id
    assert stamp_to_ns(h.header.stamp) == sent.stamp_ns
    assert h.camera_name == "front" and h.joint_layout == "h36m17"
    assert h.model_id == sent.model_id
    assert len(h.joint_names) == 17 and h.joint_names[0] == "pelvis"
    back = hypotheses_from_msg(h)
    assert len(back.people) == len(sent.people) == 3
    for a, b, raw in zip(back.people, sent.people, h.people, strict=True):
        assert a.track_id == b.track_id
        assert a.detection_score == pytest.approx(b.detection_score, rel=1e-6)
        np.testing.assert_array_equal(a.bbox_px, b.bbox_px)
        np.testing.assert_array_equal(a.keypoints_px, b.keypoints_px)  # NaN compares equal
        np.testing.assert_array_equal(a.keypoint_conf, b.keypoint_conf)
        np.testing.assert_allclose(a.root_m, b.root_m)
        np.testing.assert_array_equal(a.root_std_m, b.root_std_m)
        assert a.num_hypotheses == raw.num_hypotheses == 50
        np.testing.assert_array_equal(a.hypotheses_m, b.hypotheses_m)
        # mean and spread travel as their own fields; check them against the hypotheses
        mean = np.asarray(raw.mean_pose, dtype=np.float32).reshape(17, 3)
        std = np.asarray(raw.joint_std, dtype=np.float32).reshape(17, 3)
        np.testing.assert_allclose(mean, b.hypotheses_m.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(std, b.hypotheses_m.std(axis=0), rtol=1e-5)

    k = got["k"]
    assert k.header.frame_id == sent.frame_id and k.joint_layout == "coco17"
    assert tuple(k.joint_names) == sent.detection_joint_names
    dets = keypoints_from_msg(k)
    for a, b in zip(dets, sent.detections, strict=True):
        assert a.track_id == b.track_id
        assert a.score == pytest.approx(b.score, rel=1e-6)
        np.testing.assert_array_equal(a.bbox_px, b.bbox_px)
        np.testing.assert_array_equal(a.keypoints_px, b.keypoints_px)
        np.testing.assert_array_equal(a.confidence, b.confidence)
