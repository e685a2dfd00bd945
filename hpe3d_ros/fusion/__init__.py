"""The vehicle's view (ROS-free): camera extrinsics, every camera's people in one target frame,
association across cameras, multi-view fusion of roots and pose hypotheses, and 3D tracks.

A driver feeds :class:`PeopleFuser` one camera frame at a time with the camera's pose in the
target frame (from parameters through :func:`tree_from_params`, a bag's ``/tf_static`` or a
live TF buffer) and publishes :meth:`PeopleFuser.people`. Files, in the order data flows:
``transforms`` and ``extrinsics`` (frames), ``observations`` (one camera's people in the
target frame), ``association`` (Hungarian), ``kalman`` (constant velocity), ``views``
(fusing roots and hypotheses), ``tracks`` and ``fuser`` (the whole update).
"""

from hpe3d_ros.fusion.extrinsics import (
    ExtrinsicsError,
    extrinsics_from_params,
    ground_plane_in_camera,
    ground_prior_from_extrinsics,
    optical_frame_id,
    tree_from_params,
)
from hpe3d_ros.fusion.fuser import CameraStatus, FuserConfig, PeopleFuser
from hpe3d_ros.fusion.observations import Observation, RootNoise, observations_from_result
from hpe3d_ros.fusion.tracks import (
    CONFIRMED,
    LOST,
    TENTATIVE,
    TRACK_STATES,
    PeopleList,
    TrackedPerson,
)
from hpe3d_ros.fusion.transforms import Transform, TransformTree, TransformUnavailable

__all__ = [
    "CONFIRMED",
    "LOST",
    "TENTATIVE",
    "TRACK_STATES",
    "CameraStatus",
    "ExtrinsicsError",
    "FuserConfig",
    "Observation",
    "PeopleFuser",
    "PeopleList",
    "RootNoise",
    "TrackedPerson",
    "Transform",
    "TransformTree",
    "TransformUnavailable",
    "extrinsics_from_params",
    "ground_plane_in_camera",
    "ground_prior_from_extrinsics",
    "observations_from_result",
    "optical_frame_id",
    "tree_from_params",
]
