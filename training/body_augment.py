"""Body augmentation for the lifter's training data: new bodies from captured motion.

The first step of :func:`training.data.generate`: every captured pose (N, 17, 3), world frame,
Z up, metres, is drawn onto a new body (``cfg.body_model``): ``"scaled"`` scales the captured
body's bone groups (v1), ``"sampled"`` retargets the motion onto bone lengths drawn around the
real skeletons and rigs (:mod:`training.bodies`). Optionally a fraction of poses first take
another frame's legs (:func:`mix_parts`); every body is then mirrored and turned about the
vertical. Cameras and detector noise come after, in :mod:`training.data`.
"""

from __future__ import annotations

import numpy as np

from hpe3d_ros.skeleton import H36M_PARENTS, mirror_h36m
from training.augment_config import AugmentConfig
from training.bodies import BONE_GROUPS, retarget, sample_lengths
from training.conventions import is_cmu_convention, to_cmu_convention

__all__ = ["LEG_JOINTS", "augment_bodies", "convention_mask", "mix_parts", "sampled_lengths"]
_PARENTS = np.array(H36M_PARENTS)


def sampled_lengths(
    templates: dict[str, np.ndarray],
    n: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    with_kind: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(n, 16) bone lengths drawn around ``templates`` with ``cfg``'s body settings
    (:func:`training.bodies.sample_lengths`; ``with_kind``: and which are real skeletons)."""
    return sample_lengths(
        templates, n, rng, cfg.real_body_prob, cfg.stature_log_std, cfg.group_log_std,
        cfg.bone_log_std, cfg.head_exponent, with_kind, cfg.group_log_std_by_group,
    )  # fmt: skip


def convention_mask(cfg: AugmentConfig, poses: np.ndarray, real: np.ndarray) -> np.ndarray:
    """(N,) bool: rows to move into the CMU convention before retargeting (``cfg.convention``
    "template": rig-convention poses drawn onto a real skeleton; "source": none)."""
    if cfg.convention == "source":
        return np.zeros(len(poses), bool)
    if cfg.convention != "template":
        raise ValueError(f"unknown convention {cfg.convention!r} (source | template)")
    return real & ~is_cmu_convention(poses)


def augment_bodies(
    poses: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    templates: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """(N, 17, 3) world poses -> new bodies (``cfg.body_model``), mirror, random yaw.

    ``"scaled"``: thorax shift, bone-group and global scale factors on the captured body.
    ``"sampled"``: the motion retargeted onto bone lengths drawn around ``templates``
    (:mod:`training.bodies`).
    """
    n = len(poses)
    poses = mix_parts(poses, cfg.part_mix_prob, rng)
    if cfg.body_model == "sampled":
        if not templates:
            raise ValueError("body_model 'sampled' needs body templates")
        lengths, real = sampled_lengths(templates, n, rng, cfg, with_kind=True)
        move = convention_mask(cfg, poses, real)
        if move.any():
            poses = poses.copy()
            poses[move] = to_cmu_convention(poses[move], rng)
        out = retarget(poses, lengths)
        out[..., :2] -= out[:, :1, :2]
    elif cfg.body_model == "scaled":
        out = _scale_bodies(poses, cfg, rng)
    else:
        raise ValueError(f"unknown body_model {cfg.body_model!r}")
    return _mirror_and_turn(out, cfg, rng)


LEG_JOINTS = np.arange(1, 7)  # right hip, knee, ankle, left hip, knee, ankle


def mix_parts(poses: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """(N, 17, 3) world poses (Z up) -> a ``prob`` fraction with another row's legs.

    Row i keeps its pelvis, spine, head and arms; its six leg joints become those of a random
    row j, taken relative to j's pelvis and turned about the vertical so that j's hips face
    where i's did (the heading of the hip line). The result stands at j's pelvis height, the
    height the legs carry. Each part is a real captured pose, as gravity saw it; the pair is
    new (a kick under a guard, a dance step under a reach). The lengths of the legs are j's:
    the sampled bodies (:func:`training.bodies.retarget`) keep only the directions.
    """
    n = len(poses)
    if prob <= 0:
        return poses  # no draws: the training stream stays as it was
    rows = np.flatnonzero(rng.random(n) < prob)
    if rows.size == 0:
        return poses
    donors = rng.integers(n, size=rows.size)
    out = poses.copy()
    a, b = poses[rows], poses[donors]

    def heading(p: np.ndarray) -> np.ndarray:
        hip = p[:, 4, :2] - p[:, 1, :2]  # left hip - right hip, on the ground plane
        return np.arctan2(hip[:, 1], hip[:, 0])

    legs = _turn_about_vertical(b[:, LEG_JOINTS] - b[:, :1], heading(a) - heading(b))
    mixed = a.copy()
    mixed[:, LEG_JOINTS] = a[:, :1] + legs
    mixed[..., 2] += b[:, :1, 2] - a[:, :1, 2]  # stand at the donor's pelvis height
    out[rows] = mixed
    return out


def _scale_bodies(poses: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """v1 body augmentation: thorax shift, bone-group and global scale factors."""
    n = len(poses)
    p = poses.astype(np.float64).copy()
    # Thorax definition differs between rigs by ~0.2 m along the spine: move thorax + spine.
    a = rng.uniform(*cfg.thorax_shift, size=(n, 1))
    p[:, 8] = p[:, 0] + a * (p[:, 8] - p[:, 0])
    p[:, 7] = 0.5 * (p[:, 0] + p[:, 8])
    vec = p - p[:, _PARENTS.clip(0)]  # bone vectors (root row meaningless)
    scale = np.ones((n, 17))
    for joints in BONE_GROUPS.values():
        f = np.exp(rng.normal(0.0, cfg.bone_scale_std, size=(n, 1)))
        scale[:, list(joints)] = f * np.exp(
            rng.normal(0.0, cfg.bone_asym_std, size=(n, len(joints)))
        )
    scale *= rng.uniform(*cfg.global_scale, size=(n, 1))
    out = np.empty_like(p)
    out[:, 0] = p[:, 0] * scale[:, :1]  # pelvis height scales with the body
    out[:, 0, :2] = 0.0
    for j in range(1, 17):  # parents precede children in H36M order
        out[:, j] = out[:, _PARENTS[j]] + scale[:, j : j + 1] * vec[:, j]
    return out


def _mirror_and_turn(out: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator):
    """Left/right mirror (``mirror_prob``) and a uniform random yaw, in place."""
    n = len(out)
    flip = rng.random(n) < cfg.mirror_prob
    out[flip] = mirror_h36m(out[flip])
    return _turn_about_vertical(out, rng.uniform(-np.pi, np.pi, size=n))


def _turn_about_vertical(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(N, J, 3) points (Z up) turned by (N,) angles about the Z axis, in place."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, y = points[..., 0].copy(), points[..., 1].copy()
    points[..., 0] = c * x - s * y
    points[..., 1] = s * x + c * y
    return points
