"""Temporal lifter (issue 17): causal encoder, resampling from stamps, coherent hypotheses,
missing frames and joints, the checkpoint format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.runtime import Lifter
from hpe3d_ros.lifting.temporal import CausalTCN
from hpe3d_ros.lifting.temporal_runtime import TemporalLifter, TrackInput, temporal_part
from hpe3d_ros.lifting.track_window import grid_weights, window_times
from test.helpers.temporal_lifter import tiny_temporal_checkpoint, walking_track


@pytest.fixture
def lifter(tmp_path) -> TemporalLifter:
    return load_lifter(tiny_temporal_checkpoint(tmp_path / "temporal.pt"))


def _tcn(seed: int, widths: tuple[int, ...]) -> CausalTCN:
    """A small eval-mode TCN whose batch norms have non-trivial statistics and affines."""
    torch.manual_seed(seed)
    net = CausalTCN(7, widths, 16, 8, 0.0).eval()
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.normal_()
    return net


def test_strided_last_frame_equals_dilated_sequence():
    net = _tcn(1, (3, 3, 3))
    x = torch.randn(3, 27 + 5, 7)
    with torch.no_grad():
        seq = net(x)
        last = torch.stack([net.last(x[:, i : i + 27]) for i in range(6)], 1)
    assert seq.shape == (3, 6, 8)
    torch.testing.assert_close(seq, last, atol=1e-5, rtol=1e-5)


def test_inference_last_folds_batch_norm_and_follows_weight_changes():
    net = _tcn(2, (3, 2, 3))
    x = torch.randn(4, 18, 7)
    with torch.no_grad():
        conv = net._last_conv(x)
        folded = net.last(x)
    torch.testing.assert_close(folded, conv, atol=1e-5, rtol=1e-5)
    assert net._folded is not None  # the folded path ran
    with torch.no_grad():  # a statistic and a weight change: the folded layers follow
        net.conv_bns[0].running_mean.add_(0.5)
        net.expand.weight.mul_(1.1)
        conv2 = net._last_conv(x)
        folded2 = net.last(x)
    assert (conv2 - conv).abs().max() > 1e-3
    torch.testing.assert_close(folded2, conv2, atol=1e-5, rtol=1e-5)
    # with gradients (adaptation, training) last is the convolutions: gradients reach weights
    net.expand.weight.requires_grad_(True)
    net.last(x).sum().backward()
    assert net.expand.weight.grad is not None and net.expand.weight.grad.abs().sum() > 0


def test_inference_last_of_a_network_built_in_inference_mode():
    with torch.inference_mode():  # its tensors have no version counters
        net = _tcn(3, (3, 3))
        x = torch.randn(2, 9, 7)
        torch.testing.assert_close(net.last(x), net._last_conv(x), atol=1e-5, rtol=1e-5)
        net.expand_bn.running_mean.add_(1.0)  # changed in place: still followed
        torch.testing.assert_close(net.last(x), net._last_conv(x), atol=1e-5, rtol=1e-5)
        with pytest.raises(ValueError, match="reads 9 frames, got 8"):
            net.last(x[:, 1:])


def test_checkpoint_loads_as_temporal_and_as_plain_single_frame(tmp_path, lifter):
    assert isinstance(lifter, TemporalLifter) and lifter.window == 9 and lifter.rate_hz == 30
    kp, conf, _ = walking_track(3)
    ck = torch.load(tmp_path / "temporal.pt", weights_only=True)
    plain = Lifter(ck)  # older code: the extra entry is ignored
    np.testing.assert_array_equal(plain.sample(kp, conf, 5, 3), lifter.sample(kp, conf, 5, 3))
    assert temporal_part(plain) is not None and temporal_part(lifter) is lifter.temporal


def test_sample_sequence_is_causal(lifter):
    kp, conf, t = walking_track(40)
    out = lifter.sample_sequence(kp, conf, k=6, seed=4, stamps_s=t)
    assert out.shape == (40, 6, 17, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and np.abs(out[:, :, 0]).max() == 0.0  # root at 0
    assert np.abs(out).max() < 5.0
    kp2, conf2 = kp.copy(), conf.copy()
    kp2[25:] += np.random.default_rng(0).normal(0, 0.05, size=kp2[25:].shape)
    conf2[30:, :5] = 0.0
    out2 = lifter.sample_sequence(kp2, conf2, k=6, seed=4, stamps_s=t)
    np.testing.assert_array_equal(out2[:25], out[:25])  # the past does not move
    assert np.abs(out2[25:] - out[25:]).max() > 1e-3  # the perturbed frames do


def test_hypotheses_are_coherent_over_time(lifter):
    kp, conf, _ = walking_track(1)
    still = np.repeat(kp, 20, 0), np.repeat(conf, 20, 0)
    out = lifter.sample_sequence(*still, k=8, seed=1)
    # a person standing still: once the window is full, hypothesis k does not move at all
    w = lifter.window
    np.testing.assert_allclose(out[w:], np.broadcast_to(out[w], out[w:].shape), atol=1e-5)
    assert np.abs(out[w, 0] - out[w, 1]).max() > 1e-3  # but the hypotheses differ
    kp, conf, _ = walking_track(30)
    out = lifter.sample_sequence(kp, conf, k=8, seed=1)
    step = np.linalg.norm(np.diff(out, axis=0), axis=-1).mean()
    spread = np.linalg.norm(out - out.mean(1, keepdims=True), axis=-1).mean()
    assert step < 0.5 * spread  # frame to frame, hypothesis k moves less than k vs k'
    again = lifter.sample_sequence(kp, conf, k=8, seed=1)
    np.testing.assert_array_equal(out, again)
    assert not np.array_equal(out, lifter.sample_sequence(kp, conf, k=8, seed=2))


@pytest.mark.parametrize("rate", [10.0, 15.0, 30.0])
def test_frames_are_resampled_to_the_model_rate(rate):
    # a linear signal read on a 30 Hz grid from any camera rate is the 30 Hz signal
    t = np.arange(int(rate)) / rate + 0.013 * (np.arange(int(rate)) % 2)  # jittered stamps
    value = 3.0 * t + 1.0
    times = window_times(t[-1], 9, 30.0)
    i0, i1, w, seen = grid_weights(t, times, 0.5)
    assert seen.all() and i1[-1] == i0[-1] == len(t) - 1 and w[-1] == 0.0
    np.testing.assert_allclose((1 - w) * value[i0] + w * value[i1], 3.0 * times + 1.0)
    # before the first frame, inside a gap longer than max_gap_s, after the last: unseen
    _, _, _, seen = grid_weights(t[[0, -1]], np.array([-0.1, 0.5, t[-1], t[-1] + 0.1]), 0.5)
    assert seen.tolist() == [False, False, True, False]


def test_a_tracks_noise_is_drawn_once_per_seed_and_bounded(lifter, monkeypatch):
    from hpe3d_ros.lifting import frame_cache
    from hpe3d_ros.lifting.runtime import latent_noise

    sampler = lifter.temporal
    a = sampler.track_noise(6, 11)
    want = latent_noise(1, 6, lifter.latent_dim, 11, sampler.latent_dof)[0]
    np.testing.assert_array_equal(a, want)
    assert sampler.track_noise(6, 11) is a and not a.flags.writeable  # remembered, read-only
    assert sampler.track_noise(4, 11).shape == (4, lifter.latent_dim)  # k is part of the key
    assert not np.array_equal(a, sampler.track_noise(6, 12))  # another seed, other noise
    n = len(sampler._noise)
    assert not np.array_equal(sampler.track_noise(6, None), sampler.track_noise(6, None))
    assert len(sampler._noise) == n  # no seed: fresh noise, nothing remembered
    monkeypatch.setattr(frame_cache, "MAX_CACHED_TRACKS", 5)
    for seed in range(20):
        sampler.track_noise(6, seed)
    assert len(sampler._noise) == 5
    np.testing.assert_array_equal(sampler.track_noise(6, 11), want)  # forgotten, drawn again


def test_before_temporal_training_it_is_the_single_frame_lifter(tmp_path):
    lifter = load_lifter(tiny_temporal_checkpoint(tmp_path / "t.pt", history=False))
    kp, conf, t = walking_track(12)
    seq = lifter.sample_sequence(kp, conf, k=5, seed=3, stamps_s=t, noise_std=0.004)
    noise = np.broadcast_to(lifter.temporal.track_noise(5, 3), (12, 5, lifter.latent_dim))
    single = lifter.sample_with_noise(kp, conf, noise, noise_std=0.004)
    np.testing.assert_allclose(seq, single, atol=1e-5)


def test_missing_frames_and_joints_do_not_break_it(lifter):
    kp, conf, t = walking_track(30)
    kp[3:6] = np.nan  # three frames without any joint
    conf[10:12, :9] = 0.05  # half the joints below the threshold
    kp[15, 4] = np.inf
    t[20:] += 2.0  # the track was unseen for 2 s
    out = lifter.sample_sequence(kp, conf, k=4, seed=0, stamps_s=t, noise_std=0.002)
    assert out.shape == (30, 4, 17, 3) and np.isfinite(out).all()
    # after the gap the model starts over: frame 20 = a new track's first frame
    fresh = lifter.sample_sequence(
        kp[20:], conf[20:], k=4, seed=0, stamps_s=t[20:], noise_std=0.002
    )
    np.testing.assert_allclose(out[20:], fresh, atol=1e-5)
    with pytest.raises(ValueError, match="strictly increasing"):
        lifter.sample_sequence(kp, conf, 4, 0, stamps_s=t[::-1])
    assert lifter.sample_sequence(kp[:0], conf[:0], 4, 0).shape == (0, 4, 17, 3)


def test_sample_tracks_matches_the_sequence_and_a_shorter_window(lifter):
    kp, conf, t = walking_track(25, rate_hz=10.0)
    seq = lifter.sample_sequence(kp, conf, k=5, seed=9, stamps_s=t)
    tracks = [TrackInput(t[: i + 1], kp[: i + 1], conf[: i + 1]) for i in (24, 3, 0)]
    out = lifter.temporal.sample_tracks(tracks, 5, [9, 9, 9])
    np.testing.assert_allclose(out, seq[[24, 3, 0]], atol=1e-5)
    one = lifter.temporal.sample_tracks(tracks[:1], 5, [9], window=1)
    alone = lifter.sample_sequence(kp[24:], conf[24:], k=5, seed=9)
    np.testing.assert_allclose(one[0], alone[0], atol=1e-5)


def test_track_history_keeps_recent_frames_per_camera_and_track():
    from hpe3d_ros.lifting.track_history import TrackHistory

    hist = TrackHistory(horizon_s=1.0, max_frames=50)
    kp, conf, _ = walking_track(2)
    for i in range(40):  # 30 Hz, two people, one untracked
        hist.update("front", i / 30, np.array([7, -1]), kp, conf, np.full((2, 17), 0.002))
    assert len(hist) == 1 and hist.frames("front", 7) == 31  # 1 s of frames
    tr = hist.track("front", 7)
    assert tr.stamps_s[0] == pytest.approx(9 / 30) and tr.noise_std.shape == (31, 17)
    hist.update("front", 40 / 30, np.array([7, 7]), kp, conf)  # same id twice: first kept
    assert hist.frames("front", 7) == 31 and np.isnan(hist.track("front", 7).noise_std[-1]).all()
    hist.update("rear", 41 / 30, np.array([7]), kp[:1], conf[:1])
    assert hist.frames("rear", 7) == 1 and hist.frames("front", 7) == 31
    hist.update("front", 0.5, np.array([7]), kp[:1], conf[:1])  # time went back: start over
    assert hist.frames("front", 7) == 1
    hist.update("front", 3.0, np.array([8]), kp[:1], conf[:1])  # 7 not seen for 2.5 s: gone
    assert hist.track("front", 7) is None and hist.frames("front", 8) == 1
    hist.clear()
    assert len(hist) == 0


@pytest.mark.parametrize("inputs", [{}, {"rate_input": True, "raw_input": True}])
def test_onnx_export_of_the_temporal_graph_matches_torch(tmp_path, inputs):
    pytest.importorskip("onnxruntime")
    from hpe3d_ros.lifting.temporal_export import export_temporal, verify_temporal_onnx

    ck = tiny_temporal_checkpoint(tmp_path / "t.pt", **inputs)
    lifter = load_lifter(ck)
    path, frames = export_temporal(lifter.temporal, tmp_path / "temporal.onnx")
    assert frames.is_file() and verify_temporal_onnx(lifter.temporal, path, n=4, k=6) < 1e-4


def test_the_zero_initialised_residual_gets_a_gradient():
    from hpe3d_ros.lifting.model import ModelConfig
    from hpe3d_ros.lifting.temporal import TemporalBodyVAE, TemporalConfig
    from test.helpers.temporal_lifter import SMALL

    torch.manual_seed(0)
    model = TemporalBodyVAE(ModelConfig(**SMALL), TemporalConfig(widths=(3, 3), channels=8))
    assert model.temporal.out.weight.abs().max() == 0  # starts as the single-frame lifter
    packed = torch.rand(5, model.packed_size)
    model.encode(packed)[0].sum().backward()
    assert model.temporal.out.weight.grad.abs().max() > 0


def test_bundle_stores_the_shared_encoder_once_and_loads_the_same_model(tmp_path):
    from hpe3d_ros.lifting.temporal_checkpoint import bundle, complete_entry

    full = torch.load(tiny_temporal_checkpoint(tmp_path / "full.pt"), weights_only=True)
    entry = full.pop("temporal")
    torch.save(full, tmp_path / "base.pt")
    torch.save(entry, tmp_path / "entry.pt")
    bundle(tmp_path / "base.pt", tmp_path / "entry.pt", tmp_path / "bundle.pt")
    ck = torch.load(tmp_path / "bundle.pt", weights_only=True)
    shared = ck["temporal"]["base_keys"]
    assert any(k.startswith("cond_net.") for k in shared)  # the 2D encoder, stored once
    assert not any(k.startswith("temporal.") for k in shared)  # the residual is its own
    assert not set(shared) & set(ck["temporal"]["state_dict"])
    assert all(
        v.dtype == torch.float16
        for v in ck["temporal"]["state_dict"].values()
        if v.is_floating_point()
    )
    kp, conf, t = walking_track(30)
    a = load_lifter(tmp_path / "full.pt").sample_sequence(kp, conf, 8, 2, t)
    b = load_lifter(tmp_path / "bundle.pt").sample_sequence(kp, conf, 8, 2, t)
    np.testing.assert_allclose(b, a, atol=0.02)  # half-precision weights
    ck["state_dict"].pop(shared[-1])  # a lifter without the weights its entry reads
    with pytest.raises(ValueError, match="lacks"):
        complete_entry(ck)


def test_rate_input_tells_the_network_how_far_a_grid_frame_is_from_a_camera_frame(tmp_path):
    lifter = load_lifter(tiny_temporal_checkpoint(tmp_path / "t.pt", rate_input=True))
    model = lifter.temporal.model
    c = model.cfg.cond_dim
    assert model.grid_channels == c + 2 and model.packed_size == model.cfg.n_in + 9 * (c + 2)
    kp, conf, t = walking_track(12, rate_hz=10.0)
    tr = TrackInput(t, kp, conf, None, None)
    packed, _ = lifter.temporal.packed([tr])
    grid = packed[0, model.cfg.n_in :].reshape(9, c + 2)
    np.testing.assert_array_equal(grid[:, c], 1.0)  # 0.8 s of a 10 Hz camera: all seen
    # the 30 Hz grid ends on a frame: every third grid frame is on one, the others 1/3 of a
    # frame interval away from the nearest (oldest first)
    np.testing.assert_allclose(grid[:, c + 1], [2 / 3, 2 / 3, 0] * 3, atol=1e-4)
    same = TrackInput(np.arange(12) / 30.0, kp, conf, None, None)  # a 30 Hz camera
    grid30 = lifter.temporal.packed([same])[0][0, model.cfg.n_in :].reshape(9, c + 2)
    assert np.abs(grid30[:, c + 1]).max() < 1e-4
    out = lifter.sample_sequence(kp, conf, k=4, seed=1, stamps_s=t)  # causal, as without
    kp2 = kp.copy()
    kp2[8:] += 0.05
    out2 = lifter.sample_sequence(kp2, conf, k=4, seed=1, stamps_s=t)
    np.testing.assert_array_equal(out2[:8], out[:8])
    assert np.isfinite(out).all() and np.abs(out2[8:] - out[8:]).max() > 1e-3


def test_raw_input_gives_the_tcn_each_frames_2d_features(tmp_path):
    lifter = load_lifter(tiny_temporal_checkpoint(tmp_path / "t.pt", raw_input=True))
    model = lifter.temporal.model
    c, f = model.cfg.cond_dim, model.cfg.n_in
    assert model.grid_layout() == [("code", c), ("raw", f), ("seen", 1)]
    kp, conf, t = walking_track(12)
    packed, _ = lifter.temporal.packed([TrackInput(t, kp, conf, None, None)])
    grid = packed[0, f:].reshape(9, c + f + 1)
    np.testing.assert_allclose(grid[-1, c : c + f], packed[0, :f], atol=1e-6)  # this frame's
    out = lifter.sample_sequence(kp, conf, k=3, seed=0, stamps_s=t)
    kp2 = kp.copy()
    kp2[6:] *= 1.1
    out2 = lifter.sample_sequence(kp2, conf, k=3, seed=0, stamps_s=t)
    np.testing.assert_array_equal(out2[:6], out[:6])  # causal
    assert np.isfinite(out).all() and np.abs(out2[6:] - out[6:]).max() > 1e-3


def test_remembered_frames_give_the_same_hypotheses_and_changed_inputs_are_recomputed(lifter):
    kp, conf, t = walking_track(30)
    sampler = lifter.temporal

    def run(n, key, kp=kp, conf=conf):
        tracks = [
            TrackInput(t[:n], kp[:n], conf[:n], None, key),
            TrackInput(t[:n], kp[:n] + 0.1, conf[:n], None, None),
        ]
        return sampler.sample_tracks(tracks, 4, [1, 2])

    sampler.clear_cache()
    fresh = [run(n, None) for n in (20, 21, 22)]
    cached = [run(n, "a") for n in (20, 21, 22)]  # frames 0-19, then one new frame per call
    for a, b in zip(fresh, cached, strict=True):
        np.testing.assert_array_equal(a, b)
    moved = kp.copy()
    moved[18] += 0.05  # a past frame in the window, re-sent with other keypoints
    np.testing.assert_array_equal(run(22, "a", moved), run(22, None, moved))
    assert not np.array_equal(run(22, "a", moved), cached[-1])
    lost = conf.copy()
    lost[10:22, 3] = 0.0
    np.testing.assert_array_equal(run(22, "a", kp, lost), run(22, None, kp, lost))
    # one key twice in a call, each window past the memory's horizon (rows shift): both read
    # the memory as it was before the call
    kp, conf, t = walking_track(60)
    kp = kp + np.random.default_rng(3).normal(0.0, 0.01, kp.shape)  # every frame its own pose
    one = [TrackInput(t[:n], kp[:n], conf[:n], None, "b") for n in (50, 52, 55)]
    sampler.sample_tracks(one[:1], 4, [1])
    fresh = sampler.sample_tracks([TrackInput(t[:55], kp[:55], conf[:55], None, None)], 4, [1])
    np.testing.assert_allclose(sampler.sample_tracks(one[1:], 4, [1, 1])[1], fresh[0], atol=1e-5)
