"""One people list in the vehicle frame: association, fusion and 3D tracks on a synthetic rig.

Frames are made from ground truth without the lifter: each camera reports a person's root with
a depth error along its own ray (as a monocular lifter does), the true pose as hypotheses, and
the projected 2D keypoints, through the rig's known extrinsics.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpe3d_ros.fusion import (
    CONFIRMED,
    LOST,
    FuserConfig,
    PeopleFuser,
    TransformTree,
    observations_from_result,
)
from hpe3d_ros.fusion.rig import VirtualCamera, vehicle_rig, view_people
from hpe3d_ros.fusion.views import fuse_gaussians, fuse_hypotheses
from hpe3d_ros.results import FrameResult, Person3D

BODY = np.zeros((17, 3))
BODY[:, 2] = np.linspace(-0.9, 0.8, 17)  # a 1.7 m stick, root 0.9 m above the ground
BODY[:, 1] = 0.15 * np.sin(np.arange(17))  # with some width
BODY[0] = 0.0


def person_at(xy) -> np.ndarray:
    """(17, 3) joints in base_link of a person standing at ground point ``xy``."""
    return BODY + np.array([xy[0], xy[1], 0.9])


def frame(
    cam: VirtualCamera, people: np.ndarray, stamp_ns: int, depth_err, rng, ids=None, k: int = 8
) -> FrameResult:
    """What a camera's pipeline would report: roots off by ``depth_err`` (fraction) along its
    ray, spread 10 % of the distance, the true pose as K hypotheses."""
    kp, conf, seen = view_people(cam, people, rng, noise_px=1.0)
    p_cam = cam.T_base_camera.inverse().apply(people)
    out = FrameResult(cam.name, cam.frame_id, stamp_ns)
    for i in np.flatnonzero(seen):
        root = p_cam[i, 0] * (1.0 + depth_err[i])
        ray = p_cam[i, 0] / np.linalg.norm(p_cam[i, 0])
        std = 0.1 * np.linalg.norm(root) * np.abs(ray)
        hyps = np.repeat((p_cam[i] - p_cam[i, 0] + root)[None], k, axis=0).astype(np.float32)
        tid = -1 if ids is None else ids[i]
        out.people.append(Person3D(tid, 0.9, np.zeros(4), kp[i], conf[i], root, std, hyps))
    return out


def test_two_crossing_rays_fuse_to_their_intersection_with_a_smaller_covariance():
    truth = np.array([8.0, 1.0, 0.9])
    covs, means = [], []
    for origin in (np.array([3.7, 0.75, 0.9]), np.array([3.7, -0.75, 0.9])):
        r = (truth - origin) / np.linalg.norm(truth - origin)
        C = 0.8**2 * np.outer(r, r) + 0.03**2 * (np.eye(3) - np.outer(r, r))
        means.append(truth + 0.6 * r)  # both too far along their own rays
        covs.append(C)
    mean, cov = fuse_gaussians(np.array(means), np.array(covs))
    assert np.linalg.norm(mean - truth) < 0.1 < 0.6
    assert np.linalg.det(cov) < 0.05 * min(np.linalg.det(c) for c in covs)


def test_synthetic_rig_gives_one_fused_person_where_each_stands():
    rig = vehicle_rig(3)
    tree = TransformTree()
    for cam in rig:
        tree.add(cam.T_base_camera)
    truth = np.array([person_at(p) for p in ([9.0, 0.5], [7.0, -1.5], [13.0, 2.0])])
    rng = np.random.default_rng(1)
    fuser = PeopleFuser(FuserConfig(target_frame="base_link"))
    single_err = []
    for f in range(10):
        for c, cam in enumerate(rig):
            stamp = 1_000_000_000 + f * 33_333_333 + c * 7_000_000
            err = np.array([0.15, -0.12, 0.1]) * (1 if c % 2 else -1)  # each camera its own
            res = frame(cam, truth, stamp, err, rng, ids=[10 + c, 20 + c, 30 + c])
            people = fuser.update_from(cam.name, res, cam.model, tree)
            for o in observations_from_result(res, cam.model, cam.T_base_camera):
                single_err.append(np.linalg.norm(truth[:, 0] - o.root_m, axis=1).min())
    assert len(people) == 3 and all(p.state == CONFIRMED for p in people)
    assert len({p.track_id for p in people}) == 3
    for p in people:
        i = int(np.argmin(np.linalg.norm(truth[:, 0] - p.position_m, axis=1)))
        err = np.linalg.norm(p.position_m - truth[i, 0])
        assert err < 0.25, (p.track_id, err)
        assert err < 0.5 * np.median(single_err)
        seeing = {c.name for c in rig if view_people(c, truth[i : i + 1], rng)[2][0]}
        assert {v.camera_name for v in p.views} == seeing and len(seeing) >= 2
        assert p.hypotheses_m.shape == (8, 17, 3)
        np.testing.assert_allclose(p.mean_pose_m - p.mean_pose_m[0], BODY, atol=1e-4)
        # the fused covariance holds the truth and is tighter than one camera's
        d = p.position_m - truth[i, 0]
        assert d @ np.linalg.solve(p.position_cov, d) < 11.3
        one = min(np.linalg.eigvalsh(o.root_cov).max() for o in fuser.tracks[0].views.values())
        assert np.linalg.eigvalsh(p.position_cov).max() < 0.25 * one  # the depth cigar shrank
    assert all(fuser.status(c.name).frames == 10 for c in rig)


def test_one_person_crossing_from_one_camera_into_another_keeps_one_id():
    """Walks left to right across the front at 1.4 m/s: front_left only, both, front_right
    only; each camera's own tracker gives its own ids, the fused id stays one."""
    rig = vehicle_rig(2)
    rng = np.random.default_rng(2)
    fuser = PeopleFuser()
    ids_seen, cams_per_frame = set(), []
    for f in range(150):
        t = f / 15.0
        truth = person_at([10.0, 6.0 - 1.4 * t])[None]
        for c, cam in enumerate(rig):
            stamp = 2_000_000_000 + round(t * 1e9) + c * 20_000_000
            res = frame(cam, truth, stamp, [0.1 * (-1) ** c], rng, ids=[100 * (c + 1)])
            people = fuser.update(cam.name, res, cam.model, cam.T_base_camera)
            cams_per_frame.append(tuple(sorted(v.camera_name for p in people for v in p.views)))
            ids_seen |= {p.track_id for p in people if p.state == CONFIRMED}
    # the walk really went from one camera through both into the other
    assert ("front_left",) in cams_per_frame and ("front_right",) in cams_per_frame
    assert ("front_left", "front_right") in cams_per_frame
    assert len(ids_seen) == 1, ids_seen
    final = fuser.people(stamp)
    assert len(final) == 1
    np.testing.assert_allclose(final[0].velocity_mps[:2], [0.0, -1.4], atol=0.25)


