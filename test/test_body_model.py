"""Lifter v2 network: one body per person (bone limits, forward kinematics), noise-aware
features, per-condition temperature, graph encoder, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpe3d_ros import metrics
from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.architectures import build_model
from hpe3d_ros.lifting.body import (
    BONE_LIMITS_M,
    MAX_BONE_M,
    ancestor_matrix,
    bone_lengths_t,
    forward_kinematics,
)
from hpe3d_ros.lifting.body_model import CALIB_KNOTS, SIZE_KNOTS
from hpe3d_ros.lifting.gcn import GraphEncoder, skeleton_adjacency
from hpe3d_ros.lifting.model import ModelConfig
from hpe3d_ros.lifting.normalize import N_FEATURES, N_NOISE_FEATURES, prepare_inputs
from hpe3d_ros.lifting.runtime import make_checkpoint
from hpe3d_ros.skeleton import H36M_PARENTS


def _people(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-0.4, 0.4, size=(n, 1, 2)) + rng.normal(0.0, 0.05, size=(n, 17, 2))
    return kp, rng.uniform(0.4, 1.0, size=(n, 17))


def _body_lifter(tmp_path, encoder: str = "mlp", noise_input: bool = True, body_width: int = 0):
    torch.manual_seed(0)
    cfg = ModelConfig(
        arch="bodyvae", encoder=encoder, noise_input=noise_input, width=32, n_blocks=1,
        cond_dim=16, latent_dim=4, dec_width=16, gcn_channels=8, gcn_blocks=1,
        body_width=body_width,
    )  # fmt: skip
    model = build_model(cfg)
    path = tmp_path / f"body_{encoder}{body_width or ''}.pt"
    torch.save(make_checkpoint(model, np.zeros(48), 0.2, temperature=2.0, latent_dof=4.0), path)
    return load_lifter(path), model


def test_forward_kinematics_matches_the_joint_tree():
    rng = np.random.default_rng(0)
    lengths = torch.tensor(rng.uniform(0.1, 0.5, size=(3, 16)))
    dirs = torch.tensor(rng.normal(size=(3, 2, 16, 3)))
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    joints = forward_kinematics(lengths, dirs, torch.tensor(ancestor_matrix()))
    full = torch.cat([torch.zeros(3, 2, 1, 3, dtype=joints.dtype), joints], dim=2)
    for j in range(1, 17):  # each joint = its parent + its own bone vector
        expect = full[:, :, H36M_PARENTS[j]] + lengths[:, None, j - 1, None] * dirs[:, :, j - 1]
        torch.testing.assert_close(full[:, :, j], expect)
    torch.testing.assert_close(bone_lengths_t(joints), lengths[:, None].expand(3, 2, 16))


@pytest.mark.parametrize(("encoder", "body_width"), [("mlp", 0), ("gcn", 0), ("gcn", 24)])
def test_every_hypothesis_has_the_same_body_within_the_limits(tmp_path, encoder, body_width):
    lifter, _ = _body_lifter(tmp_path, encoder, body_width=body_width)
    kp, conf = _people(6)
    kp[0] *= 40.0  # absurd inputs still give bodies inside the limits
    hyps = lifter.sample(kp, conf, k=64, seed=0)
    assert hyps.shape == (6, 64, 17, 3) and np.isfinite(hyps).all()
    assert np.all(hyps[:, :, 0] == 0.0)
    bones = bone_lengths_t(torch.from_numpy(hyps[:, :, 1:])).numpy()
    assert bones.std(axis=1).max() < 1e-5  # one skeleton for all K hypotheses
    assert (bones >= BONE_LIMITS_M[:, 0] - 1e-5).all()
    assert (bones <= BONE_LIMITS_M[:, 1] + 1e-5).all() and bones.max() <= MAX_BONE_M + 1e-5
    assert hyps[:, :, 1:].std(axis=1).mean() > 1e-3  # the poses differ


def test_noise_features_given_unknown_and_levels():
    kp, conf = _people(3)
    plain, _ = prepare_inputs(kp, conf)
    feats, _ = prepare_inputs(kp, conf, 0.2, np.array([[0.001] * 17, [np.nan] * 17, [0.0] * 17]),
                              noise_features=True)  # fmt: skip
    assert plain.shape[1] == N_FEATURES and feats.shape[1] == N_FEATURES + N_NOISE_FEATURES
    np.testing.assert_array_equal(feats[:, :N_FEATURES], plain)
    level, given = feats[:, N_FEATURES:-1], feats[:, -1]
    np.testing.assert_array_equal(given, [1.0, 0.0, 1.0])
    assert (level[1] == 0).all()  # unknown: no level
    assert (level[2] == level[2, 0]).all() and level[2, 0] == pytest.approx(CALIB_KNOTS[0])
    assert level[0].mean() > level[2].mean()  # noisier input, higher level
    none, _ = prepare_inputs(kp, conf, 0.2, None, noise_features=True)
    assert (none[:, N_FEATURES:] == 0).all()


def test_noise_level_and_calibration_widen_the_hypotheses(tmp_path):
    lifter, model = _body_lifter(tmp_path)
    kp, conf = _people(4)
    model.calib_values.copy_(torch.linspace(0.5, 3.0, len(CALIB_KNOTS)))
    model.calib_unknown.copy_(torch.linspace(1.0, 2.2, len(SIZE_KNOTS)))
    exact, _ = prepare_inputs(kp, conf, 0.2, np.zeros((4, 17)), noise_features=True)
    noisy, _ = prepare_inputs(kp, conf, 0.2, np.full((4, 17), 0.05), noise_features=True)
    unknown, _ = prepare_inputs(kp, conf, 0.2, None, noise_features=True)
    t = [model.temperature_scale(torch.from_numpy(f)) for f in (exact, noisy, unknown)]
    torch.testing.assert_close(t[0], torch.full((4,), 0.5))
    assert (t[1] > 2.0).all()
    size = torch.from_numpy(unknown[:, N_FEATURES - 1])
    torch.testing.assert_close(t[2], 1.0 + 1.2 * (size.clamp(-1.5, 1.5) + 1.5) / 3.0)
    # the runtime accepts a scalar, (N,) or (N, 17) noise std
    a = lifter.features(kp, conf, 0.05)[0]
    np.testing.assert_array_equal(a, lifter.features(kp, conf, np.full(4, 0.05))[0])
    np.testing.assert_array_equal(a, lifter.features(kp, conf, np.full((4, 17), 0.05))[0])


def test_graph_encoder_uses_the_skeleton_graph():
    adj = skeleton_adjacency()
    assert adj.sum() == 17 + 2 * 16 and (adj == adj.T).all()
    enc = GraphEncoder(N_FEATURES + N_NOISE_FEATURES, channels=8, n_blocks=2, width=24,
                       dropout=0.0).eval()  # fmt: skip
    x = torch.randn(5, N_FEATURES + N_NOISE_FEATURES)
    assert enc(x).shape == (5, 24)
    conv = enc.inp.conv
    a = torch.softmax(conv.edge_logits.masked_fill(~conv.mask, -1e4), -1)
    assert (a[~adj] < 1e-6).all()  # messages only along skeleton edges


@pytest.mark.parametrize(("encoder", "body_width"), [("mlp", 0), ("gcn", 0), ("gcn", 24)])
def test_onnx_export_reproduces_the_body_lifter(tmp_path, encoder, body_width):
    pytest.importorskip("onnxruntime")
    from hpe3d_ros.backends.export import export_lifter, verify_lifter_onnx

    lifter, _ = _body_lifter(tmp_path, encoder, body_width=body_width)
    path = export_lifter(lifter, tmp_path / "lifter.onnx")
    assert verify_lifter_onnx(lifter, path) < 1e-5


def test_condition_calibration_recovers_the_factor_of_each_noise_level():
    from hpe3d_ros.lifting.runtime import latent_noise
    from training.condition_calibration import fit_condition_calibration

    torch.manual_seed(1)
    cfg = ModelConfig(arch="bodyvae", noise_input=True, width=32, n_blocks=1, cond_dim=16,
                      latent_dim=4, dec_width=16, dropout=0.0)  # fmt: skip
    model = build_model(cfg).eval()
    n = 400
    kp, conf = _people(4 * n, seed=3)
    kp = kp * 0.3
    spread = np.sqrt((kp - kp.mean(1, keepdims=True)) ** 2).mean()
    levels = [0.0, 0.02 * spread, 0.2 * spread, np.nan]  # exact, two noise levels, unknown
    std = np.repeat(np.array(levels), n)[:, None] * np.ones((1, 17))
    feats, _ = prepare_inputs(kp, conf, 0.2, std, noise_features=True)
    x = torch.from_numpy(feats)
    truth_values = torch.linspace(0.6, 1.6, len(CALIB_KNOTS))
    with torch.no_grad():  # the truth: one draw per person at known per-level factors
        model.calib_values.copy_(truth_values)
        model.calib_unknown.fill_(1.3)
        eps = torch.from_numpy(latent_noise(4 * n, 1, 4, seed=9, dof=5.0))
        target = model.decode(model.encode(x), eps, 1.3).numpy().reshape(4 * n, 16, 3)
        level, _ = model.noise_level(x)
    fit = fit_condition_calibration(model, feats, target, temperature=1.3, dof=5.0, k=200)
    rows = fit["groups"]
    assert sum(r["samples"] for r in rows if r["mode"] == "unknown") == n
    # unknown level: calibrated as a whole through the fitted size curve
    with torch.no_grad():
        cond = model.encode(x[3 * n :])
        eps = torch.from_numpy(latent_noise(n, 200, 4, seed=2, dof=5.0))
        h = model.decode(cond, eps, 1.3).numpy().reshape(n, 200, 16, 3)
    assert metrics.coverage(h, target[3 * n :]).mean() == pytest.approx(0.9, abs=0.03)
    assert 1.0 < np.median(fit["unknown"]) < 1.7
    for r in rows:
        if "factor" in r:  # every fitted group is calibrated on its own samples
            assert r["coverage"] == pytest.approx(0.9, abs=0.02)
    fitted = np.array(fit["values"])
    knots = np.array(fit["knots"])
    for lv in np.unique(level[: 3 * n].numpy().round(4)):
        got = np.interp(lv, knots, fitted)
        true = np.interp(lv, knots, truth_values.numpy())
        assert got == pytest.approx(true, rel=0.2)


def test_calibration_weighs_every_validation_subject_equally():
    from training.condition_calibration import balanced_poses

    subject = np.array([14] * 1212 + [11] * 150 + [35] * 90)
    poses = np.arange(len(subject), dtype=float)[:, None, None] * np.ones((1, 17, 3))
    out = balanced_poses(poses, subject, 400, np.random.default_rng(0))
    rows = out[:, 0, 0].astype(int)
    assert len(rows) == 3 * 400
    for s, n in ((14, 1212), (11, 150), (35, 90)):
        picked = rows[subject[rows] == s]
        assert len(picked) == 400
        counts = np.bincount(picked, minlength=len(subject))[subject == s]
        # without replacement while the frames last, then each frame again
        assert counts.max() - counts.min() <= 1 and counts.min() == 400 // n
    assert len(np.unique(rows[subject[rows] == 14])) == 400


def test_checkpoint_with_one_unknown_factor_still_loads(tmp_path):
    _body_lifter(tmp_path)
    ck = torch.load(tmp_path / "body_mlp.pt", weights_only=True)
    ck["state_dict"]["calib_unknown"] = torch.tensor([1.25])
    del ck["state_dict"]["size_knots"]
    torch.save(ck, tmp_path / "old.pt")
    old = load_lifter(tmp_path / "old.pt")
    torch.testing.assert_close(old.model.calib_unknown, torch.full((len(SIZE_KNOTS),), 1.25))
    torch.testing.assert_close(old.model.size_knots, torch.tensor(SIZE_KNOTS, dtype=torch.float32))


def test_detector_noise_model():
    from hpe3d_ros.lifting.noise import DETECTOR_NOISE_FRACTION, detector_noise_std

    kp = np.zeros((2, 17, 2))
    kp[:, :, 1] = np.linspace(-0.5, 0.5, 17)  # 1.0 tall in normalised units
    kp[1] *= 0.01  # the same person 100 times further
    conf = np.full((2, 17), 0.7)
    conf[0, 3] = 0.0
    kp[0, 4] = np.nan
    std = detector_noise_std(kp, conf, focal_px=1000.0)
    assert std.shape == (2, 17) and std[0, 3] == 0 and std[0, 4] == 0
    assert std[0, 0] == pytest.approx(np.hypot(DETECTOR_NOISE_FRACTION, 1e-3))
    assert std[1, 0] == pytest.approx(np.hypot(DETECTOR_NOISE_FRACTION * 0.01, 1e-3))
    low = detector_noise_std(kp, np.full((2, 17), 0.3), focal_px=1000.0)
    assert (low[1] / std[1] == pytest.approx(1.3 / 0.9)) and (low[0, 5] > std[0, 5])


def test_pipeline_passes_the_noise_level_to_noise_aware_lifters():
    from hpe3d_ros.camera import CameraModel
    from hpe3d_ros.lifting.noise import detector_noise_std
    from hpe3d_ros.pipeline import Pipeline

    class Recorder:
        """Wraps the shipped lifter; records what ``sample`` is given."""

        def __init__(self, noise_aware: bool) -> None:
            self.inner, self.noise_aware, self.calls = load_lifter(), noise_aware, []
            self.joint_names = self.inner.joint_names

        def sample(self, kp, conf, k, seed, **kwargs):
            self.calls.append((kp, conf, kwargs))
            return self.inner.sample(kp, conf, k, seed)

    cam = CameraModel.from_fov(1280, 720, 60.0, np.zeros(5), "plumb_bob")
    kp_norm, conf = _people(2)
    px = cam.normalized_to_pixel(kp_norm * 0.3)
    for aware in (False, True):
        rec = Recorder(aware)
        out = Pipeline(detector=None, lifter=rec).lift_keypoints(px, conf, cam, seed=0)
        assert out.lifted.all() and np.isfinite(out.root_m).all()
        kp, c, kwargs = rec.calls[0]
        if not aware:
            assert kwargs == {}
            continue
        np.testing.assert_allclose(kwargs["noise_std"], detector_noise_std(kp, c, cam.fx),
                                   rtol=1e-5)  # fmt: skip
        assert (kwargs["noise_std"] > 0).all()


def test_size_std_widens_the_root_along_the_viewing_ray():
    """One body per person: the hypotheses' roots cannot show a size error, so placement adds
    ``Lifter.size_std``'s effect; without a ground prior it runs along the ray (depth)."""
    from hpe3d_ros.camera import CameraModel
    from hpe3d_ros.pipeline import Pipeline, PipelineConfig
    from hpe3d_ros.placement import GroundPrior

    lifter = load_lifter()
    assert lifter.arch == "bodyvae" and lifter.size_std >= 0.045  # shipped: the floor at least
    cam = CameraModel.from_fov(1280, 720, 60.0, np.zeros(5), "plumb_bob")
    rng = np.random.default_rng(3)
    pose = np.array([[0, 0, 0], [-.1, 0, 0], [-.1, .45, 0], [-.1, .9, 0], [.1, 0, 0],
                     [.1, .45, 0], [.1, .9, 0], [0, -.25, 0], [0, -.5, 0], [0, -.6, 0],
                     [0, -.75, 0], [.18, -.5, 0], [.2, -.25, 0], [.2, 0, 0], [-.18, -.5, 0],
                     [-.2, -.25, 0], [-.2, 0, 0]])  # fmt: skip
    roots = np.array([[0.5, 0.6, 6.0], [-1.0, 0.6, 10.0]])  # feet on the ground 1.5 m below
    px = cam.project(pose[None] + roots[:, None]) + rng.normal(0, 1.0, (2, 17, 2))
    conf = np.full((2, 17), 0.9)
    pipe = Pipeline(detector=None, lifter=lifter, config=PipelineConfig(num_hypotheses=30))
    wide = pipe.lift_keypoints(px, conf, cam, seed=0)
    lifter.size_std = 0.0
    try:
        narrow = pipe.lift_keypoints(px, conf, cam, seed=0)
        np.testing.assert_array_equal(wide.root_m, narrow.root_m)  # the estimate stays
        added = np.sqrt(wide.root_std_m**2 - narrow.root_std_m**2)
        ray = wide.root_m / np.linalg.norm(wide.root_m, axis=1, keepdims=True)
        # about size_std x the distance, along the ray (x/z and y/z as the ray's own)
        dist = np.linalg.norm(wide.root_m, axis=1)
        np.testing.assert_allclose(np.linalg.norm(added, axis=1), 0.045 * dist, rtol=0.25)
        np.testing.assert_allclose(added / np.linalg.norm(added, axis=1, keepdims=True),
                                   np.abs(ray), atol=0.05)  # fmt: skip
        # feet on a known ground (a soft prior, one equation among the joints'): size moves
        # the person less
        lifter.size_std = 0.045
        ground = GroundPrior(np.array([0.0, 1.0, 0.0]), 1.5)  # level camera 1.5 m up
        pinned = pipe.lift_keypoints(px, conf, cam, seed=0, ground=ground)
        assert (pinned.root_std_m[:, 2] < wide.root_std_m[:, 2]).all()
    finally:
        lifter.size_std = load_lifter().size_std


