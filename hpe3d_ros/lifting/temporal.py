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
computes only what the last frame needs; runtime and export; in inference as matrix
products with the batch norms folded in); ``last(x)`` equals ``forward(x)[:, -1]`` (a test
checks).

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

from hpe3d_ros.lifting.body_model import BodyCVAE
from hpe3d_ros.lifting.model import ModelConfig
from hpe3d_ros.lifting.sequence_loss import Chunks, SequenceLossConfig, sequence_losses


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
        self._folded: tuple | None = None  # (key, layers) of :meth:`folded_layers`

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
        """(N, window, F) -> (N, n_out): the last frame's code, strided (module docstring).

        In inference (eval mode, no gradient) as matrix products on time-major rows with the
        batch norms folded in (:meth:`folded_layers`): the same values to float rounding,
        about twice as fast on a CPU as the strided convolutions, which run otherwise."""
        if self.training or torch.is_grad_enabled():
            return self._last_conv(x)
        if x.shape[1] != self.window:
            raise ValueError(f"last() reads {self.window} frames, got {x.shape[1]}")
        (w_in, b_in), blocks = self.folded_layers()
        ch, positions = w_in.shape[1], self.window // self.widths[0]
        rows = x.reshape(-1, w_in.shape[0])  # one row per strided position
        # (batch, positions, channels); shapes from constants only, so an exported graph
        # keeps its dynamic batch axis
        h = torch.relu(torch.addmm(b_in, rows, w_in)).view(-1, positions, ch)
        for ((w_c, b_c), (w_m, b_m)), w in zip(blocks, self.widths[1:], strict=True):
            positions //= w
            skip = h[:, w - 1 :: w]
            z = torch.relu(torch.addmm(b_c, h.reshape(-1, w * ch), w_c))
            h = skip + torch.relu(torch.addmm(b_m, z, w_m)).view(-1, positions, ch)
        return self.out(h[:, -1])

    def _last_conv(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`last` as strided convolutions with the batch-norm modules (any mode)."""
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

    def folded_layers(self) -> tuple:
        """Each convolution with its batch norm (eval statistics) as a (weight (kernel * in,
        out), bias (out,)) pair for time-major rows: the expanding layer's, then per block
        the dilated and the 1x1 one's. Computed once and kept until any weight or statistic
        of the network changes (an optimiser step, ``load_state_dict``, ``.to()``). A network
        built under ``torch.inference_mode`` has no version counters: folded at every call."""
        tensors = (*self.parameters(), *self.buffers())
        key = (
            None
            if any(t.is_inference() for t in tensors)
            else tuple((id(t), t._version, t.data_ptr(), t.dtype) for t in tensors)
        )
        if key is None or self._folded is None or self._folded[0] != key:
            with torch.no_grad():
                layers = (
                    _fold(self.expand.weight, self.expand_bn),
                    tuple(
                        (_fold(c.weight, cb), _fold(m.weight, mb))
                        for c, cb, m, mb in zip(
                            self.convs, self.conv_bns, self.mixes, self.mix_bns, strict=True
                        )
                    ),
                )
            self._folded = (key, layers)
        return self._folded[1]


def _fold(weight: torch.Tensor, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """A bias-free convolution (out, in, kernel) followed by eval-mode batch norm -> (matrix
    (kernel * in, out) for rows of ``kernel`` time-major frames, bias (out,))."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    matrix = weight.permute(2, 1, 0).reshape(-1, weight.shape[0]) * scale
    return matrix.contiguous(), (bn.bias - bn.running_mean * scale).contiguous()


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
        """The supervised loss of chunks (:mod:`~hpe3d_ros.lifting.sequence_loss`)."""
        return sequence_losses(self, ch, lc)


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
