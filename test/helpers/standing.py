"""A standing person for tests: root-relative, optical frame (y down), metres, H36M-17 order;
turned, walking and projected variants of it."""

from __future__ import annotations

import numpy as np

POSE = np.array(
    [
        [0.00, 0.00, 0.00], [-0.13, 0.00, 0.02], [-0.14, 0.44, 0.05], [-0.15, 0.86, 0.08],
        [0.13, 0.00, 0.02], [0.15, 0.44, -0.02], [0.16, 0.86, 0.0], [0.00, -0.25, 0.0],
        [0.00, -0.50, 0.02], [0.00, -0.62, -0.05], [0.00, -0.75, 0.0], [0.18, -0.47, 0.02],
        [0.22, -0.20, 0.08], [0.24, 0.03, 0.05], [-0.18, -0.47, 0.02], [-0.25, -0.21, -0.05],
        [-0.28, 0.02, -0.10],
    ]
)  # fmt: skip


def turned_person(rng: np.random.Generator) -> np.ndarray:
    """A standing body turned about the vertical, limbs a little moved (camera frame)."""
    a = rng.uniform(-np.pi, np.pi)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    pose = POSE @ turn.T + rng.normal(0.0, 0.03, size=(17, 3))
    return pose - pose[0]


def project(pose: np.ndarray, root: np.ndarray) -> np.ndarray:
    """(17, 3) root-relative pose placed at ``root`` -> (17, 2) normalised keypoints."""
    p = pose + root
    return p[:, :2] / p[:, 2:3]


def walking_person(rng: np.random.Generator, frames: int, rate_hz: float):
    """(T, 17, 2) keypoints of a body turning slowly while it walks across, (T,) stamps."""
    a0, turn_rate = rng.uniform(-np.pi, np.pi), rng.uniform(-0.6, 0.6)
    limbs = rng.normal(0.0, 0.03, size=(17, 3))
    root = np.array([rng.uniform(-2, 2), rng.uniform(-0.3, 0.8), rng.uniform(5, 15)])
    step = np.array([rng.uniform(-1.2, 1.2), 0.0, rng.uniform(-0.5, 0.5)])
    t = np.arange(frames) / rate_hz
    kp = []
    for ti in t:
        a = a0 + turn_rate * ti
        turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        pose = POSE @ turn.T + limbs * np.cos(2.0 * ti)
        kp.append(project(pose - pose[0], root + step * ti))
    return np.stack(kp), t
