"""Temporal lifter (issue 17): lifter v2 refined by a causal dilated temporal convolution.

Per frame, the single-frame lifter v2's own 2D encoder (:class:`~hpe3d_ros.lifting.
body_model.BodyCVAE`'s ``cond_net``: features of :func:`~hpe3d_ros.lifting.normalize.
prepare_inputs` with the noise level, each frame in its own virtual camera) gives a code.
The codes of one track's last ``window`` frames, on the model's ``rate_hz`` grid (read from
the frames' stamps by :func:`~hpe3d_ros.lifting.track_window.grid_weights`: a grid time
between two frames interpolates their codes, a time with no frame is zero with a "seen"
flag of 0; with ``rate_input`` a third channel says how far the time lies from the frames
it interpolates, which tells a 10 Hz camera from a 30 Hz one), go through a
VideoPose3D-style stack of dilated 1D convolutions (Pavllo et al. 2019) made *causal*: the
output of frame ``t`` depends only on frames ``t - window + 1 .. t``, so the node runs it
online. It is a *residual* on the current frame's own code::

    c_t = relu(code_t + TCN(codes_{t - window + 1 .. t}))

and the last layer of the TCN starts at zero, so before any temporal training the model is
exactly the single-frame lifter it was initialised from (``base`` of the training config);
training only has to learn what the history adds.

Everything after ``c_t`` is lifter v2 (by inheritance): bone lengths within hard limits
(:meth:`BodyCVAE.body`), the learned prior p(z_t | c_t), bone directions decoded per
hypothesis and forward kinematics (:meth:`BodyCVAE.pose`), the per-condition temperature on
the current frame's noise level (:meth:`BodyCVAE.temperature_scale`); the posterior of
training sees the current frame's features and 3D, as in lifter v2.

Two evaluations of the same convolutions: :meth:`CausalTCN.forward` on a sequence
(training, every frame at once) and :meth:`CausalTCN.last` on windows (strided: each layer
computes only what the last frame needs; runtime and export); ``last(x)`` equals
``forward(x)[:, -1]`` (a test checks).

**Coherent hypotheses**: the runtime draws one latent noise vector per hypothesis and *track*
(common random numbers) and reuses it at every frame, so hypothesis k at t and t + 1 is the
same quantile of two neighbouring, overlapping-window priors: it moves with the person
instead of jumping between modes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from hpe3d_ros.lifting.body import N_BONES, bone_lengths_t
from hpe3d_ros.lifting.body_model import BodyCVAE
from hpe3d_ros.lifting.model import ModelConfig, _split_gaussian, gaussian_kl


@dataclass
class TemporalConfig:
    """Temporal hyper-parameters (stored in the checkpoint beside the ModelConfig)."""

    widths: tuple[int, ...] = (3, 3, 3)  # kernel widths; the window is their product
    channels: int = 256
    dropout: float = 0.1
    rate_hz: float = 30.0  # the model's frame rate: codes are resampled to it
    max_gap_s: float = 0.5  # frames further apart than this are not interpolated between
    # a grid channel says how far a grid frame lies from the frames it interpolates (0 on a
    # frame, 1 half-way between two), so one network knows a camera's rate
    rate_input: bool = False
    # the TCN also reads each frame's 2D features (what the 2D encoder reads), not only codes
    raw_input: bool = False

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"temporal widths must be >= 1, got {self.widths}")

    @property
    def window(self) -> int:
        """Frames one output sees (the receptive field), at ``rate_hz``."""
        return math.prod(self.widths)

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}


class CausalTCN(nn.Module):
    """Causal dilated temporal convolutions: per-frame features -> per-frame code (module doc).

    Layer 0 expands the features with kernel ``widths[0]``; block i (i >= 1) is a dilated
    convolution of kernel ``widths[i]`` and dilation ``widths[0] * ... * widths[i-1]``, then
    a 1x1 convolution, each with batch norm, ReLU and dropout, plus a skip connection from
    the block input's last tap (causal: the newest frame).
    """

    def __init__(
        self, n_in: int, widths: tuple[int, ...], channels: int, n_out: int, dropout: float
    ) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.expand = nn.Conv1d(n_in, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels)
        self.convs = nn.ModuleList()
        self.conv_bns = nn.ModuleList()
        self.mixes = nn.ModuleList()
        self.mix_bns = nn.ModuleList()
        for w in widths[1:]:
            self.convs.append(nn.Conv1d(channels, channels, w, bias=False))
            self.conv_bns.append(nn.BatchNorm1d(channels))
            self.mixes.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.mix_bns.append(nn.BatchNorm1d(channels))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(channels, n_out)

    @property
    def window(self) -> int:
        return math.prod(self.widths)

    def _act(self, bn: nn.Module, h: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(bn(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L + window - 1, F) -> (B, L, n_out): the code of each of the last L frames."""
        h = self._act(self.expand_bn, self.expand(x.transpose(1, 2)))
        dilation = self.widths[0]
        for i, w in enumerate(self.widths[1:]):
            skip = h[:, :, (w - 1) * dilation :]
            h = nn.functional.conv1d(h, self.convs[i].weight, dilation=dilation)
            h = self._act(self.conv_bns[i], h)
            h = skip + self._act(self.mix_bns[i], self.mixes[i](h))
            dilation *= w
        return self.out(h.transpose(1, 2))

    def last(self, x: torch.Tensor) -> torch.Tensor:
        """(N, window, F) -> (N, n_out): the last frame's code, strided (module docstring)."""
        w0 = self.widths[0]
        h = self._act(
            self.expand_bn, nn.functional.conv1d(x.transpose(1, 2), self.expand.weight, stride=w0)
        )
        for i, w in enumerate(self.widths[1:]):
            skip = h[:, :, w - 1 :: w]
            h = self._act(
                self.conv_bns[i], nn.functional.conv1d(h, self.convs[i].weight, stride=w)
            )
            h = skip + self._act(self.mix_bns[i], self.mixes[i](h))
        return self.out(h[:, :, -1])


