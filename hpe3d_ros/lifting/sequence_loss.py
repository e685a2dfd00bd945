"""The supervised sequence loss of the temporal lifter (issue 17; training only).

:class:`Chunks` holds B training chunks read as the runtime reads a track (frames, their
places on the model's grid, the counted positions and their 3D); :func:`sequence_losses` is
lifter v2's CVAE loss per counted frame (:class:`~hpe3d_ros.lifting.body_model.BodyCVAE`)
plus the motion terms along each chunk: the velocity and acceleration error of each prior
sample (one noise vector per sample and chunk, as the runtime draws them,
:func:`motion_errors`) and the change of the bone lengths from frame to frame. Weights in
:class:`SequenceLossConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hpe3d_ros.lifting.body import N_BONES, bone_lengths_t
from hpe3d_ros.lifting.model import _split_gaussian, gaussian_kl

MOTION_BODY = ("all", "none", "changes")


@dataclass
class SequenceLossConfig:
    """Weights of the supervised sequence loss (:func:`sequence_losses`)."""

    beta: float = 1.0
    alpha: float = 0.1  # weight of the prior-sample (GSNN) reconstruction
    sigma_m: float = 0.05
    w_mean: float = 10.0  # MPJPE of the mean of n_samples prior samples
    w_best: float = 30.0  # best of n_samples
    w_bone: float = 10.0  # bone-length error
    w_vel: float = 10.0  # velocity error of each prior sample (common noise over the chunk)
    w_bone_const: float = 10.0  # change of the bone lengths from frame to frame
    w_acc: float = 0.0  # acceleration error of each prior sample
    w_vel_mean: float = 0.0  # velocity and acceleration error of the samples' mean pose
    n_samples: int = 16
    # temporal terms averaged per chunk first: a 10 Hz chunk (a third of the counted pairs of
    # a 30 Hz one) then weighs as much as a 30 Hz chunk
    per_chunk: bool = False
    # motion terms of a chunk weighted by (its 2D noise / person size / motion_noise_ref) **
    # motion_noise_power, within 1 / motion_weight_max .. motion_weight_max: smooth where the
    # 2D is noisy, follow the frame where it is clean (0: every chunk alike)
    motion_noise_power: float = 0.0
    motion_noise_ref: float = 0.02
    motion_weight_max: float = 4.0
    # what of the body the velocity and acceleration terms may move: "all"; "none" (the bone
    # lengths detached: they shape the motion only); "changes" (each chunk's mean body
    # detached: they may steady the body from frame to frame but not shrink it; a body shrunk
    # towards zero moves less, which lowers a motion error whose directions are uncertain)
    motion_body: str = "all"

    def __post_init__(self) -> None:
        if self.motion_body not in MOTION_BODY:
            raise ValueError(f"motion_body must be one of {MOTION_BODY}, got {self.motion_body!r}")


@dataclass
class Chunks:
    """Tensors of B training chunks (S = L + window - 1 grid frames, the last L counted).

    ``frames`` (M, F) the features of every frame the cameras delivered; per grid frame the
    two frames it lies between (``i0``, ``i1`` (B, S) rows of ``frames``), the weight of the
    second (``w``) and whether it is seen (``seen`` (B, S)); ``cur`` (B, L) the frame of each
    counted position; ``target`` (B, L, 48) metres in that frame's virtual camera; ``mask``
    (B, L) the positions that count; ``nxt`` (B, L) the next counted position of the chunk
    (within a few grid frames; -1: none), for velocities at any camera rate.
    """

    frames: torch.Tensor
    i0: torch.Tensor
    i1: torch.Tensor
    w: torch.Tensor
    seen: torch.Tensor
    cur: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    nxt: torch.Tensor
    noise_rel: torch.Tensor | None = None  # (B,) 2D noise / person size (training data)

    def motion_weights(self, lc: SequenceLossConfig) -> torch.Tensor | None:
        """(B,) weights of each chunk's motion terms (``lc.motion_noise_power``), or None."""
        if not lc.motion_noise_power or self.noise_rel is None:
            return None
        rel = self.noise_rel.clamp_min(1e-6) / lc.motion_noise_ref
        wmax = lc.motion_weight_max
        return rel.pow(lc.motion_noise_power).clamp(1.0 / wmax, wmax)


