"""The ROS-free pipeline with stand-in detector/lifter: geometry, determinism, bad input."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.frames import ground_plane_optical
from hpe3d_ros.pipeline import Pipeline, PipelineConfig, PipelineInputError
from hpe3d_ros.placement import (
    ANKLE_HEIGHT_M,
    GroundPrior,
    ground_spread,
    solve_root_translation,
)
from test.helpers.standing import POSE

K = np.array([[700.0, 0.0, 640.0], [0.0, 700.0, 360.0], [0.0, 0.0, 1.0]])
CAMERA = CameraModel(1280, 720, K, [-0.25, 0.08, 0.0005, -0.0003, -0.01], "plumb_bob")


@dataclass
class FakePerson:
    kp_h36m: np.ndarray
    conf_h36m: np.ndarray
    track_id: int = -1
    score: float = 0.9
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((17, 2)))
    scores: np.ndarray = field(default_factory=lambda: np.ones(17))
    box: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 10.0, 10.0]))

    def to_h36m(self):
        return self.kp_h36m, self.conf_h36m


class FakeDetector:
    def __init__(self, people):
        self.people = people

    def detect(self, image_rgb):
        return list(self.people)


class GroundTruthLifter:
    """Stand-in lifter: the true root-relative pose plus seeded noise per hypothesis."""

    joint_names = tuple(range(17))

    def __init__(self, noise_m=0.01):
        self.noise_m = noise_m
        self.seeds = []

    def sample(self, keypoints_norm, confidence, k, seed):
        self.seeds.append(seed)
        rng = np.random.default_rng(seed)
        n = len(keypoints_norm)
        out = POSE[None, None] + rng.normal(0, self.noise_m, (n, k, 17, 3))
        out[:, :, 0] = 0.0
        return out.astype(np.float32)


def person_at(t, conf=None):
    px = CAMERA.project(POSE + t)
    return FakePerson(px, np.ones(17) if conf is None else conf)


IMAGE = np.zeros((720, 1280, 3), np.uint8)


@pytest.mark.parametrize("t", [(0.5, 0.2, 5.0), (-3.0, 0.4, 10.0), (4.0, 0.6, 20.0)])
def test_places_people_where_they_are(t):
    t = np.array(t)
    pipe = Pipeline(FakeDetector([person_at(t)]), GroundTruthLifter(), PipelineConfig(50))
    res = pipe.process(IMAGE, CAMERA, camera_name="front", frame_id="f", stamp_ns=1)
    (p,) = res.people
    assert np.linalg.norm(p.root_m - t) < 0.02 * t[2]  # within 2 % of distance
    assert p.num_hypotheses == 50 and p.hypotheses_m.shape == (50, 17, 3)
    np.testing.assert_allclose(p.mean_pose_m, POSE + p.root_m, atol=0.01)
    assert np.all(p.root_std_m >= 0)
    assert res.frame_id == "f" and res.camera_name == "front" and res.stamp_ns == 1
    assert set(res.timings_ms) >= {"detect", "total"}


def test_hypotheses_are_deterministic_per_stamp_and_camera():
    lifter = GroundTruthLifter()
    pipe = Pipeline(FakeDetector([person_at(np.array([0, 0, 8.0]))]), lifter)
    a = pipe.process(IMAGE, CAMERA, camera_name="front", stamp_ns=5).people[0].hypotheses_m
    b = pipe.process(IMAGE, CAMERA, camera_name="front", stamp_ns=5).people[0].hypotheses_m
    c = pipe.process(IMAGE, CAMERA, camera_name="front", stamp_ns=6).people[0].hypotheses_m
    d = pipe.process(IMAGE, CAMERA, camera_name="rear", stamp_ns=5).people[0].hypotheses_m
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_missing_and_nan_joints():
    t = np.array([1.0, 0.3, 9.0])
    conf = np.ones(17)
    conf[[3, 6, 13]] = 0.0  # truncated feet, occluded wrist
    partial = person_at(t, conf)
    partial.kp_h36m[16] = np.nan  # NaN coordinates with confidence 1
    few = person_at(t, np.r_[np.ones(4), np.zeros(13)])
    pipe = Pipeline(FakeDetector([partial, few]), GroundTruthLifter())
    res = pipe.process(IMAGE, CAMERA)
    ok, bad = res.people
    assert np.linalg.norm(ok.root_m - t) < 0.2
    assert ok.keypoint_conf[13] == 0 and ok.keypoint_conf[16] == 0  # NaN joint -> missing
    assert bad.num_hypotheses == 0 and np.isnan(bad.root_m).all()
    assert np.isfinite(ok.hypotheses_m).all()


def test_no_people_gives_empty_result():
    res = Pipeline(FakeDetector([]), GroundTruthLifter()).process(IMAGE, CAMERA)
    assert res.people == [] and res.detections == []


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((480, 640, 3), np.uint8), "CameraInfo says 1280x720"),
        (np.zeros((0, 0, 3), np.uint8), "empty image"),
        (np.zeros((720, 1280), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((720, 1280, 3), np.float32), "uint8"),
    ],
)
def test_bad_images_are_rejected_clearly(image, match):
    pipe = Pipeline(FakeDetector([]), GroundTruthLifter())
    with pytest.raises(PipelineInputError, match=match):
        pipe.process(image, CAMERA)


def test_tracker_is_per_camera():
    made = []

    class CountingTracker:
        def __init__(self):
            made.append(self)

        def update(self, people):
            for p in people:
                p.track_id = len(made)
            return people

    pipe = Pipeline(FakeDetector([person_at(np.array([0, 0, 6.0]))]), GroundTruthLifter(),
                    tracker_factory=CountingTracker)  # fmt: skip
    pipe.process(IMAGE, CAMERA, camera_name="a")
    pipe.process(IMAGE, CAMERA, camera_name="a")
    res = pipe.process(IMAGE, CAMERA, camera_name="b")
    assert len(made) == 2 and res.people[0].track_id == 2


def test_ground_prior_absorbs_body_scale_error():
    """A lifter that gets body size 7 % wrong misplaces people by ~7 % in depth; feet on a
    known ground plane fix most of that. The feet stand on the ground, so the ankle joints
    the prior pins are ANKLE_HEIGHT_M above it: a prior that pins the ankle joint to the
    ground itself (``ankle_height=0``, the prior until commit 2683ee5) puts people further
    away than no prior at all."""
    rng = np.random.default_rng(3)
    n, d = ground_plane_optical(1.5, np.radians(4.0))
    errs_free, errs_ground, errs_on_road = [], [], []
    for _ in range(100):
        t0 = np.array([rng.uniform(-3, 3), 0.0, rng.uniform(5, 25)])
        t = t0 + (d - ANKLE_HEIGHT_M - (POSE[[3, 6]] @ n).max() - t0 @ n) * n  # feet down
        px = CAMERA.project(POSE + t) + rng.normal(0, 2.0, (17, 2))
        u = CAMERA.pixel_to_normalized(px)
        small = 0.93 * POSE
        errs_free.append(abs(solve_root_translation(small, u, np.ones(17))[2] - t[2]) / t[2])
        tg = solve_root_translation(small, u, np.ones(17), GroundPrior(n, d, 20.0))
        errs_ground.append(abs(tg[2] - t[2]) / t[2])
        road = solve_root_translation(small, u, np.ones(17), GroundPrior(n, d, 20.0, 0.0))
        errs_on_road.append(abs(road[2] - t[2]) / t[2])
    assert np.mean(errs_free) > 0.05
    assert np.mean(errs_ground) < 0.4 * np.mean(errs_free)
    assert np.mean(errs_on_road) > np.mean(errs_free)


def test_ground_spread_is_what_the_prior_own_error_moves():
    """The ground prior pins the root, so the per-hypothesis spread shrinks as if the plane
    were exact; ground_spread adds what an ankle ``ankle_height_std`` higher or lower moves."""
    n, d = ground_plane_optical(1.5, np.radians(4.0))
    prior = GroundPrior(n, d, 10.0)
    t0 = np.array([0.5, 0.0, 10.0])
    t = t0 + (d - ANKLE_HEIGHT_M - (POSE[[3, 6]] @ n).max() - t0 @ n) * n  # feet down
    u = CAMERA.pixel_to_normalized(CAMERA.project(POSE + t))
    w = np.ones(17)
    spread = ground_spread(0.95 * POSE, u, w, prior)
    assert spread[2] > 0.05  # at 10 m, 4.5 cm of plane is a few decimetres of depth
    assert ground_spread(0.95 * POSE, u, w, None) == 0.0
    assert np.all(ground_spread(0.95 * POSE, u, w, prior, ground_scale=0.0) == 0.0)
    # a person whose ankle really stands ankle_height_std higher is placed about that far off
    higher = replace(prior, ankle_height=ANKLE_HEIGHT_M + prior.ankle_height_std)
    moved = solve_root_translation(0.95 * POSE, u, w, higher) - solve_root_translation(
        0.95 * POSE, u, w, prior
    )
    assert abs(moved[2]) == pytest.approx(spread[2], rel=0.2)


def test_config_validation():
    with pytest.raises(ValueError, match="num_hypotheses"):
        PipelineConfig(num_hypotheses=0)
    with pytest.raises(ValueError, match="camera_height_m"):
        PipelineConfig(camera_height_m=-1.0)
    with pytest.raises(ValueError, match="ankle_height_m"):
        PipelineConfig(ankle_height_m=-0.1)
    with pytest.raises(ValueError, match="ankle_height_m"):
        PipelineConfig(camera_height_m=0.5, ankle_height_m=0.5)  # the plane behind the camera
    with pytest.raises(ValueError, match="ground_weight"):
        PipelineConfig(ground_weight=-1.0)


def test_smoother_runs_per_camera_after_tracking_with_the_stamp():
    calls = []

    class Ids:
        def update(self, people):
            for p in people:
                p.track_id = 1
            return people

    class RecordingSmoother:
        def smooth(self, people, t_s):
            calls.append((id(self), t_s, [p.track_id for p in people]))
            return people

    pipe = Pipeline(FakeDetector([person_at(np.array([0, 0, 6.0]))]), GroundTruthLifter(),
                    tracker_factory=Ids, smoother_factory=RecordingSmoother)  # fmt: skip
    pipe.process(IMAGE, CAMERA, camera_name="a", stamp_ns=1_500_000_000)
    pipe.process(IMAGE, CAMERA, camera_name="a", stamp_ns=1_600_000_000)
    pipe.process(IMAGE, CAMERA, camera_name="b", stamp_ns=1_600_000_000)
    assert [c[1] for c in calls] == pytest.approx([1.5, 1.6, 1.6])
    assert calls[0][0] == calls[1][0] != calls[2][0]  # one smoother per camera
    assert calls[0][2] == [1]  # tracked before smoothing
