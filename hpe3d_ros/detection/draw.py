"""Overlay people on an image (for demos and eyeballing; not used on the hot path)."""

from __future__ import annotations

import cv2
import numpy as np

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.skeleton import COCO_BONES, COCO_LEFT, COCO_RIGHT

LEFT_RGB = (255, 64, 64)
RIGHT_RGB = (64, 128, 255)
CENTRE_RGB = (255, 255, 0)


def draw_people(
    image_rgb: np.ndarray, people: list[Person2D], min_score: float = 0.2
) -> np.ndarray:
    """Copy of an (H, W, 3) RGB image with boxes, bones and joints; person left red, right blue."""
    out = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    for p in people:
        x0, y0, x1, y1 = (round(v) for v in p.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), 1)
        label = f"{p.score:.2f}" if p.track_id < 0 else f"#{p.track_id} {p.score:.2f}"
        cv2.putText(out, label, (x0, max(y0 - 3, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0))
        ok = (p.scores >= min_score) & np.isfinite(p.keypoints).all(axis=1)
        pts = np.round(np.nan_to_num(p.keypoints)).astype(int)  # unseen joints may be NaN
        for a, b in COCO_BONES:
            if ok[a] and ok[b]:
                cv2.line(out, tuple(pts[a]), tuple(pts[b]), (200, 200, 200), 1, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            colour = LEFT_RGB if j in COCO_LEFT else RIGHT_RGB if j in COCO_RIGHT else CENTRE_RGB
            cv2.circle(out, tuple(pts[j]), 2, colour, -1, cv2.LINE_AA)
    return out
