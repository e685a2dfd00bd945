"""One body per person: bone lengths within hard anatomical limits, forward kinematics.

A pose is 16 bones (bone ``j - 1`` ends at joint ``j``, H36M-17 order) = a length and a unit
direction each. Lifter v2 estimates the lengths once per person and samples only the
directions per hypothesis, so all K hypotheses of a person have the same skeleton; joint
positions are the sums of the bone vectors along the path from the pelvis, one constant
(16, 16) matrix product (:func:`forward_kinematics`), which exports to ONNX as a MatMul.

:data:`BONE_LIMITS_M` are hard limits: the network's length head maps onto
``lo + (hi - lo) * sigmoid(x)``, so no output can leave them. They bound adult anatomy in
this data's joint conventions with a margin (real CMU skeletons: thigh 0.39-0.43 m, shin
0.39-0.46 m; the 1.9 m CC rig: 0.48 / 0.50 m; the tallest body the trainer samples stays
inside); the longest bone any hypothesis can have is :data:`MAX_BONE_M` = 0.62 m.
"""

from __future__ import annotations

import numpy as np
import torch

from hpe3d_ros.skeleton import H36M_PARENTS

N_BONES = 16
_LIMITS = {  # child joint: (lo, hi) metres
    "hip": (0.04, 0.16),  # pelvis -> hip (half the hip width)
    "thigh": (0.25, 0.62),
    "shin": (0.25, 0.62),
    "spine": (0.12, 0.36),  # pelvis -> spine and spine -> thorax (half the torso each)
    "neck": (0.08, 0.36),  # thorax -> neck/nose
    "head": (0.06, 0.18),  # neck/nose -> head top
    "clavicle": (0.06, 0.30),  # thorax -> shoulder
    "upper_arm": (0.16, 0.42),
    "forearm": (0.12, 0.36),
}
BONE_NAMES: tuple[str, ...] = (
    "hip", "thigh", "shin", "hip", "thigh", "shin", "spine", "spine", "neck", "head",
    "clavicle", "upper_arm", "forearm", "clavicle", "upper_arm", "forearm",
)  # fmt: skip
#: (16, 2) hard [lo, hi] limits per bone, metres (bone j - 1 ends at joint j).
BONE_LIMITS_M = np.array([_LIMITS[n] for n in BONE_NAMES])
MAX_BONE_M = float(BONE_LIMITS_M[:, 1].max())


def ancestor_matrix() -> np.ndarray:
    """(16, 16) A with ``A[j-1, b-1] = 1`` when bone b lies on the path pelvis -> joint j."""
    a = np.zeros((N_BONES, N_BONES))
    for j in range(1, N_BONES + 1):
        k = j
        while k > 0:
            a[j - 1, k - 1] = 1.0
            k = H36M_PARENTS[k]
    return a


def forward_kinematics(
    lengths: torch.Tensor, directions: torch.Tensor, ancestors: torch.Tensor
) -> torch.Tensor:
    """(N, 16) lengths, (N, K, 16, 3) unit directions -> (N, K, 16, 3) non-root joints."""
    return ancestors @ (lengths[:, None, :, None] * directions)


def unit(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows of (..., 3) scaled to unit length (smooth at 0)."""
    return v * torch.rsqrt((v * v).sum(-1, keepdim=True) + eps)


def bone_lengths_t(joints: torch.Tensor) -> torch.Tensor:
    """(..., 16, 3) non-root joints (root at 0) -> (..., 16) bone lengths."""
    parents = torch.as_tensor(H36M_PARENTS[1:], device=joints.device)
    full = torch.cat([torch.zeros_like(joints[..., :1, :]), joints], dim=-2)
    return (full[..., 1:, :] - full[..., parents, :]).norm(dim=-1)
