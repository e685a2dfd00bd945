"""Mocap sequences seen as tracks by the evaluation camera (issue 17's evaluation).

:func:`sequence_views` cuts every run of a split's subjects into segments of at most
``segment`` frames (5 s at the default 150), each one track seen by the evaluation camera of
:mod:`training.conditions` (1280 x 720, 60 deg, 1.0-1.8 m high, pitch within 5 deg): static,
the person at a distance drawn in the cell's range at the segment's last frame, turned to a
random heading and moving as captured; Gaussian pixel noise per joint and frame, confidence
1, joints outside the image missing. ``views`` > 1 sees each segment from that many headings
and places (a larger validation from the same subjects). Used by
:mod:`training.evaluate_temporal` and :mod:`training.motion_probe`.
"""

from __future__ import annotations

import numpy as np

from training.conditions import _PLACEMENT, EVAL_CAMERA
from training.data import AugmentConfig, place_in_cameras


def sequence_views(poses, runs, dist, noise_px, rng, segment=150, views=1):
    """Segments of ``runs`` through the evaluation camera (module docstring), each seen
    ``views`` times (own heading, place and noise): a list of (kp_norm (T, 17, 2) NaN
    missing, conf (T, 17), pose_cam (T, 17, 3) root-relative)."""
    out = []
    place = AugmentConfig(**{**_PLACEMENT.to_dict(), "distance_m": dist})
    for run in runs:
        for start in range(0, len(run), segment):
            seg = run[start : start + segment]
            if len(seg) < 10:
                continue
            world = poses[seg].astype(np.float64)
            root = world[-1:, :1].copy()
            root[..., 2] = 0.0
            out += [_view(world - root, place, noise_px, rng) for _ in range(views)]
    return out


#: The evaluation camera's horizontal field of view, degrees.
EVAL_HFOV_DEG = float(np.degrees(2 * np.arctan(EVAL_CAMERA.width / 2 / EVAL_CAMERA.fx)))


def _view(world, place, noise_px, rng):
    """One segment (T, 17, 3), its last root over the origin, turned to a random heading and
    placed before the camera (up to 5 tries for a place where 90 % of frames show 6 joints)."""
    yaw = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(yaw), np.sin(yaw)
    world = world.copy()
    world[..., :2] = world[..., :2] @ np.array([[c, s], [-s, c]])
    n = len(world)
    for _ in range(5):
        pts = place_in_cameras(world.reshape(1, -1, 3), np.array([EVAL_HFOV_DEG]), place, rng)
        pts = pts.reshape(n, 17, 3)
        px = EVAL_CAMERA.project(pts) + rng.normal(0.0, noise_px, (n, 17, 2))
        seen = EVAL_CAMERA.in_image(px) & np.isfinite(px).all(-1) & (pts[..., 2] > 0.1)
        if (seen.sum(-1) >= 6).mean() > 0.9:
            break
    kp = np.where(seen[..., None], EVAL_CAMERA.pixel_to_normalized(px), np.nan)
    return kp, seen.astype(np.float64), pts - pts[:, :1]
