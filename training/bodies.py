"""Body variety for training: every motion retargeted onto a freshly sampled skeleton.

91 % of the mocap frames sit on two fixed rig bodies unlike real people (Daz: shoulders
0.25 m apart, forearm 0.24 m; CC: 1.9 m tall, torso 0.56 m), so the data alone teaches the
lifter that bodies do not differ. Here every training pose keeps its motion (the unit
direction of each of the 16 bones) and gets new bone lengths through forward kinematics
(:func:`retarget`), drawn by :func:`sample_lengths` around a *template* body:

* templates (:func:`body_templates`): the median bone lengths of each real CMU skeleton in
  the training rows (subjects 1, 2, 7, 9 in split v2) and of the two rigs (the rigs stay,
  because other mocap and the 2D detector's joint conventions resemble them: thorax at the
  neck base, nose at eye level);
* a stature factor ``g`` (log-normal, ``stature_log_std``, truncated at 2.5 sigma) scales
  every bone, except the head (nose -> head top) which scales with ``g ** head_exponent``:
  head size varies far less than stature between adults, and the fixed head is what lets a
  lifter tell a small person near from a tall one far;
* per bone group (hip width, thigh, shin, torso, neck, head, clavicle, upper arm, forearm)
  a factor ``exp(N(0, group_log_std))``, and per bone ``exp(N(0, bone_log_std))`` (left and
  right differ by that much in the real skeletons).

Validation and test subjects are never read here: their proportions stay unseen.
"""

from __future__ import annotations

import numpy as np

from hpe3d_ros.lifting.body import BONE_LIMITS_M
from hpe3d_ros.skeleton import H36M_PARENTS

_PARENTS = np.array(H36M_PARENTS)
CHILD = np.arange(1, 17)
#: Bone groups by child joint; left and right share a group factor.
BONE_GROUPS: dict[str, tuple[int, ...]] = {
    "hip_width": (1, 4),
    "thigh": (2, 5),
    "shin": (3, 6),
    "torso": (7, 8),
    "neck": (9,),
    "head": (10,),
    "clavicle": (11, 14),
    "upper_arm": (12, 15),
    "forearm": (13, 16),
}
HEAD_BONE = 10


def bone_lengths(poses: np.ndarray) -> np.ndarray:
    """(..., 17, 3) joints -> (..., 16) bone lengths, bone ``j - 1`` ends at joint ``j``."""
    p = np.asarray(poses)
    return np.linalg.norm(p[..., CHILD, :] - p[..., _PARENTS[CHILD], :], axis=-1)


def group_means(values: np.ndarray) -> np.ndarray:
    """(..., 16) per-bone values -> (..., groups) their mean per :data:`BONE_GROUPS` group."""
    v = np.asarray(values)
    return np.stack([v[..., np.array(j) - 1].mean(-1) for j in BONE_GROUPS.values()], -1)


def body_templates(
    poses: np.ndarray, subject: np.ndarray, body: np.ndarray
) -> dict[str, np.ndarray]:
    """Median bone lengths (16,) per real skeleton (``real_<subject>``) and per rig.

    Pass only training rows. Rows of one subject's real skeleton share one template.
    """
    lengths = bone_lengths(poses)
    out: dict[str, np.ndarray] = {}
    for kind in ("rig_daz", "rig_cc"):
        rows = body == kind
        if rows.any():
            out[kind] = np.median(lengths[rows], axis=0)
    for s in np.unique(subject[body == "real"]):
        out[f"real_{int(s)}"] = np.median(lengths[(body == "real") & (subject == s)], axis=0)
    return out


def sample_lengths(
    templates: dict[str, np.ndarray],
    n: int,
    rng: np.random.Generator,
    real_prob: float = 0.6,
    stature_log_std: float = 0.05,
    group_log_std: float = 0.06,
    bone_log_std: float = 0.015,
    head_exponent: float = 0.3,
    with_kind: bool = False,
    group_log_std_by_group: dict[str, float] | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(n, 16) bone lengths in metres: template x stature x group x bone factors (module doc),
    clipped to the lifter's hard limits (:data:`~hpe3d_ros.lifting.body.BONE_LIMITS_M`).

    ``group_log_std_by_group``: a group factor's log-std by :data:`BONE_GROUPS` name, where it
    differs from ``group_log_std`` (an unknown name is an error).

    A real-skeleton template is picked with probability ``real_prob`` (uniformly among
    them), else one of the rigs. ``with_kind``: also (n,) bool, the template is a real
    skeleton (the same draws either way).
    """
    real = sorted(k for k in templates if k.startswith("real_"))
    rigs = sorted(k for k in templates if not k.startswith("real_"))
    if not real and not rigs:
        raise ValueError("no body templates")
    names = real + rigs
    w = np.array(
        [real_prob / len(real) if real else 0.0] * len(real)
        + [(1.0 - real_prob) / len(rigs) if rigs else 0.0] * len(rigs)
    )
    table = np.stack([templates[k] for k in names])
    pick = rng.choice(len(names), size=n, p=w / w.sum())
    base = table[pick]
    g = np.clip(rng.normal(0.0, stature_log_std, size=(n, 1)), -2.5 * stature_log_std,
                2.5 * stature_log_std)  # fmt: skip
    log_f = np.repeat(g, 16, axis=1)
    log_f[:, HEAD_BONE - 1] *= head_exponent
    by_group = dict(group_log_std_by_group or {})
    unknown = set(by_group) - set(BONE_GROUPS)
    if unknown:
        raise ValueError(f"unknown bone groups {sorted(unknown)}; known: {list(BONE_GROUPS)}")
    for name, joints in BONE_GROUPS.items():
        sd = by_group.get(name, group_log_std)
        log_f[:, np.array(joints) - 1] += rng.normal(0.0, sd, size=(n, 1))
    log_f += rng.normal(0.0, bone_log_std, size=(n, 16))
    lengths = np.clip(base * np.exp(log_f), BONE_LIMITS_M[:, 0], BONE_LIMITS_M[:, 1])
    return (lengths, pick < len(real)) if with_kind else lengths


def retarget(poses: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(N, 17, 3) world poses (Z up) + (N, 16) bone lengths -> (N, 17, 3) new bodies.

    Bone directions are kept (the motion), lengths replaced, forward kinematics from the
    pelvis; spine stays the midpoint of pelvis and thorax as in the data. The pelvis height
    scales with the leg length, so the feet stay near the ground.
    """
    p = np.asarray(poses, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64).copy()
    lengths[:, 6:8] = lengths[:, 6:8].mean(1, keepdims=True)  # spine = mid(pelvis, thorax)
    vec = p[:, CHILD] - p[:, _PARENTS[CHILD]]
    unit = vec / np.maximum(np.linalg.norm(vec, axis=-1, keepdims=True), 1e-9)
    out = np.empty_like(p)
    old_leg = bone_lengths(p)[:, [1, 2, 4, 5]].mean(1)
    new_leg = lengths[:, [1, 2, 4, 5]].mean(1)
    out[:, 0] = p[:, 0]
    out[:, 0, 2] = p[:, 0, 2] * new_leg / np.maximum(old_leg, 1e-6)
    for j in range(1, 17):  # parents precede children in H36M order
        out[:, j] = out[:, _PARENTS[j]] + lengths[:, j - 1 : j] * unit[:, j - 1]
    return out
