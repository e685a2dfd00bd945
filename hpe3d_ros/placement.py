"""Absolute placement: the root translation that makes a root-relative 3D pose reproject
onto the observed 2D keypoints.

For a root-relative pose ``X`` (J, 3) and undistorted normalised keypoints ``u`` (J, 2), each
visible joint gives two equations linear in the translation ``t``::

    (X_jx + t_x) - u_jx (X_jz + t_z) = 0
    (X_jy + t_y) - u_jy (X_jz + t_z) = 0

Weighted linear least squares gives ``t``; Gauss-Newton iterations on the true reprojection
error then refine it (the linear residual is the image error times depth). An optional
ground-plane prior adds one soft equation: the lower ankle lies on the plane ``n . p = d``,
the ground raised by the ankle joint's height (:class:`GroundPrior`).
Everything is vectorised over a leading batch axis, so K hypotheses solve at once.

The prior is only as good as the ankle it pins: for a person the image border cuts at the
waist (beside the vehicle) the lifter invents the legs, and a standing guess pinned to the
ground would place a sitting or cycling person confidently wrong. :func:`ground_scale` turns
the prior off for people with no ankle seen; their placement then rests on body size alone,
and the spread of the per-hypothesis solutions (the root's uncertainty) widens with it.

The same ground also sizes a person (:mod:`hpe3d_ros.body_size`); the pipeline scales the
pose by that size before placing it here.

Only the seen joints place a person (missing joints have weight 0), so the spread of the
per-hypothesis roots is the body-size and pose ambiguity of what the camera saw. Without a
prior it does not widen for a missing lower body, and measurement says it should not
(``benchmarks/bench_truncated_placement.py``, mocap of unseen subjects at 3 and 8 m with
detector-like noise): people missing their legs, or legs and hips, are placed as accurately
as whole people (depth RMS 0.28-0.29 vs 0.30 m at 3 m, 0.74-0.81 vs 0.94 m at 8 m) and their
90 % depth intervals hold 93-95 % of the truth (whole people: 92 %); cutting real pedestrians
at the hips moves their depth by a median 0.45 of the two spreads combined.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

_ANKLES = (3, 6)  # H36M right / left ankle
#: Height of the lower ankle joint above the ground (m): the median over frames of the lower
#: ankle's height in the shared CMU mocap is 0.08-0.13 m per subject (0.09 m over the
#: subjects on their own skeletons, 0.13 m over the retargeted rigs), so a walking person's
#: ankle is about 0.10 m up. A parameter (``placement.ankle_height_m``); 0 = the old prior.
ANKLE_HEIGHT_M = 0.10
#: How far the prior's plane strays from the true one at the lower ankle (m): the ankle's
#: height step to step and person to person, and the lifted foot's own error. :func:
#: `ground_spread` puts its effect into the root's spread, which the prior would otherwise
#: shrink as if it were exact (depth intervals held 44-61 % of the truth). Fitted on the
#: training subjects of ``benchmarks/placement_accuracy.py`` (2 and 5 px, 5-20 m): 0.03,
#: 0.035, 0.04, 0.045, 0.05 gave 90 % depth intervals holding 82, 86, 88.5, 89.8, 91.3 %.
ANKLE_HEIGHT_STD_M = 0.045
#: Default strength of the ground prior against one joint of confidence 1 (normalised units),
#: for a camera whose pitch is known (parameters, or a TF pose per frame that follows the
#: vehicle): chosen on the *training* subjects of ``benchmarks/placement_accuracy.py`` (feet
#: on the capture's floor, 2 and 5 px noise, 5-20 m; 10 against 2.5, 5, 20 and 40), and the
#: fusion's measurement model stays calibrated with it. A pitch wrong by 0.5 deg makes this
#: prior worse than none beyond about 8 m; with the pitch that uncertain, 2.5 did best there
#: (``BENCHMARKS.md``, "Placement"), and 0 turns it off.
GROUND_WEIGHT = 10.0


def ground_scale(
    conf_h36m: np.ndarray,
    min_confidence: float,
    kp_px: np.ndarray | None = None,
    image_height: float | None = None,
    border_fraction: float = 0.02,
) -> np.ndarray:
    """(...,) weight factor of the ground prior: 1 where a foot is seen on the image, else 0.

    A foot counts as seen when an ankle's confidence reaches ``min_confidence`` and, given
    ``kp_px`` (..., 17, 2) and ``image_height``, that ankle lies above the bottom border strip
    (``border_fraction`` of the height): a network asked for every joint of a person the
    bottom border cuts often puts an ankle on that border.

    Args:
        conf_h36m: (..., 17) H36M joint confidences (0 = missing).
        min_confidence: a joint below this counts as unseen.
    """
    conf = np.nan_to_num(np.asarray(conf_h36m, dtype=np.float64))
    seen = conf[..., _ANKLES] >= max(min_confidence, 1e-6)
    if kp_px is not None and image_height is not None:
        y = np.asarray(kp_px, dtype=np.float64)[..., _ANKLES, 1]
        seen &= np.isfinite(y) & (y < image_height * (1.0 - border_fraction))
    return seen.any(-1).astype(np.float64)


@dataclass(frozen=True)
class GroundPrior:
    """Flat ground in the camera's optical frame: ``normal . p == offset`` (metres).

    The prior pins the lower *ankle joint*, which stands ``ankle_height`` above the ground
    when its foot is down (:data:`ANKLE_HEIGHT_M`), not on it: pinning the joint to the road
    itself lowers the whole person by that much, and with a camera 1.5 m up places them 7-8 %
    too far (``benchmarks/placement_accuracy.py``).
    """

    normal: np.ndarray  # (3,) unit, pointing down
    offset: float  # camera height above the ground
    weight: float = 1.0  # relative to one joint with confidence 1, in normalised units
    ankle_height: float = ANKLE_HEIGHT_M  # the lower ankle joint's height above the ground
    ankle_height_std: float = ANKLE_HEIGHT_STD_M  # how far it strays (see ground_spread)

    @property
    def ankle_plane(self) -> float:
        """``normal . p`` of the plane the lower ankle lies on (camera height above it)."""
        return self.offset - self.ankle_height


def solve_root_translation(
    pose_rel_m: np.ndarray,
    kp_norm: np.ndarray,
    weights: np.ndarray,
    ground: GroundPrior | None = None,
    refine_iters: int = 3,
    min_depth_m: float = 0.3,
    ground_scale: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Root translation(s) (..., 3) in metres.

    Args:
        pose_rel_m: (..., J, 3) root-relative pose(s) in the optical frame.
        kp_norm: (J, 2) or (..., J, 2) undistorted normalised keypoints (NaN where missing).
        weights: (J,) or (..., J) per-joint weight (e.g. confidence; 0 = ignore).
        ground: optional flat-ground prior.
        ground_scale: (...,) or scalar factor on the prior's weight per batch element (0 =
            no prior for that element; see :func:`ground_scale`).
        refine_iters: Gauss-Newton iterations on the reprojection error.
        min_depth_m: solutions are kept at least this far in front of the camera.

    Returns:
        (..., 3); NaN where fewer than two joints have weight.
    """
    X = np.asarray(pose_rel_m, dtype=np.float64)
    u = np.broadcast_to(np.asarray(kp_norm, dtype=np.float64), (*X.shape[:-1], 2))
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), X.shape[:-1])
    valid = np.isfinite(u).all(-1) & np.isfinite(X).all(-1) & (w > 0)
    g_w = None
    if ground is not None:
        g_w = ground.weight * np.broadcast_to(np.asarray(ground_scale, np.float64), X.shape[:-2])
    w = np.where(valid, w, 0.0)
    u = np.where(valid[..., None], u, 0.0)
    X = np.where(valid[..., None], X, 0.0)
    enough = valid.sum(-1) >= 2

    # Linear system A t = b per batch element; rows per joint: x and y equations.
    ux, uy = u[..., 0], u[..., 1]
    zeros, ones = np.zeros_like(ux), np.ones_like(ux)
    ax = np.stack([ones, zeros, -ux], -1)  # (..., J, 3)
    ay = np.stack([zeros, ones, -uy], -1)
    bx = ux * X[..., 2] - X[..., 0]
    by = uy * X[..., 2] - X[..., 1]
    A = np.concatenate([ax, ay], -2)
    b = np.concatenate([bx, by], -1)
    W = np.concatenate([w, w], -1)
    if ground is not None:
        # the lower of the two ankles (larger projection on the down normal) touches the ground
        n = np.asarray(ground.normal, dtype=np.float64)
        foot = lower_ankle(X, n)
        A = np.concatenate([A, np.broadcast_to(n, (*X.shape[:-2], 1, 3))], -2)
        b = np.concatenate([b, ground.ankle_plane - foot[..., 0, :] @ n[:, None]], -1)
        W = np.concatenate([W, g_w[..., None]], -1)
    t = _weighted_lstsq(A, b, W)

    for _ in range(refine_iters):
        t = _gauss_newton_step(X, u, w, t, ground, g_w, min_depth_m)
    t[..., 2] = np.maximum(t[..., 2], min_depth_m)
    t[~enough] = np.nan
    return t


