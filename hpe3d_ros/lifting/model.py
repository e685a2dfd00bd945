"""Lifter networks: Martinez baseline, conditional VAE, cross-modal VAE (plain PyTorch).

All three share one interface so the runtime, training and export code never branch on the
architecture more than once:

* ``encode(feats (N, F)) -> cond``: per-person work, done once per person.
* ``decode(cond, eps (N, K, L), temperature) -> (N, K, D)`` normalised 3D targets; ``eps``
  is unit-scale latent noise (standard normal in training; the runtime's calibrated draw,
  :func:`~hpe3d_ros.lifting.runtime.latent_noise`, at inference), the model maps it through
  its prior (or 2D posterior) itself, so an exported graph fed the same ``eps`` reproduces
  the torch output exactly.
* ``losses(feats, target) -> dict`` with the scalar ``"loss"`` to minimise.

``D = 48``: the 16 non-root joints x 3, normalised by the training statistics that travel in
the checkpoint (see :mod:`hpe3d_ros.lifting.runtime`). The per-hypothesis decoders are small
MLPs whose first layer is split into a per-person part (computed once) and a per-``z`` part.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from hpe3d_ros.lifting.gcn import GraphEncoder
from hpe3d_ros.lifting.normalize import N_FEATURES, N_NOISE_FEATURES

N_OUT = 16 * 3
ARCHITECTURES = ("baseline", "cvae", "xvae", "bodyvae")
ENCODERS = ("mlp", "gcn")


@dataclass
class ModelConfig:
    """Architecture hyper-parameters (stored in every checkpoint)."""

    arch: str = "cvae"  # one of ARCHITECTURES
    n_in: int = N_FEATURES
    n_out: int = N_OUT
    width: int = 512  # 2D encoder / baseline width (Martinez: 1024)
    n_blocks: int = 2  # residual blocks in the 2D encoder / baseline
    dropout: float = 0.25
    cond_dim: int = 256  # per-person code fed to the decoder
    latent_dim: int = 16
    dec_width: int = 256  # per-hypothesis decoder width
    dec_blocks: int = 1
    prior: str = "learned"  # cvae: "learned" p(z|2D) or "standard" N(0, I)
    noise_input: bool = False  # features carry the 2D noise level (normalize.prepare_inputs)
    encoder: str = "mlp"  # 2D encoder / baseline body: "mlp" (Martinez trunk) or "gcn"
    gcn_channels: int = 128  # gcn: channels per joint
    gcn_blocks: int = 3  # gcn: residual blocks of two graph convolutions
    body_width: int = 0  # bodyvae: 0 = bone lengths from the code; >0 = own 2D->lengths MLP

    def __post_init__(self) -> None:
        if self.noise_input and self.n_in == N_FEATURES:
            self.n_in = N_FEATURES + N_NOISE_FEATURES
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; one of {ENCODERS}")

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    """Martinez et al. 2017: two (linear, batch-norm, ReLU, dropout) layers and a skip."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(width, width),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


