"""``hpe3d_ros/People`` (``~/people``): to_msg/from_msg round trip, in-process and over real
Fast DDS between two processes, and its markers in the target frame."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy  # noqa: E402

from hpe3d_ros.fusion import TRACK_STATES, PeopleList, TrackedPerson  # noqa: E402
from hpe3d_ros.fusion.tracks import ViewInfo  # noqa: E402
from hpe3d_ros.msg import People, PeopleTrack  # noqa: E402
from hpe3d_ros.ros.markers import people_markers  # noqa: E402
from hpe3d_ros.ros.people import people_from_msg, people_to_msg  # noqa: E402
from test.conftest import REPO  # noqa: E402

TOPIC = "/test/people"


def sample_people() -> PeopleList:
    """Three tracks, one per state; the lost one has no hypotheses; odd stamps and ids."""
    rng = np.random.default_rng(7)
    people = []
    for i, state in enumerate(TRACK_STATES):
        k = 0 if state == "lost" else 20 + i
        a = rng.normal(size=(3, 3))
        b = rng.normal(size=(3, 3))
        views = [
            ViewInfo(
                "front_left",
                "front_left_camera_optical_frame",
                1_700_000_000_123_456_789 - 7_000_000 * i,
                4 + i,
            ),
            ViewInfo("roof", "roof_camera_optical_frame", -1_500_000_001, -1),
        ][: 2 - i // 2]
        people.append(TrackedPerson(
            track_id=[1, 4_000_000_000, 17][i], state=state, stamp_ns=1_700_000_000_123_456_789,
            position_m=rng.normal(size=3) * 5, position_cov=a @ a.T,
            velocity_mps=rng.normal(size=3), velocity_cov=b @ b.T,
            hypotheses_m=(rng.normal(size=(k, 17, 3)) + np.array([8.0, 1.0, 0.9])).astype(
                np.float32),
            views=views, score=0.25 * (i + 1),
        ))  # fmt: skip
    return PeopleList("base_link", 1_700_000_000_123_456_789, people)


def assert_same(back: PeopleList, sent: PeopleList) -> None:
    assert (back.frame_id, back.stamp_ns) == (sent.frame_id, sent.stamp_ns)
    assert back.joint_layout == "h36m17" and back.joint_names == sent.joint_names
    assert len(back.people) == len(sent.people) == 3
    for a, b in zip(back.people, sent.people, strict=True):
        assert (a.track_id, a.state, a.stamp_ns) == (b.track_id, b.state, b.stamp_ns)
        assert a.score == pytest.approx(b.score, rel=1e-6)
        for name in ("position_m", "position_cov", "velocity_mps", "velocity_cov"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))  # float64
        np.testing.assert_array_equal(a.hypotheses_m, b.hypotheses_m)
        assert a.views == b.views


def test_people_round_trip_in_process():
    sent = sample_people()
    msg = people_to_msg(sent)
    assert msg.header.frame_id == "base_link"
    assert [p.state for p in msg.people] == [
        PeopleTrack.TENTATIVE, PeopleTrack.CONFIRMED, PeopleTrack.LOST]  # fmt: skip
    mean = np.asarray(msg.people[1].mean_pose, np.float32).reshape(17, 3)
    np.testing.assert_allclose(mean, sent.people[1].hypotheses_m.mean(0), rtol=1e-6)
    assert np.isnan(np.asarray(msg.people[2].mean_pose)).all()  # K = 0: NaN, documented
    assert_same(people_from_msg(msg), sent)
    msg.people[0].num_hypotheses = 3
    with pytest.raises(ValueError, match="expected K\\*J\\*3"):
        people_from_msg(msg)


def test_people_cross_real_dds_between_processes():
    proc = subprocess.Popen([sys.executable, "-m", "test.test_people_msg", "40"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    rclpy.init()
    node = rclpy.create_node("people_subscriber")
    got = []
    node.create_subscription(People, TOPIC, got.append, _qos())
    try:
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline and proc.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode(errors="replace")
    assert got, f"nothing arrived; publisher exited {proc.poll()}: {out[-2000:]}"
    assert_same(people_from_msg(got[0]), sample_people())


def test_people_markers_are_in_the_target_frame_one_colour_per_track():
    sent = sample_people()
    arr = people_markers(sent)
    assert arr.markers[0].action == arr.markers[0].DELETEALL
    assert all(m.header.frame_id == "base_link" for m in arr.markers)
    skeletons = [m for m in arr.markers if m.ns == "skeleton"]
    assert len(skeletons) == 2  # the lost track has no hypotheses: no skeleton
    assert len({(m.color.r, m.color.g, m.color.b) for m in skeletons}) == 2
    labels = [m for m in arr.markers if m.ns == "labels"]
    assert labels[0].text.startswith("id 1 ")
    head = sent.people[0].hypotheses_m.mean(0)[10]
    assert labels[0].pose.position.z == pytest.approx(head[2] + 0.3, abs=1e-5)  # z is up
    ellipsoids = [m for m in arr.markers if m.ns == "position_covariance"]
    assert len(ellipsoids) == 3
    e, cov = ellipsoids[0], sent.people[0].position_cov
    axes = sorted([e.scale.x, e.scale.y, e.scale.z])
    np.testing.assert_allclose(axes, 2 * np.sqrt(6.251 * np.linalg.eigvalsh(cov)), rtol=1e-6)


def _qos() -> QoSProfile:
    return QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)  # fmt: skip


def _publish(seconds: float) -> int:
    """Child process of the DDS test: publishes the sample until terminated."""
    rclpy.init()
    node = rclpy.create_node("people_publisher")
    pub = node.create_publisher(People, TOPIC, _qos())
    msg = people_to_msg(sample_people())
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            pub.publish(msg)
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(_publish(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0))
