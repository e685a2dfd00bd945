"""Image plumbing shared by the backends: input checks, resizing and crops as affine maps.

Every geometric step is a 2x3 affine map ``A`` from original-image pixels to network-input
pixels, so keypoints go back with the inverse map. Pixel-centre convention as in
:mod:`hpe3d_ros.detection.base`.
"""

from __future__ import annotations

import cv2
import numpy as np


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Return a contiguous (H, W, 3) uint8 RGB view/copy of ``image``.

    Accepts (H, W), (H, W, 1), (H, W, 3) and (H, W, 4) (alpha dropped); float input is taken
    as 0-255 and clipped. Raises ValueError for empty images or other shapes.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an (H, W[, 1|3|4]) image, got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"empty image: shape {img.shape} has zero height or width")
    if img.dtype != np.uint8:
        img = np.clip(np.nan_to_num(img.astype(np.float32)), 0, 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img)


def crop_affine(center_xy: np.ndarray, side_px: float, out_px: int) -> np.ndarray:
    """2x3 map taking a square of ``side_px`` centred at ``center_xy`` onto (out_px, out_px)."""
    s = out_px / max(float(side_px), 1e-6)
    cx, cy = float(center_xy[0]), float(center_xy[1])
    return np.array([[s, 0.0, out_px / 2 - s * cx], [0.0, s, out_px / 2 - s * cy]])


def resize_region(
    image: np.ndarray, x0: int, y0: int, x1: int, y1: int, out_wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``image[y0:y1, x0:x1]`` to ``out_wh``; return it and its 2x3 map from ``image``.

    Uses ``cv2.resize`` (area filter when shrinking), whose sampling follows the same
    pixel-centre convention as the keypoints.
    """
    region = image[y0:y1, x0:x1]
    w, h = out_wh
    sx, sy = w / region.shape[1], h / region.shape[0]
    interp = cv2.INTER_AREA if sx * sy < 1.0 else cv2.INTER_LINEAR
    out = cv2.resize(region, (w, h), interpolation=interp)
    return out, np.array([[sx, 0.0, -sx * x0], [0.0, sy, -sy * y0]])


def warp(image: np.ndarray, affine: np.ndarray, out_wh: tuple[int, int]) -> np.ndarray:
    """Sample ``image`` through ``affine`` into an (out_h, out_w, C) image; outside is black.

    ``cv2.warpAffine`` indexes pixel centres at integers; the half-pixel shift makes it agree
    with the pixel-centre-at-0.5 convention used for keypoints.
    """
    a = np.asarray(affine, dtype=np.float64).copy()
    a[:, 2] += a[:, :2].sum(axis=1) * 0.5 - 0.5
    return cv2.warpAffine(
        image, a, out_wh, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def invert_points(affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (N, 2) network-input pixel points back through the inverse of ``affine``."""
    inv = cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ inv[:, :2].T + inv[:, 2]
