"""Self-supervised losses of the temporal lifter from 2D tracks alone (no 3D read).

For each chunk of a 2D-only track (as :mod:`training.temporal_data` builds them; the 2D of
each counted frame is recovered from its lifter features: keypoints in the frame's virtual
camera divided by their RMS spread, the spread from the log-spread feature):

* **reprojection**: each lifted pose (the prior's mean latent and ``n_samples`` prior
  samples: every hypothesis must agree with what the camera saw) is placed on the virtual
  optical axis at the depth whose weak-perspective projection fits the 2D best (closed-form
  least squares), projected with full perspective, and compared with the 2D (mean distance
  per visible joint, in units of the person's 2D spread, so near and far people weigh alike);
* **rotation cycle** (Chen et al. 2019, "Unsupervised 3D pose estimation with geometric
  self-supervision"): the mean lift of the chunk is turned about the camera's vertical axis
  by a random angle (and a small random elevation), projected, lifted again as a new track
  (same visible joints and confidences), turned back; it must match the first lift in 3D
  and, projected, the original 2D;
* **temporal smoothness**: the mean lift's acceleration between consecutive seen frames
  (weak: true motion accelerates too);
* **bone-length constancy**: the bone lengths of the body head stay at their chunk mean.

All distances are metres (3D) or spread units (2D); the weights are in
:class:`SelfSupConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hpe3d_ros.lifting.normalize import N_FEATURES, N_JOINTS

_J = N_JOINTS
_LOG_SPREAD_CENTRE, _LOG_SPREAD_SCALE = -3.0, 1.5  # hpe3d_ros.lifting.normalize


@dataclass
class SelfSupConfig:
    """Weights of the self-supervised terms (metres or 2D spread units)."""

    weight: float = 1.0  # of the whole self-supervised loss against the supervised one
    w_reproj: float = 1.0
    w_cycle3d: float = 2.0
    w_cycle2d: float = 0.5
    w_smooth: float = 0.5
    w_bone_const: float = 2.0
    n_samples: int = 4
    max_elev_deg: float = 15.0
    sigma_m: float = 0.05  # 3D distances are divided by this (as the supervised terms)
    sigma_2d: float = 0.05  # 2D distances (spread units) are divided by this


def frame_2d(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lifter features (..., F) -> scaled 2D (..., 17, 2), visible (..., 17), spread (...)."""
    kp = x[..., : 2 * _J].unflatten(-1, (_J, 2))
    vis = x[..., 2 * _J : 3 * _J]
    spread = torch.exp(x[..., N_FEATURES - 1] * _LOG_SPREAD_SCALE + _LOG_SPREAD_CENTRE)
    return kp, vis, spread


def with_root(joints16: torch.Tensor) -> torch.Tensor:
    """(..., 48) non-root joints -> (..., 17, 3) with the root at 0."""
    j = joints16.unflatten(-1, (_J - 1, 3))
    return torch.cat([torch.zeros_like(j[..., :1, :]), j], dim=-2)


def fit_depth(pose: torch.Tensor, kp: torch.Tensor, vis: torch.Tensor, spread: torch.Tensor):
    """Depth D (...,) of the root on the optical axis whose weak-perspective projection of
    ``pose`` (..., 17, 3) fits the scaled 2D ``kp`` (..., 17, 2) best over visible joints."""
    xy = pose[..., :2]
    num = (vis[..., None] * kp * xy).sum((-1, -2))
    den = (vis[..., None] * xy * xy).sum((-1, -2))
    s = (num / den.clamp_min(1e-6)).clamp_min(1e-3)  # kp ~ s * xy, s = 1 / (D * spread)
    return 1.0 / (s * spread)


