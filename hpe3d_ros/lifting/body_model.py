"""Lifter v2: a conditional VAE whose K hypotheses share one estimated body.

Per person (once): the 2D encoder (MLP or graph network) gives a code ``c``; a length
head maps ``c`` to 16 bone lengths inside the hard limits of
:data:`~hpe3d_ros.lifting.body.BONE_LIMITS_M` (``body_width`` > 0: a separate MLP reads the
lengths from the 2D features themselves, so the body has its own network and gradients);
the learned prior p(z | 2D) gives the latent mean and spread; a per-person temperature
factor comes from the input's 2D noise level (:meth:`BodyCVAE.temperature_scale`, fitted on
validation, 1 until calibrated).

Per hypothesis: the split decoder maps (c, z) to 16 bone *directions* (normalised 3-vectors)
and forward kinematics with the person's lengths gives the 16 non-root joints in metres,
virtual camera frame. Every hypothesis therefore has exactly the same bone lengths; what
varies is the pose. The output is already in metres, so the checkpoint's target statistics
are mean 0, std 1 and :class:`~hpe3d_ros.lifting.graph.LifterGraph` stays as it is.

For a temporal model (issue 17): :meth:`BodyCVAE.body` (lengths from a code) and
:meth:`BodyCVAE.pose` (directions from code + z, forward kinematics) are separate, so a
sequence encoder can estimate one body per *track* and decode per frame with the same
decoder.

Loss (training): the CVAE terms of :class:`~hpe3d_ros.lifting.model.CVAELifter` (posterior
reconstruction, KL to the learned prior, prior-sample reconstruction, MPJPE of the mean of
M prior samples, best of M) on the FK output, plus ``w_bone`` times the mean absolute bone
length error (metres / sigma).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hpe3d_ros.lifting.body import (
    BONE_LIMITS_M,
    N_BONES,
    ancestor_matrix,
    bone_lengths_t,
    forward_kinematics,
    unit,
)
from hpe3d_ros.lifting.model import CVAELifter, ModelConfig, _split_gaussian, gaussian_kl
from hpe3d_ros.lifting.normalize import EXACT_NOISE_LEVEL, N_FEATURES, N_JOINTS

#: Typical adult bone lengths (m), the length head's starting point (median of real CMU
#: skeletons' bones; any value inside the limits would do).
TYPICAL_BONES_M = np.array(
    [0.088, 0.42, 0.43, 0.088, 0.42, 0.43, 0.225, 0.225, 0.265, 0.11, 0.198, 0.29, 0.195,
     0.198, 0.29, 0.195]
)  # fmt: skip
#: Knots of the per-condition temperature: the mean noise-level feature of the visible
#: joints (log of noise / spread, see normalize.noise_level_features), from exact 2D (the
#: first knot) up in steps of 0.5 (a factor 2.1 in noise relative to the person's size).
CALIB_KNOTS = EXACT_NOISE_LEVEL + np.arange(8) * 0.5
#: Knots of the temperature when the noise level is not given: the person's log 2D size
#: feature (normalize: (log spread + 3) / 1.5; -1 is about 40 m away for a 60 deg, 1280 px
#: camera, +1 about 2.5 m): detectors have a pixel floor, so smaller people are noisier.
SIZE_KNOTS = np.arange(-1.5, 1.51, 0.5)
_LOG_SPREAD = N_FEATURES - 1  # index of the log-spread feature


class BodyCVAE(CVAELifter):
    """CVAE with a shared per-person skeleton and forward-kinematics decoder (module doc)."""

    outputs_metres = True

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.length_head = nn.Linear(cfg.cond_dim, N_BONES)
        if cfg.body_width > 0:  # the body's own 2D -> lengths branch (no dropout)
            w = cfg.body_width
            self.body_net = nn.Sequential(
                nn.Linear(cfg.n_in, w), nn.GELU(), nn.Linear(w, w), nn.GELU(),
                nn.Linear(w, w), nn.GELU(), nn.Linear(w, N_BONES),
            )  # fmt: skip
        lo, hi = BONE_LIMITS_M[:, 0], BONE_LIMITS_M[:, 1]
        self.register_buffer("len_lo", torch.tensor(lo, dtype=torch.float32))
        self.register_buffer("len_span", torch.tensor(hi - lo, dtype=torch.float32))
        self.register_buffer("ancestors", torch.tensor(ancestor_matrix(), dtype=torch.float32))
        with torch.no_grad():
            frac = (TYPICAL_BONES_M - lo) / (hi - lo)
            self.length_head.bias.copy_(torch.tensor(np.log(frac / (1 - frac))))
            self.length_head.weight.mul_(0.1)
            if cfg.body_width > 0:
                self.body_net[-1].bias.copy_(self.length_head.bias)
                self.body_net[-1].weight.mul_(0.1)
        # per-condition temperature factors (training.calibrate fits them; 1 = as trained)
        self.register_buffer("calib_knots", torch.tensor(CALIB_KNOTS, dtype=torch.float32))
        self.register_buffer("calib_values", torch.ones(len(CALIB_KNOTS)))
        self.register_buffer("size_knots", torch.tensor(SIZE_KNOTS, dtype=torch.float32))
        self.register_buffer("calib_unknown", torch.ones(len(SIZE_KNOTS)))

    # ----------------------------------------------------------------- per person
    def body(self, c: torch.Tensor) -> torch.Tensor:
        """Per-person code (N, C) -> (N, 16) bone lengths in metres, within the limits."""
        return self.len_lo + self.len_span * torch.sigmoid(self.length_head(c))

    def person_body(self, feats: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The person's (N, 16) bone lengths: from the 2D features' own branch where the
        lifter has one (``body_width``), else from the code (:meth:`body`)."""
        if self.cfg.body_width > 0:
            return self.len_lo + self.len_span * torch.sigmoid(self.body_net(feats))
        return self.body(c)

    def temperature_scale(self, feats: torch.Tensor) -> torch.Tensor:
        """(N, F) features -> (N,) factor on the temperature for the input's noise level.

        Piecewise linear in the mean noise-level feature over :data:`CALIB_KNOTS` when the
        noise level is given, in the person's log size over :data:`SIZE_KNOTS` when it is
        not; all ones for lifters without noise input.
        """
        if not self.cfg.noise_input:
            return feats.new_ones(feats.shape[0])
        x, given = self.noise_level(feats)
        known = _interp(x, self.calib_knots, self.calib_values)
        unknown = _interp(feats[:, _LOG_SPREAD], self.size_knots, self.calib_unknown)
        return given * known + (1.0 - given) * unknown

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before the size knots hold one "unknown" factor: repeat it
        key = prefix + "calib_unknown"
        if key in state_dict and state_dict[key].numel() == 1:
            state_dict[key] = state_dict[key].expand(len(SIZE_KNOTS)).clone()
        if key in state_dict:
            state_dict.setdefault(prefix + "size_knots", self.size_knots.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def noise_level(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, F) noise-aware features -> mean noise-level feature of the visible joints
        (N,) and the "given" flag (N,) (1 = the level was passed, 0 = unknown)."""
        j = N_JOINTS
        valid = feats[:, 2 * j : 3 * j]
        level = feats[:, N_FEATURES : N_FEATURES + j]
        x = (level * valid).sum(1) / valid.sum(1).clamp_min(1.0)
        return x, feats[:, N_FEATURES + j]

    def encode(self, feats: torch.Tensor) -> tuple[torch.Tensor, ...]:
        c = self.cond_net(feats)
        mu, logvar = self._prior(c)
        return c, mu, logvar, self.person_body(feats, c), self.temperature_scale(feats)

    # ----------------------------------------------------------------- per hypothesis
    def directions(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Code (N, C), latents (N, K, L) -> (N, K, 16, 3) unit bone directions."""
        return unit(self.decoder(c, z).unflatten(-1, (N_BONES, 3)))

    def joints(self, lengths: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """Lengths (N, 16), directions (N, K, 16, 3) -> (N, K, 48) joints in metres."""
        return forward_kinematics(lengths, directions, self.ancestors).flatten(-2)

    def pose(self, c: torch.Tensor, z: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Code (N, C), latents (N, K, L), lengths (N, 16) -> (N, K, 48) joints in metres."""
        return self.joints(lengths, self.directions(c, z))

    def decode(self, cond: tuple, eps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        c, mu, logvar, lengths, t_scale = cond
        scale = temperature * t_scale[:, None, None] * (0.5 * logvar).exp()[:, None]
        return self.pose(c, mu[:, None] + scale * eps, lengths)

    # ----------------------------------------------------------------- training
    def losses(
        self,
        feats: torch.Tensor,
        target: torch.Tensor,
        beta: float = 1.0,
        alpha: float = 0.2,
        sigma_m: float = 0.05,
        w_mean: float = 0.0,
        n_mean: int = 8,
        w_best: float = 0.0,
        w_bone: float = 10.0,
        w_shape: float = 0.0,
        **_: float,
    ) -> dict:
        """As :meth:`CVAELifter.losses` on the FK output, plus the bone-length term.

        ``w_shape``: weight of the body's *proportions* error, scale-free: the mean absolute
        log-length error of the 16 bones after removing the person's mean log error. A
        scale-free 2D pose shows proportions, not size; in the absolute bone term the size
        error (the same sign on every bone) drowns the proportions' signal.
        """
        c = self.cond_net(feats)
        mu_p, logvar_p = self._prior(c)
        lengths = self.person_body(feats, c)
        mu_q, logvar_q = _split_gaussian(self.posterior(torch.cat([feats, target], -1)))
        z_q = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
        pred_q = self.pose(c, z_q[:, None], lengths)[:, 0]
        eps = torch.randn(mu_p.shape[0], max(1, n_mean), mu_p.shape[1], device=mu_p.device)
        z_p = mu_p[:, None] + (0.5 * logvar_p).exp()[:, None] * eps
        pred_p = self.pose(c, z_p, lengths)  # (N, M, 48) prior samples
        inv2s2 = 0.5 / sigma_m**2
        rec_q = inv2s2 * self.sq_err_m(pred_q, target).mean()
        rec_p = inv2s2 * self.sq_err_m(pred_p, target[:, None]).mean()
        kl = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).mean()
        mean_err = self.mpjpe_m(pred_p.mean(1), target).mean()
        true_lengths = bone_lengths_t(target.unflatten(-1, (N_BONES, 3)))
        bone_err = (lengths - true_lengths).abs().mean()
        log_err = lengths.log() - true_lengths.clamp_min(1e-3).log()
        shape_err = (log_err - log_err.mean(-1, keepdim=True)).abs().mean()
        loss = (1.0 - alpha) * (rec_q + beta * kl) + alpha * rec_p
        loss = loss + (w_mean * mean_err + w_bone * bone_err + w_shape * shape_err) / sigma_m
        if w_best:
            best_err = self.mpjpe_m(pred_p, target[:, None]).min(1).values.mean()
            loss = loss + w_best * best_err / sigma_m
        return {
            "loss": loss,
            "rec_q": rec_q,
            "rec_p": rec_p,
            "kl": kl,
            "bone_m": bone_err,
            "shape_log": shape_err,
            "mpjpe_m": self.mpjpe_m(pred_q, target).mean(),
            "mpjpe_mean_of_m_m": mean_err,
        }


def _interp(x: torch.Tensor, knots: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``values`` at ``x`` (N,) over evenly spaced ``knots``, flat beyond
    (hat functions: plain arithmetic, so it exports to ONNX as it is)."""
    step = knots[1] - knots[0]
    x = x.clamp(knots[0], knots[-1])
    return (torch.relu(1.0 - (x[:, None] - knots[None, :]).abs() / step) * values).sum(1)
