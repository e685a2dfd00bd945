"""``build_model``: a :class:`~hpe3d_ros.lifting.model.ModelConfig` -> the network its
``arch`` names (one of :data:`~hpe3d_ros.lifting.model.ARCHITECTURES`)."""

from __future__ import annotations

from hpe3d_ros.lifting.body_model import BodyCVAE
from hpe3d_ros.lifting.model import (
    ARCHITECTURES,
    CrossModalVAE,
    CVAELifter,
    LifterBase,
    MartinezBaseline,
    ModelConfig,
)

CLASSES = {
    "baseline": MartinezBaseline,
    "cvae": CVAELifter,
    "xvae": CrossModalVAE,
    "bodyvae": BodyCVAE,
}


def build_model(cfg: ModelConfig) -> LifterBase:
    """The network named by ``cfg.arch``."""
    if cfg.arch not in CLASSES:
        raise ValueError(f"unknown lifter architecture {cfg.arch!r}; one of {ARCHITECTURES}")
    return CLASSES[cfg.arch](cfg)
