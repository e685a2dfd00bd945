"""Camera model built from ``sensor_msgs/CameraInfo`` fields: project, undistort, normalise.

Conventions (REP-103/REP-104): points are in the camera's *optical* frame, metres, x right,
y down, z forward. "Normalised" coordinates are the undistorted ray ``(x/z, y/z)``, i.e. the
pixel after ``K^-1`` with lens distortion removed; every later stage (the lifter included)
works in them so that any camera works.

Distortion models follow OpenCV exactly, as ROS image_pipeline does:

* ``plumb_bob``            D = (k1, k2, p1, p2, k3)
* ``rational_polynomial``  D = (k1, k2, p1, p2, k3, k4, k5, k6)
* ``equidistant``          D = (k1, k2, k3, k4)  (OpenCV fisheye)
* ``none`` (or all-zero D) pure pinhole

Undistortion is solved by Newton's method with the analytic Jacobian, so it converges to
machine precision where OpenCV's default five fixed-point iterations do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_PLUMB_BOB = "plumb_bob"
_RATIONAL = "rational_polynomial"
_EQUIDISTANT = "equidistant"
_NONE = "none"
#: Distortion model names accepted (ROS's ``sensor_msgs/distortion_models.hpp`` spelling).
DISTORTION_MODELS = (_PLUMB_BOB, _RATIONAL, _EQUIDISTANT, _NONE)
_N_COEFFS = {_PLUMB_BOB: 5, _RATIONAL: 8, _EQUIDISTANT: 4, _NONE: 0}
_NEWTON_ITERS = 20


class CameraModelError(ValueError):
    """A CameraInfo that cannot describe a real camera (bad K, unknown model, NaN...)."""


@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera with lens distortion.

    Attributes:
        width, height: image size in pixels.
        K: (3, 3) intrinsic matrix.
        D: distortion coefficients for ``distortion_model`` (padded with zeros).
        distortion_model: one of :data:`DISTORTION_MODELS`.
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = _PLUMB_BOB

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        model = (self.distortion_model or _NONE).strip().lower()
        if model not in DISTORTION_MODELS:
            raise CameraModelError(
                f"unknown distortion model {self.distortion_model!r}; "
                f"supported: {', '.join(DISTORTION_MODELS)}"
            )
        D = np.asarray(self.D, dtype=np.float64).ravel()
        if not np.all(np.isfinite(K)) or not np.all(np.isfinite(D)):
            raise CameraModelError("camera K or D contains NaN or inf")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CameraModelError(f"focal lengths must be > 0, got fx={K[0, 0]}, fy={K[1, 1]}")
        if self.width <= 0 or self.height <= 0:
            raise CameraModelError(f"image size must be > 0, got {self.width}x{self.height}")
        n = _N_COEFFS[model]
        if D.size > n and np.any(D[n:] != 0):
            raise CameraModelError(f"{model} takes {n} coefficients, got {D.size}: {D}")
        D = np.pad(D[:n], (0, n - min(D.size, n)))
        if model != _NONE and not np.any(D):
            model, D = _NONE, np.zeros(0)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "distortion_model", model)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_fov(
        cls,
        width: int,
        height: int,
        hfov_deg: float,
        D: np.ndarray | None = None,
        distortion_model: str = _PLUMB_BOB,
    ) -> CameraModel:
        """Square-pixel camera with the principal point at the image centre."""
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        K = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
        return cls(width, height, K, np.zeros(0) if D is None else D, distortion_model)

    @classmethod
    def from_camera_info_fields(
        cls, width: int, height: int, k: np.ndarray, d: np.ndarray, distortion_model: str
    ) -> CameraModel:
        """From the raw fields of a ``sensor_msgs/CameraInfo`` (``k`` row-major, 9 values)."""
        k = np.asarray(k, dtype=np.float64)
        if k.size != 9:
            raise CameraModelError(f"CameraInfo k must have 9 values, got {k.size}")
        return cls(int(width), int(height), k.reshape(3, 3), np.asarray(d), distortion_model)

    # ------------------------------------------------------------------ properties
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def is_distorted(self) -> bool:
        return self.distortion_model != _NONE

    # ------------------------------------------------------------------ core maps
    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Optical-frame points (..., 3) in metres -> pixels (..., 2); NaN where z <= 0."""
        p = np.asarray(points_cam, dtype=np.float64)
        z = p[..., 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = np.where(z > 0, p[..., :2] / z, np.nan)
        return self.normalized_to_pixel(norm)

    def normalized_to_pixel(self, norm: np.ndarray) -> np.ndarray:
        """Undistorted normalised coordinates (..., 2) -> distorted pixels (..., 2)."""
        xy = self.distort_normalized(np.asarray(norm, dtype=np.float64))
        return self._apply_k(xy)

    def pixel_to_normalized(self, px: np.ndarray) -> np.ndarray:
        """Distorted pixels (..., 2) -> undistorted normalised coordinates (..., 2)."""
        xy_d = self._apply_k_inv(np.asarray(px, dtype=np.float64))
        return self.undistort_normalized(xy_d)

    def undistort_pixels(self, px: np.ndarray) -> np.ndarray:
        """Distorted pixels -> pixels of the ideal pinhole camera with the same K."""
        return self._apply_k(self.pixel_to_normalized(px))

    def rays(self, px: np.ndarray) -> np.ndarray:
        """Unit viewing rays (..., 3) in the optical frame through pixels (..., 2)."""
        n = self.pixel_to_normalized(px)
        r = np.concatenate([n, np.ones_like(n[..., :1])], axis=-1)
        return r / np.linalg.norm(r, axis=-1, keepdims=True)

    # ------------------------------------------------------------------ distortion
    def distort_normalized(self, xy: np.ndarray) -> np.ndarray:
        """Apply lens distortion to normalised coordinates (..., 2)."""
        if self.distortion_model == _NONE:
            return xy.copy()
        if self.distortion_model == _EQUIDISTANT:
            return _fisheye_distort(xy, self.D)
        return _rational_distort(xy, self.D)[0]

    def undistort_normalized(self, xy_d: np.ndarray) -> np.ndarray:
        """Invert :meth:`distort_normalized` (Newton iterations, vectorised)."""
        if self.distortion_model == _NONE:
            return xy_d.copy()
        if self.distortion_model == _EQUIDISTANT:
            return _fisheye_undistort(xy_d, self.D)
        xy = xy_d.copy()
        for _ in range(_NEWTON_ITERS):
            f, jac = _rational_distort(xy, self.D, jacobian=True)
            step = np.linalg.solve(jac, (f - xy_d)[..., None])[..., 0]
            xy = xy - step
            if np.all(~np.isfinite(step) | (np.abs(step) < 1e-15)):
                break
        return xy

    # ------------------------------------------------------------------ helpers
    def _apply_k(self, xy: np.ndarray) -> np.ndarray:
        K = self.K
        u = K[0, 0] * xy[..., 0] + K[0, 1] * xy[..., 1] + K[0, 2]
        v = K[1, 1] * xy[..., 1] + K[1, 2]
        return np.stack([u, v], axis=-1)

    def _apply_k_inv(self, px: np.ndarray) -> np.ndarray:
        K = self.K
        y = (px[..., 1] - K[1, 2]) / K[1, 1]
        x = (px[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
        return np.stack([x, y], axis=-1)

    def in_image(self, px: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Boolean (...,): pixel inside the image (NaN counts as outside)."""
        u, v = px[..., 0], px[..., 1]
        return (
            (u >= -margin)
            & (u < self.width + margin)
            & (v >= -margin)
            & (v < self.height + margin)
        )


def _rational_distort(
    xy: np.ndarray, D: np.ndarray, jacobian: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV's plumb_bob / rational_polynomial forward model and its 2x2 Jacobian."""
    k1, k2, p1, p2, k3 = D[:5]
    k4, k5, k6 = (D[5], D[6], D[7]) if D.size >= 8 else (0.0, 0.0, 0.0)
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
    radial = num / den
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    out = np.stack([xd, yd], axis=-1)
    if not jacobian:
        return out, None
    dnum = k1 + r2 * (2 * k2 + 3 * k3 * r2)
    dden = k4 + r2 * (2 * k5 + 3 * k6 * r2)
    drad = (dnum * den - num * dden) / (den * den)  # d radial / d r2
    jac = np.empty((*xy.shape[:-1], 2, 2))
    jac[..., 0, 0] = radial + 2 * x * x * drad + 2 * p1 * y + 6 * p2 * x
    jac[..., 0, 1] = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    jac[..., 1, 0] = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    jac[..., 1, 1] = radial + 2 * y * y * drad + 6 * p1 * y + 2 * p2 * x
    bad = ~np.isfinite(jac).all(axis=(-1, -2))
    jac[bad] = np.eye(2)
    return out, jac


def _fisheye_theta_d(theta: np.ndarray, D: np.ndarray) -> np.ndarray:
    t2 = theta * theta
    return theta * (1 + t2 * (D[0] + t2 * (D[1] + t2 * (D[2] + t2 * D[3]))))


def _fisheye_distort(xy: np.ndarray, D: np.ndarray) -> np.ndarray:
    r = np.linalg.norm(xy, axis=-1, keepdims=True)
    theta = np.arctan(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(r > 1e-12, _fisheye_theta_d(theta, D) / r, 1.0)
    return xy * scale


def _fisheye_undistort(xy_d: np.ndarray, D: np.ndarray) -> np.ndarray:
    rd = np.linalg.norm(xy_d, axis=-1, keepdims=True)
    theta = rd.copy()
    for _ in range(_NEWTON_ITERS):
        t2 = theta * theta
        f = _fisheye_theta_d(theta, D) - rd
        df = 1 + t2 * (3 * D[0] + t2 * (5 * D[1] + t2 * (7 * D[2] + t2 * 9 * D[3])))
        theta = theta - f / df
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(rd > 1e-12, np.tan(theta) / rd, 1.0)
    return xy_d * scale
