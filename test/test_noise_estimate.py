"""The 2D noise estimator (issue 14): the level a noise-aware lifter uses when the caller
does not pass one (``hpe3d_ros.lifting.noise_estimate``, ``training.noise_estimator``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.architectures import build_model
from hpe3d_ros.lifting.model import ModelConfig
from hpe3d_ros.lifting.noise_estimate import NoiseEstimator
from hpe3d_ros.lifting.normalize import N_FEATURES, N_JOINTS, prepare_inputs
from hpe3d_ros.lifting.runtime import make_checkpoint


def _people(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-0.3, 0.3, size=(n, 1, 2)) + rng.normal(0.0, 0.05, size=(n, 17, 2))
    conf = rng.uniform(0.5, 1.0, size=(n, 17))
    kp[0, 3] = np.nan  # one joint missing
    return kp, conf


def _constant(level: float) -> NoiseEstimator:
    """An estimator that answers ``level`` for every joint of everybody."""
    hidden = [np.zeros((N_FEATURES, 4)), np.zeros(4)]
    out = [np.zeros((4, N_JOINTS)), np.full(N_JOINTS, level)]
    return NoiseEstimator({"layers": hidden + out})


def test_the_numpy_estimator_is_the_torch_network_it_was_trained_as():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 8), torch.nn.ReLU(), torch.nn.Linear(8, N_JOINTS)
    )
    layers = [t.detach().numpy() for m in net if isinstance(m, torch.nn.Linear)
              for t in (m.weight.T.contiguous(), m.bias)]  # fmt: skip
    est = NoiseEstimator({"layers": layers})
    x = np.random.default_rng(1).normal(size=(5, N_FEATURES)).astype(np.float32)
    with torch.no_grad():
        want = np.clip(net(torch.from_numpy(x)).numpy(), -3.0, 3.0)
    np.testing.assert_allclose(est.levels(x), want, atol=1e-5)
    back = NoiseEstimator(est.to_entry())
    np.testing.assert_allclose(back.levels(x), est.levels(x))
    with pytest.raises(ValueError, match="expects"):
        NoiseEstimator({"layers": [np.zeros((3, N_JOINTS)), np.zeros(N_JOINTS)]})


def test_an_unknown_level_is_estimated_and_a_given_one_kept(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(
        arch="bodyvae", noise_input=True, width=32, n_blocks=1, cond_dim=16, latent_dim=4,
        dec_width=16,
    )  # fmt: skip
    ck = make_checkpoint(build_model(cfg), np.zeros(48), 0.2)
    torch.save(ck, tmp_path / "plain.pt")
    torch.save({**ck, "noise_estimator": _constant(0.7).to_entry()}, tmp_path / "est.pt")
    plain, est = load_lifter(tmp_path / "plain.pt"), load_lifter(tmp_path / "est.pt")
    assert plain.noise_estimator is None and est.noise_estimator is not None
    kp, conf = _people(4)
    f_plain, _ = plain.features(kp, conf)
    f_est, _ = est.features(kp, conf)
    np.testing.assert_array_equal(f_est[:, :N_FEATURES], f_plain[:, :N_FEATURES])
    assert (f_plain[:, N_FEATURES:] == 0).all()  # without an estimator: unknown
    valid = f_plain[:, 2 * N_JOINTS : 3 * N_JOINTS] > 0.5
    level = f_est[:, N_FEATURES : N_FEATURES + N_JOINTS]
    np.testing.assert_allclose(level[valid], 0.7, atol=1e-6)
    assert (level[~valid] == 0).all() and (~valid).any()
    assert (f_est[:, -1] == 1).all()  # seen as a given level
    # a level the caller passes wins; only its unknown (NaN) rows are estimated
    noise = np.array([0.002, np.nan, 0.002, 0.002])
    f_given, _ = est.features(kp, conf, noise)
    want, _ = prepare_inputs(kp, conf, 0.2, np.repeat(noise[:, None], 17, 1), True)
    np.testing.assert_allclose(f_given[[0, 2, 3]], want[[0, 2, 3]], atol=1e-6)
    np.testing.assert_allclose(f_given[1], f_est[1], atol=1e-6)
    # the hypotheses follow the level the lifter was given
    a = est.sample(kp, conf, 8, seed=0)
    b = plain.sample(kp, conf, 8, seed=0, noise_std=noise * 0 + np.nan)
    assert not np.allclose(a, b)


def test_training_the_estimator_learns_to_tell_noisy_from_exact_keypoints():
    """``training.noise_estimator`` on the shipped lifter's training recipe, four epochs:
    far, 5 px keypoints already read noisier than near, exact ones."""
    from training.conditions import Cell, condition_views
    from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices
    from training.noise_estimator import train_estimator
    from training.run_config import TrainConfig

    if not (DEFAULT_DATA.is_file() and ORIG_DATA.is_file()):
        pytest.skip(f"shared mocap absent: {DEFAULT_DATA.parent}")
    cfg = TrainConfig.from_dict(load_lifter().checkpoint["train_config"])
    est, info = train_estimator(cfg, epochs=4, log=lambda *_: None)
    assert info["epochs"] == 4 and 0 < info["val_level_mae"] < 1.0
    m = load_all_mocap(DEFAULT_DATA, ORIG_DATA)
    poses = m["poses"][split_indices(m["subject"], "val", "v2")[::10]]
    levels = {}
    for px, dist in ((0.0, (3.0, 8.0)), (5.0, (15.0, 25.0))):
        v = condition_views(poses, Cell(px, dist), np.random.default_rng(0))
        levels[px] = float(est.levels(v.feats[:, :N_FEATURES]).mean())
    assert levels[5.0] > levels[0.0] + 0.3, levels  # an untrained net: the same for both
