"""Training data for the lifter: real mocap seen through random virtual vehicle cameras.

Pipeline per epoch (all vectorised numpy, seeded by the caller's ``Generator``):

1. mocap pose (17, 3), world frame, Z up, metres (``../shared/data`` or a rebuilt file);
2. body augmentation: thorax re-definition, per-bone and global scale, mirror, yaw;
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

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.lifting.normalize import prepare_inputs, to_virtual
from hpe3d_ros.skeleton import H36M_PARENTS

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATA = DATA_DIR / "cmu_h36m17_30fps.npz"
TEST_SUBJECTS = (8, 13, 16, 131)
#: Held out of training (from the training subjects) for early stopping and temperature fits.
VAL_SUBJECTS = (9, 14)
_RETRIES = 4
_FLIP = np.array([0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13])
_PARENTS = np.array(H36M_PARENTS)
# Bone groups for length augmentation: (child joints); left/right share one factor.
_BONE_GROUPS = {
    "hip_width": (1, 4),
    "thigh": (2, 5),
    "shin": (3, 6),
    "torso": (7, 8),
    "neck": (9,),
    "head": (10,),
    "clavicle": (11, 14),
    "upper_arm": (12, 15),
    "forearm": (13, 16),
}


@dataclass
class AugmentConfig:
    """Ranges of the body, camera and detector augmentation (stored in the checkpoint)."""

    bone_scale_std: float = 0.10  # per bone group, multiplicative
    bone_asym_std: float = 0.02  # extra per-bone factor (left/right asymmetry)
    global_scale: tuple[float, float] = (0.85, 1.12)
    thorax_shift: tuple[float, float] = (0.55, 1.05)  # thorax along pelvis->thorax
    mirror_prob: float = 0.5
    cam_height_m: tuple[float, float] = (0.8, 2.2)
    distance_m: tuple[float, float] = (2.0, 40.0)  # log-uniform
    hfov_deg: tuple[float, float] = (40.0, 120.0)
    pitch_deg: tuple[float, float] = (-15.0, 10.0)
    roll_std_deg: float = 2.0
    offaxis_frac: float = 0.5  # person's bearing within +-offaxis_frac * hfov
    noise_frac: tuple[float, float] = (0.003, 0.03)  # px noise std / person pixel height
    noise_px_min: float = 0.7
    outlier_prob: float = 0.02
    drop_prob_max: float = 0.4  # per-sample joint-drop probability ~ U(0, this), half the time
    lower_body_drop_prob: float = 0.07
    conf_range: tuple[float, float] = (0.3, 1.0)
    n_intrinsics: int = 48  # distinct camera models per generated batch

    def to_dict(self) -> dict:
        return asdict(self)


def load_mocap(path: str | Path = DEFAULT_DATA) -> dict[str, np.ndarray]:
    """The mocap npz as a dict: ``poses`` (N, 17, 3) metres Z up, ``subject``, ``sequence``."""
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in ("poses", "subject", "sequence", "source")}


def split_indices(subject: np.ndarray, part: str) -> np.ndarray:
    """Row indices of ``part`` in {"train", "val", "train_all", "test"} (subject split)."""
    test = np.isin(subject, TEST_SUBJECTS)
    val = np.isin(subject, VAL_SUBJECTS)
    masks = {"test": test, "val": val, "train": ~test & ~val, "train_all": ~test}
    if part not in masks:
        raise ValueError(f"unknown split {part!r}")
    return np.flatnonzero(masks[part])


# ---------------------------------------------------------------------- body augmentation
def augment_bodies(poses: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, 17, 3) world poses -> new bodies: thorax shift, bone scales, mirror, random yaw."""
    n = len(poses)
    p = poses.astype(np.float64).copy()
    # Thorax definition differs between rigs by ~0.2 m along the spine: move thorax + spine.
    a = rng.uniform(*cfg.thorax_shift, size=(n, 1))
    p[:, 8] = p[:, 0] + a * (p[:, 8] - p[:, 0])
    p[:, 7] = 0.5 * (p[:, 0] + p[:, 8])
    vec = p - p[:, _PARENTS.clip(0)]  # bone vectors (root row meaningless)
    scale = np.ones((n, 17))
    for joints in _BONE_GROUPS.values():
        f = np.exp(rng.normal(0.0, cfg.bone_scale_std, size=(n, 1)))
        scale[:, list(joints)] = f * np.exp(
            rng.normal(0.0, cfg.bone_asym_std, size=(n, len(joints)))
        )
    scale *= rng.uniform(*cfg.global_scale, size=(n, 1))
    out = np.empty_like(p)
    out[:, 0] = p[:, 0] * scale[:, :1]  # pelvis height scales with the body
    out[:, 0, :2] = 0.0
    for j in range(1, 17):  # parents precede children in H36M order
        out[:, j] = out[:, _PARENTS[j]] + scale[:, j : j + 1] * vec[:, j]
    flip = rng.random(n) < cfg.mirror_prob
    out[flip] = out[flip][:, _FLIP] * np.array([-1.0, 1.0, 1.0])
    yaw = rng.uniform(-np.pi, np.pi, size=n)
    c, s = np.cos(yaw), np.sin(yaw)
    x, y = out[..., 0].copy(), out[..., 1].copy()
    out[..., 0] = c[:, None] * x - s[:, None] * y
    out[..., 1] = s[:, None] * x + c[:, None] * y
    # Stand on the ground: lowest ankle height as in the source frame (jumps keep their air).
    return out


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
) -> tuple[np.ndarray, np.ndarray]:
    """Optical-frame joints (N, 17, 3) -> detector-like (kp_norm (N, 17, 2), conf (N, 17))."""
    n = len(points_cam)
    kp = np.full((n, 17, 2), np.nan)
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
        frac = rng.uniform(*cfg.noise_frac, size=(sel.size, 1, 1))
        sigma = np.hypot(frac * size, cfg.noise_px_min) * (1.6 - conf[sel])[..., None]
        px = px + rng.normal(size=px.shape) * sigma
        gross = rng.random((sel.size, 17)) < cfg.outlier_prob
        px += gross[..., None] * rng.normal(size=px.shape) * 0.15 * size
        conf[sel] = np.where(gross, rng.uniform(0.2, 0.6, size=gross.shape), conf[sel])
        inside = cam.in_image(px) & finite
        # Past the image corner the distortion model may fold back: trust nothing there.
        r_max = np.linalg.norm(cam.pixel_to_normalized(np.array([[0.0, 0.0]])), axis=-1)[0]
        norm = cam.pixel_to_normalized(np.where(inside[..., None], px, cam.K[:2, 2]))
        ok = inside & (np.linalg.norm(norm, axis=-1) <= 1.02 * r_max)
        kp[sel] = np.where(ok[..., None], norm, np.nan)
    # Random drops (half the samples) and lower bodies hidden behind a car.
    p_drop = rng.uniform(0.0, cfg.drop_prob_max, size=(n, 1)) * (rng.random((n, 1)) < 0.5)
    drop = rng.random((n, 17)) < p_drop
    drop[rng.random(n) < cfg.lower_body_drop_prob, :] |= np.isin(np.arange(17), [2, 3, 5, 6])
    missing = drop | ~np.isfinite(kp).all(-1)
    conf = np.where(missing, 0.0, conf)
    kp[missing] = np.nan
    return kp, conf


