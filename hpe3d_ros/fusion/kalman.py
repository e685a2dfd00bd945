"""Constant-velocity Kalman filter for a person's root in 3D (ROS-free, numpy).

State ``x = [p (3), v (3)]`` in the target frame, metres and m/s; the measurement is the
position with a full 3x3 covariance (a camera's ray-shaped cigar). Process noise is the
continuous white-noise acceleration model (piecewise-integrated), with its own spectral
density across the ground (x, y) and vertically (z): people turn and stop, but rarely jump.

Why no library: the filter is the textbook predict/update pair (a dozen lines) on 6 states;
filterpy would add a dependency with no rosdep key for that, and a general framework
(Stone Soup) far more. The Joseph form keeps ``P`` symmetric and positive definite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_H = np.hstack([np.eye(3), np.zeros((3, 3))])


@dataclass(frozen=True)
class MotionModel:
    """Process noise of the constant-velocity model.

    Attributes:
        accel_xy: acceleration spectral density across the ground, m^2/s^3.
        accel_z: vertically, m^2/s^3.
        initial_speed: 1-sigma of a new track's velocity per axis, m/s.
    """

    accel_xy: float = 1.5
    accel_z: float = 0.1
    initial_speed: float = 1.2

    def transition(self, dt: float) -> np.ndarray:
        F = np.eye(6)
        F[:3, 3:] = dt * np.eye(3)
        return F

    def noise(self, dt: float) -> np.ndarray:
        """(6, 6) process noise for a step of ``|dt|`` seconds."""
        dt = abs(dt)
        q = np.array([self.accel_xy, self.accel_xy, self.accel_z])
        Q = np.zeros((6, 6))
        i = np.arange(3)
        Q[i, i] = q * dt**3 / 3
        Q[i, i + 3] = Q[i + 3, i] = q * dt**2 / 2
        Q[i + 3, i + 3] = q * dt
        return Q


def initial_state(
    position: np.ndarray, position_cov: np.ndarray, model: MotionModel
) -> tuple[np.ndarray, np.ndarray]:
    """(x (6,), P (6, 6)) of a new track at a measured position, velocity unknown."""
    x = np.concatenate([np.asarray(position, np.float64), np.zeros(3)])
    P = np.zeros((6, 6))
    P[:3, :3] = position_cov
    P[3:, 3:] = model.initial_speed**2 * np.eye(3)
    return x, P


def predict(
    x: np.ndarray, P: np.ndarray, dt: float, model: MotionModel
) -> tuple[np.ndarray, np.ndarray]:
    """State and covariance ``dt`` seconds later (``dt`` may be 0)."""
    if dt == 0:
        return x.copy(), P.copy()
    F = model.transition(dt)
    return F @ x, F @ P @ F.T + model.noise(dt)


def innovation(
    x: np.ndarray, P: np.ndarray, z: np.ndarray, R: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(y (3,), S (3, 3)): measurement residual and its covariance."""
    return np.asarray(z, np.float64) - x[:3], P[:3, :3] + R


def mahalanobis_sq(y: np.ndarray, S: np.ndarray) -> float:
    """``y^T S^-1 y`` (inf for a singular or non-finite ``S``)."""
    try:
        d = float(y @ np.linalg.solve(S, y))
    except np.linalg.LinAlgError:
        return float("inf")
    return d if np.isfinite(d) else float("inf")


def update(
    x: np.ndarray, P: np.ndarray, z: np.ndarray, R: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Position measurement ``z`` (3,) with covariance ``R`` (3, 3); Joseph form."""
    y, S = innovation(x, P, z, R)
    K = np.linalg.solve(S, (P @ _H.T).T).T  # P H^T S^-1 (S symmetric)
    x_new = x + K @ y
    A = np.eye(6) - K @ _H
    P_new = A @ P @ A.T + K @ R @ K.T
    return x_new, 0.5 * (P_new + P_new.T)
