"""The vehicle's view wired up (ROS-free parts): extrinsics parameters typed into the config,
transforms over time from a bag's TF, camera poses from parameters or a TF buffer (a fake
with tf2_ros.Buffer's ``lookup_transform``), per-camera ground planes, and the fuser's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpe3d_ros.config import ConfigError, build_config
from hpe3d_ros.fusion import (
    FuserConfig,
    Transform,
    TransformUnavailable,
    extrinsics_from_params,
)
from hpe3d_ros.fusion.buffer import TransformBuffer, transform_from_msg
from hpe3d_ros.fusion.driver import VehicleConfig, VehicleView
from hpe3d_ros.fusion.extrinsics import ground_prior_from_extrinsics, height_and_pitch
from hpe3d_ros.fusion.rig import vehicle_rig
from hpe3d_ros.pipeline import Pipeline, PipelineConfig
from hpe3d_ros.results import FrameResult
from test.test_fusion_tracking import frame, person_at

CAM = "cameras.left."


def test_extrinsics_parameters_are_typed_into_the_camera_config():
    base = {"camera_names": ["left", "tf_cam"], CAM + "extrinsics.parent_frame": "base_link",
            CAM + "extrinsics.translation": [3.7, 0.75, 0.9],
            CAM + "extrinsics.rpy_deg": [0.0, 5.0, 25]}  # fmt: skip
    cfg = build_config(base)
    left, tf_cam = cfg.cameras
    want = extrinsics_from_params("left", {"parent_frame": "base_link",
                                           "translation": [3.7, 0.75, 0.9],
                                           "rpy_deg": [0, 5, 25]})  # fmt: skip
    np.testing.assert_allclose(left.extrinsics.matrix(), want.matrix(), atol=1e-12)
    assert (left.extrinsics.parent, left.extrinsics.child) == (
        "base_link",
        "left_camera_optical_frame",
    )
    assert tf_cam.extrinsics is None  # parent_frame "" = from TF
    # the same rotation as a quaternion; an optical-frame rotation; a frame_id override
    q = Transform.from_rpy([0, 0, 0], np.radians([0.0, 5.0, 25.0])).quaternion().tolist()
    quat = build_config(base | {CAM + "extrinsics.rpy_deg": [0.0, 0.0, 0.0],
                                CAM + "extrinsics.quaternion_xyzw": q,
                                CAM + "frame_id": "left_optical"})  # fmt: skip
    np.testing.assert_allclose(quat.cameras[0].extrinsics.matrix(), want.matrix(), atol=1e-9)
    assert quat.cameras[0].extrinsics.child == "left_optical"
    opt = build_config(base | {CAM + "extrinsics.rpy_deg": [0.0, 0.0, 0.0],
                               CAM + "extrinsics.optical": True})  # fmt: skip
    np.testing.assert_allclose(opt.cameras[0].extrinsics.rotation, np.eye(3))
    # fusion knobs reach the fuser's configuration, typed
    v = build_config(base | {"target_frame": "odom", "output.people": True,
                             "fusion.gate_probability": 0.99, "fusion.confirm_hits": 2,
                             "placement.ground_z_m": -0.3, "lifter.seed": 7}).vehicle  # fmt: skip
    assert v.people and v.target_frame == "odom" and v.ground_z_m == -0.3
    assert (v.fuser.gate_probability, v.fuser.confirm_hits, v.fuser.seed) == (0.99, 2, 7)
    assert build_config({}).vehicle == VehicleConfig()  # the defaults agree
    assert build_config({}).output.people is False


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({CAM + "extrinsics.quaternion_xyzw": [0.0, 0.0, 0.0, 1.0]}, "not both"),
        ({CAM + "extrinsics.translation": [1.0, 2.0]}, "cameras.left.extrinsics.translation"),
        ({CAM + "extrinsics.parent_frame": "base link"}, "cameras.left.extrinsics.parent_frame"),
        ({"fusion.gate_probability": 0.97}, "fusion.gate_probability"),
        ({"target_frame": ""}, "target_frame"),
    ],
)
def test_bad_vehicle_parameters_name_the_parameter(change, needle):
    base = {"camera_names": ["left"], CAM + "extrinsics.parent_frame": "base_link",
            CAM + "extrinsics.rpy_deg": [0.0, 5.0, 0.0]}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        build_config(base | change)
    assert needle in str(err.value)


# --------------------------------------------------------------------- transforms over time
class _Msg:
    """A duck-typed geometry_msgs/TransformStamped (as rclpy and rosbags objects are)."""

    def __init__(self, T: Transform, stamp_ns: int) -> None:
        q = T.quaternion()
        v = type("V", (), {})
        self.header = v()
        self.header.stamp = v()
        self.header.stamp.sec, self.header.stamp.nanosec = divmod(stamp_ns, 10**9)
        self.header.frame_id, self.child_frame_id = T.parent, T.child
        self.transform = v()
        self.transform.translation, self.transform.rotation = v(), v()
        for k, val in zip("xyz", T.translation, strict=True):
            setattr(self.transform.translation, k, float(val))
        for k, val in zip("xyzw", q, strict=True):
            setattr(self.transform.rotation, k, float(val))


def test_transform_buffer_interpolates_timed_edges_and_refuses_stale_stamps():
    rig = vehicle_rig(2)
    buf = TransformBuffer(max_extrapolation_s=0.1)
    for cam in rig:
        buf.add_static(cam.T_base_camera)
    # odom -> base_link: the vehicle drives 10 m/s along x and turns 0.2 rad/s
    for i in range(11):
        t = i * 0.1
        T = Transform.from_rpy([10.0 * t, 0.0, 0.0], [0.0, 0.0, 0.2 * t], "odom", "base_link")
        stamp, back = transform_from_msg(_Msg(T, 10**9 + round(t * 1e9)))
        buf.add(stamp, back)
    T = buf.lookup("odom", "front_left_camera_optical_frame", 10**9 + 550_000_000)
    want = Transform.from_rpy([5.5, 0.0, 0.0], [0.0, 0.0, 0.11], "odom", "base_link")
    np.testing.assert_allclose(T.matrix(), want.compose(rig[0].T_base_camera).matrix(),
                               atol=1e-9)  # fmt: skip
    assert (T.parent, T.child) == ("odom", "front_left_camera_optical_frame")
    # static lookups need no time; between two cameras the timed edge cancels out
    a = buf.lookup("front_left_camera_optical_frame", "front_right_camera_optical_frame", 0)
    b = rig[0].T_base_camera.inverse().compose(rig[1].T_base_camera)
    np.testing.assert_allclose(a.matrix(), b.matrix(), atol=1e-12)
    with pytest.raises(TransformUnavailable, match="stale"):
        buf.lookup("odom", "front_left_camera_optical_frame", 10**9 + 1_250_000_000)
    with pytest.raises(TransformUnavailable, match="before the first"):
        buf.lookup("odom", "base_link", 10**9 - 1)
    with pytest.raises(TransformUnavailable, match="unknown"):
        buf.lookup("map", "base_link", 10**9)
    with pytest.raises(ValueError, match="static parent"):
        buf.add(0, Transform.identity("odom", "front_left_camera_optical_frame"))


# --------------------------------------------------------------------- poses and the ground
class FakeTfBuffer:
    """What the node's TfSource calls: ``lookup_transform(target, source, time, timeout)``;
    knows some optical frames, raises tf2-like errors for others."""

    def __init__(self, known: dict[str, Transform]) -> None:
        self.known = known
        self.calls: list[tuple] = []

    def lookup_transform(self, target, source, time, timeout):
        self.calls.append((target, source, time.nanoseconds, timeout.nanoseconds))
        if source not in self.known:
            raise LookupError(f'"{source}" passed to lookupTransform argument source_frame '
                              f"does not exist")  # fmt: skip
        return _Msg(self.known[source], time.nanoseconds)


def test_poses_from_tf_at_the_image_stamp_set_each_cameras_ground_plane():
    pytest.importorskip("rclpy", reason="TfSource speaks rclpy Time/Duration")
    from hpe3d_ros.ros.vehicle import TfSource

    rig = vehicle_rig(3)
    fake = FakeTfBuffer({c.frame_id: c.T_base_camera for c in rig[:2]})
    pipe = Pipeline(None, None, PipelineConfig(camera_height_m=1.5, camera_pitch_deg=0.0))
    view = VehicleView(VehicleConfig(people=True), {}, pipe, TfSource(fake, 0.05))
    for cam in rig:
        pose = view.pose(cam.name, cam.frame_id, 7_000_000_123)
        if cam.name == "front":  # TF does not know it
            assert pose.transform is None and "does not exist" in pose.reason
            fallback = pipe.ground_for("front")  # placement.camera_height_m and pitch stay
            assert fallback.offset == 1.5 and fallback.normal.tolist() == [0.0, 1.0, 0.0]
            continue
        np.testing.assert_allclose(pose.transform.matrix(), cam.T_base_camera.matrix(),
                                   atol=1e-9)  # fmt: skip
        ground = pipe.ground_for(cam.name)
        want = ground_prior_from_extrinsics(cam.T_base_camera)
        np.testing.assert_allclose(ground.normal, want.normal, atol=1e-9)
        assert ground.offset == pytest.approx(height_and_pitch(cam.T_base_camera)[0])
    assert fake.calls[0] == ("base_link", "front_left_camera_optical_frame", 7_000_000_123,
                             50_000_000)  # fmt: skip
    # the camera without a pose: counted by the fuser, a WARN on /diagnostics
    res = FrameResult("front", rig[2].frame_id, 7_000_000_123)
    assert view.fuse("front", res, rig[2].model, view.pose("front", rig[2].frame_id, 1)) is None
    snap = view.snapshot("front")
    assert snap["missing_transform"] == 1 and "does not exist" in snap["pose_problem"]
    from hpe3d_ros.ros.diagnostics import WARN, stream_level

    base = {"silent_s": 0.1, "processed_rate_hz": 9.0, "failed": 0, "last_error": ""}
    level, msg = stream_level({**base, **snap}, 2.0, True)
    assert level == WARN and "not in ~/people" in msg and "9.0 Hz processed" in msg
    assert stream_level({**base, **view.snapshot("front_left")}, 2.0, True)[0] != WARN


def test_parameters_win_over_tf_and_chain_to_another_target_frame():
    rig = vehicle_rig(2)
    left = rig[0]
    odom = Transform.from_rpy([100.0, 5.0, 0.0], [0.0, 0.0, math.pi / 2], "odom", "base_link")
    buf = TransformBuffer()
    buf.add(10**9, odom)
    buf.add(2 * 10**9, odom)
    cfg = VehicleConfig(people=True, fuser=FuserConfig(target_frame="odom"))
    view = VehicleView(cfg, {"front_left": left.T_base_camera}, None, buf)
    pose = view.pose("front_left", "whatever_the_header_says", 1_500_000_000)
    assert pose.source == "parameters" and pose.transform.child == "whatever_the_header_says"
    np.testing.assert_allclose(pose.transform.matrix(),
                               odom.compose(left.T_base_camera).matrix(), atol=1e-9)  # fmt: skip
    late = view.pose("front_left", "x", 3 * 10**9)  # the odom edge is stale by then
    assert late.transform is None and "stale" in late.reason
    alone = VehicleView(cfg, {"front_left": left.T_base_camera}, None, None, "no TF here")
    assert "no TF here" in alone.pose("front_left", "x", 0).reason


def test_the_view_fuses_two_cameras_into_one_list_and_publishes_only_fused_frames():
    rig = vehicle_rig(2)
    view = VehicleView(VehicleConfig(people=True), {c.name: c.T_base_camera for c in rig})
    truth = np.array([person_at([9.0, 0.5]), person_at([7.0, -1.0])])
    rng = np.random.default_rng(3)
    lists = []
    for f in range(5):
        for c, cam in enumerate(rig):
            stamp = 10**9 + f * 33_000_000 + c * 5_000_000
            res = frame(cam, truth, stamp, [0.1, -0.1], rng, ids=[1, 2])
            pose = view.pose(cam.name, cam.frame_id, stamp)
            lists.append(view.fuse(cam.name, res, cam.model, pose))
    last = lists[-1]
    assert last.frame_id == "base_link" and last.stamp_ns == 10**9 + 4 * 33_000_000 + 5_000_000
    assert len(last.people) == 2
    for p in last.people:
        assert min(np.linalg.norm(truth[:, 0] - p.position_m, axis=1)) < 0.3
        assert {v.camera_name for v in p.views} == {"front_left", "front_right"}
    assert view.snapshot("front_left")["pose_problem"] == ""
    # a frame too late to fuse gives no list; a failed frame neither; off: nothing at all
    late = frame(rig[0], truth, 10**9, [0.0, 0.0], rng)
    assert view.fuse("front_left", late, rig[0].model, view.pose("front_left", "", 10**9)) is None
    assert view.fuse("front_left", None, None, view.pose("front_left", "", 10**9)) is None
    off = VehicleView(VehicleConfig(), {c.name: c.T_base_camera for c in rig})
    assert off.fuse("front_left", late, rig[0].model, off.pose("front_left", "", 1)) is None
    assert off.snapshot("front_left") == {}
