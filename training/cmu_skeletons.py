"""Joint mappings from the CMU BVH skeletons to Human3.6M-17 (metres, Z up).

Four source skeletons carry the CMU motion used for training (see ``training/README.md``):

* ``daz``: cgspeed "Daz-friendly" conversion, one fixed Daz figure, centimetres.
* ``cc``: iClone Character Creator "motion dummy" rig, one fixed rig, centimetres.
* ``cmu``: cgspeed "3dsMax-friendly" conversion, original per-subject CMU skeleton with
  BVH joint names, CMU length units (1 unit = 0.056444 m).
* ``asf``: original CMU skeleton with ASF bone names (``rfemur``, ...), CMU units.

Thirteen H36M joints are source joints; the others are virtual, with the same rule for
every source: pelvis = mid-hips, spine = mid(pelvis, thorax); neck/nose and head top are
the eye midpoint and a point 11 cm above eye level along the head's up axis (Daz, CC), or
8 cm and 19 cm above the ``head`` joint along the CMU head bone (CMU, ASF). The head's up
axis is rigid with the head frame built from the head joint and both eyes and is calibrated
once on an upright pose (:func:`head_up_coefficients`). All of this reproduces
``shared/data/convert_source.py``, which made the shared training file.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from training.bvh import Bvh, forward_kinematics

#: BVH Y-up world to the package's Z-up world: +90 deg about X, (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP: np.ndarray = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=np.float64)
#: One CMU length unit in metres.
CMU_UNIT_M = 0.056444
CMU_NOSE_M, CMU_HEAD_TOP_M = 0.08, 0.19  # above the CMU 'head' joint along the head bone
EYE_TO_VERTEX_M = 0.11  # head top above eye level (Daz, CC)

# H36M-17 indices of the joints read directly from a source joint.
_DIRECT = {
    "r_hip": 1, "r_knee": 2, "r_ankle": 3, "l_hip": 4, "l_knee": 5, "l_ankle": 6,
    "thorax": 8, "l_shoulder": 11, "l_elbow": 12, "l_wrist": 13,
    "r_shoulder": 14, "r_elbow": 15, "r_wrist": 16,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SkeletonMap:
    """Source joint names feeding H36M-17 and the source length unit in metres.

    ``joints`` maps the keys of ``_DIRECT`` (``"r_hip"``, ...) to source joint names. Either
    both eyes are given (head top from the calibrated head frame) or ``head_end`` (the head
    bone's End Site, CMU skeletons).
    """

    name: str
    scale_m: float
    joints: dict[str, str]
    head: str
    l_eye: str | None = None
    r_eye: str | None = None
    head_end: str | None = None
    #: Calibration pose for the head's up axis: "rest" (all channels 0) or "first_frame".
    calibration: str = "rest"


def _side_map(names: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(_DIRECT, names, strict=True))


SKELETON_MAPS: dict[str, SkeletonMap] = {
    "daz": SkeletonMap(
        "daz", 0.01,
        _side_map(("rThigh", "rShin", "rFoot", "lThigh", "lShin", "lFoot", "neck",
                   "lShldr", "lForeArm", "lHand", "rShldr", "rForeArm", "rHand")),
        head="head", l_eye="leftEye", r_eye="rightEye", calibration="rest",
    ),
    "cc": SkeletonMap(
        "cc", 0.01,
        _side_map(tuple("CC_Base_" + n for n in (
            "R_Thigh", "R_Calf", "R_Foot", "L_Thigh", "L_Calf", "L_Foot", "NeckTwist01",
            "L_Upperarm", "L_Forearm", "L_Hand", "R_Upperarm", "R_Forearm", "R_Hand"))),
        head="CC_Base_Head", l_eye="CC_Base_L_Eye", r_eye="CC_Base_R_Eye",
        calibration="first_frame",
    ),
    "cmu": SkeletonMap(
        "cmu", CMU_UNIT_M,
        _side_map(("RightHip", "RightKnee", "RightAnkle", "LeftHip", "LeftKnee", "LeftAnkle",
                   "lowerneck", "LeftShoulder", "LeftElbow", "LeftWrist",
                   "RightShoulder", "RightElbow", "RightWrist")),
        head="Head", head_end="Head_end",
    ),
    "asf": SkeletonMap(
        "asf", CMU_UNIT_M,
        _side_map(("rfemur", "rtibia", "rfoot", "lfemur", "ltibia", "lfoot", "lowerneck",
                   "lhumerus", "lradius", "lwrist", "rhumerus", "rradius", "rwrist")),
        head="head", head_end="head_end",
    ),
}  # fmt: skip


def detect_skeleton(names: tuple[str, ...] | list[str]) -> SkeletonMap:
    """Which source skeleton a BVH joint list belongs to (``ValueError`` if none)."""
    for key, marker in (("daz", "rThigh"), ("cc", "CC_Base_R_Thigh"), ("cmu", "RightHip"),
                        ("asf", "rfemur")):  # fmt: skip
        if marker in names:
            return SKELETON_MAPS[key]
    raise ValueError(f"unknown skeleton, first joints: {list(names)[:8]}")


def _head_frame(head: np.ndarray, l_eye: np.ndarray, r_eye: np.ndarray):
    """Head-rigid orthonormal axes (x: right->left eye, f: head->eyes, n = f x x), (..., 3)."""
    x = l_eye - r_eye
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    v = 0.5 * (l_eye + r_eye) - head
    f = v - (v * x).sum(-1, keepdims=True) * x
    f = f / np.linalg.norm(f, axis=-1, keepdims=True)
    return x, f, np.cross(f, x)


def head_up_coefficients(bvh: Bvh, skel: SkeletonMap) -> tuple[float, float] | None:
    """World up (BVH +Y) in the head frame of an upright calibration pose, as (c_f, c_n).

    None for skeletons without eyes. The calibration pose is the rest pose (all channels
    zero) or the file's first frame (the CC exports start with a T-pose).
    """
    if skel.l_eye is None:
        return None
    motion = bvh.motion[:1] if skel.calibration == "first_frame" else np.zeros_like(bvh.motion[:1])
    pos, _ = forward_kinematics(bvh.with_motion(motion))
    head, le, re = (pos[0, bvh.index(n)] for n in (skel.head, skel.l_eye, skel.r_eye))
    _, f, n = _head_frame(head, le, re)
    c = np.array([f[1], n[1]])  # dot products with +Y
    c = c / np.linalg.norm(c)
    return float(c[0]), float(c[1])


def to_h36m(
    positions: np.ndarray,
    names: tuple[str, ...] | list[str],
    skel: SkeletonMap,
    head_up: tuple[float, float] | None = None,
) -> np.ndarray:
    """Source joint positions to H36M-17: (F, J_src, 3) file units, Y up -> (F, 17, 3) m, Z up.

    ``head_up`` is required for skeletons with eyes (from :func:`head_up_coefficients`).
    """
    names = list(names)
    positions = np.asarray(positions, dtype=np.float64)

    def get(name: str) -> np.ndarray:
        return positions[:, names.index(name)] * skel.scale_m

    out = np.zeros((positions.shape[0], 17, 3))
    for key, j in _DIRECT.items():
        out[:, j] = get(skel.joints[key])
    out[:, 0] = 0.5 * (out[:, 1] + out[:, 4])  # pelvis = mid-hips
    out[:, 7] = 0.5 * (out[:, 0] + out[:, 8])  # spine = mid(pelvis, thorax)
    head = get(skel.head)
    if skel.l_eye is not None and skel.r_eye is not None:
        if head_up is None:
            raise ValueError(f"skeleton {skel.name!r} needs head_up coefficients")
        le, re = get(skel.l_eye), get(skel.r_eye)
        _, f, n = _head_frame(head, le, re)
        up = head_up[0] * f + head_up[1] * n
        eye = 0.5 * (le + re)
        out[:, 9] = eye
        out[:, 10] = eye + EYE_TO_VERTEX_M * up
    else:
        d = get(skel.head_end) - head
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        out[:, 9] = head + CMU_NOSE_M * d
        out[:, 10] = head + CMU_HEAD_TOP_M * d
    return out @ Y_UP_TO_Z_UP.T
