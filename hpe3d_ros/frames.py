"""REP-103 frame conventions used throughout the package.

* **Optical frame** (``*_optical_frame``, what ``CameraInfo`` and our messages use):
  x right, y down, z forward (into the scene).
* **Body frame** (``camera_link``, ``base_link``): x forward, y left, z up.

``R_BODY_FROM_OPTICAL @ p_optical`` gives the same point in the body frame of the camera.
"""

from __future__ import annotations

import math

import numpy as np

#: Rotation taking optical-frame coordinates to body-frame (x fwd, y left, z up) coordinates.
R_BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
R_OPTICAL_FROM_BODY = R_BODY_FROM_OPTICAL.T


def optical_to_body(points_optical: np.ndarray) -> np.ndarray:
    """(..., 3) optical-frame points -> body-frame points."""
    return np.asarray(points_optical) @ R_BODY_FROM_OPTICAL.T


def body_to_optical(points_body: np.ndarray) -> np.ndarray:
    """(..., 3) body-frame points -> optical-frame points."""
    return np.asarray(points_body) @ R_OPTICAL_FROM_BODY.T


def ground_plane_optical(height_m: float, pitch_rad: float) -> tuple[np.ndarray, float]:
    """Ground plane ``n . p = d`` in the optical frame of a camera above flat ground.

    Args:
        height_m: camera centre height above the ground, metres (> 0).
        pitch_rad: downward pitch of the optical axis (positive looks down), radians.

    Returns:
        (n, d): unit normal pointing *down* (towards the ground) in the optical frame and the
        distance ``d = height_m``, so ground points satisfy ``n @ p == height_m``.
    """
    if height_m <= 0:
        raise ValueError(f"camera height must be > 0 m, got {height_m}")
    # World "down" in the optical frame of a level camera is +y; once the camera pitches down
    # by `pitch`, the optical axis z leans towards the ground, so down gains a +z component.
    c, s = math.cos(pitch_rad), math.sin(pitch_rad)
    n = np.array([0.0, c, s])
    return n, float(height_m)