def test_a_person_walking_out_of_every_view_is_lost_then_picked_up_again_with_its_id():
    rig = vehicle_rig(2)
    rng = np.random.default_rng(3)
    fuser = PeopleFuser()
    states = []
    for f in range(60):
        t = f / 15.0
        y = 1.0 - 1.5 * t
        truth = person_at([9.0, y])[None]
        hidden = 1.0 < t < 1.4  # behind a parked van for 0.4 s
        for cam in rig:
            stamp = 3_000_000_000 + round(t * 1e9)
            res = frame(cam, truth, stamp, [0.05], rng)
            if hidden:
                res.people.clear()
            people = fuser.update(cam.name, res, cam.model, cam.T_base_camera)
        states.append({p.track_id: p.state for p in people})
    assert LOST in {s for st in states for s in st.values()}
    assert {tid for st in states for tid in st} == {1}
    assert states[-1] == {1: CONFIRMED}


def test_missing_transform_is_reported_per_camera_and_the_others_go_on():
    rig = vehicle_rig(2)
    tree = TransformTree()
    tree.add(rig[0].T_base_camera)  # front_right's extrinsics were never given
    rng = np.random.default_rng(4)
    truth = person_at([9.0, 0.0])[None]
    fuser = PeopleFuser()
    for f in range(6):
        for cam in rig:
            res = frame(cam, truth, 4_000_000_000 + f * 50_000_000, [0.05], rng)
            people = fuser.update_from(cam.name, res, cam.model, tree)
    ok, missing = fuser.status("front_left"), fuser.status("front_right")
    assert ok.ok and ok.frames == 6 and ok.missing_transform == 0
    assert not missing.ok and missing.frames == 0 and missing.missing_transform == 6
    assert "front_right_camera_optical_frame" in missing.last_problem
    assert "unknown" in missing.last_problem
    assert len(people) == 1 and [v.camera_name for v in people[0].views] == ["front_left"]
    # a driver without a transform at all (None) is counted the same way
    fuser.update("front_right", res, rig[1].model, None, reason="TF: no base_link")
    assert fuser.status("front_right").missing_transform == 7
    assert fuser.status("front_right").last_problem == "TF: no base_link"
    assert fuser.status("never_seen").frames == 0


