"""What every 2D keypoint backend returns (:class:`Person2D`) and promises (:class:`Detector`).

Coordinates are image pixels of the image given to ``detect``: x to the right, y down, origin
at the top-left corner of the top-left pixel (a keypoint at the centre of pixel (0, 0) is
(0.5, 0.5)). Joints are in COCO-17 order (:data:`hpe3d_ros.skeleton.COCO_JOINT_NAMES`); the
person's own left is COCO "left", whatever side of the image it appears on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from hpe3d_ros.skeleton import coco_to_h36m

Box = tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class Person2D:
    """One person seen in one image.

    Attributes:
        keypoints: (17, 2) float32 pixel coordinates (x, y), COCO-17 order.
        scores: (17,) float32 per-joint confidence in [0, 1]; exactly 0 marks a joint the
            image does not show (cut off by its border; :mod:`~.truncation`), whose position
            is the network's guess.
        box: (x0, y0, x1, y1) pixels, x0 <= x1, y0 <= y1.
        score: person confidence in [0, 1] (backend-specific meaning, see the backend).
        track_id: identity across frames from :class:`~hpe3d_ros.detection.tracking.Tracker`;
            -1 until tracked.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    box: Box
    score: float
    track_id: int = -1

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        sc = np.asarray(self.scores, dtype=np.float32)
        if kp.shape != (17, 2) or sc.shape != (17,):
            raise ValueError(
                f"expected (17, 2) keypoints and (17,) scores, got {kp.shape}, {sc.shape}"
            )
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "scores", sc)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "track_id", int(self.track_id))

    def to_h36m(self) -> tuple[np.ndarray, np.ndarray]:
        """H36M-17 keypoints (17, 2) px float32 and confidences (17,) float32 for the lifter."""
        kp, conf = coco_to_h36m(self.keypoints, self.scores)
        return kp.astype(np.float32), conf.astype(np.float32)

    def with_track_id(self, track_id: int) -> Person2D:
        """A copy carrying ``track_id``."""
        return dataclasses.replace(self, track_id=track_id)

    def with_keypoints(self, keypoints: np.ndarray) -> Person2D:
        """A copy with new (17, 2) pixel keypoints (e.g. smoothed); scores and box unchanged."""
        return dataclasses.replace(self, keypoints=keypoints)


@runtime_checkable
class Detector(Protocol):
    """A 2D multi-person keypoint detector.

    ``detect`` accepts uint8 (or float in [0, 255]) images shaped (H, W), (H, W, 1), (H, W, 3)
    RGB or (H, W, 4) RGBA and returns one :class:`Person2D` per person found (possibly none),
    in pixel coordinates of that image. An image with zero height or width raises ValueError.
    """

    def detect(self, image_rgb: np.ndarray) -> list[Person2D]: ...
