"""Evaluation conditions of lifter v2: {exact, 2 px, 5 px} 2D noise x {3-8, 8-15, 15-25 m}.

One fixed vehicle camera (1280 x 720 px, 60 deg horizontal FOV, pinhole), 1.0-1.8 m above
the ground, pitch within +-5 deg; the person stands at a ground distance drawn in the cell's
range, within +-35 % of the field of view of the optical axis, turned at random about the
vertical (bodies as captured: no body augmentation, no mirror). The 2D input is the exact
projection plus isotropic Gaussian pixel noise of the cell's standard deviation, every
joint in the image at confidence 1 (what an outside harness feeds), joints outside the
image missing; views with fewer than 6 joints in the image are re-drawn.

A 1.6 m person is about 590-220 px tall at 3-8 m, 220-120 px at 8-15 m and 120-70 px at
15-25 m, so 5 px is 1-7 % of the body height: the range a detector produces there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.lifting.normalize import prepare_inputs, to_virtual
from training.body_augment import augment_bodies
from training.data import AugmentConfig, Batch, place_in_cameras

NOISE_PX = (0.0, 2.0, 5.0)
DISTANCES_M = ((3.0, 8.0), (8.0, 15.0), (15.0, 25.0))


def eval_camera(hfov_deg: float = 60.0, size: tuple[int, int] = (1280, 720)) -> CameraModel:
    """A pinhole evaluation camera (:data:`EVAL_CAMERA`: 60 deg, 1280 x 720)."""
    return CameraModel.from_fov(
        int(size[0]), int(size[1]), float(hfov_deg), np.zeros(5), "plumb_bob"
    )


EVAL_CAMERA = eval_camera()
EVAL_PITCH_DEG = (-5.0, 5.0)
_PLACEMENT = AugmentConfig(
    cam_height_m=(1.0, 1.8), pitch_deg=EVAL_PITCH_DEG, roll_std_deg=0.0, offaxis_frac=0.35,
    bone_scale_std=0.0, bone_asym_std=0.0, global_scale=(1.0, 1.0), thorax_shift=(1.0, 1.0),
    mirror_prob=0.0,
)  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """One evaluation condition: pixel noise std and ground-distance range."""

    noise_px: float
    distance_m: tuple[float, float]

    @property
    def name(self) -> str:
        noise = "exact" if self.noise_px == 0 else f"{self.noise_px:g}px"
        return f"{noise}@{self.distance_m[0]:g}-{self.distance_m[1]:g}m"


CELLS = tuple(Cell(s, d) for s in NOISE_PX for d in DISTANCES_M)


def condition_views(
    poses_world: np.ndarray,
    cell: Cell,
    rng: np.random.Generator,
    conf_threshold: float = 0.2,
    camera: CameraModel = EVAL_CAMERA,
    min_visible: int = 6,
    pitch_deg: tuple[float, float] = EVAL_PITCH_DEG,
) -> Batch:
    """Mocap poses (N, 17, 3) world, Z up -> one view each in ``cell`` (module docstring;
    ``camera`` and ``pitch_deg``: another camera than the standard one, :func:`eval_camera`).

    The returned :class:`~training.data.Batch` has ``noise_std`` (N, 17) = the pixel noise
    over the focal length (what a pipeline that knows its detector would pass), ``root_cam``
    (N, 3) the true root in the camera frame, and features without noise inputs (call the
    lifter through its public API).
    """
    bodies = np.asarray(poses_world, dtype=np.float64).copy()
    bodies[..., :2] -= bodies[:, :1, :2]
    bodies = augment_bodies(bodies, _PLACEMENT, rng)  # random yaw only
    placement = AugmentConfig(
        **{**_PLACEMENT.to_dict(), "distance_m": cell.distance_m, "pitch_deg": tuple(pitch_deg)}
    )
    hfov = np.degrees(2 * np.arctan(camera.width / 2 / camera.fx))
    pts = np.empty_like(bodies)
    kp = np.full((*bodies.shape[:2], 2), np.nan)
    todo = np.arange(len(bodies))
    for _ in range(5):
        pts[todo] = place_in_cameras(bodies[todo], np.full(len(todo), hfov), placement, rng)
        px = camera.project(pts[todo])
        px = px + rng.normal(0.0, 1.0, size=px.shape) * cell.noise_px
        seen = camera.in_image(px) & np.isfinite(px).all(-1) & (pts[todo, :, 2] > 0.1)
        kp[todo] = np.where(seen[..., None], camera.pixel_to_normalized(px), np.nan)
        todo = todo[seen.sum(-1) < min_visible]
        if todo.size == 0:
            break
    conf = np.isfinite(kp).all(-1).astype(np.float64)
    noise_std = np.where(conf > 0, cell.noise_px / camera.fx, 0.0)
    feats, R = prepare_inputs(kp, conf, conf_threshold)
    pose_cam = pts - pts[:, :1]
    target_v = to_virtual(pose_cam, R)[:, 1:]
    return Batch(
        feats,
        target_v.astype(np.float32),
        pose_cam.astype(np.float32),
        kp,
        conf,
        R,
        noise_std,
        pts[:, 0].copy(),
    )


def evaluation_views(
    poses_world: np.ndarray,
    seed: int,
    camera: CameraModel = EVAL_CAMERA,
    pitch_deg: tuple[float, float] = EVAL_PITCH_DEG,
) -> dict[str, Batch]:
    """One view of every pose in every cell of :data:`CELLS`, by cell name, cell ``i`` drawn
    with ``numpy.random.default_rng(seed + 1000 * i)``: the views :mod:`training.evaluate_cells`
    scores, so any tool that draws them here reports on the same frames. ``camera`` and
    ``pitch_deg``: the same people through another camera (a robustness check)."""
    return {
        cell.name: condition_views(
            poses_world, cell, np.random.default_rng(seed + 1000 * ci), camera=camera,
            pitch_deg=pitch_deg,
        )
        for ci, cell in enumerate(CELLS)
    }  # fmt: skip
