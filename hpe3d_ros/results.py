"""What the pipeline produces for one camera image (ROS-free).

These dataclasses are the contract between the core (:mod:`hpe3d_ros.pipeline`), the ROS
adapters (:mod:`hpe3d_ros.ros.conversions` turns them into messages and back) and replay.
All 3D arrays are in the camera's optical frame (x right, y down, z forward), metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hpe3d_ros.skeleton import H36M_JOINT_NAMES, H36M_LAYOUT_ID


@dataclass
class Person3D:
    """One person lifted to 3D.

    Attributes:
        track_id: id stable across frames of one camera; -1 if untracked.
        detection_score: whole-person confidence in [0, 1].
        bbox_px: (4,) [x_min, y_min, x_max, y_max] pixels.
        keypoints_px: (J, 2) raw-image pixels in the 3D joint order (NaN where missing).
        keypoint_conf: (J,) confidence in [0, 1].
        root_m: (3,) root (pelvis) position.
        root_std_m: (3,) standard deviation of ``root_m`` per axis.
        hypotheses_m: (K, J, 3) absolute hypotheses (``root_m`` added); K may be 0.
    """

    track_id: int
    detection_score: float
    bbox_px: np.ndarray
    keypoints_px: np.ndarray
    keypoint_conf: np.ndarray
    root_m: np.ndarray
    root_std_m: np.ndarray
    hypotheses_m: np.ndarray

    @property
    def num_hypotheses(self) -> int:
        return int(self.hypotheses_m.shape[0])

    @property
    def mean_pose_m(self) -> np.ndarray:
        """(J, 3) mean over hypotheses (NaN if K == 0)."""
        if self.num_hypotheses == 0:
            return np.full((self.keypoint_conf.shape[0], 3), np.nan, dtype=np.float32)
        return self.hypotheses_m.mean(axis=0)

    @property
    def joint_std_m(self) -> np.ndarray:
        """(J, 3) per-axis standard deviation over hypotheses (NaN if K == 0)."""
        if self.num_hypotheses == 0:
            return np.full((self.keypoint_conf.shape[0], 3), np.nan, dtype=np.float32)
        return self.hypotheses_m.std(axis=0)


@dataclass
class Detection2D:
    """A 2D detection in the detector's joint layout (COCO-17 by default)."""

    track_id: int
    score: float
    bbox_px: np.ndarray  # (4,)
    keypoints_px: np.ndarray  # (J, 2)
    confidence: np.ndarray  # (J,)


@dataclass
class FrameResult:
    """Everything the pipeline found in one image of one camera."""

    camera_name: str
    frame_id: str
    stamp_ns: int
    people: list[Person3D] = field(default_factory=list)
    detections: list[Detection2D] = field(default_factory=list)
    joint_layout: str = H36M_LAYOUT_ID
    joint_names: tuple[str, ...] = H36M_JOINT_NAMES
    detection_layout: str = "coco17"
    detection_joint_names: tuple[str, ...] = ()
    model_id: str = ""
    #: Wall time per stage in milliseconds ("detect", "track", "lift", "place", "total").
    timings_ms: dict[str, float] = field(default_factory=dict)
