"""Lifter input normalisation: where and how far the person is must not matter.

The 2D keypoints arrive in normalised camera coordinates (undistorted ``x/z, y/z``). For each
person we rotate the camera virtually so that its optical axis passes through the person's 2D
centre (pelvis if seen, else the hips, else the visible joints), re-project the joints into
that virtual camera, and divide by their RMS spread. The network then sees a centred,
scale-free 2D pose, plus the centre's ray and the log of the spread (so perspective that
depends on position and distance stays learnable), the per-joint confidence and a
visibility mask. It predicts root-relative 3D in the *virtual* camera frame; :func:`to_camera`
rotates that back into the real camera frame (x right, y down, z forward).

Everything here is numpy so that the training data generator, the torch runtime and the
export backends share one implementation.
"""

from __future__ import annotations

import numpy as np

N_JOINTS = 17
#: Features per person: 17x2 centred/scaled keypoints, 17 mask, 17 confidence, ray (3), log-scale.
N_FEATURES = N_JOINTS * 4 + 4
#: Noise-aware lifters add the 2D noise level: 17 per-joint values and a "given" flag.
N_NOISE_FEATURES = N_JOINTS + 1
_NOISE_REL_MIN, _NOISE_REL_CENTRE, _NOISE_REL_SCALE = 1e-3, 0.02, 1.5
#: The noise-level feature of exact 2D (noise std 0, floored at _NOISE_REL_MIN).
EXACT_NOISE_LEVEL = float(np.log(_NOISE_REL_MIN / _NOISE_REL_CENTRE) / _NOISE_REL_SCALE)
DEFAULT_CONF_THRESHOLD = 0.2
_MIN_SPREAD = 1e-4
_LOG_SPREAD_CENTRE, _LOG_SPREAD_SCALE = -3.0, 1.5
#: The noise-level feature's range (given or estimated levels are clipped to it).
NOISE_LEVEL_RANGE = (-3.0, 3.0)


def visibility(kp_norm: np.ndarray, confidence: np.ndarray, threshold: float) -> np.ndarray:
    """(N, J) bool: joint usable (finite coordinates, finite confidence >= threshold)."""
    finite = np.isfinite(kp_norm).all(axis=-1) & np.isfinite(confidence)
    with np.errstate(invalid="ignore"):
        return finite & (np.nan_to_num(confidence, nan=0.0) >= threshold)


def person_centre(kp_norm: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, 2) centre: pelvis if valid, else mid-hips if both valid, else mean of valid joints."""
    kp = np.where(valid[..., None], kp_norm, 0.0)
    n_valid = valid.sum(axis=1, keepdims=True)
    mean_valid = kp.sum(axis=1) / np.maximum(n_valid, 1)
    hips = valid[:, 1] & valid[:, 4]
    centre = np.where(hips[:, None], 0.5 * (kp[:, 1] + kp[:, 4]), mean_valid)
    return np.where(valid[:, :1], kp[:, 0], centre)


def rotation_to_axis(ray: np.ndarray) -> np.ndarray:
    """(N, 3) unit rays with z > 0 -> (N, 3, 3) minimal rotations R with R @ ray = (0, 0, 1)."""
    v = np.stack([ray[:, 1], -ray[:, 0], np.zeros_like(ray[:, 0])], axis=-1)  # ray x e_z
    c = ray[:, 2]
    vx = np.zeros((len(ray), 3, 3))
    vx[:, 0, 1], vx[:, 0, 2] = -v[:, 2], v[:, 1]
    vx[:, 1, 0], vx[:, 1, 2] = v[:, 2], -v[:, 0]
    vx[:, 2, 0], vx[:, 2, 1] = -v[:, 1], v[:, 0]
    return np.eye(3)[None] + vx + (vx @ vx) / (1.0 + c)[:, None, None]


def prepare_inputs(
    kp_norm: np.ndarray,
    confidence: np.ndarray,
    threshold: float = DEFAULT_CONF_THRESHOLD,
    noise_std: np.ndarray | None = None,
    noise_features: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 17, 2) normalised coords + confidence (N, 17) -> features, rotations.

    Returns ``features`` (N, :data:`N_FEATURES`) float32 and ``R`` (N, 3, 3) float64, the
    rotation from the camera frame to each person's virtual camera. NaN/inf coordinates or
    confidences, and confidences below ``threshold``, mark a joint missing; the features are
    always finite.

    ``noise_features`` (noise-aware lifters) appends :data:`N_NOISE_FEATURES` numbers: per
    joint the log of the 2D noise std relative to the person's RMS spread, and a flag "noise
    level given". ``noise_std``: (N, 17) or (N,) std of the 2D noise in the units of
    ``kp_norm`` (pixels / focal length); None, or NaN in a row, = not known (flag 0).
    """
    kp_norm = np.asarray(kp_norm, dtype=np.float64).reshape(-1, N_JOINTS, 2)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1, N_JOINTS)
    n = kp_norm.shape[0]
    valid = visibility(kp_norm, confidence, threshold)
    kp = np.where(valid[..., None], kp_norm, 0.0)
    kp = np.clip(kp, -1e3, 1e3)  # absurd but finite inputs must stay finite
    centre = person_centre(kp, valid)
    ray = np.concatenate([centre, np.ones((n, 1))], axis=-1)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    R = rotation_to_axis(ray)
    rays_j = np.concatenate([kp, np.ones((n, N_JOINTS, 1))], axis=-1) @ R.transpose(0, 2, 1)
    z = np.maximum(rays_j[..., 2:3], 1e-3)
    kp_v = np.where(valid[..., None], rays_j[..., :2] / z, 0.0)
    n_valid = np.maximum(valid.sum(axis=1), 1)
    spread = np.sqrt((kp_v**2).sum(axis=(1, 2)) / n_valid)
    spread = np.maximum(spread, _MIN_SPREAD)
    kp_s = kp_v / spread[:, None, None]
    log_spread = (np.log(spread) - _LOG_SPREAD_CENTRE) / _LOG_SPREAD_SCALE
    conf = np.where(valid, np.clip(np.nan_to_num(confidence), 0.0, 1.0), 0.0)
    feats = np.concatenate(
        [
            kp_s.reshape(n, N_JOINTS * 2),
            valid.astype(np.float64),
            conf,
            ray,
            np.clip(log_spread, -3.0, 3.0)[:, None],
        ],
        axis=1,
    )
    if noise_features:
        feats = np.concatenate([feats, noise_level_features(noise_std, valid, spread)], axis=1)
    return feats.astype(np.float32), R


