"""The temporal lifter's training loss (:mod:`hpe3d_ros.lifting.sequence_loss`): motion errors
between the frames a camera delivered at any rate, per-chunk noise weights, the mean-pose
velocity term, and what of the body the motion terms may move."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpe3d_ros.lifting.model import ModelConfig
from hpe3d_ros.lifting.temporal import TemporalBodyVAE, TemporalConfig
from test.helpers.temporal_chunks import EXACT, chunks, shared_mocap
from training.data import AugmentConfig


@pytest.fixture(scope="module")
def mocap():
    return shared_mocap()


def test_motion_errors_between_counted_frames_at_any_rate():
    from hpe3d_ros.lifting.sequence_loss import motion_errors
    from training.temporal_data import next_counted

    mask = np.zeros((2, 12), bool)
    mask[0, ::3] = True  # a 10 Hz camera
    mask[1, [0, 1, 2, 9, 10]] = True  # 30 Hz with a gap of 7 frames (no velocity across it)
    nxt = next_counted(mask)
    assert nxt[0, [0, 3, 6, 9]].tolist() == [3, 6, 9, -1] and nxt[1, 2] == -1
    t = torch.arange(12, dtype=torch.float64)
    truth = torch.zeros(2, 12, 17, 3, dtype=torch.float64)
    truth[..., 0] = 0.01 * t[:, None]  # 1 cm per grid frame
    lengths = torch.zeros(2, 12, 16, dtype=torch.float64)
    still = (truth + 0.3)[:, :, None]  # an offset: no velocity or acceleration error
    vel, acc, dlen = motion_errors(still, truth, lengths, torch.from_numpy(nxt))
    assert float(vel) < 1e-12 and float(acc) < 1e-12 and float(dlen) == 0.0
    frozen = torch.zeros_like(truth)[:, :, None]  # not moving: 1 cm per frame too slow
    vel, acc, _ = motion_errors(frozen, truth, lengths, torch.from_numpy(nxt))
    assert float(vel) == pytest.approx(0.01) and float(acc) < 1e-12
    # per chunk: chunk 0 (10 Hz, 3 pairs) frozen, chunk 1 (30 Hz, 11 pairs) exact
    mask[1] = True
    nxt = torch.from_numpy(next_counted(mask))
    mixed = torch.stack([frozen[0], still[1]])
    pooled, _, _ = motion_errors(mixed, truth, lengths, nxt)
    per_chunk, _, _ = motion_errors(mixed, truth, lengths, nxt, per_chunk=True)
    assert float(pooled) == pytest.approx(0.01 * 3 / 14)
    assert float(per_chunk) == pytest.approx(0.005)


def test_motion_terms_weigh_chunks_by_their_2d_noise(mocap):
    from hpe3d_ros.lifting.sequence_loss import Chunks, SequenceLossConfig, motion_errors
    from training.temporal_data import next_counted

    # the chunk's relative noise: 0 on exact 2D, about the drawn fraction otherwise
    exact, _ = chunks(mocap, EXACT)
    assert exact.noise_rel.shape == (6,) and (exact.noise_rel == 0).all()
    rel = {}
    for frac in (0.005, 0.05):
        aug = AugmentConfig(body_model="scaled", exact_prob=0.0, noise_frac=(frac, frac),
                            noise_px_min=0.0, noise_px_max=0.0, conf_range=(0.6, 0.6))  # fmt: skip
        rel[frac] = chunks(mocap, aug)[0].noise_rel
        assert np.allclose(rel[frac], frac, rtol=0.01), (frac, rel[frac])  # sigma = frac * size
    # weights: (rel / ref) ** power within 1 / max .. max; power 0 or no noise -> None
    ch = Chunks(*[torch.zeros(1)] * 9, noise_rel=torch.tensor([0.0, 0.01, 0.02, 0.04, 1.0]))
    lc = SequenceLossConfig(motion_noise_power=1.0, motion_noise_ref=0.02, motion_weight_max=4)
    assert ch.motion_weights(lc).tolist() == pytest.approx([0.25, 0.5, 1.0, 2.0, 4.0])
    assert ch.motion_weights(SequenceLossConfig()) is None
    # a chunk of weight 0 drops out of the motion terms; equal weights change nothing
    mask = np.ones((2, 12), bool)
    nxt = torch.from_numpy(next_counted(mask))
    truth = torch.zeros(2, 12, 17, 3, dtype=torch.float64)
    truth[..., 0] = 0.01 * torch.arange(12, dtype=torch.float64)[:, None]
    lengths = torch.zeros(2, 12, 16, dtype=torch.float64)
    mixed = torch.stack([torch.zeros_like(truth[0]), truth[1]])[:, :, None]  # frozen, exact
    for per_chunk in (False, True):
        plain = motion_errors(mixed, truth, lengths, nxt, per_chunk)[0]
        same = motion_errors(mixed, truth, lengths, nxt, per_chunk, torch.full((2,), 3.0))[0]
        only = motion_errors(mixed, truth, lengths, nxt, per_chunk, torch.tensor([1.0, 0.0]))
        assert float(plain) == pytest.approx(0.005) and float(same) == pytest.approx(0.005)
        assert float(only[0]) == pytest.approx(0.01)


def _tiny_model_andchunks(mocap):
    """A small temporal model (seeded) and six exact-2D validation chunks as tensors."""
    torch.manual_seed(0)
    small = ModelConfig(
        arch="bodyvae", noise_input=True, width=16, cond_dim=8, latent_dim=2, dec_width=8
    )
    model = TemporalBodyVAE(small, TemporalConfig(widths=(3, 3), channels=8)).eval()
    return model, chunks(mocap, EXACT)[0].tensors()


def test_mean_pose_motion_term_adds_the_mean_pose_velocity_error(mocap):
    from hpe3d_ros.lifting.sequence_loss import SequenceLossConfig

    model, ch = _tiny_model_andchunks(mocap)
    parts = {}
    for w in (0.0, 50.0):
        torch.manual_seed(1)  # the same posterior and prior draws
        with torch.no_grad():
            parts[w] = model.sequence_losses(ch, SequenceLossConfig(w_vel_mean=w, sigma_m=0.05))
    added = float(parts[50.0]["loss"] - parts[0.0]["loss"])
    assert added > 0  # a mean pose that does not move as the truth does costs more
    assert float(parts[50.0]["vel_m"]) == float(parts[0.0]["vel_m"])  # per-sample term as it was


def _grad(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p) if p.grad is None else p.grad.clone()


def test_motion_terms_can_leave_the_body_alone(mocap):
    from hpe3d_ros.lifting.sequence_loss import SequenceLossConfig

    model, ch = _tiny_model_andchunks(mocap)
    body = model.body
    seen = {}

    def watched(c):  # the bone lengths, with their gradient kept
        seen["lengths"] = out = body(c)
        out.retain_grad()
        return out

    model.body = watched

    def grads(motion_body: str, only_motion: bool = True):
        model.zero_grad()
        torch.manual_seed(1)  # the same posterior and prior draws
        lc = SequenceLossConfig(w_vel=50.0, w_acc=20.0, motion_body=motion_body)
        parts = model.sequence_losses(ch, lc)
        loss = (
            lc.w_vel * parts["vel_m"] + lc.w_acc * parts["acc_m"] if only_motion else parts["loss"]
        )
        loss.backward()
        per_chunk = _grad(seen["lengths"]).unflatten(0, ch.mask.shape) * ch.mask[..., None]
        decoder = {n: _grad(p) for n, p in model.decoder.named_parameters()}
        return float(parts["loss"].detach()), per_chunk, decoder

    loss_all, body_all, dec_all = grads("all")
    with pytest.raises(ValueError, match="motion_body"):
        SequenceLossConfig(motion_body="some")
    for mode in ("none", "changes"):
        loss, g, dec = grads(mode)
        assert loss == pytest.approx(loss_all)  # the same figures, only the gradient differs
        assert all(torch.allclose(dec_all[n], dec[n]) for n in dec)  # motion still shapes
        if mode == "none":
            assert g.abs().sum() == 0  # motion no longer touches the body
        else:  # it steadies the body within a chunk, but cannot move the chunk's mean body
            assert g.abs().sum() > 1e-3 * body_all.abs().sum()
            assert g.sum(1).abs().max() < 1e-5 * g.abs().max()  # zero up to rounding
    assert body_all.sum(1).abs().sum() > 1e-6  # "all" moves the mean body (it shrinks it)
    assert grads("none", only_motion=False)[1].abs().sum() > 0  # bone, pose terms still do