def project(pose: torch.Tensor, depth: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
    """(..., 17, 3) root-relative pose at ``depth`` on the axis -> scaled 2D (..., 17, 2)."""
    z = (pose[..., 2] + depth[..., None]).clamp_min(0.05)
    return pose[..., :2] / z[..., None] / spread[..., None, None]


def reprojection(pose, kp, vis, spread) -> torch.Tensor:
    """(..., 17) distance of each joint's projection from the 2D (spread units; 0 unseen)."""
    d = fit_depth(pose, kp, vis, spread)
    return (project(pose, d, spread) - kp).norm(dim=-1) * vis


def random_turn(n: int, max_elev_deg: float, device=None) -> torch.Tensor:
    """(n, 3, 3) rotations: any azimuth about the camera's y axis, then a small elevation."""
    az = (torch.rand(n, device=device) * 2 - 1) * math.pi
    el = (torch.rand(n, device=device) * 2 - 1) * math.radians(max_elev_deg)
    ca, sa, ce, se = az.cos(), az.sin(), el.cos(), el.sin()
    zero, one = torch.zeros_like(az), torch.ones_like(az)
    ry = torch.stack([ca, zero, sa, zero, one, zero, -sa, zero, ca], -1).view(n, 3, 3)
    rx = torch.stack([one, zero, zero, zero, ce, -se, zero, se, ce], -1).view(n, 3, 3)
    return rx @ ry


def view_features(q2d: torch.Tensor, like: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Lifter features of a new view: unscaled 2D (..., 17, 2) on the virtual axis, with the
    visible joints, confidences and noise level of ``like`` (..., F); unseen -> zeros."""
    vis = like[..., 2 * _J : 3 * _J]
    n_vis = vis.sum(-1).clamp_min(1.0)
    spread = ((q2d.pow(2).sum(-1) * vis).sum(-1) / n_vis + 1e-8).sqrt()
    kp = q2d / spread[..., None, None] * vis[..., None]
    log_s = ((spread.log() - _LOG_SPREAD_CENTRE) / _LOG_SPREAD_SCALE).clamp(-3.0, 3.0)
    ray = torch.zeros_like(like[..., :3])
    ray[..., 2] = 1.0
    parts = [
        kp.flatten(-2),
        like[..., 2 * _J : 4 * _J],
        ray,
        log_s[..., None],
        like[..., N_FEATURES:],
    ]
    return torch.cat(parts, -1) * seen[..., None]


def selfsup_losses(model, ch, cfg: SelfSupConfig) -> dict:
    """Self-supervised loss of 2D-only chunks (:class:`~hpe3d_ros.lifting.sequence_loss.Chunks`
    without targets); see the module docstring."""
    w = model.window
    b, n = ch.mask.shape
    cur = ch.frames[ch.cur]  # (B, L, F) the counted positions' frames
    kp, vis, spread = frame_2d(cur)
    m = ch.mask.float()
    denom = m.sum().clamp_min(1.0)
    c, mu, logvar, lengths, _ = model.encode_sequence(ch)
    mean_pose = with_root(model.pose(c, mu[:, None], lengths)[:, 0]).unflatten(0, (b, n))
    eps = torch.randn(b, 1, cfg.n_samples, mu.shape[-1])
    eps = eps.expand(b, n, -1, -1).flatten(0, 1)
    z = mu[:, None] + (0.5 * logvar).exp()[:, None] * eps
    samples = with_root(model.pose(c, z, lengths)).unflatten(0, (b, n))  # (B, L, M, 17, 3)
    n_vis = vis.sum(-1).clamp_min(1.0)
    rep_mean = reprojection(mean_pose, kp, vis, spread).sum(-1) / n_vis
    rep_s = reprojection(samples, kp[:, :, None], vis[:, :, None], spread[:, :, None])
    rep_s = rep_s.sum(-1).mean(-1) / n_vis
    reproj = ((rep_mean + rep_s) * m).sum() / (2 * denom)

    # rotation cycle over the whole chunk (one turn per chunk); the new view's track has the
    # counted frames only (no context before the chunk's last L grid frames)
    rot = random_turn(b, cfg.max_elev_deg)[:, None]  # (B, 1, 3, 3)
    depth = fit_depth(mean_pose, kp, vis, spread).detach()
    turned = mean_pose @ rot.transpose(-1, -2)
    q = turned[..., :2] / (turned[..., 2] + depth[..., None]).clamp_min(0.05)[..., None]
    new = view_features(q, cur, m)  # (B, L, F)
    rows = torch.arange(b * n, device=m.device).view(b, n)
    tail = model.grid(model.frame_codes(new.flatten(0, 1)), rows, rows, m * 0, m > 0)
    grid = torch.cat([tail.new_zeros(b, w - 1, tail.shape[-1]), tail], 1)
    c2, mu2, _, len2, _ = model.encode_grid(grid, new.flatten(0, 1))
    back = with_root(model.pose(c2, mu2[:, None], len2)[:, 0]).unflatten(0, (b, n)) @ rot
    cyc3 = ((back - mean_pose).norm(dim=-1).mean(-1) * m).sum() / denom
    cyc2 = ((reprojection(back, kp, vis, spread).sum(-1) / n_vis) * m).sum() / denom

    # temporal smoothness and one body along the chunk (counted frames)
    trip = (ch.mask[:, 2:] & ch.mask[:, 1:-1] & ch.mask[:, :-2]).float()
    acc = (mean_pose[:, 2:] - 2 * mean_pose[:, 1:-1] + mean_pose[:, :-2]).norm(dim=-1).mean(-1)
    smooth = (acc * trip).sum() / trip.sum().clamp_min(1.0)
    lens = lengths.unflatten(0, (b, n))
    chunk_mean = (lens * m[..., None]).sum(1, keepdim=True) / m.sum(1).clamp_min(1.0)[
        :, None, None
    ]
    bone = ((lens - chunk_mean).abs().mean(-1) * m).sum() / denom

    loss = (cfg.w_reproj * reproj + cfg.w_cycle2d * cyc2) / cfg.sigma_2d + (
        cfg.w_cycle3d * cyc3 + cfg.w_smooth * smooth + cfg.w_bone_const * bone
    ) / cfg.sigma_m
    return {
        "loss": loss,
        "reproj": reproj,
        "cycle3d_m": cyc3,
        "cycle2d": cyc2,
        "smooth_m": smooth,
        "bone_const_m": bone,
    }
