"""Two joint conventions in the mocap, and moving a rig pose into the CMU skeletons' one.

The shared files mark the upper body two ways (their README, "Joint mapping"):

* **rigs** (Daz, CC; 94 % of the training frames): thorax (8) = the rig's neck base, *above*
  the shoulders (the shoulders' midpoint 4.8-6.2 cm below it along the torso); neck/nose
  (9) = the midpoint of the eyes, in front of the head (11-15 cm off the head's axis);
* **CMU skeletons** (ASF/AMC: every real body, and the bodies the outside world's CMU
  conversions give): thorax = ``lowerneck``, *below* the shoulders (their midpoint 7.6 cm
  above it, sd 1.1 cm); neck/nose = a point 8 cm up the head bone, on the head's axis (3 cm
  off it), straight above the thorax.

Retargeting (:func:`training.bodies.retarget`) keeps a motion's bone directions and swaps
its lengths, so a rig motion on a real skeleton's lengths kept the rig's thorax and nose:
a body no capture has (short real torso with the rig's clavicles hanging below the thorax,
a long real neck pointing at the eyes). Trained on 94 % of such bodies, the lifter read
every real skeleton's torso too long and its neck too short (validation and test subjects
11, 16, 35, 131, 135: torso +20 to +48 mm per spine bone, neck -44 to -74 mm; the training
real skeletons alike), with directions bent to fit.

:func:`to_cmu_convention` moves a rig pose's thorax to below its shoulders and its nose
and head top back onto the head's axis, as the CMU skeletons have them (the offsets drawn
from their measured spread), so a rig motion can be retargeted onto a real skeleton's
lengths consistently. :func:`is_cmu_convention` tells the two apart per frame (the
shoulders' side of the thorax, 12 cm apart, spreads of 1-2 cm).
"""

from __future__ import annotations

import numpy as np

#: Shoulders' midpoint above the thorax along the torso, CMU skeletons: median and sd (m).
CMU_SHOULDERS_ABOVE_THORAX_M = (0.076, 0.011)
#: What is left of the nose's offset from the head's axis after the move (fraction): the
#: CMU skeletons' 3 cm of the rigs' 11-15 cm, drawn uniformly in this range.
CMU_NOSE_OFF_AXIS_FRACTION = (0.0, 0.2)
_PELVIS, _R_HIP, _L_HIP, _SPINE, _THORAX, _NOSE, _HEAD = 0, 1, 4, 7, 8, 9, 10
_SHOULDERS = (11, 14)
#: A frame whose shoulders sit more than this above the thorax is in the CMU convention.
_CMU_THRESHOLD_M = 0.01


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def shoulders_above_thorax(poses: np.ndarray) -> np.ndarray:
    """(N, 17, 3) -> (N,) the shoulders' midpoint above the thorax along pelvis -> thorax (m)."""
    p = np.asarray(poses, dtype=np.float64)
    up = _unit(p[:, _THORAX] - p[:, _PELVIS])
    mid = p[:, list(_SHOULDERS)].mean(1)
    return ((mid - p[:, _THORAX]) * up).sum(-1)


def is_cmu_convention(poses: np.ndarray) -> np.ndarray:
    """(N, 17, 3) -> (N,) bool: the frame marks thorax and nose as the CMU skeletons do."""
    return shoulders_above_thorax(poses) > _CMU_THRESHOLD_M


def convention_draws(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) the per-row draws of :func:`to_cmu_convention` (a normal, a uniform 0-1)."""
    return np.stack([rng.standard_normal(n), rng.random(n)], -1)


def to_cmu_convention(
    poses: np.ndarray, rng: np.random.Generator, draws: np.ndarray | None = None
) -> np.ndarray:
    """(N, 17, 3) rig-convention poses -> (N, 17, 3) in the CMU skeletons' convention.

    Thorax: the shoulders' midpoint less a drawn height along the torso (the CMU skeletons'
    median and sd), with spine the midpoint of pelvis and the new thorax. Nose and head top:
    moved together towards the head's axis (nose -> head top) through the old thorax, keeping
    a drawn fraction of the nose's offset from it. Everything else stays.

    ``draws``: (N, 2) the two per-row draws (normal, uniform 0-1) to use instead of ``rng``
    (a track converts every frame with the same draws, or its thorax would jitter).
    """
    p = np.asarray(poses, dtype=np.float64).copy()
    n = len(p)
    if draws is None:
        draws = convention_draws(n, rng)
    mean, sd = CMU_SHOULDERS_ABOVE_THORAX_M
    height = np.clip(mean + sd * draws[:, 0], mean - 2.5 * sd, mean + 2.5 * sd)
    lo, hi = CMU_NOSE_OFF_AXIS_FRACTION
    keep = lo + (hi - lo) * draws[:, 1]

    up = _unit(p[:, _THORAX] - p[:, _PELVIS])
    axis = _unit(p[:, _HEAD] - p[:, _NOSE])
    neck = p[:, _NOSE] - p[:, _THORAX]
    off_axis = neck - (neck * axis).sum(-1, keepdims=True) * axis
    shift = -(1.0 - keep)[:, None] * off_axis
    p[:, _NOSE] += shift
    p[:, _HEAD] += shift
    mid = p[:, list(_SHOULDERS)].mean(1)
    p[:, _THORAX] = mid - height[:, None] * up
    p[:, _SPINE] = 0.5 * (p[:, _PELVIS] + p[:, _THORAX])
    return p