def test_shape_loss_sees_proportions_and_not_size():
    """``w_shape`` (issue 14): a body uniformly larger than the prediction has no proportions
    error (the absolute bone term does see it); longer shins alone do; the term adds
    ``w_shape * shape / sigma_m`` to the loss."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        arch="bodyvae", encoder="mlp", noise_input=True, width=32, n_blocks=1,
        cond_dim=16, latent_dim=4, dec_width=16,
    )  # fmt: skip
    model = build_model(cfg).eval()
    feats = torch.randn(6, N_FEATURES + N_NOISE_FEATURES)
    with torch.no_grad():
        lengths = model.body(model.cond_net(feats))
    dirs = torch.nn.functional.normalize(torch.randn(6, 16, 3), dim=-1)
    anc = torch.tensor(ancestor_matrix(), dtype=torch.float32)

    def parts(scale, w_shape=0.0):
        target = forward_kinematics(lengths * scale, dirs[:, None], anc)[:, 0].flatten(-2)
        torch.manual_seed(1)
        with torch.no_grad():
            return model.losses(feats, target, w_shape=w_shape, w_bone=10.0)

    bigger = parts(torch.full((16,), 1.2))
    assert float(bigger["shape_log"]) < 1e-5 and float(bigger["bone_m"]) > 0.02
    shins = torch.ones(16)
    shins[[2, 5]] = 1.2
    longer_shins = parts(shins)
    assert float(longer_shins["shape_log"]) > 0.02
    weighted = parts(shins, w_shape=3.0)
    extra = 3.0 * float(longer_shins["shape_log"]) / 0.05
    assert float(weighted["loss"]) == pytest.approx(float(longer_shins["loss"]) + extra, rel=1e-5)


def test_body_branch_reads_the_lengths_from_the_2d_features():
    """``body_width`` > 0: the person's bone lengths come from the body's own 2D MLP (its
    output moves them, the code's length head does not), inside the limits, and the loss
    trains that branch; 0 keeps the code's head (the shipped checkpoints)."""
    torch.manual_seed(0)
    kw = dict(arch="bodyvae", noise_input=True, width=32, n_blocks=1, cond_dim=16,
              latent_dim=4, dec_width=16)  # fmt: skip
    model = build_model(ModelConfig(**kw, body_width=24)).eval()
    feats = torch.randn(5, N_FEATURES + N_NOISE_FEATURES)
    with torch.no_grad():
        before = model.encode(feats)[3]
        model.length_head.bias.add_(1.0)
        assert torch.equal(model.encode(feats)[3], before)
        model.body_net[-1].bias[2] += 1.0  # the left shin's logit
        after = model.encode(feats)[3]
    assert (after[:, 2] > before[:, 2] + 0.01).all()
    torch.testing.assert_close(after[:, [0, 1, 3]], before[:, [0, 1, 3]])
    assert (after >= torch.tensor(BONE_LIMITS_M[:, 0], dtype=after.dtype) - 1e-6).all()
    model.train()
    target = model.encode(feats)[0].new_zeros(5, 48) + 0.1
    model.losses(feats, target)["loss"].backward()
    assert model.body_net[0].weight.grad.abs().sum() > 0
    plain = build_model(ModelConfig(**kw))
    assert not hasattr(plain, "body_net")
