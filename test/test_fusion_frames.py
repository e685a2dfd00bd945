"""Frames for the vehicle's view: transforms, a static tree, extrinsics parameters, the ground."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpe3d_ros.frames import ground_plane_optical
from hpe3d_ros.fusion import (
    ExtrinsicsError,
    Transform,
    TransformTree,
    TransformUnavailable,
    extrinsics_from_params,
    ground_plane_in_camera,
    ground_prior_from_extrinsics,
    tree_from_params,
)
from hpe3d_ros.fusion.extrinsics import height_and_pitch
from hpe3d_ros.fusion.rig import vehicle_rig, view_people


def test_quaternion_and_rpy_agree_and_round_trip():
    rpy = np.radians([10.0, -20.0, 35.0])
    a = Transform.from_rpy([1.0, 2.0, 3.0], rpy, "base_link", "cam")
    b = Transform.from_quaternion([1.0, 2.0, 3.0], a.quaternion() * 3.0)  # not normalised
    np.testing.assert_allclose(a.rotation, b.rotation, atol=1e-12)
    # ROS fixed-axis convention: R = Rz(yaw) Ry(pitch) Rx(roll)
    r, p, y = rpy
    Rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    Ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    Rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    np.testing.assert_allclose(a.rotation, Rz @ Ry @ Rx, atol=1e-12)
    pts = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(a.inverse().apply(a.apply(pts)), pts, atol=1e-12)
    np.testing.assert_allclose(a.compose(a.inverse()).matrix(), np.eye(4), atol=1e-12)
    with pytest.raises(ValueError, match="no direction"):
        Transform.from_quaternion([0, 0, 0], [0, 0, 0, 0])
    with pytest.raises(ValueError, match="NaN"):
        Transform(np.eye(3), [0, np.nan, 0])


def test_tree_looks_up_through_chains_and_reports_what_is_missing():
    tree = TransformTree()
    tree.add(Transform.from_rpy([1.0, 0, 0], [0, 0, math.pi / 2], "base_link", "mount"))
    tree.add(Transform.from_rpy([0, 0.5, 0], [0, 0, 0], "mount", "cam_a"))
    tree.add(Transform.from_rpy([0, 0, 2.0], [0, 0.1, 0], "base_link", "cam_b"))
    T = tree.lookup("base_link", "cam_a")
    # cam_a's origin: mount's y axis is base's -x after the 90 deg yaw
    np.testing.assert_allclose(T.apply(np.zeros(3)), [0.5, 0.0, 0.0], atol=1e-12)
    T_ab = tree.lookup("cam_a", "cam_b")
    p = np.array([0.3, -0.2, 1.0])
    np.testing.assert_allclose(
        T_ab.apply(p), tree.lookup("base_link", "cam_a").inverse().apply(
            tree.lookup("base_link", "cam_b").apply(p)), atol=1e-12)  # fmt: skip
    assert (T_ab.parent, T_ab.child) == ("cam_a", "cam_b")
    with pytest.raises(TransformUnavailable, match="'rear_camera_optical_frame' is unknown"):
        tree.lookup("base_link", "rear_camera_optical_frame")
    tree.add(Transform.identity("odom", "elsewhere"))
    with pytest.raises(TransformUnavailable, match="not connected"):
        tree.lookup("base_link", "elsewhere")
    with pytest.raises(ValueError, match="loop"):
        tree.add(Transform.identity("cam_a", "base_link"))


def test_extrinsics_parameters_give_the_optical_frame():
    # a camera 2 m forward, 1.5 m up, turned 90 deg left, pitched 10 deg down
    block = {"parent_frame": "base_link", "translation": [2.0, 0.0, 1.5],
             "rpy_deg": [0.0, 10.0, 90.0]}  # fmt: skip
    T = extrinsics_from_params("left", block)
    assert (T.parent, T.child) == ("base_link", "left_camera_optical_frame")
    axis = T.rotate(np.array([0.0, 0.0, 1.0]))  # optical z = viewing direction
    np.testing.assert_allclose(axis, [0.0, math.cos(0.1745329), -math.sin(0.1745329)], atol=1e-6)
    right = T.rotate(np.array([1.0, 0.0, 0.0]))  # optical x = image right = vehicle forward
    np.testing.assert_allclose(right, [1.0, 0.0, 0.0], atol=1e-12)
    # the same pose as a quaternion, and as the optical frame's own rotation
    q = Transform.from_rpy([0, 0, 0], np.radians([0.0, 10.0, 90.0])).quaternion()
    Tq = extrinsics_from_params("left", {**_no_rpy(block), "quaternion_xyzw": list(q)})
    np.testing.assert_allclose(Tq.rotation, T.rotation, atol=1e-12)
    To = extrinsics_from_params(
        "left", {**_no_rpy(block), "quaternion_xyzw": list(T.quaternion()), "optical": True}
    )
    np.testing.assert_allclose(To.rotation, T.rotation, atol=1e-12)
    tree = tree_from_params({"left": {"extrinsics": block}, "rear": {"image_topic": "/r"}})
    assert tree.frames == {"base_link", "left_camera_optical_frame"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rpy_deg": None}, "exactly one of"),
        ({"quaternion_xyzw": [0, 0, 0, 1]}, "exactly one of"),
        ({"parent_frame": ""}, "parent_frame"),
        ({"translation": [1.0, 2.0]}, r"translation: expected 3 numbers, got 2"),
        ({"translation": [1.0, "x", 2.0]}, "translation: expected 3 numbers"),
        ({"rpy_deg": [0.0, float("nan"), 0.0]}, "NaN"),
        ({"rpy_deg": None, "quaternion_xyzw": [0, 0, 0, 0]}, "no direction"),
        ({"yaw": 3}, "unknown key"),
    ],
)
def test_bad_extrinsics_name_the_parameter(change, message):
    block = {"parent_frame": "base_link", "translation": [0, 0, 1], "rpy_deg": [0, 0, 0]}
    block.update(change)
    with pytest.raises(ExtrinsicsError, match=message) as err:
        extrinsics_from_params("front", block)
    assert "cameras.front.extrinsics" in str(err.value)


def test_ground_plane_from_extrinsics_matches_height_and_pitch():
    block = {"parent_frame": "base_link", "translation": [1.0, 0.3, 1.4], "rpy_deg": [0, 7, 30]}
    T = extrinsics_from_params("c", block)
    n, d = ground_plane_in_camera(T)
    n_ref, d_ref = ground_plane_optical(1.4, math.radians(7.0))
    np.testing.assert_allclose(n, n_ref, atol=1e-12)  # yaw does not change the plane
    assert d == pytest.approx(d_ref)
    # points on the ground of base_link satisfy n . p = d in the optical frame
    ground = np.array([[5.0, 2.0, 0.0], [9.0, -3.0, 0.0], [3.0, 4.0, 0.0]])
    np.testing.assert_allclose(T.inverse().apply(ground) @ n, d, atol=1e-12)
    # with a roll the plane tilts in the image, which height and pitch alone cannot say
    rolled = extrinsics_from_params("c", {**block, "rpy_deg": [4, 7, 30]})
    n2, _ = ground_plane_in_camera(rolled)
    np.testing.assert_allclose(rolled.inverse().apply(ground) @ n2, d, atol=1e-12)
    assert abs(n2[0]) > 0.05
    h, pitch = height_and_pitch(T)
    assert (h, pitch) == (pytest.approx(1.4), pytest.approx(7.0))
    assert ground_plane_in_camera(T, ground_z_m=0.4)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="above the ground"):
        ground_plane_in_camera(T, ground_z_m=2.0)
    # the prior pins a standing ankle 0.10 m up: that plane is 1.3 m below this camera
    prior = ground_prior_from_extrinsics(T)
    assert prior.offset == pytest.approx(1.4) and prior.ankle_plane == pytest.approx(1.3)
    with pytest.raises(ValueError, match="standing ankle"):  # a camera at ankle height
        ground_prior_from_extrinsics(T, ground_z_m=1.35)


def test_vehicle_rig_overlaps_and_views_people():
    rig = vehicle_rig(4)
    assert [c.name for c in rig] == ["front_left", "front_right", "front", "roof"]
    rng = np.random.default_rng(0)
    person = np.zeros((1, 17, 3))
    person[..., 2] = np.linspace(0.1, 1.7, 17)  # a vertical stick
    ahead_left = person + np.array([9.0, 4.0, 0.0])  # in front and left
    seen = {c.name: bool(view_people(c, ahead_left, rng)[2][0]) for c in rig}
    assert seen == {"front": True, "front_left": True, "front_right": False, "roof": True}
    ahead = person + np.array([10.0, 0.0, 0.0])  # straight ahead: every camera
    assert all(view_people(c, ahead, rng)[2][0] for c in rig)
    behind = person + np.array([-6.0, 0.0, 0.0])
    assert not any(view_people(c, behind, rng)[2][0] for c in rig)
    kp, conf, _ = view_people(rig[0], ahead_left, rng, noise_px=0.0, drop_fraction=0.5)
    assert np.isnan(kp[conf == 0]).all() and 0 < (conf > 0).sum() < 17


def _no_rpy(block: dict) -> dict:
    return {k: v for k, v in block.items() if k != "rpy_deg"}
