"""``hpe3d_ros/People`` <-> :class:`~hpe3d_ros.fusion.tracks.PeopleList` (``people_to_msg`` /
``people_from_msg``), no node logic. Flat float32 arrays travel as in
:mod:`hpe3d_ros.ros.conversions` (one memcpy each).
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Vector3
from std_msgs.msg import Header

from hpe3d_ros.fusion.tracks import TRACK_STATES, PeopleList, TrackedPerson, ViewInfo
from hpe3d_ros.msg import People, PeopleTrack, PeopleView
from hpe3d_ros.ros.conversions import _f32, _np, ns_to_stamp, stamp_to_ns


def view_to_msg(view: ViewInfo) -> PeopleView:
    header = Header(stamp=ns_to_stamp(view.stamp_ns), frame_id=view.frame_id)
    return PeopleView(camera_name=view.camera_name, header=header,
                      camera_track_id=int(view.camera_track_id))  # fmt: skip


def view_from_msg(msg: PeopleView) -> ViewInfo:
    return ViewInfo(msg.camera_name, msg.header.frame_id, stamp_to_ns(msg.header.stamp),
                    int(msg.camera_track_id))  # fmt: skip


def track_to_msg(person: TrackedPerson) -> PeopleTrack:
    msg = PeopleTrack()
    msg.track_id = int(person.track_id)
    msg.state = TRACK_STATES.index(person.state)
    msg.score = float(person.score)
    x, y, z = (float(v) for v in person.position_m)
    msg.position = Point(x=x, y=y, z=z)
    msg.position_covariance = np.asarray(person.position_cov, np.float64).reshape(9)
    vx, vy, vz = (float(v) for v in person.velocity_mps)
    msg.velocity = Vector3(x=vx, y=vy, z=vz)
    msg.velocity_covariance = np.asarray(person.velocity_cov, np.float64).reshape(9)
    msg.mean_pose = _f32(person.mean_pose_m)
    msg.joint_std = _f32(person.joint_std_m)
    msg.num_hypotheses = person.num_hypotheses
    msg.hypotheses = _f32(person.hypotheses_m)
    msg.views = [view_to_msg(v) for v in person.views]
    return msg


def track_from_msg(msg: PeopleTrack, stamp_ns: int, num_joints: int) -> TrackedPerson:
    """One track; raises ValueError for sizes that do not match K and J, or a bad state."""
    k = int(msg.num_hypotheses)
    if len(msg.hypotheses) != k * num_joints * 3:
        raise ValueError(
            f"hypotheses has {len(msg.hypotheses)} values, expected K*J*3 = {k}*{num_joints}*3"
        )
    if msg.state >= len(TRACK_STATES):
        raise ValueError(f"unknown track state {msg.state}")
    p, v = msg.position, msg.velocity
    return TrackedPerson(
        track_id=int(msg.track_id),
        state=TRACK_STATES[msg.state],
        stamp_ns=stamp_ns,
        position_m=np.array([p.x, p.y, p.z]),
        position_cov=np.asarray(msg.position_covariance, np.float64).reshape(3, 3).copy(),
        velocity_mps=np.array([v.x, v.y, v.z]),
        velocity_cov=np.asarray(msg.velocity_covariance, np.float64).reshape(3, 3).copy(),
        hypotheses_m=_np(msg.hypotheses, (k, num_joints, 3)),
        views=[view_from_msg(m) for m in msg.views],
        score=float(msg.score),
    )


def people_to_msg(people: PeopleList) -> People:
    return People(
        header=Header(stamp=ns_to_stamp(people.stamp_ns), frame_id=people.frame_id),
        joint_layout=people.joint_layout,
        joint_names=list(people.joint_names),
        people=[track_to_msg(p) for p in people.people],
    )


def people_from_msg(msg: People) -> PeopleList:
    stamp, j = stamp_to_ns(msg.header.stamp), len(msg.joint_names)
    return PeopleList(
        frame_id=msg.header.frame_id,
        stamp_ns=stamp,
        people=[track_from_msg(p, stamp, j) for p in msg.people],
        joint_layout=msg.joint_layout,
        joint_names=tuple(msg.joint_names),
    )
