"""Skeleton definitions: Human3.6M-17 (VideoPose3D order), COCO-17 and the map between them.

The joint trees are data (names, parents, left/right lists), not code. The lifter works in
H36M-17; 2D detectors speak COCO-17. :data:`COCO_TO_H36M` is a (17, 17) linear map, so
``kp_h36m = COCO_TO_H36M @ kp_coco`` converts a (17, 2) array of pixel coordinates, and
:func:`coco_to_h36m` also derives per-joint confidences.

Virtual H36M joints from COCO (each row of the map sums to 1, so the map commutes with any
affine change of pixel coordinates):

* pelvis (0)     = midpoint of the hips
* thorax (8)     = midpoint of the shoulders
* spine (7)      = midpoint of pelvis and thorax
* neck/nose (9)  = midpoint of the eyes (the shared mocap places joint 9 at eye level)
* head top (10)  = eye midpoint extrapolated away from the thorax by half the thorax-to-eyes
  vector (the mocap's head top is about 11 cm above eye level, about half that distance)

A derived joint's confidence is the minimum confidence of the COCO joints it is made from.
"""

from __future__ import annotations

import numpy as np

H36M_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck_nose",
    "head_top",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
H36M_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M_LEFT: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
H36M_RIGHT: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
H36M_ROOT = 0
#: Identifier written into messages so consumers know the joint order.
H36M_LAYOUT_ID = "h36m17"

COCO_JOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO_LEFT: tuple[int, ...] = (1, 3, 5, 7, 9, 11, 13, 15)
COCO_RIGHT: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16)
#: Bones drawn for COCO overlays (pairs of joint indices).
COCO_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip
COCO_LAYOUT_ID = "coco17"


def bones(parents: tuple[int, ...] = H36M_PARENTS) -> list[tuple[int, int]]:
    """(parent, child) pairs of a joint tree; the root has no bone."""
    return [(p, c) for c, p in enumerate(parents) if p >= 0]


H36M_BONES: tuple[tuple[int, int], ...] = tuple(bones())


def flip_permutation(left: tuple[int, ...], right: tuple[int, ...], n: int) -> np.ndarray:
    """Index array that swaps left and right joints (for mirror augmentation)."""
    perm = np.arange(n)
    perm[list(left)] = right
    perm[list(right)] = left
    return perm


H36M_FLIP = flip_permutation(H36M_LEFT, H36M_RIGHT, 17)
COCO_FLIP = flip_permutation(COCO_LEFT, COCO_RIGHT, 17)


def mirror_h36m(points: np.ndarray) -> np.ndarray:
    """H36M-17 points (..., 17, D), 2D or 3D, mirrored left to right: x negated and left and
    right joints swapped (a mirrored person is a plausible person). Same dtype, a new array."""
    out = np.take(points, H36M_FLIP, axis=-2)
    out[..., 0] = -out[..., 0]
    return out


def _coco_to_h36m_matrix() -> np.ndarray:
    c = {name: i for i, name in enumerate(COCO_JOINT_NAMES)}
    h = {name: i for i, name in enumerate(H36M_JOINT_NAMES)}
    w = np.zeros((17, 17), dtype=np.float64)

    def mean(*names: str) -> np.ndarray:
        row = np.zeros(17)
        for n in names:
            row[c[n]] += 1.0 / len(names)
        return row

    hips, shoulders, eyes = (
        mean("left_hip", "right_hip"),
        mean("left_shoulder", "right_shoulder"),
        mean("left_eye", "right_eye"),
    )
    for side in ("left", "right"):
        w[h[f"{side}_hip"], c[f"{side}_hip"]] = 1.0
        w[h[f"{side}_knee"], c[f"{side}_knee"]] = 1.0
        w[h[f"{side}_ankle"], c[f"{side}_ankle"]] = 1.0
        w[h[f"{side}_shoulder"], c[f"{side}_shoulder"]] = 1.0
        w[h[f"{side}_elbow"], c[f"{side}_elbow"]] = 1.0
        w[h[f"{side}_wrist"], c[f"{side}_wrist"]] = 1.0
    w[h["pelvis"]] = hips
    w[h["thorax"]] = shoulders
    w[h["spine"]] = 0.5 * (hips + shoulders)
    w[h["neck_nose"]] = eyes
    w[h["head_top"]] = eyes + 0.5 * (eyes - shoulders)
    return w


#: (17 H36M, 17 COCO) linear map; each row sums to 1.
COCO_TO_H36M: np.ndarray = _coco_to_h36m_matrix()
#: Boolean (17 H36M, 17 COCO): which COCO joints each H36M joint is made from.
COCO_TO_H36M_SOURCES: np.ndarray = COCO_TO_H36M != 0.0


def coco_to_h36m(kp_coco: np.ndarray, conf_coco: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert COCO-17 keypoints to H36M-17.

    Args:
        kp_coco: (..., 17, D) coordinates (pixels or normalised; any D).
        conf_coco: (..., 17) per-joint confidence in [0, 1].

    Returns:
        kp_h36m (..., 17, D) and conf_h36m (..., 17); a derived joint's confidence is the
        minimum over the joints it is made from. NaN coordinates propagate only to the H36M
        joints that use them.
    """
    kp_coco = np.asarray(kp_coco, dtype=np.float64)
    conf_coco = np.asarray(conf_coco, dtype=np.float64)
    if kp_coco.shape[-2] != 17 or conf_coco.shape[-1] != 17:
        raise ValueError(f"expected 17 COCO joints, got {kp_coco.shape} and {conf_coco.shape}")
    # Per-source contributions, zeroed where a joint is not a source so that NaN in an
    # unused COCO joint does not leak through a 0 * NaN product.
    contrib = COCO_TO_H36M[:, :, None] * kp_coco[..., None, :, :]
    kp = np.where(COCO_TO_H36M_SOURCES[:, :, None], contrib, 0.0).sum(axis=-2)
    masked = np.where(COCO_TO_H36M_SOURCES, conf_coco[..., None, :], np.inf)
    conf = masked.min(axis=-1)
    return kp, conf