def size_spread(
    pose_rel_m: np.ndarray,
    kp_norm: np.ndarray,
    weights: np.ndarray,
    size_std: np.ndarray | float,
    ground: GroundPrior | None = None,
    ground_scale: np.ndarray | float = 1.0,
) -> np.ndarray:
    """(..., 3) root std from an error of ``size_std`` (log scale; scalar or (...,)) in the
    body's size.

    The pose is placed again scaled by exp(+-size_std) (arguments as
    :func:`solve_root_translation`); half the difference of the two roots runs along the
    direction size moves the person: the viewing ray without a ground prior, much less with
    the feet on the ground.
    """
    sd = np.broadcast_to(np.asarray(size_std, dtype=np.float64), np.shape(pose_rel_m)[:-2])
    scale = np.exp(np.stack([sd, -sd]))[..., None, None]  # (2, ..., 1, 1)
    t_pm = solve_root_translation(
        np.asarray(pose_rel_m)[None] * scale, np.asarray(kp_norm)[None],
        np.asarray(weights)[None], ground, ground_scale=np.asarray(ground_scale)[None],
    )  # fmt: skip
    return 0.5 * np.abs(t_pm[0] - t_pm[1])


def ground_spread(
    pose_rel_m: np.ndarray,
    kp_norm: np.ndarray,
    weights: np.ndarray,
    ground: GroundPrior | None,
    ground_scale: np.ndarray | float = 1.0,
) -> np.ndarray | float:
    """(..., 3) root std from the ground prior's own error: the pose placed again with the
    ankle ``ankle_height_std`` higher and lower (arguments as :func:`solve_root_translation`);
    0 without a prior, and where ``ground_scale`` turns it off."""
    if ground is None or ground.ankle_height_std <= 0:
        return 0.0
    s = ground.ankle_height_std
    t_lo, t_hi = (
        solve_root_translation(pose_rel_m, kp_norm, weights, replace(ground, ankle_height=h),
                               ground_scale=ground_scale)
        for h in (ground.ankle_height - s, ground.ankle_height + s)
    )  # fmt: skip
    return 0.5 * np.abs(t_hi - t_lo)


