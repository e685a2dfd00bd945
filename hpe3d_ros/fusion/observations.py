"""One camera's people in the target frame: roots with a 3x3 covariance, hypotheses, 2D.

A monocular root is well known across the viewing ray (the 2D keypoints pin it to a few
pixels) and poorly along it (depth comes from body size or the ground plane). The pipeline
reports per-axis spreads in the optical frame (``root_std_m``, from per-hypothesis roots
that slide along the ray), so the covariance built here is a cigar along the ray:

    C = s_along^2 r r^T + s_across^2 (I - r r^T)

with ``r`` the unit ray to the root, ``s_along`` the pipeline's spread scaled by
:class:`RootNoise` (``depth_scale``, floored at ``depth_floor`` of the distance), and
``s_across`` the distance times an angular error (``across_px`` pixels over the focal length)
plus a floor. Two cameras' cigars cross where the person stands: their information sum is the
least-squares intersection of the two rays, which is how the fused root comes "from both rays"
(:func:`hpe3d_ros.fusion.views.fuse_gaussians`).

Two errors of a monocular root do not average out: the depth along the ray and, with the
ground prior, the pelvis height (a misjudged leg length pins the body too low or too high).
They come from the lifter's view of one body, so they persist from frame to frame and are
partly shared by the cameras (each lifts its own view of the same body). The tracker therefore
counts them as one measurement per ``depth_correlation`` frames, and a moment's V views as
``V ** (1 - views_exponent)`` of one (:meth:`Observation.filter_covariance`: 0.5, so four
cameras together count as two); the across-ray geometry adds up in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.fusion.transforms import Transform
from hpe3d_ros.results import FrameResult, Person3D


@dataclass(frozen=True)
class RootNoise:
    """How a monocular root's spread becomes a calibrated 3x3 covariance (see module doc).

    Defaults were chosen on training-subject mocap (``benchmarks/bench_fusion.py
    --calibrate``: the fused 90 % ellipsoids hold about 90 % of the truth with 2, 3 and 4
    cameras) and checked on the test subjects (BENCHMARKS.md, "Multi-camera fusion").
    """

    depth_scale: float = 1.3  # x the pipeline's spread along the ray
    depth_floor: float = 0.03  # fraction of the distance, the least depth uncertainty
    across_px: float = 1.0  # angular error across the ray, in pixels of the camera
    across_floor_m: float = 0.04  # pelvis position inside the body outline
    #: frames over which one person's monocular depth error persists (body size, pose): the
    #: tracker counts each frame's depth as 1/depth_correlation of a measurement, and one
    #: moment's views of several cameras as one (their lifts misjudge the same body alike)
    depth_correlation: float = 5.0
    #: the pelvis height error of a ground-pinned body (legs misjudged), in the target's z
    #: (up, REP-103); persists like the depth error. 0 without the ground prior. 0.035 for
    #: lifter v2 (one body per person, chosen on training subjects: 91 / 89 / 95 % with 2 /
    #: 3 / 4 cameras; 0.08, v8's value, made them 99 / 94 / 98 %)
    height_sigma_m: float = 0.035
    #: how shared one moment's persistent errors are between V cameras: each view's is
    #: inflated by V ** views_exponent (1: fully shared, the V views count as one; 0: each
    #: counts in full). 1 made the fused 90 % ellipsoids of 3-4 cameras hold 96-97 %.
    views_exponent: float = 0.5

    def sigmas(self, root_m: np.ndarray, root_std_m: np.ndarray, focal_px: float):
        """(unit ray (3,), sigma along it, sigma across it) of one root (3,), spread (3,)."""
        root = np.asarray(root_m, dtype=np.float64)
        dist = float(np.linalg.norm(root))
        r = root / max(dist, 1e-6)
        spread = float(np.linalg.norm(np.nan_to_num(np.asarray(root_std_m, np.float64))))
        s_along = max(self.depth_scale * spread, self.depth_floor * dist)
        s_across = float(np.hypot(self.across_floor_m, dist * self.across_px / focal_px))
        return r, s_along, s_across

    def covariance_optical(
        self, root_m: np.ndarray, root_std_m: np.ndarray, focal_px: float
    ) -> np.ndarray:
        """(3, 3) covariance in the optical frame of one root (3,) with spread (3,)."""
        r, s_along, s_across = self.sigmas(root_m, root_std_m, focal_px)
        rr = np.outer(r, r)
        return s_along**2 * rr + s_across**2 * (np.eye(3) - rr)


@dataclass
class Observation:
    """One person seen by one camera, in the target frame.

    Attributes:
        camera_name, frame_id: the camera and its optical frame.
        stamp_ns: the image stamp.
        camera_track_id: the per-camera track id (-1 untracked).
        score: detection score.
        root_m: (3,) root in the target frame.
        root_cov: (3, 3) its covariance (:class:`RootNoise`).
        bias_cov: (3, 3) the part of ``root_cov`` that persists over frames and is shared by
            cameras (depth along the ray, pelvis height): see :meth:`filter_covariance`.
        hypotheses_m: (K, J, 3) absolute hypotheses in the target frame.
        keypoints_px: (J, 2) raw-image pixels (NaN where missing); keypoint_conf: (J,).
        camera: the camera model; T_target_camera: its pose (for reprojection).
    """

    camera_name: str
    frame_id: str
    stamp_ns: int
    camera_track_id: int
    score: float
    root_m: np.ndarray
    root_cov: np.ndarray
    hypotheses_m: np.ndarray
    keypoints_px: np.ndarray
    keypoint_conf: np.ndarray
    camera: CameraModel
    T_target_camera: Transform
    bias_cov: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))

    def filter_covariance(self, views_now: float, correlation: float) -> np.ndarray:
        """(3, 3) measurement covariance for the tracker: the persistent part inflated by
        ``correlation`` frames and by ``views_now`` (the cameras seeing the person now, to the
        power :attr:`RootNoise.views_exponent`)."""
        inflate = max(correlation * views_now, 1.0) - 1.0
        return self.root_cov + inflate * self.bias_cov

    @property
    def relative_hypotheses_m(self) -> np.ndarray:
        """(K, J, 3) hypotheses with the root at the origin (target-frame axes)."""
        return self.hypotheses_m - self.root_m[None, None, :]


def person_observation(
    person: Person3D,
    result: FrameResult,
    camera: CameraModel,
    T_target_camera: Transform,
    noise: RootNoise,
    stamp_ns: int | None = None,
) -> Observation | None:
    """One :class:`~hpe3d_ros.results.Person3D` in the target frame (None if not lifted)."""
    root = np.asarray(person.root_m, dtype=np.float64)
    if person.num_hypotheses == 0 or not np.isfinite(root).all() or root[2] <= 0:
        return None
    focal = 0.5 * (camera.fx + camera.fy)
    cov = T_target_camera.rotate_covariance(
        noise.covariance_optical(root, person.root_std_m, focal)
    )
    r, s_along, _ = noise.sigmas(root, person.root_std_m, focal)
    ray = T_target_camera.rotate(r)
    bias = s_along**2 * np.outer(ray, ray) + np.diag([0.0, 0.0, noise.height_sigma_m**2])
    return Observation(
        camera_name=result.camera_name,
        frame_id=result.frame_id,
        stamp_ns=int(result.stamp_ns if stamp_ns is None else stamp_ns),
        camera_track_id=int(person.track_id),
        score=float(person.detection_score),
        root_m=T_target_camera.apply(root),
        root_cov=cov + np.diag([0.0, 0.0, noise.height_sigma_m**2]),
        hypotheses_m=T_target_camera.apply(person.hypotheses_m),
        keypoints_px=np.asarray(person.keypoints_px, dtype=np.float64),
        keypoint_conf=np.asarray(person.keypoint_conf, dtype=np.float64),
        camera=camera,
        T_target_camera=T_target_camera,
        bias_cov=bias,
    )


def observations_from_result(
    result: FrameResult,
    camera: CameraModel,
    T_target_camera: Transform,
    noise: RootNoise | None = None,
    stamp_ns: int | None = None,
) -> list[Observation]:
    """Every lifted person of one camera frame in the target frame."""
    noise = noise or RootNoise()
    out = (person_observation(p, result, camera, T_target_camera, noise, stamp_ns)
           for p in result.people)  # fmt: skip
    return [o for o in out if o is not None]
