"""The 2D overlay of one frame: skeletons, ids, distances, or why the frame failed (ROS-free).

One drawing for every consumer: the node's ``~/<camera>/debug_image``, the replay's overlay
PNGs and MP4, and the README pictures.
"""

from __future__ import annotations

import cv2
import numpy as np

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.draw import draw_people
from hpe3d_ros.results import FrameResult


def draw_overlay(
    image_rgb: np.ndarray, result: FrameResult | None, reason: str = ""
) -> np.ndarray:
    """(H, W, 3) RGB copy with 2D skeletons, ids and distances (or the failure reason)."""
    if result is None:
        out = np.ascontiguousarray(image_rgb).copy()
        cv2.putText(out, f"FAILED: {reason}"[:90], (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 64, 64), 1, cv2.LINE_AA)  # fmt: skip
        return out
    people = [
        Person2D(d.keypoints_px, d.confidence, tuple(d.bbox_px), d.score, d.track_id)
        for d in result.detections
    ]
    out = draw_people(image_rgb, people)
    for p in result.people:
        if p.num_hypotheses and np.isfinite(p.root_m).all():
            x0, _, _, y1 = (round(float(v)) for v in p.bbox_px)
            text = f"{np.linalg.norm(p.root_m):.1f}m +-{float(p.root_std_m[2]):.1f}"
            cv2.putText(out, text, (x0, y1 + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                        (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    return out