def lower_ankle(X: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(..., 1, 3): the ankle furthest along the down normal ``n``, the one on the ground."""
    ankles = X[..., _ANKLES, :]
    return np.take_along_axis(ankles, (ankles @ n).argmax(-1)[..., None, None], -2)


def _weighted_lstsq(A: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    Aw = A * w[..., None]
    ata = np.swapaxes(Aw, -1, -2) @ A + 1e-9 * np.eye(3)
    atb = (np.swapaxes(Aw, -1, -2) @ b[..., None])[..., 0]
    return np.linalg.solve(ata, atb[..., None])[..., 0]


def _gauss_newton_step(
    X: np.ndarray,
    u: np.ndarray,
    w: np.ndarray,
    t: np.ndarray,
    ground: GroundPrior | None,
    ground_w: np.ndarray | None,
    min_depth_m: float,
) -> np.ndarray:
    P = X + t[..., None, :]
    z = np.maximum(P[..., 2], min_depth_m)
    rx = P[..., 0] / z - u[..., 0]
    ry = P[..., 1] / z - u[..., 1]
    # d(x/z)/dt = (1/z, 0, -x/z^2); d(y/z)/dt = (0, 1/z, -y/z^2)
    zeros = np.zeros_like(z)
    jx = np.stack([1 / z, zeros, -P[..., 0] / z**2], -1)
    jy = np.stack([zeros, 1 / z, -P[..., 1] / z**2], -1)
    J = np.concatenate([jx, jy], -2)
    r = np.concatenate([rx, ry], -1)
    W = np.concatenate([w, w], -1)
    if ground is not None:
        # keep the ground prior at the same relative strength: express it in normalised units
        n = np.asarray(ground.normal, dtype=np.float64)
        foot = lower_ankle(X, n)
        zr = t[..., 2:3]
        above = (foot[..., 0, :] + t) @ n - ground.ankle_plane
        rg = above[..., None] / np.maximum(zr, min_depth_m)
        jg = np.broadcast_to(n, (*t.shape[:-1], 1, 3)) / np.maximum(zr, min_depth_m)[..., None]
        J = np.concatenate([J, jg], -2)
        r = np.concatenate([r, rg], -1)
        W = np.concatenate([W, ground_w[..., None]], -1)
    return t - _weighted_lstsq(J, r, W)
