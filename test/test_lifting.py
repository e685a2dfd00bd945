"""Lifter runtime: API shapes and units, seeding, missing joints, checkpoints, shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hpe3d_ros import metrics
from hpe3d_ros.lifting import DEFAULT_WEIGHTS, load_lifter
from hpe3d_ros.lifting.architectures import build_model
from hpe3d_ros.lifting.model import ModelConfig
from hpe3d_ros.lifting.normalize import prepare_inputs, rotation_to_axis, to_camera, to_virtual
from hpe3d_ros.lifting.runtime import MAX_LATENT_SCALE, latent_noise, make_checkpoint
from hpe3d_ros.skeleton import H36M_JOINT_NAMES, H36M_PARENTS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmu_h36m17_30fps.npz"
WEIGHTS = DEFAULT_WEIGHTS.parent


def _tiny_lifter(tmp_path: Path, arch: str = "cvae", latent_dim: int = 4):
    torch.manual_seed(0)
    cfg = ModelConfig(
        arch=arch, width=32, n_blocks=1, cond_dim=16, latent_dim=latent_dim, dec_width=16
    )
    model = build_model(cfg)
    model.target_std.fill_(0.2)
    mean = np.linspace(-0.3, 0.3, 48)
    path = tmp_path / f"{arch}.pt"
    torch.save(make_checkpoint(model, mean, 0.2, temperature=1.3, latent_dof=4.0), path)
    return load_lifter(path), path


def _people(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centre = rng.uniform(-0.5, 0.5, size=(n, 1, 2))
    kp = centre + rng.normal(0.0, 0.05, size=(n, 17, 2))
    return kp, rng.uniform(0.5, 1.0, size=(n, 17))


def test_rotation_to_axis_and_frame_round_trip():
    kp, conf = _people(6)
    feats, R = prepare_inputs(kp, conf)
    ray = feats[:, -4:-1].astype(np.float64)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, ray), [[0, 0, 1]] * 6, atol=1e-6)
    np.testing.assert_allclose(
        R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12
    )
    pts = np.random.default_rng(1).normal(size=(6, 3, 17, 3))
    np.testing.assert_allclose(to_camera(to_virtual(pts, R), R), pts, atol=1e-12)
    assert np.allclose(rotation_to_axis(np.array([[0.0, 0.0, 1.0]]))[0], np.eye(3))


def test_build_model_knows_every_architecture_and_names_the_unknown():
    from hpe3d_ros.lifting.model import ARCHITECTURES

    for arch in ARCHITECTURES:
        cfg = ModelConfig(arch=arch, width=32, n_blocks=1, cond_dim=16, latent_dim=4)
        assert type(build_model(cfg)).__name__ != "LifterBase"
    with pytest.raises(ValueError, match="unknown lifter architecture 'gan'"):
        build_model(ModelConfig(arch="gan"))


@pytest.mark.parametrize("arch", ["cvae", "xvae", "baseline"])
def test_sample_shapes_units_and_root(tmp_path, arch):
    lifter, _ = _tiny_lifter(tmp_path, arch)
    kp, conf = _people(3)
    out = lifter.sample(kp, conf, k=7, seed=0)
    assert out.shape == (3, 7, 17, 3) and out.dtype == np.float32
    assert np.all(out[:, :, 0] == 0.0)  # root-relative
    assert lifter.joint_names == H36M_JOINT_NAMES
    assert lifter.predict_mean(kp, conf).shape == (3, 17, 3)
    empty = lifter.sample(np.zeros((0, 17, 2)), np.zeros((0, 17)), k=5, seed=0)
    assert empty.shape == (0, 5, 17, 3)


def test_seeded_determinism_and_explicit_noise(tmp_path):
    lifter, _ = _tiny_lifter(tmp_path)
    kp, conf = _people(4)
    a = lifter.sample(kp, conf, k=9, seed=3)
    np.testing.assert_array_equal(a, lifter.sample(kp, conf, k=9, seed=3))
    assert not np.allclose(a, lifter.sample(kp, conf, k=9, seed=4))
    assert a[:, :, 1:].std(axis=1).mean() > 0  # hypotheses differ
    noise = latent_noise(4, 9, lifter.latent_dim, seed=3, dof=lifter.latent_dof)
    np.testing.assert_array_equal(a, lifter.sample_with_noise(kp, conf, noise))
    with pytest.raises(ValueError):
        lifter.sample_with_noise(kp, conf, noise[:, :, :2])


def test_nan_inf_and_low_confidence_are_missing_joints(tmp_path):
    lifter, _ = _tiny_lifter(tmp_path)
    kp, conf = _people(2)
    kp_nan, conf_low = kp.copy(), conf.copy()
    kp_nan[0, 5] = np.nan
    kp_nan[1, 2] = [np.inf, -np.inf]
    conf_low[0, 5] = 0.05  # below the 0.2 threshold
    conf_low[1, 2] = 0.0
    a = lifter.sample(kp_nan, conf, k=5, seed=0)
    b = lifter.sample(kp, conf_low, k=5, seed=0)
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-6)
    conf_nan = conf.copy()
    conf_nan[0, 5] = np.nan
    np.testing.assert_allclose(a[0], lifter.sample(kp, conf_nan, k=5, seed=0)[0], atol=1e-6)
    everything_missing = lifter.sample(np.full((2, 17, 2), np.nan), np.ones((2, 17)), k=3, seed=0)
    assert np.isfinite(everything_missing).all()


def test_checkpoint_round_trip_holds_everything(tmp_path):
    lifter, path = _tiny_lifter(tmp_path)
    ck = torch.load(path, weights_only=True)
    for key in (
        "model_config",
        "state_dict",
        "target_mean",
        "temperature",
        "git_commit",
        "train_config",
    ):
        assert key in ck
    assert ck["parents"] == list(H36M_PARENTS)
    again = load_lifter(path)
    kp, conf = _people(3)
    np.testing.assert_array_equal(lifter.sample(kp, conf, 4, 1), again.sample(kp, conf, 4, 1))
    assert again.temperature == pytest.approx(1.3)
    assert again.latent_dof == 4.0 and ck["latent_dof"] == 4.0
    del ck["latent_dof"]  # checkpoints from before the Student-t noise: Gaussian
    torch.save(ck, tmp_path / "old.pt")
    assert load_lifter(tmp_path / "old.pt").latent_dof == float("inf")
    with pytest.raises(FileNotFoundError):
        load_lifter(tmp_path / "missing.pt")


def test_shipped_weights_are_small():
    files = list(WEIGHTS.glob("lifter_*.pt"))
    if not files:
        pytest.skip("no shipped lifter weights in hpe3d_ros/weights")
    assert sum(f.stat().st_size for f in files) <= 30 * 2**20


@pytest.mark.skipif(not SHARED_DATA.is_file(), reason=f"shared mocap absent: {SHARED_DATA}")
@pytest.mark.parametrize("name", ["lifter_default.pt", "lifter_baseline.pt"])
def test_shipped_lifter_on_real_test_frames(name):
    path = WEIGHTS / name
    if not path.is_file():
        pytest.skip(f"{path} not shipped")
    from training.data import AugmentConfig, generate, load_mocap, split_indices

    mocap = load_mocap(SHARED_DATA)
    idx = split_indices(mocap["subject"], "test")[::60]
    batch = generate(
        mocap["poses"][idx], AugmentConfig(), np.random.default_rng(0), augment_body=False
    )
    lifter = load_lifter(path)
    hyps = lifter.sample(batch.kp_norm, batch.conf, k=50, seed=0)
    assert hyps.shape == (len(idx), 50, 17, 3) and np.isfinite(hyps).all()
    mean = hyps.mean(axis=1)
    err_mm = 1000 * metrics.mpjpe(mean, batch.pose_cam).mean()
    assert err_mm < 160, f"{name}: MPJPE {err_mm:.0f} mm on test frames"
    child, parent = np.arange(1, 17), np.array(H36M_PARENTS[1:])
    bone = np.linalg.norm(hyps[..., child, :] - hyps[..., parent, :], axis=-1)
    assert 0.03 < np.median(bone) < 0.5 and bone.max() < 1.2
    thigh = np.median(bone[..., [1, 4]])  # knee - hip
    assert 0.3 < thigh < 0.55
    if lifter.latent_dim:
        assert 1000 * metrics.best_of_k_mpjpe(hyps, batch.pose_cam).mean() < err_mm


def test_latent_noise_pairs_seeds_and_tails():
    a = latent_noise(3, 7, 5, seed=11)
    assert a.shape == (3, 7, 5) and a.dtype == np.float32
    np.testing.assert_array_equal(a[:, 1::2], -a[:, 0:6:2])  # antithetic pairs
    np.testing.assert_array_equal(a, latent_noise(3, 7, 5, seed=11))
    assert not np.array_equal(a, latent_noise(3, 7, 5, seed=12))
    assert latent_noise(2, 0, 4, seed=0).shape == (2, 0, 4)
    gauss = latent_noise(1, 400_000, 1, seed=0).ravel()
    heavy = latent_noise(1, 400_000, 1, seed=0, dof=5.0).ravel()
    assert gauss.var() == pytest.approx(1.0, rel=0.02)
    # Student-t variance dof / (dof - 2) = 5/3, a little less with the capped scale
    assert 1.3 < heavy.var() < 5.0 / 3.0
    # the same seed draws the same Gaussian part: the ratio is the capped per-pair scale
    ratio = heavy / gauss
    assert ratio.min() > 0 and ratio.max() == pytest.approx(MAX_LATENT_SCALE, rel=1e-5)
    # heavier tails: more mass beyond 4 sigma of the unit Gaussian
    assert (np.abs(heavy) > 4).mean() > 20 * max((np.abs(gauss) > 4).mean(), 1e-6)
    with pytest.raises(ValueError):
        latent_noise(1, 2, 3, seed=0, dof=0.0)


def test_sample_uses_the_checkpoint_noise(tmp_path):
    lifter, _ = _tiny_lifter(tmp_path)
    kp, conf = _people(2)
    noise = latent_noise(2, 6, lifter.latent_dim, seed=3, dof=4.0)
    np.testing.assert_array_equal(lifter.noise(2, 6, 3), noise)
    np.testing.assert_array_equal(
        lifter.sample(kp, conf, 6, seed=3), lifter.sample_with_noise(kp, conf, noise)
    )


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` / ``from ... import`` anywhere in the file names."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_product_code_imports_nothing_from_training():
    root = Path(__file__).resolve().parents[1] / "hpe3d_ros"
    offenders = {
        str(p.relative_to(root.parent)): sorted(
            m for m in _imported_modules(p) if m == "training" or m.startswith("training.")
        )
        for p in root.rglob("*.py")
    }
    assert not {p: m for p, m in offenders.items() if m}


def test_reference_inputs_are_shipped_and_need_no_training_code(monkeypatch):
    import sys

    from hpe3d_ros.lifting.reference_inputs import calibration_features, reference_keypoints

    kp, conf = reference_keypoints()
    assert kp.shape == (512, 17, 2) and conf.shape == (512, 17)
    seen = np.isfinite(kp).all(-1)
    np.testing.assert_array_equal(seen, conf > 0)
    assert (seen.sum(1) >= 6).all() and 0.7 < seen.mean() < 1.0
    monkeypatch.setitem(sys.modules, "training", None)  # any "import training..." fails
    lifter = load_lifter()
    feats, rot = calibration_features(lifter, 20, np.random.default_rng(1))
    assert feats.shape == (20, lifter.model.cfg.n_in) and rot.shape == (20, 3, 3)
    assert np.isfinite(feats).all()
    # each row is one of the shipped people through the lifter's own input features
    all_feats = lifter.features(kp, conf)[0]
    assert np.abs(feats[:, None] - all_feats[None]).max(-1).min(1).max() < 1e-6