def test_frames_up_to_the_skew_apart_are_motion_compensated_older_ones_are_stale():
    """A person at 2 m/s; the second camera's frames arrive 40 ms late, after the first
    camera's newer ones: still one person, placed where it was, not behind."""
    rig = vehicle_rig(2)
    rng = np.random.default_rng(5)
    fuser = PeopleFuser()
    for f in range(30):
        t = f / 20.0
        stamp = 5_000_000_000 + round(t * 1e9)
        a = frame(rig[0], person_at([9.0, 1.6 - 2.0 * t])[None], stamp, [0.0], rng)
        fuser.update(rig[0].name, a, rig[0].model, rig[0].T_base_camera)
        late = stamp - 40_000_000
        b = frame(rig[1], person_at([9.0, 1.6 - 2.0 * (t - 0.04)])[None], late, [0.0], rng)
        people = fuser.update(rig[1].name, b, rig[1].model, rig[1].T_base_camera)
    assert len(people) == 1 and len(people[0].views) == 2
    np.testing.assert_allclose(people[0].position_m, person_at([9.0, 1.6 - 2.0 * t])[0],
                               atol=0.15)  # fmt: skip
    assert fuser.status(rig[1].name).stale == 0
    old = frame(rig[1], person_at([9.0, 0.0])[None], stamp - 200_000_000, [0.0], rng)
    fuser.update(rig[1].name, old, rig[1].model, rig[1].T_base_camera)
    assert fuser.status(rig[1].name).stale == 1
    assert "older than the newest" in fuser.status(rig[1].name).last_problem


def test_hypotheses_that_reproject_into_every_view_win():
    """Camera A cannot tell where an arm is along its ray (both hypotheses reproject the same
    in A); camera B, 20 degrees off, can: the fused set keeps the right arm."""
    rig = vehicle_rig(2)
    truth = person_at([8.0, 0.0])
    wrong = truth.copy()
    arm = [11, 12, 13]  # left shoulder, elbow, wrist
    ray_a = truth[arm] - rig[0].T_base_camera.origin
    wrong[arm] = truth[arm] + 0.5 * ray_a / np.linalg.norm(ray_a, axis=1, keepdims=True)
    rng = np.random.default_rng(6)
    views = []
    for cam in rig:
        res = frame(cam, truth[None], 0, [0.0], rng, k=2)
        res.people[0].hypotheses_m = np.stack([
            rig_pose(cam, truth), rig_pose(cam, wrong)]).astype(np.float32)  # fmt: skip
        views += observations_from_result(res, cam.model, cam.T_base_camera)
    roots = [truth[0], truth[0]]
    fused = fuse_hypotheses(views, roots, truth[0], 20, seed=0)
    right = np.linalg.norm(fused.hypotheses_m[:, 13] - truth[13], axis=-1) < 0.05
    assert right.mean() >= 0.75 and fused.ess < 3.5  # half of the pooled four were right
    alone = fuse_hypotheses(views[:1], roots[:1], truth[0], 20, seed=0)  # A cannot choose
    assert (np.linalg.norm(alone.hypotheses_m[:, 13] - truth[13], axis=-1) < 0.05).mean() == 0.5
    again = fuse_hypotheses(views, roots, truth[0], 20, seed=0)
    np.testing.assert_array_equal(again.hypotheses_m, fused.hypotheses_m)


def rig_pose(cam: VirtualCamera, joints_base: np.ndarray) -> np.ndarray:
    return cam.T_base_camera.inverse().apply(joints_base)


def test_config_is_checked():
    with pytest.raises(ValueError, match="gate_probability"):
        FuserConfig(gate_probability=0.5)
    with pytest.raises(ValueError, match="max_stamp_skew_s"):
        FuserConfig(max_stamp_skew_s=-1)
