"""Training data of lifter v2 (issue 14): split v2 with real skeletons held out, the thorax
repair, sampled bodies, the evaluation cells' noise, ``evaluate_cells`` end to end, and the
size error fitted for placement. The first file's data tests are ``test_training``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.skeleton import H36M_PARENTS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmu_h36m17_30fps.npz"
CHILD, PARENT = np.arange(1, 17), np.array(H36M_PARENTS[1:])


def _bones(poses: np.ndarray) -> np.ndarray:
    return np.linalg.norm(poses[..., CHILD, :] - poses[..., PARENT, :], axis=-1)


ORIG_DATA = SHARED_DATA.parent / "cmu_orig_h36m17_30fps.npz"
needs_both = pytest.mark.skipif(
    not (SHARED_DATA.is_file() and ORIG_DATA.is_file()), reason="shared mocap files absent"
)


@pytest.fixture(scope="module")
def mocap_all():
    if not (SHARED_DATA.is_file() and ORIG_DATA.is_file()):
        pytest.skip("shared mocap files absent")
    from training.mocap import load_all_mocap

    return load_all_mocap(SHARED_DATA, ORIG_DATA)


def test_v2_split_holds_real_skeletons_never_trained_on(mocap_all):
    from training.mocap import split_indices

    subj, body = mocap_all["subject"], mocap_all["body"]
    parts = {p: split_indices(subj, p, "v2") for p in ("train", "val", "test")}
    sets = {p: set(subj[i].tolist()) for p, i in parts.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"]
    assert not sets["val"] & sets["test"]
    assert sum(len(i) for i in parts.values()) == len(subj)
    real = {p: set(subj[i][body[i] == "real"].tolist()) for p, i in parts.items()}
    assert real["train"] == {1, 2, 7, 9}
    assert real["val"] == {11, 35} and real["test"] == {16, 131, 135}
    assert {"rig_daz"} <= set(body[parts["val"]]) and {"rig_daz"} <= set(body[parts["test"]])


def test_thorax_repair_matches_the_real_skeleton(mocap_all):
    from training.mocap import load_mocap

    old = load_mocap(SHARED_DATA)
    rep = mocap_all["repaired"]
    assert set(mocap_all["subject"][rep].tolist()) == {16, 131}
    assert rep.sum() == np.isin(old["subject"], [16, 131]).sum()
    p = mocap_all["poses"]

    def torso(rows):
        return np.median(np.linalg.norm(p[rows, 8] - p[rows, 0], axis=-1))

    s131 = mocap_all["subject"] == 131
    assert abs(torso(s131 & rep) - torso(s131 & ~rep)) < 0.005  # BVH rows vs ASF rows
    p16 = old["poses"][old["subject"] == 16]
    before = np.median(np.linalg.norm(p16[:, 8] - p16[:, 0], axis=-1))
    after = torso((mocap_all["subject"] == 16) & rep)
    assert after - before == pytest.approx(0.115, abs=0.005) and 0.43 < after < 0.48
    # legs and arms untouched, spine stays the torso midpoint
    np.testing.assert_allclose(_bones(p[rep])[:, [1, 2, 11, 12]],
                               _bones(old["poses"][np.isin(old["subject"], [16, 131])])[:,
                                      [1, 2, 11, 12]], atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(p[rep, 7], 0.5 * (p[rep, 0] + p[rep, 8]), atol=1e-6)


def test_sampled_bodies_keep_the_motion_and_vary_the_skeleton(mocap_all):
    from hpe3d_ros.lifting.body import BONE_LIMITS_M
    from training.bodies import body_templates, retarget, sample_lengths
    from training.mocap import split_indices

    rows = split_indices(mocap_all["subject"], "train", "v2")
    temps = body_templates(
        mocap_all["poses"][rows], mocap_all["subject"][rows], mocap_all["body"][rows]
    )
    assert set(temps) == {"rig_daz", "rig_cc", "real_1", "real_2", "real_7", "real_9"}
    rng = np.random.default_rng(0)
    lengths = sample_lengths(temps, 4000, rng)
    assert (lengths >= BONE_LIMITS_M[:, 0]).all() and (lengths <= BONE_LIMITS_M[:, 1]).all()
    one = {"real_1": temps["real_1"]}  # stature alone: the head scales with g ** 0.3
    g_only = np.log(sample_lengths(one, 500, rng, 1.0, 0.05, 0.0, 0.0, 0.3) / temps["real_1"])
    np.testing.assert_allclose(g_only[:, 9], 0.3 * g_only[:, 1], atol=1e-12)
    assert 0.03 < g_only[:, 1].std() < 0.06 and np.abs(g_only).max() <= 0.125 + 1e-9
    poses = mocap_all["poses"][rows[::500]]
    new = retarget(poses, lengths[: len(poses)])
    want = lengths[: len(poses)].copy()
    want[:, 6:8] = want[:, 6:8].mean(1, keepdims=True)  # spine = torso midpoint
    np.testing.assert_allclose(_bones(new), want, atol=1e-9)

    def dirs(p):
        v = p[:, CHILD] - p[:, PARENT]
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    np.testing.assert_allclose(dirs(new), dirs(poses), atol=1e-5)  # same motion


def test_part_mixing_puts_another_frames_legs_under_the_upper_body(mocap_all):
    from training.bodies import bone_lengths
    from training.body_augment import LEG_JOINTS, mix_parts

    poses = mocap_all["poses"][::97][:200].astype(np.float64)
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    assert mix_parts(poses, 0.0, rng) is poses and rng.bit_generator.state == state
    out = mix_parts(poses, 1.0, np.random.default_rng(5))
    donors = np.random.default_rng(5)
    donors.random(len(poses))
    donor = poses[donors.integers(len(poses), size=len(poses))]
    upper = np.r_[0, 7:17]
    lift = (donor[:, 0, 2] - poses[:, 0, 2])[:, None]
    np.testing.assert_allclose(out[:, upper, :2], poses[:, upper, :2])  # upper body kept
    np.testing.assert_allclose(out[:, upper, 2], poses[:, upper, 2] + lift)  # at donor height
    np.testing.assert_allclose(bone_lengths(out)[:, :6], bone_lengths(donor)[:, :6])
    np.testing.assert_allclose(out[:, LEG_JOINTS, 2] - out[:, :1, 2],
                               donor[:, LEG_JOINTS, 2] - donor[:, :1, 2], atol=1e-9)  # fmt: skip

    def heading(p):
        return np.arctan2(p[:, 4, 1] - p[:, 1, 1], p[:, 4, 0] - p[:, 1, 0])

    turn = np.angle(np.exp(1j * (heading(out) - heading(poses))))
    np.testing.assert_allclose(turn, 0.0, atol=1e-9)  # the hips face where the body's did
    assert not np.allclose(out[:, LEG_JOINTS], poses[:, LEG_JOINTS])


def test_one_bone_group_can_vary_more_than_the_others_and_the_default_draws_as_before():
    """``group_log_std_by_group`` widens one group's factor (e.g. hip width) alone; without it
    the draws are those of the plain ``group_log_std`` (same numbers, same order)."""
    from training.bodies import BONE_GROUPS, sample_lengths
    from training.body_augment import sampled_lengths
    from training.data import AugmentConfig

    base = np.full(16, 0.3)
    base[[0, 3]] = 0.09  # hip width
    temps = {"real_1": base}
    plain = sample_lengths(temps, 3000, np.random.default_rng(5), 1.0, 0.0, 0.06, 0.0, 0.3)
    same = sample_lengths(
        temps, 3000, np.random.default_rng(5), 1.0, 0.0, 0.06, 0.0, 0.3, False, {}
    )
    np.testing.assert_array_equal(plain, same)
    wide = sample_lengths(
        temps, 3000, np.random.default_rng(5), 1.0, 0.0, 0.06, 0.0, 0.3, False,
        {"hip_width": 0.15},
    )  # fmt: skip
    sd = lambda x, j: np.log(x[:, j] / base[j]).std()  # noqa: E731
    assert 0.13 < sd(wide, 0) < 0.17 and 0.05 < sd(plain, 0) < 0.07
    np.testing.assert_array_equal(wide[:, 2], plain[:, 2])  # other groups: the same draws
    np.testing.assert_allclose(wide[:, 0], wide[:, 3])  # left and right hips share the factor
    with pytest.raises(ValueError, match="unknown bone groups"):
        sample_lengths(temps, 2, np.random.default_rng(0), group_log_std_by_group={"hips": 0.1})
    cfg = AugmentConfig(
        body_model="sampled",
        stature_log_std=0.0,
        bone_log_std=0.0,
        real_body_prob=1.0,
        group_log_std_by_group={"hip_width": 0.15},
    )
    via_cfg = sampled_lengths(temps, 3000, np.random.default_rng(5), cfg)
    np.testing.assert_array_equal(via_cfg, wide)
    assert BONE_GROUPS["hip_width"] == (1, 4)  # bones 0 and 3 end at the hips


def test_condition_views_put_the_pixel_noise_asked_for(mocap_all):
    from training.conditions import CELLS, EVAL_CAMERA, condition_views

    poses = mocap_all["poses"][::40]
    exact, noisy = (
        condition_views(poses, c, np.random.default_rng(3)) for c in (CELLS[2], CELLS[8])
    )
    assert CELLS[2].noise_px == 0 and CELLS[8].noise_px == 5 and CELLS[8].distance_m == (15, 25)
    np.testing.assert_array_equal(exact.pose_cam, noisy.pose_cam)  # same people, same places
    both = (exact.conf > 0) & (noisy.conf > 0)
    d_px = (noisy.kp_norm - exact.kp_norm)[both] * EVAL_CAMERA.fx
    assert d_px.std() == pytest.approx(5.0, rel=0.05) and abs(d_px.mean()) < 0.3
    assert (np.isfinite(noisy.kp_norm).all(-1).sum(-1) >= 6).all()
    np.testing.assert_allclose(noisy.noise_std[noisy.conf > 0], 5.0 / EVAL_CAMERA.fx)
    assert (exact.noise_std == 0).all() and set(np.unique(exact.conf)) <= {0.0, 1.0}
    depth = exact.pose_cam  # root-relative: the body's own size, whatever the distance
    assert np.abs(depth).max() < 2.0


def test_another_evaluation_camera_sees_the_same_people_through_its_own_lens(mocap_all):
    from training.conditions import EVAL_CAMERA, eval_camera, evaluation_views

    poses = mocap_all["poses"][::60]
    standard = evaluation_views(poses, 7)
    assert eval_camera().fx == pytest.approx(EVAL_CAMERA.fx)
    again = evaluation_views(poses, 7, eval_camera(), (-5.0, 5.0))
    for name, b in standard.items():  # the defaults are the standard camera, exactly
        np.testing.assert_array_equal(again[name].kp_norm, b.kp_norm)
    wide = evaluation_views(poses, 7, eval_camera(90.0, (640, 480)), (-15.0, 15.0))
    exact = "exact@8-15m"
    assert wide[exact].pose_cam.shape == standard[exact].pose_cam.shape
    # the noise level is pixels over this camera's focal length
    fx = eval_camera(90.0, (640, 480)).fx
    seen = wide["5px@3-8m"].conf > 0
    np.testing.assert_allclose(wide["5px@3-8m"].noise_std[seen], 5.0 / fx)
    # pitched up to 15 deg: the bodies' vertical leans in the camera frame by that much
    up = -(wide[exact].pose_cam[:, 10] - wide[exact].pose_cam[:, 0])
    up0 = -(standard[exact].pose_cam[:, 10] - standard[exact].pose_cam[:, 0])

    def lean(v):
        return np.degrees(np.abs(np.arctan2(v[:, 2], v[:, 1])))

    assert np.median(lean(up)) > np.median(lean(up0)) + 2.0


def test_evaluate_cells_refuses_an_impossible_camera_before_any_work(capsys):
    from training import evaluate_cells

    for cam in (["0", "1280", "720", "-5", "5"], ["60", "0", "720", "-5", "5"],
                ["60", "1280", "720", "5", "-5"]):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            evaluate_cells.main(["--weights", "x.pt", "--camera", *cam])
        assert exc.value.code == 2
        assert "--camera: 0 < HFOV_DEG < 180" in capsys.readouterr().err


def test_generate_reports_the_noise_it_added(mocap_all):
    from training.data import AugmentConfig, generate

    cfg = AugmentConfig(noise_frac_log=True, noise_frac=(0.002, 0.08), exact_prob=0.3,
                        outlier_prob=0.0, noise_px_max=2.0)  # fmt: skip
    b = generate(mocap_all["poses"][::50], cfg, np.random.default_rng(4), noise_input=True)
    assert b.feats.shape[1] == 90 and b.noise_std.shape == b.conf.shape
    seen = b.conf > 0
    assert (b.noise_std[~seen] == 0).all()
    exact = (b.noise_std[seen.any(1)] == 0).all(1).mean()
    assert 0.2 < exact < 0.4  # exact_prob of the people have exact 2D
    size = np.nanmax(b.kp_norm[..., 1], 1) - np.nanmin(b.kp_norm[..., 1], 1)
    rel = np.median(np.where(seen, b.noise_std, np.nan), axis=1) / size
    lo, hi = np.nanpercentile(rel[rel > 0], [5, 95])
    assert hi > 8 * lo and hi > 0.03  # noise from a fraction of a % to several % of the body


@needs_both
def test_evaluate_cells_end_to_end(tmp_path, capsys):
    import torch

    from hpe3d_ros import metrics
    from hpe3d_ros.lifting.architectures import build_model
    from hpe3d_ros.lifting.model import ModelConfig
    from hpe3d_ros.lifting.runtime import make_checkpoint
    from training import evaluate_cells

    rng = np.random.default_rng(0)
    hyps, gt = rng.normal(size=(5, 40, 17, 3)), rng.normal(size=(5, 17, 3))
    flags = evaluate_cells.covered_flags(hyps, gt)
    np.testing.assert_allclose(flags.mean(0), metrics.coverage(hyps, gt, 0.9))
    torch.manual_seed(0)
    cfg = ModelConfig(arch="bodyvae", noise_input=True, width=32, n_blocks=1, cond_dim=16,
                      latent_dim=4, dec_width=16)  # fmt: skip
    path = tmp_path / "body.pt"
    torch.save(make_checkpoint(build_model(cfg), np.zeros(48), 0.2), path)
    report = evaluate_cells.evaluate(
        [str(path)], ["tiny"], "val", k=8, stride=40, data=str(SHARED_DATA),
        data_orig=str(ORIG_DATA), log=lambda *_: None,
    )  # fmt: skip
    entry = report["models"]["tiny"]
    assert set(entry) == {"given", "unknown"} and len(entry["given"]["cells"]) == 9
    row = entry["given"]["cells"]["5px@15-25m"]
    assert row["bone spread mm"] < 0.05 and row["max bone m"] <= 0.62
    assert set(row["cov90 per subject"]) <= {11, 14, 35}
    assert np.isfinite(entry["unknown"]["stature"]["slope"])
    # the tables of several saved runs print as one report (JSON makes subject keys strings)
    import json

    (tmp_path / "a.json").write_text(json.dumps(report))
    other = {**report, "models": {"twin": entry}}
    (tmp_path / "b.json").write_text(json.dumps(other))
    capsys.readouterr()
    evaluate_cells.main(["--from-json", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                         "--reference", "tiny"])  # fmt: skip
    out = capsys.readouterr().out
    per_subject = out[out.index("Per subject") : out.index("Per joint")]
    assert "| tiny | given |" in per_subject and "| twin | unknown |" in per_subject
    assert "| twin | given |" in out[out.index("MPJPE / tiny") :]
    (tmp_path / "c.json").write_text(json.dumps({**other, "k": 9}))
    with pytest.raises(SystemExit, match="different views"):
        evaluate_cells.main(["--from-json", str(tmp_path / "a.json"), str(tmp_path / "c.json")])


def test_error_budget_reposes_hypotheses_on_the_true_body(mocap_all):
    from training import evaluate_cells
    from training.bodies import bone_lengths

    rng = np.random.default_rng(1)
    gt = mocap_all["poses"][:4] - mocap_all["poses"][:4, :1]
    # hypotheses: the truth with every joint moved, so lengths and directions are both off
    hyps = gt[:, None] + rng.normal(scale=0.03, size=(4, 6, 17, 3))
    true = evaluate_cells.on_body(hyps, gt, "true")
    np.testing.assert_allclose(
        bone_lengths(true), np.broadcast_to(bone_lengths(gt)[:, None], (4, 6, 16))
    )
    np.testing.assert_allclose(true[..., 0, :], hyps[..., 0, :])  # the root stays
    child, parent = evaluate_cells.CHILD, evaluate_cells._PARENT_OF_CHILD
    d_h = hyps[..., child, :] - hyps[..., parent, :]
    d_t = true[..., child, :] - true[..., parent, :]
    cos = (d_h * d_t).sum(-1) / np.linalg.norm(d_h, axis=-1) / np.linalg.norm(d_t, axis=-1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-9)  # the directions stay
    size = evaluate_cells.on_body(hyps, gt, "true-size")
    ratio = bone_lengths(size) / bone_lengths(hyps)  # one factor per hypothesis
    np.testing.assert_allclose(ratio, ratio[..., :1] * np.ones(16), rtol=1e-9)
    np.testing.assert_allclose(
        bone_lengths(size).sum(-1), bone_lengths(gt).sum(-1)[:, None] * np.ones(6)
    )
    assert evaluate_cells.on_body(hyps, gt, "estimated") is hyps
    with pytest.raises(ValueError, match="body"):
        evaluate_cells.on_body(hyps, gt, "made-up")


@needs_both
def test_size_std_is_fitted_on_validation_depths_with_a_floor(tmp_path):
    """``fit_size_std``: validation people placed without a ground prior; the size error that
    makes their 90 % depth intervals hold 90 %, never below the population floor."""
    import torch

    from hpe3d_ros.lifting.architectures import build_model
    from hpe3d_ros.lifting.model import ModelConfig
    from hpe3d_ros.lifting.runtime import make_checkpoint
    from training.calibrate import SIZE_STD_FLOOR, calibrate, fit_size_std
    from training.conditions import CELLS
    from training.run_config import TrainConfig

    shipped = load_lifter()
    cfg = TrainConfig.from_dict(shipped.checkpoint["train_config"])
    cfg.data, cfg.data_orig = str(SHARED_DATA), str(ORIG_DATA)
    fit = fit_size_std(shipped, cfg, per_subject=30, k=20)
    assert fit["size_std"] == max(fit["fitted"], SIZE_STD_FLOOR)
    assert fit["coverage"] >= 0.9 - 1e-9 and fit["coverage"] >= fit["coverage_without"]
    assert set(fit["per_cell"]) == {c.name for c in CELLS}
    # a network that knows nothing needs a much larger size error to cover the depths
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            **{
                **shipped.checkpoint["model_config"],
                "width": 32,
                "cond_dim": 16,
                "dec_width": 16,
                "gcn_channels": 8,
            }
        )
    )
    ck = make_checkpoint(model, np.zeros(48), 0.2, train_config=cfg.to_dict())
    torch.save(ck, tmp_path / "raw.pt")
    calibrate(tmp_path / "raw.pt", tmp_path / "sized.pt", size_only=True)
    sized = torch.load(tmp_path / "sized.pt", weights_only=True)
    assert sized["size_std"] > fit["size_std"] and sized["metrics"]["val_size"]["fitted"] > 0.1


def test_point_estimates_median_and_cell_figures(tmp_path, mocap_all):
    import torch

    from hpe3d_ros.lifting import load_lifter
    from hpe3d_ros.lifting.architectures import build_model
    from hpe3d_ros.lifting.model import ModelConfig
    from hpe3d_ros.lifting.runtime import make_checkpoint
    from training.conditions import CELLS, condition_views
    from training.point_estimates import ESTIMATES, cell_estimates, geometric_median

    # three points on a line: the median is the middle one, the mean is pulled away
    pts = np.zeros((1, 3, 1, 3))
    pts[0, :, 0, 0] = [0.0, 1.0, 10.0]
    np.testing.assert_allclose(geometric_median(pts)[0, 0], [1.0, 0.0, 0.0], atol=1e-3)
    torch.manual_seed(0)
    cfg = ModelConfig(arch="bodyvae", noise_input=True, width=32, n_blocks=1, cond_dim=16,
                      latent_dim=4, dec_width=16)  # fmt: skip
    path = tmp_path / "body.pt"
    torch.save(make_checkpoint(build_model(cfg), np.zeros(48), 0.2), path)
    lifter = load_lifter(str(path))
    batch = condition_views(mocap_all["poses"][:300:30], CELLS[-1], np.random.default_rng(0))
    est = cell_estimates(lifter, batch, k=16, seed=3, chunk=4)
    assert set(est) == set(ESTIMATES)
    assert all(v.shape == (10,) and np.isfinite(v).all() for v in est.values())
    # each estimate is its own pose: the mean of 16 is not the decode at the prior mean
    assert not np.allclose(est["mean"], est["prior mean"])