MOTION_BODY = ("all", "none", "changes")


@dataclass
class SequenceLossConfig:
    """Weights of the supervised sequence loss (:meth:`TemporalBodyVAE.sequence_losses`)."""

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


class TemporalBodyVAE(BodyCVAE):
    """Lifter v2 with the causal temporal residual (module docstring)."""

    def __init__(self, cfg: ModelConfig, tcfg: TemporalConfig) -> None:
        super().__init__(cfg)
        self.tcfg = tcfg
        self.temporal = CausalTCN(
            self.grid_channels, tcfg.widths, tcfg.channels, cfg.cond_dim, tcfg.dropout
        )
        with torch.no_grad():  # starts as the single-frame lifter
            self.temporal.out.weight.zero_()
            self.temporal.out.bias.zero_()

    @property
    def window(self) -> int:
        return self.temporal.window

    def grid_layout(self) -> list[tuple[str, int]]:
        """Named channel groups of a grid frame, in order: the 2D encoder's code, (``raw_input``)
        the frame's features, "seen", (``rate_input``) the interpolation distance."""
        return grid_layout(self.cfg, self.tcfg)

    @property
    def grid_channels(self) -> int:
        """Channels per grid frame (:meth:`grid_layout`)."""
        return sum(n for _, n in self.grid_layout())

    @property
    def code_channels(self) -> int:
        """Channels per frame of :meth:`frame_codes`: the code and (``raw_input``) features."""
        return sum(n for name, n in self.grid_layout() if name in ("code", "raw"))

    @property
    def packed_size(self) -> int:
        """Per-track input of :meth:`encode`: current frame's features + the window's codes."""
        return self.cfg.n_in + self.window * self.grid_channels

    def frame_codes(self, feats: torch.Tensor) -> torch.Tensor:
        """(M, F) per-frame features -> (M, :attr:`code_channels`): the single-frame 2D
        encoder's codes, followed (``raw_input``) by the features themselves."""
        codes = self.cond_net(feats)
        return torch.cat([codes, feats], -1) if self.tcfg.raw_input else codes

    def grid(self, codes, i0, i1, w, seen) -> torch.Tensor:
        """Codes (M, C) on the grid: (..., S) indices, weights, seen -> (..., S,
        :attr:`grid_channels`): the interpolated code and "seen", then (``rate_input``)
        ``2 min(w, 1 - w)``: 0 on a frame, 2/3 between the frames of a 10 Hz camera on a
        30 Hz grid, 1 half-way (15 Hz)."""
        w = w.to(codes.dtype)
        g = (1.0 - w)[..., None] * codes[i0] + w[..., None] * codes[i1]
        s = seen.to(codes.dtype)[..., None]
        parts = [g * s, s]
        if self.tcfg.rate_input:
            parts.append(2.0 * torch.minimum(w, 1.0 - w)[..., None] * s)
        return torch.cat(parts, -1)

    def _heads(self, grid_seq: torch.Tensor, delta: torch.Tensor, current: torch.Tensor):
        c = torch.relu(grid_seq[..., : self.cfg.cond_dim] + delta)
        mu, logvar = self._prior(c)
        return c, mu, logvar, self.body(c), self.temperature_scale(current)

    def encode(self, packed: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(N, :attr:`packed_size`) -> the BodyCVAE per-person tuple of each track's last
        frame (code, prior mean and log-variance, bone lengths, temperature factor)."""
        f = self.cfg.n_in
        grid = packed[:, f:].unflatten(1, (self.window, -1))
        return self._heads(grid[:, -1], self.temporal.last(grid), packed[:, :f])

    def encode_grid(self, grid: torch.Tensor, current: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Codes on the grid (B, S, C + 1) and the counted frames' features (B * L, F) -> the
        tuple of the last L positions, flattened to (B * L, ...)."""
        delta = self.temporal(grid)
        tail = grid[:, self.window - 1 :]
        return self._heads(tail.flatten(0, 1), delta.flatten(0, 1), current)

    def encode_sequence(self, ch: Chunks) -> tuple[torch.Tensor, ...]:
        """The tuple of every counted position of the chunks, flattened to (B * L, ...)."""
        grid = self.grid(self.frame_codes(ch.frames), ch.i0, ch.i1, ch.w, ch.seen)
        return self.encode_grid(grid, ch.frames[ch.cur.flatten()])

    def sequence_losses(self, ch: Chunks, lc: SequenceLossConfig) -> dict:
        """Supervised loss of chunks: the CVAE terms of lifter v2 per counted frame, plus the
        velocity error of each prior sample along the chunk (one noise vector per sample and
        chunk, as the runtime draws them) and the frame-to-frame change of bone lengths."""
        b, n = ch.mask.shape
        c, mu_p, logvar_p, lengths, _ = self.encode_sequence(ch)
        y = ch.target.flatten(0, 1)
        cur = ch.frames[ch.cur.flatten()]
        m = ch.mask.flatten().float()
        denom = m.sum().clamp_min(1.0)

        def avg(v: torch.Tensor) -> torch.Tensor:
            return (v * m).sum() / denom

        mu_q, logvar_q = _split_gaussian(self.posterior(torch.cat([cur, y], -1)))
        z_q = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
        pred_q = self.pose(c, z_q[:, None], lengths)[:, 0]
        eps = torch.randn(b, 1, lc.n_samples, mu_p.shape[-1], device=y.device)
        eps = eps.expand(b, n, -1, -1).flatten(0, 1)  # common noise along each chunk
        z_p = mu_p[:, None] + (0.5 * logvar_p).exp()[:, None] * eps
        directions = self.directions(c, z_p)
        pred_p = self.joints(lengths, directions)  # (B * L, M, 48)
        inv2s2 = 0.5 / lc.sigma_m**2
        rec_q = inv2s2 * avg(self.sq_err_m(pred_q, y))
        rec_p = inv2s2 * avg(self.sq_err_m(pred_p, y[:, None]).mean(1))
        kl = avg(gaussian_kl(mu_q, logvar_q, mu_p, logvar_p))
        mean_err = avg(self.mpjpe_m(pred_p.mean(1), y))
        best_err = avg(self.mpjpe_m(pred_p, y[:, None]).min(1).values)
        true_len = bone_lengths_t(y.unflatten(-1, (N_BONES, 3)))
        bone_err = avg((lengths - true_len).abs().mean(-1))
        # temporal terms between consecutive counted frames of a chunk (per grid frame)
        moving = (
            pred_p
            if lc.motion_body == "all"
            else self.joints(_motion_body(lengths, ch.mask, lc.motion_body), directions)
        )
        samples = moving.unflatten(0, (b, n)).unflatten(-1, (-1, 3))
        truth = y.unflatten(0, (b, n)).unflatten(-1, (-1, 3))
        lengths_bn = lengths.unflatten(0, (b, n))
        weights = ch.motion_weights(lc)
        vel_err, acc_err, len_change = _motion_errors(
            samples, truth, lengths_bn, ch.nxt, lc.per_chunk, weights
        )
        loss = (1.0 - lc.alpha) * (rec_q + lc.beta * kl) + lc.alpha * rec_p
        temporal = lc.w_vel * vel_err + lc.w_acc * acc_err + lc.w_bone_const * len_change
        if lc.w_vel_mean:  # what MPJVE and the acceleration error measure: the mean pose
            mean_vel, mean_acc, _ = _motion_errors(
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
            "mpjpe_m": avg(self.mpjpe_m(pred_q, y)),
            "mpjpe_mean_of_m_m": mean_err,
            "best_of_m_m": best_err,
            "bone_m": bone_err,
            "vel_m": vel_err,
            "acc_m": acc_err,
            "len_change_m": len_change,
        }


def _motion_body(lengths: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
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


def _motion_errors(samples, truth, lengths, nxt, per_chunk: bool = False, weights=None):
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


def grid_layout(cfg: ModelConfig, tcfg: TemporalConfig) -> list[tuple[str, int]]:
    """:meth:`TemporalBodyVAE.grid_layout` of a configuration (no network built)."""
    layout = [("code", cfg.cond_dim)]
    if tcfg.raw_input:
        layout.append(("raw", cfg.n_in))
    layout.append(("seen", 1))
    if tcfg.rate_input:
        layout.append(("rate", 1))
    return layout


def build_temporal(model_cfg: dict, temporal_cfg: dict) -> TemporalBodyVAE:
    """The network a checkpoint describes (its ``model_config`` and ``temporal_config``)."""
    tc = dict(temporal_cfg)
    tc["widths"] = tuple(tc.get("widths", (3, 3, 3)))
    return TemporalBodyVAE(ModelConfig(**model_cfg), TemporalConfig(**tc))
