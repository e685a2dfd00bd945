"""The ranges of the lifter's training augmentation: bodies, virtual cameras, detector noise.

Stored in every checkpoint (``to_dict``), so a model's data can be rebuilt; the defaults are the
v1 behaviour. Read by :mod:`training.body_augment` (bodies) and :mod:`training.data` (cameras,
noise); ``training.data.AugmentConfig`` is the same class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class AugmentConfig:
    """Ranges of the body, camera and detector augmentation (stored in the checkpoint)."""

    bone_scale_std: float = 0.10  # per bone group, multiplicative
    bone_asym_std: float = 0.02  # extra per-bone factor (left/right asymmetry)
    global_scale: tuple[float, float] = (0.85, 1.12)
    thorax_shift: tuple[float, float] = (0.55, 1.05)  # thorax along pelvis->thorax
    mirror_prob: float = 0.5
    cam_height_m: tuple[float, float] = (0.8, 2.2)
    distance_m: tuple[float, float] = (2.0, 40.0)  # log-uniform
    hfov_deg: tuple[float, float] = (40.0, 120.0)
    pitch_deg: tuple[float, float] = (-15.0, 10.0)
    roll_std_deg: float = 2.0
    offaxis_frac: float = 0.5  # person's bearing within +-offaxis_frac * hfov
    noise_frac: tuple[float, float] = (0.003, 0.03)  # px noise std / person pixel height
    noise_px_min: float = 0.7
    outlier_prob: float = 0.02
    drop_prob_max: float = 0.4  # per-sample joint-drop probability ~ U(0, this), half the time
    lower_body_drop_prob: float = 0.07
    conf_range: tuple[float, float] = (0.3, 1.0)
    n_intrinsics: int = 48  # distinct camera models per generated batch
    # Lifter v2 (defaults = v1 behaviour, so older checkpoints rebuild their data exactly):
    body_model: str = "scaled"  # "scaled": rig bodies x factors; "sampled": training.bodies
    real_body_prob: float = 0.6  # sampled: template is a real CMU skeleton (else a rig)
    stature_log_std: float = 0.05
    group_log_std: float = 0.06
    # per-group overrides of group_log_std, by training.bodies.BONE_GROUPS name
    # (e.g. {"hip_width": 0.12}); empty = every group group_log_std
    group_log_std_by_group: dict = field(default_factory=dict)
    bone_log_std: float = 0.015
    head_exponent: float = 0.3
    # "source": every pose keeps its capture's joint convention; "template": a rig motion
    # drawn onto a real skeleton's lengths first moves to the CMU skeletons' convention
    # (thorax below the shoulders, nose on the head's axis; training.conventions)
    convention: str = "source"
    noise_frac_log: bool = False  # draw noise_frac log-uniformly (else uniformly)
    noise_px_max: float = 0.0  # >0: noise floor ~ U(noise_px_min, noise_px_max) px
    exact_prob: float = 0.0  # fraction of people with exact 2D (no jitter, no gross errors)
    noise_known_prob: float = 1.0  # noise-aware lifters: noise level given (else unknown)
    # fraction of training poses whose legs come from another frame (mix_parts): new
    # combinations of real leg and upper-body poses, for motions unlike the captured ones
    part_mix_prob: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)
