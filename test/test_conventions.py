"""The mocap's two joint conventions (training/conventions.py) and the training augmentation
that gives a rig motion on a real skeleton's lengths the real skeletons' convention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.conventions import (
    CMU_SHOULDERS_ABOVE_THORAX_M,
    is_cmu_convention,
    shoulders_above_thorax,
    to_cmu_convention,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_both = pytest.mark.skipif(
    not (SHARED / "cmu_h36m17_30fps.npz").is_file()
    or not (SHARED / "cmu_orig_h36m17_30fps.npz").is_file(),
    reason="shared mocap files absent",
)


def rig_pose() -> np.ndarray:
    """A standing body marked as the rigs mark it (Z up, facing +x): thorax 5 cm above the
    shoulders, nose at the eyes 8 cm in front of the head's axis."""
    p = np.zeros((17, 3))
    p[1], p[4] = [0, -0.1, 0], [0, 0.1, 0]  # right, left hip
    p[2], p[5] = [0, -0.1, -0.45], [0, 0.1, -0.45]
    p[3], p[6] = [0, -0.1, -0.9], [0, 0.1, -0.9]
    p[8] = [0, 0, 0.55]  # thorax
    p[7] = 0.5 * p[8]
    p[11], p[14] = [0, 0.18, 0.50], [0, -0.18, 0.50]  # left, right shoulder
    p[12], p[15] = [0, 0.2, 0.22], [0, -0.2, 0.22]
    p[13], p[16] = [0, 0.2, -0.02], [0, -0.2, -0.02]
    p[9] = [0.08, 0, 0.72]  # eyes
    p[10] = p[9] + [0, 0, 0.11]  # head top, along the head's axis (vertical)
    return p


def test_a_rig_pose_moves_into_the_cmu_convention():
    p = rig_pose()[None].repeat(200, 0)
    assert not is_cmu_convention(p).any()
    q = to_cmu_convention(p, np.random.default_rng(0))
    assert is_cmu_convention(q).all()
    above = shoulders_above_thorax(q)
    mean, sd = CMU_SHOULDERS_ABOVE_THORAX_M
    assert abs(above.mean() - mean) < 0.3 * sd and 0.5 * sd < above.std() < 1.5 * sd
    assert above.min() >= mean - 2.5 * sd - 1e-9 and above.max() <= mean + 2.5 * sd + 1e-9
    np.testing.assert_allclose(q[:, 7], 0.5 * (q[:, 0] + q[:, 8]))  # spine
    # the nose goes back onto the head's axis (to within 20 % of its 8 cm), head top with it
    assert (q[:, 9, 0] >= -1e-9).all() and (q[:, 9, 0] <= 0.2 * 0.08 + 1e-9).all()
    np.testing.assert_allclose(q[:, 10] - q[:, 9], p[:, 10] - p[:, 9])
    same = [0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]
    np.testing.assert_array_equal(q[:, same], p[:, same])


def test_one_draw_per_track_keeps_the_thorax_steady():
    p = rig_pose()[None].repeat(30, 0)
    draws = np.repeat(np.array([[1.0, 0.5]]), 30, axis=0)
    q = to_cmu_convention(p, np.random.default_rng(0), draws)
    np.testing.assert_allclose(shoulders_above_thorax(q), shoulders_above_thorax(q)[0])
    mean, sd = CMU_SHOULDERS_ABOVE_THORAX_M
    np.testing.assert_allclose(shoulders_above_thorax(q)[0], mean + sd)


def test_source_convention_draws_exactly_as_before():
    """The default keeps every earlier config's data: the same bodies as lengths drawn and
    retargeted by hand."""
    from training.bodies import retarget
    from training.body_augment import augment_bodies, sampled_lengths
    from training.data import AugmentConfig

    rng_t = np.random.default_rng(5)
    base = rig_pose()[None].repeat(64, 0) + rng_t.normal(0, 0.01, (64, 17, 3))
    temps = {"real_1": np.full(16, 0.2), "rig_daz": np.full(16, 0.25)}
    cfg = AugmentConfig(body_model="sampled", mirror_prob=0.0)
    a = augment_bodies(base, cfg, np.random.default_rng(1), temps)
    rng = np.random.default_rng(1)
    b = retarget(base, sampled_lengths(temps, 64, rng, cfg))
    b[..., :2] -= b[:, :1, :2]
    # augment_bodies then turns each body about the vertical: compare heights and distances
    np.testing.assert_allclose(a[..., 2], b[..., 2])
    np.testing.assert_allclose(
        np.linalg.norm(a[..., :2], axis=-1), np.linalg.norm(b[..., :2], axis=-1)
    )


