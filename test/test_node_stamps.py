"""Output stamps equal input stamps bit for bit: any int32 sec, any uint32 nanosec."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from hpe3d_ros.msg import Keypoints2DArray, PoseHypothesesArray  # noqa: E402
from hpe3d_ros.pipeline import Pipeline  # noqa: E402
from hpe3d_ros.ros.conversions import (  # noqa: E402
    ns_to_sec_nanosec,
    ns_to_stamp,
    stamp_is_valid,
    stamp_to_ns,
)
from test.helpers.node_harness import NobodyDetector, NoLifter, running_node, wait_for  # noqa: E402
from test.helpers.ros_io import camera_for, image_msg, info_msg  # noqa: E402
from test.test_node_dds import RELIABLE  # noqa: E402

I32, U32 = (-(2**31), 2**31 - 1), (0, 2**32 - 1)
EXTREMES = [
    (I32[1], U32[1]), (I32[1], 999_999_999), (I32[1], 10**9), (I32[0], 0), (I32[0], U32[1]),
    (I32[0], 10**9), (-1, 999_999_999), (-1, 10**9), (0, 0), (5, 1_500_000_000),
    (1_700_000_000, 123_456_789),
]  # fmt: skip


def _pair(t) -> tuple[int, int]:
    return int(t.sec), int(t.nanosec)


@pytest.mark.parametrize("pair", EXTREMES)
def test_every_extreme_pair_round_trips(pair):
    key = stamp_to_ns(Time(sec=pair[0], nanosec=pair[1]))
    assert -(2**63) <= key < 2**63  # fits the int64 a bag or a table stores
    assert _pair(ns_to_stamp(key)) == pair
    assert ns_to_sec_nanosec(key) == pair


def test_random_pairs_round_trip_and_keys_are_unique():
    rng = np.random.default_rng(7)
    secs = rng.integers(I32[0], I32[1], 20000, endpoint=True)
    nsecs = np.where(rng.random(20000) < 0.5, rng.integers(0, 10**9, 20000),
                     rng.integers(10**9, 2**32, 20000))  # fmt: skip
    pairs = {(int(s), int(n)) for s, n in zip(secs, nsecs, strict=True)}
    keys = {stamp_to_ns(Time(sec=s, nanosec=n)): (s, n) for s, n in pairs}
    assert len(keys) == len(pairs)  # one-to-one
    for key, pair in keys.items():
        assert ns_to_sec_nanosec(key) == pair


def test_valid_stamps_are_nanoseconds_since_the_epoch():
    assert stamp_to_ns(Time(sec=-2, nanosec=500_000_000)) == -1_500_000_000
    assert stamp_to_ns(Time(sec=1_700_000_000, nanosec=5)) == 1_700_000_000_000_000_005
    assert _pair(ns_to_stamp(-1)) == (-1, 999_999_999)
    assert stamp_is_valid(Time(sec=0, nanosec=999_999_999))
    assert not stamp_is_valid(Time(sec=0, nanosec=10**9))
    with pytest.raises(ValueError, match="outside int64"):
        ns_to_sec_nanosec(2**63)


@pytest.mark.dds
def test_the_node_publishes_the_input_stamp_unchanged(monkeypatch):
    pipeline = Pipeline(NobodyDetector(), NoLifter())
    with running_node(monkeypatch, pipeline, driver="stamp_driver") as (node, drv):
        got = {"h": [], "k": [], "m": []}
        for key, typ, topic in (("h", PoseHypothesesArray, "hypotheses"),
                                ("k", Keypoints2DArray, "keypoints"),
                                ("m", MarkerArray, "markers")):  # fmt: skip
            drv.create_subscription(
                typ, f"/hpe3d_pipeline/front/{topic}", got[key].append, RELIABLE
            )
        img_pub = drv.create_publisher(Image, "/front/camera/image_raw", RELIABLE)
        info_pub = drv.create_publisher(CameraInfo, "/front/camera/camera_info", RELIABLE)
        rgb = np.zeros((48, 64, 3), np.uint8)
        assert wait_for(lambda: img_pub.get_subscription_count() > 0, 20)
        info_pub.publish(info_msg(camera_for(rgb), time.time_ns(), "f"))
        for i, (sec, nsec) in enumerate(EXTREMES):
            msg = image_msg(rgb, 0, "f")
            msg.header.stamp = Time(sec=sec, nanosec=nsec)
            img_pub.publish(msg)
            assert wait_for(lambda n=i + 1: min(len(v) for v in got.values()) >= n, 20), got
        for key in ("h", "k"):
            assert [_pair(m.header.stamp) for m in got[key]] == EXTREMES, key
        marker_stamps = [{_pair(mk.header.stamp) for mk in m.markers} for m in got["m"]]
        assert marker_stamps == [{p} for p in EXTREMES]
        assert node.channels[0].runner.stats.snapshot()["processed"] == len(EXTREMES)
