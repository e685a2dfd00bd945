"""Body size from the ground (``placement.size_log_std``): one image cannot tell a small
person near from a big one further away; feet on a known ground can."""

from __future__ import annotations

import numpy as np
import pytest

from hpe3d_ros.body_size import (
    CHILD_PRIOR_WEIGHT,
    SIZE_BIAS_LOG_STD,
    SIZE_FACTOR_RANGE,
    SIZE_FOOT_STD_M,
    GroundSize,
    TrackSizes,
    ground_size,
    size_posterior,
)
from hpe3d_ros.camera import CameraModel
from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.pipeline import Pipeline, PipelineConfig
from hpe3d_ros.placement import GroundPrior
from hpe3d_ros.skeleton import H36M_PARENTS

# an upright body in the optical frame (y down), root-relative: the ankles 0.9 m below
POSE = np.array([[0, 0, 0], [-.1, 0, 0], [-.1, .45, 0], [-.1, .9, 0], [.1, 0, 0],
                 [.1, .45, 0], [.1, .9, 0], [0, -.25, 0], [0, -.5, 0], [0, -.6, 0],
                 [0, -.75, 0], [.18, -.5, 0], [.2, -.25, 0], [.2, 0, 0], [-.18, -.5, 0],
                 [-.2, -.25, 0], [-.2, 0, 0]])  # fmt: skip
LEVEL_GROUND = GroundPrior(np.array([0.0, 1.0, 0.0]), 1.5)  # a level camera 1.5 m up


def _standing(scale: float, x: float, z: float) -> np.ndarray:
    """(17, 3) the body scaled by ``scale`` with its ankles on the ankle plane."""
    ankle_y = LEVEL_GROUND.ankle_plane
    return scale * POSE + np.array([x, ankle_y - scale * 0.9, z])


def _bones(joints: np.ndarray) -> np.ndarray:
    child = np.arange(1, 17)
    parent = np.asarray(H36M_PARENTS)[child]
    return np.linalg.norm(joints[..., child, :] - joints[..., parent, :], axis=-1)


@pytest.mark.parametrize("scale", [0.7, 1.0, 1.2])
def test_the_ground_measures_the_size_the_image_cannot(scale):
    people = np.stack([_standing(scale, -1.0, 6.0), _standing(scale, 2.0, 15.0)])
    kp = people[..., :2] / people[..., 2:]
    got = ground_size(np.broadcast_to(POSE, people.shape), kp, np.ones((2, 17)), LEVEL_GROUND)
    np.testing.assert_allclose(got.log_factor, np.log(scale), atol=1e-6)
    np.testing.assert_allclose(got.info, (LEVEL_GROUND.ankle_plane / SIZE_FOOT_STD_M) ** 2)
    # no ground, or no foot seen (ground_scale 0): nothing measured
    assert not ground_size(POSE, kp[0], np.ones(17), None).measured
    none = ground_size(POSE[None], kp[:1], np.ones((1, 17)), LEVEL_GROUND, np.zeros(1))
    assert not none.measured.any()


def test_the_posterior_weighs_the_ground_against_the_prior_and_clips():
    one = (1.4 / SIZE_FOOT_STD_M) ** 2
    # adults only: a normal prior and a normal measurement whose bias no frame averages away
    f, sd = size_posterior(one * np.log(0.9), one, 0.05, child_weight=0.0)
    var_p, var_m = 0.05**2, 1 / one + SIZE_BIAS_LOG_STD**2
    np.testing.assert_allclose(np.log(f), np.log(0.9) * var_p / (var_p + var_m))
    np.testing.assert_allclose(sd, np.sqrt(var_p * var_m / (var_p + var_m)))
    many = size_posterior(100 * one * np.log(0.9), 100 * one, 0.05, child_weight=0.0)[1]
    assert many > np.sqrt(var_p * SIZE_BIAS_LOG_STD**2 / (var_p + SIZE_BIAS_LOG_STD**2)) - 1e-9
    f0, sd0 = size_posterior(0.0, 0.0, 0.05, child_weight=0.0)  # nothing measured: the prior
    assert f0 == 1.0 and sd0 == pytest.approx(0.05)
    f_far, _ = size_posterior(100 * one * np.log(0.2), 100 * one, 0.5, child_weight=0.0)
    assert f_far == pytest.approx(SIZE_FACTOR_RANGE[0])


def test_the_prior_knows_adults_and_children():
    """An adult's reading stays near the lifter's body; a child's, far below every adult,
    is taken nearly as measured (the children's mode), and gets wider than an adult's."""
    one = (1.4 / SIZE_FOOT_STD_M) ** 2
    logs = np.log([1.05, 0.97, 0.7, 0.6])
    f, sd = size_posterior(5 * one * logs, np.full(4, 5 * one), 0.05)
    assert (np.abs(np.log(f[:2])) < np.abs(logs[:2])).all()  # shrunk towards the lifter
    assert (np.abs(np.log(f[:2])) > 0.3 * np.abs(logs[:2])).all()  # but the ground counts
    np.testing.assert_allclose(np.log(f[2:]), logs[2:], atol=0.05)  # children: as measured
    assert CHILD_PRIOR_WEIGHT > 0 and (sd < 0.07).all()
    # one frame of a child-like reading is not yet enough to call it a child outright
    f1, sd1 = size_posterior(one * np.log(0.8), one, 0.05)
    assert np.log(0.8) < np.log(f1) < 0 and sd1 > 0.06