def test_template_convention_follows_the_drawn_skeleton():
    from hpe3d_ros.lifting.body_model import TYPICAL_BONES_M
    from training.body_augment import augment_bodies
    from training.data import AugmentConfig

    base = rig_pose()[None].repeat(400, 0)
    temps = {"real_1": TYPICAL_BONES_M, "rig_daz": 1.15 * TYPICAL_BONES_M}
    cfg = AugmentConfig(
        body_model="sampled", convention="template", real_body_prob=0.5,
        stature_log_std=0.0, group_log_std=0.0, bone_log_std=0.0,
    )  # fmt: skip
    out = augment_bodies(base, cfg, np.random.default_rng(2), temps)
    cmu = is_cmu_convention(out)
    thigh = np.linalg.norm(out[:, 2] - out[:, 1], axis=-1)
    real = np.isclose(thigh, TYPICAL_BONES_M[1])
    assert (real | np.isclose(thigh, 1.15 * TYPICAL_BONES_M[1])).all()
    assert 0.35 < cmu.mean() < 0.65
    np.testing.assert_array_equal(cmu, real)  # a real skeleton's lengths <=> CMU convention
    bad = AugmentConfig(body_model="sampled", convention="x")
    with pytest.raises(ValueError, match="convention"):
        augment_bodies(base, bad, np.random.default_rng(0), temps)


@needs_both
def test_the_shared_mocap_separates_into_its_two_conventions():
    from training.mocap import load_all_mocap

    m = load_all_mocap(SHARED / "cmu_h36m17_30fps.npz", SHARED / "cmu_orig_h36m17_30fps.npz")
    cmu = is_cmu_convention(m["poses"])
    real = m["body"] == "real"
    assert cmu[real].mean() > 0.99 and cmu[~real].mean() < 0.03
    moved = to_cmu_convention(m["poses"][~real][::10], np.random.default_rng(0))
    assert is_cmu_convention(moved).mean() > 0.99

    # the moved rigs' neck points as the real skeletons' does: within 10 deg of the torso
    def neck_angle(p):
        t = p[:, 8] - p[:, 0]
        n = p[:, 9] - p[:, 8]
        c = (t * n).sum(-1) / np.linalg.norm(t, axis=-1) / np.linalg.norm(n, axis=-1)
        return np.degrees(np.median(np.arccos(np.clip(c, -1, 1))))

    assert neck_angle(m["poses"][real]) < 10 and neck_angle(moved) < 12
    assert neck_angle(m["poses"][~real][::10]) > 25


@needs_both
def test_body_bias_reports_every_subject_and_bone_group(capsys):
    from training.bodies import BONE_GROUPS
    from training.body_bias import body_bias, main

    bias = body_bias("hpe3d_ros/weights/lifter_baseline.pt", "val", stride=40)
    assert {s for s, _ in bias} == {11, 14, 35}
    assert {k for _, k in bias} == {"real", "rig_daz"}
    for v in bias.values():
        assert v.shape == (len(BONE_GROUPS),) and np.isfinite(v).all()
        assert np.abs(v).max() < 0.15  # metres: a body, not noise
    with pytest.raises(ValueError, match="unknown cell"):
        body_bias("hpe3d_ros/weights/lifter_baseline.pt", "val", cell="9px@1-2m")
    for bad in (["--weights", "/nonexistent.pt"], ["--weights", "x.pt", "--cell", "9px@1-2m"]):
        with pytest.raises(SystemExit) as exit_:
            main(bad)
        assert exit_.value.code == 2
    capsys.readouterr()
    main(["--weights", "hpe3d_ros/weights/lifter_baseline.pt", "--stride", "40"])
    assert "| hpe3d_ros/weights/lifter_baseline.pt | 14 | rig_daz |" in capsys.readouterr().out
