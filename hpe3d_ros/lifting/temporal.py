"""Temporal lifter (issue 17): a VAE whose 2D encoder is a causal dilated temporal convolution.

One track's last ``window`` frames (resampled to the model's ``rate_hz``, see
:mod:`hpe3d_ros.lifting.track_window`) go through a VideoPose3D-style stack of dilated 1D
convolutions (Pavllo et al. 2019), made *causal*: the code ``c_t`` of frame ``t`` depends only
on frames ``t - window + 1 .. t``, so the node can run it online. Per frame the input is the
single-frame lifter's feature vector (:func:`~hpe3d_ros.lifting.normalize.prepare_inputs`
with the noise level, in that frame's own virtual camera) plus a "frame seen" flag; a frame
the track has no data for is all zeros.

The rest is lifter v2 (:class:`~hpe3d_ros.lifting.body_model.BodyCVAE`, by inheritance):
``c_t`` gives the bone lengths (:meth:`BodyCVAE.body`, hard anatomical limits), the learned
prior p(z_t | c_t), and each hypothesis is decoded into bone directions and put together by
forward kinematics (:meth:`BodyCVAE.pose`); the per-condition temperature
(:meth:`BodyCVAE.temperature_scale`) reads the current frame's noise level.

Two evaluations of the same weights:

* :meth:`CausalTCN.forward` on a sequence (B, L + window - 1, F) gives the codes of its last
  L frames (dilated convolutions; training, all frames at once);
* :meth:`CausalTCN.last` on windows (N, window, F) gives the code of each window's last
  frame with strided convolutions (each layer computes only what the last frame needs; the
  runtime and the export). ``last(x)`` equals ``forward(x)[:, -1]`` (a test checks).

**Coherent hypotheses**: the runtime draws one latent noise vector per hypothesis and *track*
(common random numbers) and reuses it at every frame, so hypothesis k at t and t + 1 is the
same quantile of two neighbouring, overlapping-window priors: it moves with the person
instead of jumping between modes.
"""

from __future__ import annotations

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
    channels: int = 512
    dropout: float = 0.15
    rate_hz: float = 30.0  # the model's frame rate: inputs are resampled to it
    max_gap_s: float = 0.5  # a track unseen longer than this: frames in the gap are missing
    frame_features: int = 0  # per-frame input size (set from the ModelConfig)

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"temporal widths must be >= 1, got {self.widths}")

    @property
    def window(self) -> int:
        """Frames one output sees (the receptive field), at ``rate_hz``."""
        n = 1
        for w in self.widths:
            n *= w
        return n

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
        n = 1
        for w in self.widths:
            n *= w
        return n

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
        return torch.relu(self.out(h.transpose(1, 2)))

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
        return torch.relu(self.out(h[:, :, -1]))


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
    n_samples: int = 16


