"""Settings of :class:`hpe3d_ros.pipeline.Pipeline`, checked when made (ROS-free).

The node reads them from ``config/pipeline.yaml`` (:mod:`hpe3d_ros.config`); an invalid value
raises ``ValueError`` with the setting's name before anything runs.
``hpe3d_ros.pipeline.PipelineConfig`` is the same class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpe3d_ros.body_size import SIZE_LOG_STD
from hpe3d_ros.frames import ground_plane_optical
from hpe3d_ros.placement import ANKLE_HEIGHT_M, GROUND_WEIGHT, GroundPrior


@dataclass(frozen=True)
class PipelineConfig:
    """Per-pipeline settings (the node reads them from ``config/pipeline.yaml``)."""

    num_hypotheses: int = 50  # K hypotheses per person
    min_keypoint_confidence: float = 0.2  # below: the joint counts as missing
    min_visible_joints: int = 6  # fewer visible joints: the person is reported, not lifted
    seed: int = 0  # hypotheses are a pure function of (seed, camera, stamp, image)
    camera_height_m: float | None = None  # set to enable the flat-ground placement prior
    camera_pitch_deg: float = 0.0  # downward pitch of the optical axis
    ground_weight: float = GROUND_WEIGHT  # prior strength vs one confident joint (normalised)
    ankle_height_m: float = ANKLE_HEIGHT_M  # the lower ankle's height above the ground
    size_log_std: float = SIZE_LOG_STD  # > 0: the ground sizes people (adults' prior log-std)
    temporal: bool = True  # tracked people through the lifter's temporal model, if it has one
    temporal_window: int = 0  # frames of history the temporal model sees; 0 = its own window
    temporal_min_frames: int = 3  # a track's frames before the temporal model takes over

    def __post_init__(self) -> None:
        if self.num_hypotheses < 1:
            raise ValueError(f"num_hypotheses must be >= 1, got {self.num_hypotheses}")
        if not 0.0 <= self.min_keypoint_confidence <= 1.0:
            raise ValueError("min_keypoint_confidence must be in [0, 1]")
        if not 2 <= self.min_visible_joints <= 17:
            raise ValueError("min_visible_joints must be in [2, 17]")
        if self.camera_height_m is not None and self.camera_height_m <= 0:
            raise ValueError("camera_height_m must be > 0 (or null to disable the prior)")
        if not 0.0 <= self.ankle_height_m < (self.camera_height_m or np.inf):
            raise ValueError("ankle_height_m must be >= 0 and below the camera")
        if self.ground_weight < 0:
            raise ValueError("ground_weight must be >= 0")
        if not 0.0 <= self.size_log_std <= 1.0:
            raise ValueError("size_log_std must be in [0, 1]")
        if self.temporal_window < 0 or self.temporal_min_frames < 1:
            raise ValueError("temporal_window must be >= 0 and temporal_min_frames >= 1")

    @property
    def ground(self) -> GroundPrior | None:
        if self.camera_height_m is None:
            return None
        n, d = ground_plane_optical(self.camera_height_m, np.radians(self.camera_pitch_deg))
        return GroundPrior(n, d, self.ground_weight, self.ankle_height_m)
