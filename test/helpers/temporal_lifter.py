"""A tiny temporal lifter checkpoint (random weights) for tests: no training, no data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hpe3d_ros.lifting.architectures import build_model
from hpe3d_ros.lifting.model import ModelConfig
from hpe3d_ros.lifting.runtime import make_checkpoint
from hpe3d_ros.lifting.temporal import TemporalBodyVAE, TemporalConfig
from hpe3d_ros.lifting.temporal_checkpoint import make_temporal_entry

SMALL = dict(
    arch="bodyvae", noise_input=True, width=32, n_blocks=1, cond_dim=16, latent_dim=4, dec_width=16
)


def tiny_temporal_checkpoint(
    path: Path, widths=(3, 3), seed: int = 0, history=True, rate_input=False, raw_input=False
) -> Path:
    """Write a single-frame body lifter + a temporal model initialised from it (BN statistics
    randomised so every layer matters) to ``path``; returns it. ``history`` False keeps the
    temporal residual at zero (the model is then the single-frame lifter); ``rate_input`` and
    ``raw_input`` add the TCN's optional inputs (``TemporalConfig``)."""
    torch.manual_seed(seed)
    base = build_model(ModelConfig(**SMALL))
    with torch.no_grad():
        for mod in base.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_(0.0, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
    base.eval()
    ck = make_checkpoint(base, np.zeros(48), 0.2, temperature=1.0, latent_dof=4.0)
    model = TemporalBodyVAE(
        ModelConfig(**SMALL),
        TemporalConfig(widths=widths, channels=24, rate_input=rate_input, raw_input=raw_input),
    )
    model.load_state_dict(base.state_dict(), strict=False)
    if history:
        with torch.no_grad():
            for mod in model.temporal.modules():
                if isinstance(mod, torch.nn.BatchNorm1d):
                    mod.running_mean.normal_(0.0, 0.3)
                    mod.running_var.uniform_(0.5, 2.0)
            model.temporal.out.weight.normal_(0.0, 0.5)
    model.eval()
    ck["temporal"] = make_temporal_entry(model, 0.2, temperature=1.0, latent_dof=4.0)
    torch.save(ck, path)
    return path


def walking_track(n: int, rate_hz: float = 30.0, seed: int = 0):
    """(n, 17, 2) normalised keypoints of a person drifting across the image, (n, 17)
    confidences, (n,) stamps."""
    rng = np.random.default_rng(seed)
    shape = rng.normal(0.0, 0.05, size=(17, 2))
    t = np.arange(n) / rate_hz
    centre = np.stack([-0.2 + 0.1 * t, 0.05 + 0.01 * np.sin(3 * t)], -1)
    kp = centre[:, None, :] + shape[None] * (1 + 0.05 * np.sin(5 * t))[:, None, None]
    return kp, np.full((n, 17), 0.9), t
