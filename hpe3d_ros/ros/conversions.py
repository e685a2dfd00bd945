"""Messages <-> core data (paired ``*_to_msg`` / ``*_from_msg``), no node logic.

Flat float32 arrays in the messages are filled from numpy through ``array.array`` (one
memcpy) rather than Python lists, so K=200 hypotheses for ten people cost microseconds.
"""

from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from std_msgs.msg import Header

from hpe3d_ros.msg import Keypoints2D, Keypoints2DArray, PoseHypotheses, PoseHypothesesArray
from hpe3d_ros.results import Detection2D, FrameResult, Person3D
from hpe3d_ros.stamps import ns_to_sec_nanosec
from hpe3d_ros.stamps import stamp_is_valid as stamp_is_valid  # re-exported for the node
from hpe3d_ros.stamps import stamp_to_ns as stamp_to_ns


def ns_to_stamp(ns: int) -> Time:
    """Inverse of :func:`stamp_to_ns`: ``ns_to_stamp(stamp_to_ns(t)) == t`` bit for bit."""
    sec, nsec = ns_to_sec_nanosec(ns)
    return Time(sec=sec, nanosec=nsec)


def _f32(values: np.ndarray) -> array.array:
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return out


def _np(values, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(memoryview(values), dtype=np.float32).reshape(shape).copy()


def _header(result: FrameResult) -> Header:
    return Header(stamp=ns_to_stamp(result.stamp_ns), frame_id=result.frame_id)


# --------------------------------------------------------------------- PoseHypothesesArray
def person_to_msg(person: Person3D) -> PoseHypotheses:
    msg = PoseHypotheses()
    msg.track_id = int(person.track_id)
    msg.detection_score = float(person.detection_score)
    msg.keypoints_2d = _f32(person.keypoints_px)
    msg.keypoint_confidence = _f32(person.keypoint_conf)
    msg.bbox = np.asarray(person.bbox_px, dtype=np.float32)
    x, y, z = (float(v) for v in person.root_m)
    msg.root_translation = Point(x=x, y=y, z=z)
    msg.root_translation_std = np.asarray(person.root_std_m, dtype=np.float32)
    msg.mean_pose = _f32(person.mean_pose_m)
    msg.joint_std = _f32(person.joint_std_m)
    msg.num_hypotheses = person.num_hypotheses
    msg.hypotheses = _f32(person.hypotheses_m)
    return msg


def person_from_msg(msg: PoseHypotheses, num_joints: int) -> Person3D:
    k = int(msg.num_hypotheses)
    if len(msg.hypotheses) != k * num_joints * 3:
        raise ValueError(
            f"hypotheses has {len(msg.hypotheses)} values, expected K*J*3 = {k}*{num_joints}*3"
        )
    root = msg.root_translation
    return Person3D(
        track_id=int(msg.track_id),
        detection_score=float(msg.detection_score),
        bbox_px=np.asarray(msg.bbox, dtype=np.float32).copy(),
        keypoints_px=_np(msg.keypoints_2d, (num_joints, 2)),
        keypoint_conf=_np(msg.keypoint_confidence, (num_joints,)),
        root_m=np.array([root.x, root.y, root.z]),
        root_std_m=np.asarray(msg.root_translation_std, dtype=np.float32).copy(),
        hypotheses_m=_np(msg.hypotheses, (k, num_joints, 3)),
    )


def hypotheses_to_msg(result: FrameResult) -> PoseHypothesesArray:
    return PoseHypothesesArray(
        header=_header(result),
        camera_name=result.camera_name,
        joint_layout=result.joint_layout,
        joint_names=list(result.joint_names),
        model_id=result.model_id,
        people=[person_to_msg(p) for p in result.people],
    )


def hypotheses_from_msg(msg: PoseHypothesesArray) -> FrameResult:
    j = len(msg.joint_names)
    return FrameResult(
        camera_name=msg.camera_name,
        frame_id=msg.header.frame_id,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        people=[person_from_msg(p, j) for p in msg.people],
        joint_layout=msg.joint_layout,
        joint_names=tuple(msg.joint_names),
        model_id=msg.model_id,
    )


# --------------------------------------------------------------------- Keypoints2DArray
def detection_to_msg(det: Detection2D) -> Keypoints2D:
    return Keypoints2D(
        track_id=int(det.track_id),
        score=float(det.score),
        bbox=np.asarray(det.bbox_px, dtype=np.float32),
        keypoints=_f32(det.keypoints_px),
        confidence=_f32(det.confidence),
    )


def detection_from_msg(msg: Keypoints2D, num_joints: int) -> Detection2D:
    return Detection2D(
        track_id=int(msg.track_id),
        score=float(msg.score),
        bbox_px=np.asarray(msg.bbox, dtype=np.float32).copy(),
        keypoints_px=_np(msg.keypoints, (num_joints, 2)),
        confidence=_np(msg.confidence, (num_joints,)),
    )


def keypoints_to_msg(result: FrameResult) -> Keypoints2DArray:
    return Keypoints2DArray(
        header=_header(result),
        camera_name=result.camera_name,
        joint_layout=result.detection_layout,
        joint_names=list(result.detection_joint_names),
        people=[detection_to_msg(d) for d in result.detections],
    )


def keypoints_from_msg(msg: Keypoints2DArray) -> list[Detection2D]:
    j = len(msg.joint_names)
    return [detection_from_msg(p, j) for p in msg.people]