def sequence_losses(model, ch: Chunks, lc: SequenceLossConfig) -> dict:
    """Supervised loss of chunks: the CVAE terms of lifter v2 per counted frame, plus the
    velocity error of each prior sample along the chunk (one noise vector per sample and
    chunk, as the runtime draws them) and the frame-to-frame change of bone lengths."""
    b, n = ch.mask.shape
    c, mu_p, logvar_p, lengths, _ = model.encode_sequence(ch)
    y = ch.target.flatten(0, 1)
    cur = ch.frames[ch.cur.flatten()]
    m = ch.mask.flatten().float()
    denom = m.sum().clamp_min(1.0)

    def avg(v: torch.Tensor) -> torch.Tensor:
        return (v * m).sum() / denom

    mu_q, logvar_q = _split_gaussian(model.posterior(torch.cat([cur, y], -1)))
    z_q = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
    pred_q = model.pose(c, z_q[:, None], lengths)[:, 0]
    eps = torch.randn(b, 1, lc.n_samples, mu_p.shape[-1], device=y.device)
    eps = eps.expand(b, n, -1, -1).flatten(0, 1)  # common noise along each chunk
    z_p = mu_p[:, None] + (0.5 * logvar_p).exp()[:, None] * eps
    directions = model.directions(c, z_p)
    pred_p = model.joints(lengths, directions)  # (B * L, M, 48)
    inv2s2 = 0.5 / lc.sigma_m**2
    rec_q = inv2s2 * avg(model.sq_err_m(pred_q, y))
    rec_p = inv2s2 * avg(model.sq_err_m(pred_p, y[:, None]).mean(1))
    kl = avg(gaussian_kl(mu_q, logvar_q, mu_p, logvar_p))
    mean_err = avg(model.mpjpe_m(pred_p.mean(1), y))
    best_err = avg(model.mpjpe_m(pred_p, y[:, None]).min(1).values)
    true_len = bone_lengths_t(y.unflatten(-1, (N_BONES, 3)))
    bone_err = avg((lengths - true_len).abs().mean(-1))
    # temporal terms between consecutive counted frames of a chunk (per grid frame)
    moving = (
        pred_p
        if lc.motion_body == "all"
        else model.joints(motion_body(lengths, ch.mask, lc.motion_body), directions)
    )
    samples = moving.unflatten(0, (b, n)).unflatten(-1, (-1, 3))
    truth = y.unflatten(0, (b, n)).unflatten(-1, (-1, 3))
    lengths_bn = lengths.unflatten(0, (b, n))
    weights = ch.motion_weights(lc)
    vel_err, acc_err, len_change = motion_errors(
        samples, truth, lengths_bn, ch.nxt, lc.per_chunk, weights
    )
    loss = (1.0 - lc.alpha) * (rec_q + lc.beta * kl) + lc.alpha * rec_p
    temporal = lc.w_vel * vel_err + lc.w_acc * acc_err + lc.w_bone_const * len_change
    if lc.w_vel_mean:  # what MPJVE and the acceleration error measure: the mean pose
        mean_vel, mean_acc, _ = motion_errors(
            samples.mean(2, keepdim=True), truth, lengths_bn, ch.nxt, lc.per_chunk, weights
        )
        temporal = temporal + lc.w_vel_mean * (mean_vel + 0.5 * mean_acc)
    loss = (
        loss
        + (lc.w_mean * mean_err + lc.w_best * best_err + lc.w_bone * bone_err + temporal)
        / lc.sigma_m
    )
    return {
        "loss": loss,
        "kl": kl,
        "mpjpe_m": avg(model.mpjpe_m(pred_q, y)),
        "mpjpe_mean_of_m_m": mean_err,
        "best_of_m_m": best_err,
        "bone_m": bone_err,
        "vel_m": vel_err,
        "acc_m": acc_err,
        "len_change_m": len_change,
    }


def motion_body(lengths: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """The bone lengths (B * L, 16) the motion terms see (:attr:`SequenceLossConfig.
    motion_body`): the same values, with all, none or only the within-chunk changes (about
    each chunk's mean over its counted positions ``mask`` (B, L)) carrying a gradient."""
    if mode == "all":
        return lengths
    if mode == "none":
        return lengths.detach()
    b, n = mask.shape
    per = lengths.unflatten(0, (b, n))
    m = mask.to(lengths.dtype)[..., None]
    level = (per * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1.0)
    return (per - level + level.detach()).flatten(0, 1)


def motion_errors(samples, truth, lengths, nxt, per_chunk: bool = False, weights=None):
    """Velocity and acceleration errors of each sample (B, L, M, J, 3) against the truth
    (B, L, J, 3) between consecutive counted positions ``nxt`` (B, L), per grid frame, and
    the change of the bone lengths (B, L, 16); metres, means over joints and samples, and
    over every pair of the batch or (``per_chunk``) over each chunk's pairs, then chunks;
    ``weights`` (B,) (or None: all 1) weigh the chunks in those means."""
    b, n = nxt.shape
    rows = torch.arange(b, device=nxt.device)[:, None]
    has = nxt >= 0
    j = nxt.clamp_min(0)
    gap = (j - torch.arange(n, device=nxt.device)).clamp_min(1).to(truth.dtype)
    vs = (samples[rows, j] - samples) / gap[..., None, None, None]
    vt = (truth[rows, j] - truth) / gap[..., None, None]
    dv = vs - vt[:, :, None]
    vel = dv.norm(dim=-1).mean((-1, -2))
    has2 = has & has[rows, j]
    span = 0.5 * (gap + gap[rows, j])
    acc = ((dv[rows, j] - dv) / span[..., None, None, None]).norm(dim=-1).mean((-1, -2))
    dlen = ((lengths[rows, j] - lengths).abs() / gap[..., None]).mean(-1)

    wt = torch.ones(b, dtype=truth.dtype, device=nxt.device) if weights is None else weights

    def avg(v, m):
        if per_chunk:
            n_pairs = m.sum(1)
            per = (v * m).sum(1) / n_pairs.clamp_min(1.0)
            w = wt * (n_pairs > 0)
            return (per * w).sum() / w.sum().clamp_min(1e-12)
        m = m * wt[:, None]
        return (v * m).sum() / m.sum().clamp_min(1e-12)

    return avg(vel, has.float()), avg(acc, has2.float()), avg(dlen, has.float())
