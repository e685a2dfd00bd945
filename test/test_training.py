"""Training data (split, virtual cameras, augmentation), a tiny training run, evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.normalize import to_camera
from hpe3d_ros.skeleton import H36M_PARENTS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmu_h36m17_30fps.npz"
CONFIG = Path(__file__).resolve().parents[1] / "training" / "config" / "tiny.yaml"
needs_data = pytest.mark.skipif(
    not SHARED_DATA.is_file(), reason=f"shared mocap absent: {SHARED_DATA}"
)
CHILD, PARENT = np.arange(1, 17), np.array(H36M_PARENTS[1:])


def _bones(poses: np.ndarray) -> np.ndarray:
    return np.linalg.norm(poses[..., CHILD, :] - poses[..., PARENT, :], axis=-1)


@pytest.fixture(scope="module")
def mocap():
    if not SHARED_DATA.is_file():
        pytest.skip(f"shared mocap absent: {SHARED_DATA}")
    from training.data import load_mocap

    return load_mocap(SHARED_DATA)


def test_split_keeps_test_subjects_out(mocap):
    from training.data import TEST_SUBJECTS, split_indices

    subj = mocap["subject"]
    train, val, test = (split_indices(subj, p) for p in ("train", "val", "test"))
    assert not np.isin(subj[train], TEST_SUBJECTS).any()
    assert not np.isin(subj[val], TEST_SUBJECTS).any()
    assert set(np.unique(subj[test])) == set(TEST_SUBJECTS)
    assert len(train) + len(val) + len(test) == len(subj)
    assert not set(train) & set(val)


def test_generate_targets_consistent_with_cameras(mocap):
    from training.data import AugmentConfig, generate

    poses = mocap["poses"][::400]
    b = generate(poses, AugmentConfig(), np.random.default_rng(0))
    n = len(poses)
    assert b.feats.shape == (n, 72) and np.isfinite(b.feats).all()
    assert np.all(b.pose_cam[:, 0] == 0)
    back = np.concatenate([np.zeros((n, 1, 3)), b.target_v], axis=1)
    np.testing.assert_allclose(to_camera(back, b.R), b.pose_cam, atol=1e-5)
    visible = np.isfinite(b.kp_norm).all(-1)
    assert (visible.sum(1) >= 6).all()
    np.testing.assert_array_equal(visible, b.conf > 0)


def test_body_augmentation_varies_bones_and_eval_keeps_them(mocap):
    from training.data import AugmentConfig, generate

    poses = mocap["poses"][::200]
    orig = _bones(poses)
    aug = generate(poses, AugmentConfig(), np.random.default_rng(1)).pose_cam
    kept = generate(poses, AugmentConfig(), np.random.default_rng(1), augment_body=False).pose_cam
    np.testing.assert_allclose(_bones(kept), orig, atol=1e-4)  # rigid motion only
    ratio = _bones(aug)[:, [1, 2, 11, 12]] / orig[:, [1, 2, 11, 12]]  # shin, thigh, arms
    assert 0.05 < ratio.std() < 0.3 and 0.8 < np.median(ratio) < 1.2


def test_eval_drop_fraction_is_exact(mocap):
    from training.data import AugmentConfig, generate

    b = generate(
        mocap["poses"][::300], AugmentConfig(), np.random.default_rng(2), False, drop_frac=0.3
    )
    assert ((b.conf == 0).sum(1) >= 5).all()


@needs_data
@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA device visible to torch"
)
def test_tiny_training_runs_on_the_gpu(tmp_path):
    from training.train import TrainConfig, train

    cfg = TrainConfig.from_yaml(CONFIG)
    cfg.out_dir, cfg.data, cfg.epochs, cfg.device = (
        str(tmp_path / "gpu"),
        str(SHARED_DATA),
        2,
        "cuda",
    )
    lifter = load_lifter(train(cfg, quiet=True))
    assert lifter.latent_dim == cfg.model.latent_dim and np.isfinite(lifter.temperature)


def test_cuda_device_without_cuda_is_one_clear_error(monkeypatch):
    import torch

    from training.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(SystemExit, match="no CUDA device"):
        resolve_device("cuda")


def test_tiny_training_run_reduces_loss_and_resumes(tmp_path):
    from training.train import TrainConfig, train

    cfg = TrainConfig.from_yaml(CONFIG)
    cfg.out_dir = str(tmp_path / "run")
    cfg.data = str(SHARED_DATA)
    path = train(cfg, quiet=True)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    loss = [float(r.split(",")[3]) for r in rows]
    assert len(loss) == cfg.epochs and loss[-1] < loss[0]
    lifter = load_lifter(path)
    assert lifter.arch == "cvae" and lifter.latent_dim == cfg.model.latent_dim
    assert lifter.checkpoint["train_config"]["epochs"] == cfg.epochs
    cfg.epochs += 1
    train(cfg, resume=True, quiet=True)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(cfg.epochs))


@needs_data
def test_evaluate_prints_table(tmp_path, capsys):
    from training import evaluate
    from training.train import TrainConfig, train

    cfg = TrainConfig.from_yaml(CONFIG)
    cfg.out_dir, cfg.data, cfg.epochs = str(tmp_path / "run"), str(SHARED_DATA), 1
    path = train(cfg, quiet=True)
    out_json = tmp_path / "eval.json"
    evaluate.main(
        [
            "--weights",
            str(path),
            "--names",
            "tiny",
            "--max-frames",
            "40",
            "--k",
            "20",
            "--json",
            str(out_json),
            "--drop",
            "0",
            "0.3",
        ]
    )
    text = capsys.readouterr().out
    assert "| tiny |" in text and "S131" in text
    import json

    rep = json.loads(out_json.read_text())
    row = rep["conditions"]["drop0.3"]["overall"]["tiny"]
    assert row["best-of-K"] <= row["MPJPE"] and 0.0 <= row["cov90"] <= 1.0


class _ShiftLifter:
    """Toy latent lifter: every joint moves by the same 2D (x, z) offset, t * 0.1 m * eps."""

    latent_dim = 2

    def encode(self, feats):
        return feats

    def decode(self, cond, eps, temperature=1.0):
        import torch

        w = torch.zeros(2, 48)
        w[0, 0::3], w[1, 2::3] = 0.1, 0.1
        return temperature * eps @ w


@pytest.mark.parametrize("truth_dof", [3.0, float("inf")])
def test_calibration_hits_coverage_and_matches_the_error_tails(truth_dof):
    import torch

    from training.calibrate import fit_calibration

    rng = np.random.default_rng(0)
    n = 1500
    offset = 0.1 * rng.standard_normal((n, 2))
    if np.isfinite(truth_dof):
        offset *= np.sqrt(truth_dof / rng.chisquare(truth_dof, (n, 1)))
    target = np.zeros((n, 16, 3))
    target[..., 0], target[..., 2] = offset[:, :1], offset[:, 1:]
    fit = fit_calibration(
        _ShiftLifter(), torch.zeros(n, 1), target, np.zeros(48), np.ones(48), k=100
    )
    assert fit["coverage"] == pytest.approx(0.9, abs=0.02)
    assert all(abs(r["coverage"] - 0.9) < 0.03 for r in fit["candidates"])
    gauss = fit["candidates"][0]
    assert gauss["latent_dof"] == float("inf")
    if np.isfinite(truth_dof):  # heavy-tailed errors: a heavy-tailed latent wins
        assert np.isfinite(fit["latent_dof"])
        assert fit["best_of_k_mm"] < gauss["best_of_k_mm"] - 0.5
    else:  # the toy is the true model: it is found, at temperature 1
        assert fit["latent_dof"] == float("inf")
        assert fit["temperature"] == pytest.approx(1.0, abs=0.05)


@needs_data
def test_calibrate_command_refits_only_the_calibration(tmp_path, capsys):
    import torch

    from training import calibrate
    from training.train import TrainConfig, train

    cfg = TrainConfig.from_yaml(CONFIG)
    cfg.out_dir, cfg.data, cfg.epochs = str(tmp_path / "run"), str(SHARED_DATA), 1
    cfg.fit_temperature = False  # an uncalibrated checkpoint, as from before the fit existed
    src = train(cfg, quiet=True)
    dst = tmp_path / "cal.pt"
    calibrate.main([str(src), str(dst), "--k", "20"])
    assert "chosen: latent_dof" in capsys.readouterr().out
    before = torch.load(src, weights_only=True)
    after = torch.load(dst, weights_only=True)
    assert before["temperature"] == 1.0 and before["latent_dof"] == float("inf")
    for name, tensor in before["state_dict"].items():
        assert torch.equal(tensor, after["state_dict"][name]), name
    m = after["metrics"]
    assert after["temperature"] == m["val_temperature"] != 1.0
    assert after["latent_dof"] == m["val_latent_dof"]
    assert len(m["val_candidates"]) == len(calibrate.CALIBRATION_DOFS)
    assert m["best_epoch"] == before["metrics"]["best_epoch"]  # other metrics kept
    lifter = load_lifter(dst)
    assert lifter.latent_dof == after["latent_dof"]


def test_resume_refuses_a_planted_pickle(tmp_path):
    import torch

    from test.test_h36m import _PlantMarker
    from training.train import TrainConfig, load_resume_state, train

    marker = tmp_path / "MARKER"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": _PlantMarker(marker), "epoch": 0}, run / "ckpt.pt")
    with pytest.raises(SystemExit, match=r"refusing to resume .*ckpt\.pt.*system"):
        load_resume_state(run / "ckpt.pt")
    if SHARED_DATA.is_file():  # the whole --resume path, as a user would run it
        cfg = TrainConfig.from_yaml(CONFIG)
        cfg.out_dir, cfg.data = str(run), str(SHARED_DATA)
        with pytest.raises(SystemExit, match="refusing to resume"):
            train(cfg, resume=True, quiet=True)
    assert not marker.exists()
    # what resume needs (optimiser state, numpy and torch RNG states) loads as plain data
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    rng = np.random.default_rng(5)
    state = {"optimizer": opt.state_dict(), "rng": rng.bit_generator.state}
    torch.save(state | {"torch_rng": torch.get_rng_state()}, run / "ckpt.pt")
    back = load_resume_state(run / "ckpt.pt")
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = back["rng"]
    assert rng2.random() == rng.random()
    opt.load_state_dict(back["optimizer"])


def test_training_modules_import_no_loop():
    """``training.*`` modules form an import DAG (calibrate used to import train back)."""
    from test.test_lifting import _imported_modules

    folder = Path(__file__).resolve().parents[1] / "training"
    deps = {
        f"training.{p.stem}": {m for m in _imported_modules(p) if m.startswith("training.")}
        for p in folder.glob("*.py")
    }

    def reaches(start: str, goal: str, seen: set) -> bool:
        for m in deps.get(start, ()):
            if m == goal or (m not in seen and reaches(m, goal, seen | {m})):
                return True
        return False

    assert deps["training.calibrate"] and deps["training.train"]
    assert not [m for m in deps if reaches(m, m, set())]


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


def test_size_std_is_fitted_on_validation_depths_with_a_floor(tmp_path):
    """``fit_size_std``: validation people placed without a ground prior; the size error that
    makes their 90 % depth intervals hold 90 %, never below the population floor."""
    import torch

    from hpe3d_ros.lifting import load_lifter
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
