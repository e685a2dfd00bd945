"""One track's 2D history on the temporal lifter's frame grid (numpy, shared by training,
the runtime and the pipeline).

A camera's frames arrive at its own rate (10, 15, 30 Hz, with jitter and dropped frames);
the temporal lifter sees a regular grid at its own ``rate_hz``. :func:`grid_frames` reads a
track's frames at any times: a time that falls on a frame (within :data:`STAMP_TOL_S`) takes
it, a time between two frames interpolates the normalised keypoints, confidences and noise
levels linearly (a joint counts only where both frames have it), and a time before the
track's first frame, after its last, or inside a gap longer than ``max_gap_s`` is *unseen*.
:func:`window_times` gives the grid of a window that ends at a frame, so the output of a
frame depends only on that frame and earlier ones (causal). :func:`frame_features` turns
grid frames into the temporal encoder's per-frame inputs (the single-frame lifter's
features, each frame in its own virtual camera, and a "seen" flag; unseen frames are zeros).
"""

from __future__ import annotations

import numpy as np

from hpe3d_ros.lifting.normalize import N_JOINTS, prepare_inputs, visibility

#: Two stamps closer than this are the same instant (seconds).
STAMP_TOL_S = 1e-3


def window_times(t_end: float, n: int, rate_hz: float) -> np.ndarray:
    """(n,) ascending grid times of a window of ``n`` frames at ``rate_hz`` ending at ``t_end``."""
    return t_end - (n - 1 - np.arange(n)) / rate_hz


def grid_frames(
    stamps: np.ndarray,
    kp_norm: np.ndarray,
    conf: np.ndarray,
    noise_std: np.ndarray | None,
    times: np.ndarray,
    max_gap_s: float,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One track's frames at ``times`` (see the module docstring).

    Args:
        stamps: (T,) strictly increasing frame times, seconds.
        kp_norm: (T, 17, 2) normalised camera coordinates (NaN where missing).
        conf: (T, 17) confidences; below ``threshold`` (or NaN) a joint is missing.
        noise_std: (T, 17) 2D noise std (normalised units) or None = unknown; a row with a
            NaN = unknown for that frame.
        times: (n,) query times, seconds.

    Returns:
        kp (n, 17, 2) with NaN where missing, conf (n, 17) (0 where missing), noise (n, 17)
        (NaN rows = unknown, 0 on missing joints), seen (n,) bool.
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    kp = np.asarray(kp_norm, dtype=np.float64).reshape(-1, N_JOINTS, 2)
    cf = np.asarray(conf, dtype=np.float64).reshape(-1, N_JOINTS)
    n_frames, n = len(stamps), len(times)
    if n_frames == 0:
        return (
            np.full((n, N_JOINTS, 2), np.nan),
            np.zeros((n, N_JOINTS)),
            np.full((n, N_JOINTS), np.nan),
            np.zeros(n, dtype=bool),
        )
    if noise_std is None:
        ns = np.full((n_frames, N_JOINTS), np.nan)
    else:
        ns = np.broadcast_to(
            np.asarray(noise_std, dtype=np.float64).reshape(n_frames, -1), (n_frames, N_JOINTS)
        )
    known = np.isfinite(ns).all(axis=1)
    vis = visibility(kp, cf, threshold)
    kp0 = np.where(vis[..., None], kp, 0.0)
    cf0 = np.where(vis, np.nan_to_num(cf), 0.0)
    ns0 = np.where(vis & known[:, None], np.nan_to_num(ns), 0.0)

    i = np.searchsorted(stamps, times + STAMP_TOL_S, side="right") - 1  # last frame <= t
    i = np.clip(i, -1, n_frames - 1)
    ic = np.clip(i, 0, n_frames - 1)
    jc = np.clip(i + 1, 0, n_frames - 1)
    s0, s1 = stamps[ic], stamps[jc]
    exact = (i >= 0) & (np.abs(times - s0) <= STAMP_TOL_S)
    between = (i >= 0) & ~exact & (jc > ic) & (s1 - s0 <= max_gap_s)
    w = np.where(between, (times - s0) / np.where(jc > ic, s1 - s0, 1.0), 0.0)
    w = np.clip(w, 0.0, 1.0)
    a, b = (1.0 - w)[:, None], w[:, None]
    joint = np.where(exact[:, None], vis[ic], between[:, None] & vis[ic] & vis[jc])
    kp_g = a[..., None] * kp0[ic] + b[..., None] * kp0[jc]
    cf_g = np.where(joint, a * cf0[ic] + b * cf0[jc], 0.0)
    row_known = np.where(exact, known[ic], known[ic] & known[jc])
    ns_g = np.where(joint, a * ns0[ic] + b * ns0[jc], 0.0)
    ns_g[~row_known] = np.nan
    seen = (exact | between) & joint.any(axis=1)
    kp_g[~joint] = np.nan
    return kp_g, cf_g, ns_g, seen


def frame_features(
    kp: np.ndarray, conf: np.ndarray, noise: np.ndarray, seen: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Grid frames (M, 17, 2), (M, 17), (M, 17), (M,) -> encoder inputs (M, 91) float32
    (noise-aware lifter features + the seen flag; zeros where unseen) and rotations
    (M, 3, 3) camera -> each frame's virtual camera (identity where unseen)."""
    feats, rot = prepare_inputs(kp, conf, threshold, noise, True)
    feats = np.concatenate([feats, np.ones((len(feats), 1), np.float32)], axis=1)
    feats[~seen] = 0.0
    rot[~seen] = np.eye(3)
    return feats, rot