class TemporalBodyVAE(BodyCVAE):
    """Lifter v2 with the causal temporal encoder (module docstring).

    ``cfg`` is the BodyCVAE's ModelConfig (``n_in`` = per-frame features of the single-frame
    lifter, ``noise_input`` true); ``tcfg`` the temporal part. The encoder input per frame is
    ``cfg.n_in + 1`` numbers (features, then the frame-seen flag).
    """

    def __init__(self, cfg: ModelConfig, tcfg: TemporalConfig) -> None:
        super().__init__(cfg)
        tcfg.frame_features = cfg.n_in + 1
        self.tcfg = tcfg
        self.cond_net = CausalTCN(
            tcfg.frame_features, tcfg.widths, tcfg.channels, cfg.cond_dim, tcfg.dropout
        )
        # q(z_t | c_t, 3D_t): the posterior sees the temporal code, not one frame's features
        self.posterior = nn.Sequential(
            nn.Linear(cfg.cond_dim + cfg.n_out, cfg.dec_width),
            nn.ReLU(),
            nn.Linear(cfg.dec_width, 2 * cfg.latent_dim),
        )

    @property
    def window(self) -> int:
        return self.cond_net.window

    def _heads(self, c: torch.Tensor, current: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mu, logvar = self._prior(c)
        return c, mu, logvar, self.body(c), self.temperature_scale(current)

    def encode(self, windows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(N, window, F + 1) -> the BodyCVAE per-person tuple for each window's last frame:
        code, prior mean and log-variance, bone lengths, temperature factor."""
        return self._heads(self.cond_net.last(windows), windows[:, -1, :-1])

    def encode_sequence(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, L + window - 1, F + 1) -> the tuple for the last L frames, flattened to B * L."""
        c = self.cond_net(x).flatten(0, 1)
        current = x[:, self.window - 1 :, :-1].flatten(0, 1)
        return self._heads(c, current)

    def sequence_losses(
        self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lc: SequenceLossConfig
    ) -> dict:
        """Supervised loss of chunks: inputs (B, L + window - 1, F + 1), targets (B, L, 48)
        metres in each frame's virtual camera, ``mask`` (B, L) frames that count.

        The CVAE terms of lifter v2 per frame, plus the velocity error of each prior sample
        along the chunk (one noise vector per sample and chunk, as the runtime draws them)
        and the frame-to-frame change of the bone lengths.
        """
        b, n = target.shape[:2]
        c, mu_p, logvar_p, lengths, _ = self.encode_sequence(x)
        y = target.flatten(0, 1)
        m = mask.flatten().float()
        denom = m.sum().clamp_min(1.0)

        def avg(v: torch.Tensor) -> torch.Tensor:
            return (v * m).sum() / denom

        mu_q, logvar_q = _split_gaussian(self.posterior(torch.cat([c, y], -1)))
        z_q = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
        pred_q = self.pose(c, z_q[:, None], lengths)[:, 0]
        eps = torch.randn(b, 1, lc.n_samples, mu_p.shape[-1], device=x.device)
        eps = eps.expand(b, n, -1, -1).flatten(0, 1)  # common noise along each chunk
        z_p = mu_p[:, None] + (0.5 * logvar_p).exp()[:, None] * eps
        pred_p = self.pose(c, z_p, lengths)  # (B * L, M, 48)
        inv2s2 = 0.5 / lc.sigma_m**2
        rec_q = inv2s2 * avg(self.sq_err_m(pred_q, y))
        rec_p = inv2s2 * avg(self.sq_err_m(pred_p, y[:, None]).mean(1))
        kl = avg(gaussian_kl(mu_q, logvar_q, mu_p, logvar_p))
        mean_err = avg(self.mpjpe_m(pred_p.mean(1), y))
        best_err = avg(self.mpjpe_m(pred_p, y[:, None]).min(1).values)
        true_len = bone_lengths_t(y.unflatten(-1, (N_BONES, 3)))
        bone_err = avg((lengths - true_len).abs().mean(-1))
        # temporal terms between consecutive counted frames of a chunk
        pair = (mask[:, 1:] & mask[:, :-1]).flatten().float()
        n_pair = pair.sum().clamp_min(1.0)
        samples = pred_p.unflatten(0, (b, n)).unflatten(-1, (-1, 3))
        truth = y.unflatten(0, (b, n)).unflatten(-1, (-1, 3))
        dv = (samples.diff(dim=1) - truth.diff(dim=1)[:, :, None]).norm(dim=-1).mean((-1, -2))
        vel_err = (dv.flatten() * pair).sum() / n_pair
        dlen = lengths.unflatten(0, (b, n)).diff(dim=1).abs().mean(-1)
        len_change = (dlen.flatten() * pair).sum() / n_pair
        loss = (1.0 - lc.alpha) * (rec_q + lc.beta * kl) + lc.alpha * rec_p
        loss = (
            loss
            + (
                lc.w_mean * mean_err
                + lc.w_best * best_err
                + lc.w_bone * bone_err
                + lc.w_vel * vel_err
                + lc.w_bone_const * len_change
            )
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
            "len_change_m": len_change,
        }


def build_temporal(model_cfg: dict, temporal_cfg: dict) -> TemporalBodyVAE:
    """The network a checkpoint describes (its ``model_config`` and ``temporal_config``)."""
    tc = dict(temporal_cfg)
    tc["widths"] = tuple(tc.get("widths", (3, 3, 3)))
    return TemporalBodyVAE(ModelConfig(**model_cfg), TemporalConfig(**tc))
