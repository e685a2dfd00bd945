"""Fusing what several cameras saw of one person: the root and the pose hypotheses.

* :func:`fuse_gaussians`: information-form fusion of ray-shaped root Gaussians. With each
  camera's covariance long along its ray and thin across it, the fused mean is the weighted
  least-squares intersection of the rays (triangulation, with every monocular depth as a weak
  prior), and the fused covariance shrinks to the size of the crossing: small where the views
  agree and cross at a wide angle, long where the rays are nearly parallel.
* :func:`fuse_hypotheses`: the root-relative hypotheses of every view are pooled, anchored at
  the fused root, scored by how well they reproject into **every** view that saw the person
  (a robust Gaussian pixel likelihood, its sigma growing with distance), and K of them are
  resampled by those weights (systematic resampling, seeded). A limb that one camera could
  not place in depth is settled by the other camera's view of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hpe3d_ros.fusion.observations import Observation


def fuse_gaussians(means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Product of V Gaussians: ((3,), (3, 3)) from means (V, 3) and covariances (V, 3, 3)."""
    means = np.asarray(means, dtype=np.float64)
    info = np.linalg.inv(np.asarray(covs, dtype=np.float64))
    cov = np.linalg.inv(info.sum(0))
    mean = cov @ np.einsum("vij,vj->i", info, means)
    return mean, 0.5 * (cov + cov.T)


@dataclass(frozen=True)
class ReprojectionModel:
    """Pixel likelihood of a hypothesis in one view.

    sigma per joint = sqrt(pixel_sigma^2 + (f * body_sigma_m / depth)^2): detector noise plus
    the lifter's body-shape error seen at that distance; a residual beyond ``clip`` sigmas
    counts as ``clip`` sigmas (one wrong keypoint cannot veto a hypothesis). ``temperature``
    flattens the weights because joints of one person are not independent.
    """

    pixel_sigma: float = 4.0
    body_sigma_m: float = 0.06
    clip: float = 3.0
    temperature: float = 4.0
    min_confidence: float = 0.2


def reprojection_log_likelihood(
    poses_m: np.ndarray, view: Observation, model: ReprojectionModel
) -> np.ndarray:
    """(K,) log-likelihood of absolute target-frame poses (K, J, 3) in one view's image."""
    T_cam_target = view.T_target_camera.inverse()
    p_cam = T_cam_target.apply(poses_m)  # (K, J, 3)
    px = view.camera.project(p_cam)
    seen = (np.nan_to_num(view.keypoint_conf) >= model.min_confidence) & np.isfinite(
        view.keypoints_px
    ).all(-1)
    if not seen.any():
        return np.zeros(len(poses_m))
    depth = np.maximum(p_cam[..., 2], 0.3)
    f = 0.5 * (view.camera.fx + view.camera.fy)
    sigma = np.sqrt(model.pixel_sigma**2 + (f * model.body_sigma_m / depth) ** 2)
    r = np.linalg.norm(px - np.nan_to_num(view.keypoints_px)[None], axis=-1) / sigma
    r = np.where(np.isfinite(r), np.minimum(r, model.clip), model.clip)
    return -0.5 * (r[:, seen] ** 2).sum(-1) / model.temperature


def systematic_resample(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k,) indices drawn by systematic resampling of normalised ``weights`` (N,)."""
    cdf = np.cumsum(weights)
    cdf[-1] = 1.0
    u = (rng.random() + np.arange(k)) / k
    return np.searchsorted(cdf, u)


@dataclass
class FusedPose:
    """Hypotheses of one person fused over views.

    hypotheses_m: (K, J, 3) absolute, at ``root_m``; ess: effective sample size of the
    pooled weights (the number of hypotheses that still mattered).
    """

    hypotheses_m: np.ndarray
    ess: float


def fuse_hypotheses(
    views: Sequence[Observation],
    root_at: Sequence[np.ndarray],
    out_root_m: np.ndarray,
    k_out: int,
    seed: int,
    model: ReprojectionModel | None = None,
) -> FusedPose:
    """Pool, re-weight by reprojection into every view, and resample K hypotheses.

    Args:
        views: the observations of one person (one per camera).
        root_at: per view, the fused root (3,) at that view's image stamp (motion
            compensated), where the hypotheses are placed to reproject into that view.
        out_root_m: (3,) the root at the output stamp, where the result is anchored.
        k_out: K of the result.
        seed: resampling seed (the result is a pure function of its inputs).
    """
    model = model or ReprojectionModel()
    rel = np.concatenate([v.relative_hypotheses_m for v in views], axis=0)  # (N, J, 3)
    if len(views) == 1:
        k = min(k_out, len(rel))
        return FusedPose((rel[:k] + out_root_m).astype(np.float32), float(k))
    logw = np.zeros(len(rel))
    for view, root in zip(views, root_at, strict=True):
        logw += reprojection_log_likelihood(rel + np.asarray(root)[None, None], view, model)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    ess = float(1.0 / np.sum(w**2))
    idx = systematic_resample(w, k_out, np.random.default_rng(seed))
    return FusedPose((rel[idx] + out_root_m).astype(np.float32), ess)
