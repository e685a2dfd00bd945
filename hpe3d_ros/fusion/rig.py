"""Virtual camera rigs on a vehicle: for benchmarks, tests and multi-camera GT bags.

:func:`vehicle_rig` gives 1 to 4 cameras with the extrinsics of a car-sized vehicle
(``base_link`` at the rear axle on the ground, REP-103/105: x forward, y left, z up): two
bumper-corner cameras turned 25 degrees out (100 degree lenses: their views overlap straight
ahead with a 1.5 m baseline, so a person there is seen from two directions), a windscreen
camera (70 degrees) and a wide roof camera (110 degrees) overlapping both.
:func:`view_people` projects target-frame joints into one camera as a detector would report
them: pixel noise, dropped joints, nothing behind the camera or outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.fusion.extrinsics import extrinsics_from_params, optical_frame_id
from hpe3d_ros.fusion.transforms import Transform

#: name -> (translation m, rpy deg (pitch + looks down, yaw + turns left), HFOV deg, plumb_bob D)
VEHICLE_CAMERAS: dict[str, tuple[tuple, tuple, float, tuple]] = {
    "front_left": ((3.7, 0.75, 0.9), (0.0, 5.0, 25.0), 100.0, (-0.25, 0.06, 0.0, 0.0, 0.0)),
    "front_right": ((3.7, -0.75, 0.9), (0.0, 5.0, -25.0), 100.0, (-0.25, 0.06, 0.0, 0.0, 0.0)),
    "front": ((2.0, 0.0, 1.35), (0.0, 6.0, 0.0), 70.0, (-0.12, 0.02, 0.0, 0.0, 0.0)),
    "roof": ((1.2, 0.0, 1.9), (0.0, 12.0, 0.0), 110.0, (-0.28, 0.07, 0.0, 0.0, 0.0)),
}
#: which cameras a rig of N cameras has
RIG_ORDER = ("front_left", "front_right", "front", "roof")


@dataclass(frozen=True)
class VirtualCamera:
    """A camera of a rig: name, intrinsics and ``T_base_optical``."""

    name: str
    model: CameraModel
    T_base_camera: Transform
    extrinsics: dict  # the parameter block that gives T_base_camera

    @property
    def frame_id(self) -> str:
        return self.T_base_camera.child


def vehicle_rig(
    n_cameras: int = 3, width: int = 1280, height: int = 720, parent_frame: str = "base_link"
) -> list[VirtualCamera]:
    """The first ``n_cameras`` (1-4) of :data:`RIG_ORDER`."""
    if not 1 <= n_cameras <= len(RIG_ORDER):
        raise ValueError(f"a vehicle rig has 1 to {len(RIG_ORDER)} cameras, not {n_cameras}")
    out = []
    for name in RIG_ORDER[:n_cameras]:
        t, rpy, hfov, d = VEHICLE_CAMERAS[name]
        block = {"parent_frame": parent_frame, "translation": list(t), "rpy_deg": list(rpy)}
        T = extrinsics_from_params(name, block, optical_frame_id(name))
        model = CameraModel.from_fov(width, height, hfov, np.array(d))
        out.append(VirtualCamera(name, model, T, block))
    return out


def view_people(
    camera: VirtualCamera,
    joints_base_m: np.ndarray,
    rng: np.random.Generator,
    noise_px: float = 2.0,
    drop_fraction: float = 0.0,
    confidence: float = 0.9,
    min_visible: int = 6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector-like 2D of P people in one camera.

    Args:
        joints_base_m: (P, J, 3) joints in the rig's parent frame.
        noise_px: Gaussian pixel noise (sigma).
        drop_fraction: share of visible joints reported missing (occlusion, misses).

    Returns:
        (kp_px (P, J, 2) NaN where unseen, conf (P, J), seen (P,) bool: at least
        ``min_visible`` joints in the image, i.e. the person is in this camera's view).
    """
    p_cam = camera.T_base_camera.inverse().apply(joints_base_m)
    px = camera.model.project(p_cam)
    px = px + rng.normal(0.0, noise_px, px.shape) if noise_px > 0 else px
    vis = camera.model.in_image(px) & (p_cam[..., 2] > 0.3)
    if drop_fraction > 0:
        vis &= rng.random(vis.shape) >= drop_fraction
    kp = np.where(vis[..., None], px, np.nan)
    conf = np.where(vis, confidence, 0.0)
    return kp, conf, vis.sum(-1) >= min_visible
