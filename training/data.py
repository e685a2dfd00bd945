"""Training data for the lifter: real mocap seen through random virtual vehicle cameras.

Pipeline per epoch (all vectorised numpy, seeded by the caller's ``Generator``):

1. mocap pose (17, 3), world frame, Z up, metres (``../shared/data`` or a rebuilt file);
2. body augmentation (:mod:`training.body_augment`): new bodies, mirror, yaw;
3. a virtual vehicle camera: height 0.8-2.2 m, horizontal distance 2-40 m (log-uniform),
   person anywhere across (and partly beyond) the field of view, pitch/roll jitter,
   horizontal FOV 40-120 deg, real lens distortion (plumb_bob, rational or fisheye);
4. projection to pixels with :class:`hpe3d_ros.camera.CameraModel`, detector-like noise
   (size-relative Gaussian jitter, occasional gross errors, confidences), joints outside the
   image or dropped (random, or a whole lower body behind a car) marked missing;
5. back to undistorted normalised coordinates and :func:`prepare_inputs`, the same code the
   runtime uses; target = root-relative 3D in the person's virtual camera frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.lifting.normalize import prepare_inputs, to_virtual
from training.augment_config import AugmentConfig
from training.body_augment import augment_bodies
from training.mocap import DATA_DIR, DEFAULT_DATA, SPLITS, load_mocap, split_indices

__all__ = ["DATA_DIR", "DEFAULT_DATA", "AugmentConfig", "generate", "load_mocap", "split_indices"]
VAL_SUBJECTS, TEST_SUBJECTS = SPLITS["v1"]
_RETRIES = 4


# ---------------------------------------------------------------------- virtual cameras
def random_intrinsics(cfg: AugmentConfig, rng: np.random.Generator) -> CameraModel:
    """A random vehicle camera: size, horizontal FOV and a realistic distortion model."""
    width, height = [(1920, 1080), (1280, 720), (1280, 960), (1920, 1200), (640, 480)][
        rng.integers(5)
    ]
    hfov = rng.uniform(*cfg.hfov_deg)
    if hfov > 95.0 and rng.random() < 0.6:
        D = rng.normal(0.0, [0.04, 0.02, 0.01, 0.005])
        return CameraModel.from_fov(width, height, hfov, D, "equidistant")
    k1 = rng.uniform(-0.35, 0.05) * min(1.0, 60.0 / hfov)
    D = np.array([k1, rng.uniform(0.0, 0.12) * abs(k1) / 0.35, *rng.normal(0, 5e-4, 2), 0.0])
    if rng.random() < 0.3:
        rat = np.array([k1, 0.02, *rng.normal(0, 5e-4, 2), 0.0, 0.3 * k1, 0.0, 0.0])
        return CameraModel.from_fov(width, height, hfov, rat, "rational_polynomial")
    return CameraModel.from_fov(width, height, hfov, D, "plumb_bob")


def _axis_rot(axis: int, ang: np.ndarray) -> np.ndarray:
    c, s = np.cos(ang), np.sin(ang)
    R = np.zeros((len(ang), 3, 3))
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    R[:, axis, axis] = 1.0
    R[:, i, i], R[:, j, j] = c, c
    R[:, i, j], R[:, j, i] = -s, s
    return R


def place_in_cameras(
    bodies: np.ndarray, hfov_deg: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """(N, 17, 3) world bodies (root over the origin) -> optical-frame points (N, 17, 3)."""
    n = len(bodies)
    h = rng.uniform(*cfg.cam_height_m, size=n)
    d = np.exp(rng.uniform(*np.log(cfg.distance_m), size=n))
    bearing = np.radians(hfov_deg) * rng.uniform(-cfg.offaxis_frac, cfg.offaxis_frac, size=n)
    # World (x right, y forward, z up) relative to the camera, then to optical axes.
    pts = bodies.copy()
    pts[..., 0] += (d * np.sin(bearing))[:, None]
    pts[..., 1] += (d * np.cos(bearing))[:, None]
    pts[..., 2] -= h[:, None]
    opt = np.stack([pts[..., 0], -pts[..., 2], pts[..., 1]], axis=-1)
    pitch = np.radians(rng.uniform(*cfg.pitch_deg, size=n))  # + = looking down
    roll = np.radians(rng.normal(0.0, cfg.roll_std_deg, size=n))
    R = _axis_rot(2, roll) @ _axis_rot(0, -pitch)
    return np.einsum("nij,nkj->nki", R, opt)


# ---------------------------------------------------------------------- detector model
def observe(
    points_cam: np.ndarray,
    cams: list[CameraModel],
    cam_idx: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optical-frame joints (N, 17, 3) -> detector-like ``kp_norm`` (N, 17, 2), ``conf``
    (N, 17) and ``noise_std`` (N, 17): the std of the Gaussian jitter in normalised units
    (pixels times the local pixel size after undistortion; 0 where missing)."""
    n = len(points_cam)
    kp = np.full((n, 17, 2), np.nan)
    noise_std = np.zeros((n, 17))
    conf = rng.uniform(*cfg.conf_range, size=(n, 17))
    for i, cam in enumerate(cams):
        sel = np.flatnonzero(cam_idx == i)
        if sel.size == 0:
            continue
        px = cam.project(points_cam[sel])  # (m, 17, 2)
        finite = np.isfinite(px).all(-1)
        lo, hi = (
            np.nanmin(np.where(finite[..., None], px, np.nan), axis=1),
            np.nanmax(np.where(finite[..., None], px, np.nan), axis=1),
        )
        size = np.nan_to_num(np.max(hi - lo, axis=-1), nan=10.0)[:, None, None]
        shape = (sel.size, 1, 1)
        if cfg.noise_frac_log:
            frac = np.exp(rng.uniform(*np.log(cfg.noise_frac), size=shape))
        else:
            frac = rng.uniform(*cfg.noise_frac, size=shape)
        floor = cfg.noise_px_min
        if cfg.noise_px_max > 0:
            floor = rng.uniform(cfg.noise_px_min, cfg.noise_px_max, size=shape)
        sigma = np.hypot(frac * size, floor) * (1.6 - conf[sel])[..., None]
        if cfg.exact_prob > 0:
            sigma = sigma * (rng.random(shape) >= cfg.exact_prob)
        px = px + rng.normal(size=px.shape) * sigma
        gross = rng.random((sel.size, 17)) < cfg.outlier_prob
        if cfg.exact_prob > 0:
            gross &= sigma[..., 0] > 0
        px += gross[..., None] * rng.normal(size=px.shape) * 0.15 * size
        conf[sel] = np.where(gross, rng.uniform(0.2, 0.6, size=gross.shape), conf[sel])
        inside = cam.in_image(px) & finite
        # Past the image corner the distortion model may fold back: trust nothing there.
        r_max = np.linalg.norm(cam.pixel_to_normalized(np.array([[0.0, 0.0]])), axis=-1)[0]
        norm = cam.pixel_to_normalized(np.where(inside[..., None], px, cam.K[:2, 2]))
        ok = inside & (np.linalg.norm(norm, axis=-1) <= 1.02 * r_max)
        kp[sel] = np.where(ok[..., None], norm, np.nan)
        where = np.where(inside[..., None], px, cam.K[:2, 2])
        step = cam.pixel_to_normalized(where + np.array([1.0, 0.0]))
        noise_std[sel] = sigma[..., 0] * np.linalg.norm(step - norm, axis=-1)
    # Random drops (half the samples) and lower bodies hidden behind a car.
    p_drop = rng.uniform(0.0, cfg.drop_prob_max, size=(n, 1)) * (rng.random((n, 1)) < 0.5)
    drop = rng.random((n, 17)) < p_drop
    drop[rng.random(n) < cfg.lower_body_drop_prob, :] |= np.isin(np.arange(17), [2, 3, 5, 6])
    missing = drop | ~np.isfinite(kp).all(-1)
    conf = np.where(missing, 0.0, conf)
    kp[missing] = np.nan
    noise_std[missing] = 0.0
    return kp, conf, noise_std