def test_a_track_gathers_its_frames_as_partly_independent_evidence():
    sizes = TrackSizes(decorrelation_s=0.5, forget_s=2.0)
    m = GroundSize(np.log([0.7, 0.7]), np.array([100.0, 100.0]))
    info = None
    for i in range(10):  # 10 Hz: each frame after the first adds a fifth of its information
        log_sum, info = sizes.update("cam", i * 100_000_000, [3, -1], m)
        assert info[1] == 100.0  # untracked: this frame only
    np.testing.assert_allclose(info[0], 100.0 * (1 + 9 * 0.2))
    np.testing.assert_allclose(log_sum[0] / info[0], np.log(0.7))
    assert len(sizes) == 1  # the untracked person is not kept
    again = sizes.update("cam", 900_000_000, [3], GroundSize(np.zeros(1), np.full(1, 100.0)))
    np.testing.assert_allclose(again[1], info[:1])  # the same frame again adds nothing
    # a track whose first frames saw no foot takes its first measurement whole
    sizes.update("cam", 900_000_000, [7], GroundSize(np.zeros(1), np.zeros(1)))
    first = sizes.update("cam", 1_000_000_000, [7], GroundSize(np.zeros(1), np.full(1, 100.0)))
    np.testing.assert_allclose(first[1], 100.0)
    # a frame with no foot seen keeps what the track knows
    kept = sizes.update("cam", 1_000_000_000, [3], GroundSize(np.zeros(1), np.zeros(1)))
    np.testing.assert_allclose(kept[1], info[:1])
    # a camera's stamps forget only that camera's tracks
    sizes.update("cam2", 9_000_000_000, [5], m)
    kept = sizes.update("cam", 1_100_000_000, [3], m)
    assert kept[1][0] > info[0]
    # unseen for longer than forget_s: it starts again; other cameras' tracks are apart
    fresh = sizes.update("cam", 4_000_000_000, [3], m)
    np.testing.assert_allclose(fresh[1], 100.0)
    other = sizes.update("cam2", 4_000_000_000, [3], m)
    np.testing.assert_allclose(other[1], 100.0)
    # time going backwards (a bag that loops) starts the track over instead of freezing it
    sizes.update("cam", 4_100_000_000, [3], m)
    looped = sizes.update("cam", 0, [3], GroundSize(np.log([0.9]), np.full(1, 100.0)))
    np.testing.assert_allclose(looped[1], 100.0)
    np.testing.assert_allclose(looped[0] / looped[1], np.log(0.9))


def test_the_pipeline_sizes_a_child_from_the_ground_and_keeps_one_body():
    lifter = load_lifter()
    cam = CameraModel.from_fov(1280, 720, 60.0, np.zeros(5), "plumb_bob")
    rng = np.random.default_rng(0)
    truth = np.stack([_standing(0.7, -0.5, 6.0), _standing(0.7, 1.0, 10.0)])
    ground = dict(camera_height_m=1.5, camera_pitch_deg=0.0)

    def run(size_log_std, people=truth, **cfg):
        config = PipelineConfig(num_hypotheses=20, size_log_std=size_log_std, **cfg)
        pipe = Pipeline(None, lifter, config)
        for i in range(8):  # a tracked child, 10 Hz
            px = cam.project(people) + rng.normal(0, 1.0, (2, 17, 2))
            out = pipe.lift_keypoints(px, np.full((2, 17), 0.9), cam, seed=i, tracks=[0, 1],
                                      camera_name="front", stamp_ns=i * 100_000_000)  # fmt: skip
        return out

    adult, child = run(0.0, **ground), run(PipelineConfig.size_log_std, **ground)
    ratio = _bones(child.hypotheses_m.mean(1)).sum(-1) / _bones(adult.hypotheses_m.mean(1)).sum(-1)
    assert (ratio < 0.85).all(), ratio  # sized down towards the truth (0.7 of the body)
    true_bones = _bones(truth).sum(-1)
    got = _bones(child.hypotheses_m.mean(1)).sum(-1)
    np.testing.assert_allclose(got, true_bones, rtol=0.12)
    spread = _bones(child.hypotheses_m).std(axis=1)  # one body for all K hypotheses
    assert spread.max() < 1e-4
    depth_err = np.abs(child.root_m[:, 2] - truth[:, 0, 2])
    assert (depth_err <= 1.645 * child.root_std_m[:, 2]).all()
    assert (depth_err < np.abs(adult.root_m[:, 2] - truth[:, 0, 2]) + 0.05).all()
    # an adult: the pin already uses the ground, so the size must not narrow the root's
    # spread below what the lifter's own size error gives
    grown = np.stack([_standing(1.0, -0.5, 6.0), _standing(1.0, 1.0, 10.0)])
    pinned, sized = run(0.0, grown, **ground), run(PipelineConfig.size_log_std, grown, **ground)
    assert (sized.root_std_m[:, 2] >= 0.995 * pinned.root_std_m[:, 2]).all()  # 0.98 without
    # without a ground nothing is measured: the same answer as with sizing off
    rng = np.random.default_rng(0)
    off = run(0.0)
    rng = np.random.default_rng(0)
    on = run(PipelineConfig.size_log_std)
    np.testing.assert_array_equal(off.hypotheses_m, on.hypotheses_m)
    np.testing.assert_array_equal(off.root_std_m, on.root_std_m)


def test_size_log_std_is_checked():
    with pytest.raises(ValueError, match="size_log_std"):
        PipelineConfig(size_log_std=-0.1)