@dataclass
class Batch:
    """One generated set: network inputs, targets and what evaluation needs."""

    feats: np.ndarray  # (N, F) float32
    target_v: np.ndarray  # (N, 16, 3) root-relative metres, virtual camera frame
    pose_cam: np.ndarray  # (N, 17, 3) root-relative metres, camera frame
    kp_norm: np.ndarray  # (N, 17, 2) NaN where missing
    conf: np.ndarray  # (N, 17)
    R: np.ndarray  # (N, 3, 3) camera -> virtual camera


def generate(
    poses_world: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    augment_body: bool = True,
    conf_threshold: float = 0.2,
    drop_frac: float | None = None,
    min_visible: int = 6,
) -> Batch:
    """Mocap poses (N, 17, 3) -> one observed sample each through random vehicle cameras.

    ``augment_body=False`` keeps the bodies as captured (evaluation) but still rotates them
    about the vertical. ``drop_frac`` (evaluation) replaces the random drops by exactly
    ``round(drop_frac * 17)`` dropped joints per person. Views with fewer than
    ``min_visible`` joints seen are re-drawn (up to a few times).
    """
    bodies = poses_world.astype(np.float64).copy()
    if augment_body:
        bodies = augment_bodies(bodies, cfg, rng)
    else:
        bodies[..., :2] -= bodies[:, :1, :2]
        bodies = augment_bodies(bodies, _no_body_change(cfg), rng)
    obs_cfg = cfg if drop_frac is None else _no_drops(cfg)
    pts, kp, conf = _view(bodies, obs_cfg, rng)
    for _ in range(_RETRIES):  # a detector reports nobody with almost no joints in view
        bad = np.flatnonzero(np.isfinite(kp).all(-1).sum(-1) < min_visible)
        if bad.size == 0:
            break
        pts[bad], kp[bad], conf[bad] = _view(bodies[bad], obs_cfg, rng)
    if drop_frac is not None and drop_frac > 0:
        n_drop = round(drop_frac * 17)
        order = np.argsort(rng.random((len(kp), 17)), axis=1)[:, :n_drop]
        rows = np.repeat(np.arange(len(kp)), n_drop)
        conf[rows, order.ravel()] = 0.0
        kp[rows, order.ravel()] = np.nan
    feats, R = prepare_inputs(kp, conf, conf_threshold)
    pose_cam = pts - pts[:, :1]
    target_v = to_virtual(pose_cam, R)[:, 1:]
    return Batch(feats, target_v.astype(np.float32), pose_cam.astype(np.float32), kp, conf, R)


def _view(
    bodies: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bodies (N, 17, 3) -> optical-frame points, observed keypoints, confidences."""
    cams = [random_intrinsics(cfg, rng) for _ in range(cfg.n_intrinsics)]
    cam_idx = rng.integers(len(cams), size=len(bodies))
    hfov = np.array([np.degrees(2 * np.arctan(c.width / 2 / c.fx)) for c in cams])[cam_idx]
    pts = place_in_cameras(bodies, hfov, cfg, rng)
    kp, conf = observe(pts, cams, cam_idx, cfg, rng)
    return pts, kp, conf


def _no_body_change(cfg: AugmentConfig) -> AugmentConfig:
    d = cfg.to_dict()
    d.update(
        bone_scale_std=0.0,
        bone_asym_std=0.0,
        global_scale=(1.0, 1.0),
        thorax_shift=(1.0, 1.0),
        mirror_prob=0.0,
    )
    return AugmentConfig(**d)


def _no_drops(cfg: AugmentConfig) -> AugmentConfig:
    d = cfg.to_dict()
    d.update(drop_prob_max=0.0, lower_body_drop_prob=0.0)
    return AugmentConfig(**d)
