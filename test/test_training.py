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
