"""What one training run is: :class:`TrainConfig` (from YAML, stored in every checkpoint)
and the fixed validation views it selects models on.

Its own module so that :mod:`training.train` and :mod:`training.calibrate` (which re-fits a
checkpoint's calibration on the same validation views) both import it without importing
each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from hpe3d_ros.lifting.model import ModelConfig
from training.bodies import body_templates
from training.data import AugmentConfig, generate
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices


@dataclass
class TrainConfig:
    """Everything a run depends on; read from YAML, stored in the checkpoint."""

    out_dir: str = "runs/lifter"
    data: str = str(DEFAULT_DATA)
    data_orig: str = ""  # second file (real CMU skeletons); "" = the first file only
    split: str = "v1"  # training.mocap.SPLITS
    seed: int = 0
    threads: int = 2
    device: str = "auto"  # "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1"...
    epochs: int = 60
    epoch_repeats: int = 1  # samples per training frame per epoch
    max_train_frames: int = 0  # >0: subsample (tiny test runs)
    batch_size: int = 256
    lr: float = 1e-3
    lr_final_frac: float = 0.05  # cosine decay to lr * this
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    beta: float = 1.0  # KL weight
    beta_warmup_epochs: int = 5
    alpha: float = 0.2  # CVAE: weight of the prior-path (GSNN) reconstruction
    sigma_m: float = 0.05  # reconstruction std in metres (Gaussian likelihood)
    w2d: float = 1.0  # cross-modal VAE: 2D reconstruction weight
    w_align: float = 0.0  # cross-modal VAE: KL(q(z|3D) || q(z|2D)) weight
    w_mean: float = 0.0  # VAEs: weight of the MPJPE of the mean of n_mean prior samples
    n_mean: int = 8
    w_best: float = 0.0  # CVAE: weight of the best-of-n_mean prior-sample MPJPE
    w_bone: float = 10.0  # bodyvae: weight of the mean absolute bone-length error
    w_shape: float = 0.0  # bodyvae: weight of the scale-free log bone-length (proportions) error
    conf_threshold: float = 0.2
    val_samples: int = 20
    fit_temperature: bool = True  # fit the latent noise calibration (temperature, dof)
    calibration_k: int = 200
    half_weights: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        """From a YAML mapping or a checkpoint's ``train_config`` (unknown keys rejected)."""
        raw = dict(raw)
        model = ModelConfig(**raw.pop("model", {}))
        aug = raw.pop("augment", {})
        aug = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()})
        return cls(**raw, model=model, augment=aug)

    def to_dict(self) -> dict:
        return asdict(self)


def load_run_mocap(cfg: TrainConfig) -> dict:
    """The run's mocap: ``cfg.data`` (+ ``cfg.data_orig``), thorax-repaired, body tags."""
    data = cfg.data if Path(cfg.data).is_file() else str(DEFAULT_DATA)  # trained elsewhere
    orig = cfg.data_orig
    if orig and not Path(orig).is_file():
        orig = str(ORIG_DATA)
    return load_all_mocap(data, orig or None)


def run_templates(cfg: TrainConfig, mocap: dict) -> dict[str, np.ndarray] | None:
    """Body templates of the run's training rows (``body_model: sampled``), else None."""
    if cfg.augment.body_model != "sampled":
        return None
    rows = split_indices(mocap["subject"], "train", cfg.split)
    return body_templates(mocap["poses"][rows], mocap["subject"][rows], mocap["body"][rows])


def validation_set(cfg: TrainConfig, mocap: dict | None = None, views: int = 1):
    """The fixed (seeded) validation views: validation subjects, bodies as captured.

    ``views`` > 1 sees every frame through that many independent cameras (more samples
    for the calibration fits on small validation sets).
    """
    mocap = load_run_mocap(cfg) if mocap is None else mocap
    val_poses = mocap["poses"][split_indices(mocap["subject"], "val", cfg.split)]
    if cfg.max_train_frames:
        val_poses = val_poses[:: max(1, len(val_poses) // cfg.max_train_frames)]
    return generate(
        np.tile(val_poses, (views, 1, 1)),
        cfg.augment,
        np.random.default_rng(cfg.seed + 1),
        False,
        cfg.conf_threshold,
        noise_input=cfg.model.noise_input,
    )