@dataclass
class Batch:
    """One generated set: network inputs, targets and what evaluation needs."""

    feats: np.ndarray  # (N, F) float32
    target_v: np.ndarray  # (N, 16, 3) root-relative metres, virtual camera frame
    pose_cam: np.ndarray  # (N, 17, 3) root-relative metres, camera frame
    kp_norm: np.ndarray  # (N, 17, 2) NaN where missing
    conf: np.ndarray  # (N, 17)
    R: np.ndarray  # (N, 3, 3) camera -> virtual camera
    noise_std: np.ndarray | None = None  # (N, 17) 2D jitter std, normalised units
    root_cam: np.ndarray | None = None  # (N, 3) the root in the camera frame, metres


def generate(
    poses_world: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    augment_body: bool = True,
    conf_threshold: float = 0.2,
    drop_frac: float | None = None,
    min_visible: int = 6,
    templates: dict[str, np.ndarray] | None = None,
    noise_input: bool = False,
) -> Batch:
    """Mocap poses (N, 17, 3) -> one observed sample each through random vehicle cameras.

    ``augment_body=False`` keeps the bodies as captured (evaluation) but still rotates them
    about the vertical. ``drop_frac`` (evaluation) replaces the random drops by exactly
    ``round(drop_frac * 17)`` dropped joints per person. Views with fewer than
    ``min_visible`` joints seen are re-drawn (up to a few times). ``templates``: body
    templates for ``cfg.body_model == "sampled"``. ``noise_input``: the features carry the
    2D noise level (noise-aware lifters), hidden for a random ``1 - noise_known_prob``.
    """
    bodies = poses_world.astype(np.float64).copy()
    if augment_body:
        bodies = augment_bodies(bodies, cfg, rng, templates)
    else:
        bodies[..., :2] -= bodies[:, :1, :2]
        bodies = augment_bodies(bodies, _no_body_change(cfg), rng)
    obs_cfg = cfg if drop_frac is None else _no_drops(cfg)
    pts, kp, conf, noise = _view(bodies, obs_cfg, rng)
    for _ in range(_RETRIES):  # a detector reports nobody with almost no joints in view
        bad = np.flatnonzero(np.isfinite(kp).all(-1).sum(-1) < min_visible)
        if bad.size == 0:
            break
        pts[bad], kp[bad], conf[bad], noise[bad] = _view(bodies[bad], obs_cfg, rng)
    if drop_frac is not None and drop_frac > 0:
        n_drop = round(drop_frac * 17)
        order = np.argsort(rng.random((len(kp), 17)), axis=1)[:, :n_drop]
        rows = np.repeat(np.arange(len(kp)), n_drop)
        conf[rows, order.ravel()] = 0.0
        kp[rows, order.ravel()] = np.nan
    noise[~np.isfinite(kp).all(-1)] = 0.0
    given = None
    if noise_input:
        given = np.where((rng.random(len(kp)) < cfg.noise_known_prob)[:, None], noise, np.nan)
    feats, R = prepare_inputs(kp, conf, conf_threshold, given, noise_input)
    pose_cam = pts - pts[:, :1]
    target_v = to_virtual(pose_cam, R)[:, 1:]
    return Batch(
        feats, target_v.astype(np.float32), pose_cam.astype(np.float32), kp, conf, R, noise
    )


def _view(
    bodies: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bodies (N, 17, 3) -> optical-frame points, observed keypoints, confidences, noise."""
    cams = [random_intrinsics(cfg, rng) for _ in range(cfg.n_intrinsics)]
    cam_idx = rng.integers(len(cams), size=len(bodies))
    hfov = np.array([np.degrees(2 * np.arctan(c.width / 2 / c.fx)) for c in cams])[cam_idx]
    pts = place_in_cameras(bodies, hfov, cfg, rng)
    kp, conf, noise = observe(pts, cams, cam_idx, cfg, rng)
    return pts, kp, conf, noise


def _no_body_change(cfg: AugmentConfig) -> AugmentConfig:
    d = cfg.to_dict()
    d.update(
        body_model="scaled",
        bone_scale_std=0.0,
        bone_asym_std=0.0,
        global_scale=(1.0, 1.0),
        thorax_shift=(1.0, 1.0),
        mirror_prob=0.0,
        part_mix_prob=0.0,
    )
    return AugmentConfig(**d)


def _no_drops(cfg: AugmentConfig) -> AugmentConfig:
    d = cfg.to_dict()
    d.update(drop_prob_max=0.0, lower_body_drop_prob=0.0)
    return AugmentConfig(**d)