def noise_level_features(
    noise_std: np.ndarray | None, valid: np.ndarray, spread: np.ndarray
) -> np.ndarray:
    """(N, 17) or (N,) noise std (normalised units; None/NaN = unknown) -> (N, 18) features."""
    n = len(valid)
    if noise_std is None:
        return np.zeros((n, N_NOISE_FEATURES))
    std = np.broadcast_to(np.asarray(noise_std, dtype=np.float64).reshape(n, -1), (n, N_JOINTS))
    given = np.isfinite(std).all(axis=1)
    rel = np.where(np.isfinite(std), np.abs(std), 0.0) / spread[:, None]
    level = np.log(np.maximum(rel, _NOISE_REL_MIN) / _NOISE_REL_CENTRE) / _NOISE_REL_SCALE
    level = np.where(valid & given[:, None], np.clip(level, *NOISE_LEVEL_RANGE), 0.0)
    return np.concatenate([level, given[:, None].astype(np.float64)], axis=1)


def noise_std_from_features(feats: np.ndarray) -> np.ndarray:
    """Features with noise inputs (N, :data:`N_FEATURES` + :data:`N_NOISE_FEATURES`) -> (N, 17)
    the 2D noise std (normalised units) their per-joint levels stand for, the inverse of
    :func:`noise_level_features` (to the level's floor and clip); an unknown level (flag 0,
    no estimate) reads as the level feature's centre."""
    feats = np.asarray(feats, dtype=np.float64)
    level = feats[:, N_FEATURES : N_FEATURES + N_JOINTS]
    spread = np.exp(feats[:, N_FEATURES - 1] * _LOG_SPREAD_SCALE + _LOG_SPREAD_CENTRE)
    return _NOISE_REL_CENTRE * np.exp(level * _NOISE_REL_SCALE) * spread[:, None]


def to_virtual(points_cam: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Camera-frame points (N, ..., 3) -> virtual-camera frame with rotations R (N, 3, 3)."""
    return np.einsum("nij,n...j->n...i", R, points_cam)


def to_camera(points_virtual: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_virtual`: (N, ..., 3) virtual-frame points -> camera frame."""
    return np.einsum("nji,n...j->n...i", R, points_virtual)


def noise_level_from_features(levels: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """Per-joint noise-level features (N, 17) (an estimate, e.g.
    :class:`~hpe3d_ros.lifting.noise_estimate.NoiseEstimator`) and the plain features they
    belong to (N, :data:`N_FEATURES`) -> the (N, 18) noise inputs of a *given* level: the
    levels where a joint is visible, 0 elsewhere, flag 1 (as :func:`noise_level_features`)."""
    valid = np.asarray(plain)[:, 2 * N_JOINTS : 3 * N_JOINTS] > 0.5
    level = np.where(valid, np.clip(levels, *NOISE_LEVEL_RANGE), 0.0)
    return np.concatenate([level, np.ones((len(level), 1))], axis=1).astype(np.float32)
