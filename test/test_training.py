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