def trunk(n_in: int, width: int, n_blocks: int, dropout: float) -> nn.Sequential:
    """Input layer + ``n_blocks`` residual blocks: the Martinez body, reused as 2D encoder."""
    layers = [nn.Linear(n_in, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
    layers += [ResBlock(width, dropout) for _ in range(n_blocks)]
    return nn.Sequential(*layers)


def make_encoder(cfg: ModelConfig) -> nn.Module:
    """The 2D encoder named by ``cfg.encoder``: features (N, n_in) -> (N, cfg.width)."""
    if cfg.encoder == "gcn":
        return GraphEncoder(cfg.n_in, cfg.gcn_channels, cfg.gcn_blocks, cfg.width, cfg.dropout)
    return trunk(cfg.n_in, cfg.width, cfg.n_blocks, cfg.dropout)


class SplitDecoder(nn.Module):
    """Per-hypothesis MLP p(3D | z, cond); layer 1 = W_c cond (once) + W_z z (per sample)."""

    def __init__(self, cond_dim: int, latent_dim: int, width: int, n_blocks: int, n_out: int):
        super().__init__()
        self.from_cond = nn.Linear(cond_dim, width)
        self.from_z = nn.Linear(latent_dim, width, bias=False) if latent_dim else None
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(n_blocks))
        self.out = nn.Linear(width, n_out)

    def forward(self, cond: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """cond (N, C), z (N, K, L) or None -> (N, K, n_out) (K = 1 without z)."""
        h = self.from_cond(cond)[:, None, :]
        if z is not None and self.from_z is not None:
            h = h + self.from_z(z)
        h = torch.relu(h)
        for block in self.blocks:
            h = h + torch.relu(block(h))
        return self.out(h)


def gaussian_kl(
    mu_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mu_p: torch.Tensor | None = None,
    logvar_p: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) summed over the last axis; p = N(0, I) if None."""
    if mu_p is None:
        return 0.5 * (mu_q.pow(2) + logvar_q.exp() - 1.0 - logvar_q).sum(-1)
    var_ratio = (logvar_q - logvar_p).exp()
    return 0.5 * (
        var_ratio + (mu_q - mu_p).pow(2) / logvar_p.exp() - 1.0 - logvar_q + logvar_p
    ).sum(-1)


def _split_gaussian(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu, logvar = h.chunk(2, dim=-1)
    return mu, logvar.clamp(-12.0, 6.0)


class LifterBase(nn.Module):
    """Shared bits: the config, the reconstruction term (squared error in metres)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # Per-coordinate std of the normalised targets (metres), set by the trainer so that
        # losses are in metres; a buffer so it travels in the state dict.
        self.register_buffer("target_std", torch.ones(cfg.n_out))

    @property
    def latent_dim(self) -> int:
        return 0 if self.cfg.arch == "baseline" else self.cfg.latent_dim

    def sq_err_m(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Summed squared 3D error in m^2 per sample: pred (..., D), target broadcastable."""
        return ((pred - target) * self.target_std).pow(2).sum(-1)

    def mpjpe_m(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean per-joint Euclidean error in metres (root excluded) per sample."""
        d = ((pred - target) * self.target_std).unflatten(-1, (-1, 3))
        return d.norm(dim=-1).mean(-1)


class MartinezBaseline(LifterBase):
    """Deterministic residual MLP (Martinez et al. 2017), trained on MPJPE."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.body = make_encoder(cfg)
        self.head = nn.Linear(cfg.width, cfg.n_out)

    def encode(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(feats))

    def decode(
        self, cond: torch.Tensor, eps: torch.Tensor | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        k = 1 if eps is None else eps.shape[1]
        return cond[:, None, :].expand(-1, k, -1)

    def losses(self, feats: torch.Tensor, target: torch.Tensor, **_: float) -> dict:
        err = self.mpjpe_m(self.encode(feats), target).mean()
        return {"loss": err, "mpjpe_m": err}


class _LatentLifter(LifterBase):
    """A lifter with a Gaussian latent: ``encode`` gives (code, mu, logvar) of p(z | 2D)."""

    def decode(self, cond: tuple, eps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        c, mu, logvar = cond
        z = mu[:, None] + temperature * (0.5 * logvar).exp()[:, None] * eps
        return self.decoder(c, z)


class CVAELifter(_LatentLifter):
    """Conditional VAE (Sohn et al. 2015, Sharma et al. 2019 for pose lifting).

    q(z | 3D, 2D) in training; prior p(z | 2D) learned, or N(0, I); decoder p(3D | z, 2D).
    The loss mixes the ELBO with the "GSNN" term (reconstruction from prior samples) by
    ``alpha``; that keeps prior samples on the data without collapsing their spread.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.cond_net = nn.Sequential(
            make_encoder(cfg),
            nn.Linear(cfg.width, cfg.cond_dim),
            nn.ReLU(),
        )
        self.prior_head = (
            nn.Linear(cfg.cond_dim, 2 * cfg.latent_dim) if cfg.prior == "learned" else None
        )
        self.posterior = nn.Sequential(
            nn.Linear(cfg.n_in + cfg.n_out, cfg.dec_width),
            nn.ReLU(),
            nn.Linear(cfg.dec_width, cfg.dec_width),
            nn.ReLU(),
            nn.Linear(cfg.dec_width, 2 * cfg.latent_dim),
        )
        self.decoder = SplitDecoder(
            cfg.cond_dim, cfg.latent_dim, cfg.dec_width, cfg.dec_blocks, cfg.n_out
        )

    def _prior(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prior_head is None:
            zeros = c.new_zeros(c.shape[0], self.cfg.latent_dim)
            return zeros, zeros
        return _split_gaussian(self.prior_head(c))

    def encode(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.cond_net(feats)
        return (c, *self._prior(c))

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
        **_: float,
    ) -> dict:
        c, mu_p, logvar_p = self.encode(feats)
        mu_q, logvar_q = _split_gaussian(self.posterior(torch.cat([feats, target], -1)))
        z_q = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
        pred_q = self.decoder(c, z_q[:, None])[:, 0]
        eps = torch.randn(mu_p.shape[0], max(1, n_mean), mu_p.shape[1], device=mu_p.device)
        pred_p = self.decode((c, mu_p, logvar_p), eps)  # (N, M, D) prior samples
        inv2s2 = 0.5 / sigma_m**2
        rec_q = inv2s2 * self.sq_err_m(pred_q, target).mean()
        rec_p = inv2s2 * self.sq_err_m(pred_p, target[:, None]).mean()
        if self.prior_head is None:
            kl = gaussian_kl(mu_q, logvar_q).mean()
        else:
            kl = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).mean()
        # MPJPE of the mean of M prior samples: trains what the mean-of-K figure measures.
        mean_err = self.mpjpe_m(pred_p.mean(1), target).mean()
        loss = (1.0 - alpha) * (rec_q + beta * kl) + alpha * rec_p + w_mean * mean_err / sigma_m
        if w_best:  # best of M prior samples: rewards spread along real ambiguities
            best_err = self.mpjpe_m(pred_p, target[:, None]).min(1).values.mean()
            loss = loss + w_best * best_err / sigma_m
        return {
            "loss": loss,
            "rec_q": rec_q,
            "rec_p": rec_p,
            "kl": kl,
            "mpjpe_m": self.mpjpe_m(pred_q, target).mean(),
            "mpjpe_mean_of_m_m": mean_err,
        }


class CrossModalVAE(_LatentLifter):
    """Cross-modal VAE (Spurr et al. 2018): 2D and 3D encoders into one shared latent.

    Each modality has an encoder to (mu, logvar) in the shared space and a decoder from it
    (3D, and 2D for the within-modality term). Training sums 3D->z->3D and 2D->z->2D
    reconstruction, 2D->z->3D cross-generation and the KL terms to N(0, I). At run time the
    2D encoder gives q(z | 2D) and the light 3D decoder maps each sample to a pose. An image
    encoder can join later as one more entry of ``encoders`` trained against the same latent.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        L = cfg.latent_dim
        self.encoders = nn.ModuleDict(
            {
                "pose2d": nn.Sequential(
                    trunk(cfg.n_in, cfg.width, cfg.n_blocks, cfg.dropout),
                    nn.Linear(cfg.width, 2 * L),
                ),
                "pose3d": nn.Sequential(
                    nn.Linear(cfg.n_out, cfg.dec_width),
                    nn.ReLU(),
                    nn.Linear(cfg.dec_width, cfg.dec_width),
                    nn.ReLU(),
                    nn.Linear(cfg.dec_width, 2 * L),
                ),
            }
        )
        # The 3D decoder sees only z; a zero-width "cond" keeps the SplitDecoder interface.
        self.decoder = SplitDecoder(1, L, cfg.dec_width, cfg.dec_blocks + 1, cfg.n_out)
        self.decoder_2d = nn.Sequential(
            nn.Linear(L, cfg.dec_width), nn.ReLU(), nn.Linear(cfg.dec_width, 34)
        )

    def encode(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = _split_gaussian(self.encoders["pose2d"](feats))
        return feats.new_zeros(feats.shape[0], 1), mu, logvar

    def losses(
        self,
        feats: torch.Tensor,
        target: torch.Tensor,
        beta: float = 1.0,
        alpha: float = 0.0,
        sigma_m: float = 0.05,
        w2d: float = 1.0,
        w_align: float = 0.0,
        w_mean: float = 0.0,
        n_mean: int = 8,
        **_: float,
    ) -> dict:
        c, mu2, logvar2 = self.encode(feats)
        mu3, logvar3 = _split_gaussian(self.encoders["pose3d"](target))
        z3 = mu3 + (0.5 * logvar3).exp() * torch.randn_like(mu3)
        z2 = mu2 + (0.5 * logvar2).exp() * torch.randn_like(mu2)
        pred_33 = self.decoder(c, z3[:, None])[:, 0]
        pred_23 = self.decoder(c, z2[:, None])[:, 0]
        kp_in = feats[:, :34]
        mask = feats[:, 34:51].repeat_interleave(2, dim=-1)
        rec_22 = 0.5 * (mask * (self.decoder_2d(z2) - kp_in).pow(2)).sum(-1).mean() / 0.05**2
        inv2s2 = 0.5 / sigma_m**2
        rec_33 = inv2s2 * self.sq_err_m(pred_33, target).mean()
        rec_23 = inv2s2 * self.sq_err_m(pred_23, target).mean()
        kl = gaussian_kl(mu3, logvar3).mean() + gaussian_kl(mu2, logvar2).mean()
        loss = rec_33 + rec_23 + w2d * rec_22 + beta * kl
        if w_align:  # pull q(z | 2D) over the 3D codes, so its spread means uncertainty
            loss = loss + w_align * gaussian_kl(mu3, logvar3, mu2, logvar2).mean()
        if w_mean:
            eps = torch.randn(mu2.shape[0], max(1, n_mean), mu2.shape[1], device=mu2.device)
            mean_err = self.mpjpe_m(self.decode((c, mu2, logvar2), eps).mean(1), target).mean()
            loss = loss + w_mean * mean_err / sigma_m
        return {
            "loss": loss,
            "rec_33": rec_33,
            "rec_23": rec_23,
            "rec_22": rec_22,
            "kl": kl,
            "mpjpe_m": self.mpjpe_m(pred_23, target).mean(),
        }
