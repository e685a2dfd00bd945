"""RViz markers for lifted people: skeleton of the mean pose, joints, a faint cloud of
hypotheses and a label with id and distance, all in the camera's optical frame. Joints the
camera did not see (confidence 0), and bones touching them, are drawn faint grey.

Every array starts with a DELETEALL marker, so people who left the image vanish at once;
markers also carry a lifetime in case a frame is dropped downstream.
"""

from __future__ import annotations

import colorsys

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from scipy.spatial.transform import Rotation
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from hpe3d_ros.fusion.tracks import PeopleList
from hpe3d_ros.results import FrameResult, Person3D
from hpe3d_ros.ros.conversions import ns_to_stamp
from hpe3d_ros.skeleton import H36M_BONES

_GOLDEN = 0.618033988749895
#: Colour of joints (and bones touching them) that the camera did not see.
UNSEEN_COLOUR = ColorRGBA(r=0.6, g=0.6, b=0.6, a=0.35)


def track_colour(track_id: int, alpha: float = 1.0) -> ColorRGBA:
    """A stable, well-separated colour per track id (grey for untracked people)."""
    if track_id < 0:
        return ColorRGBA(r=0.7, g=0.7, b=0.7, a=alpha)
    r, g, b = colorsys.hsv_to_rgb((track_id * _GOLDEN) % 1.0, 0.85, 0.95)
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in xyz]


def _bone_points(pose: np.ndarray) -> list[Point]:
    idx = np.asarray(H36M_BONES).ravel()
    return _points(pose[idx])


def person_markers(
    person: Person3D,
    index: int,
    header,
    lifetime_s: float,
    max_hypotheses: int = 8,
    up: tuple[float, float, float] = (0.0, -1.0, 0.0),
) -> list[Marker]:
    """Markers for one person; ``index`` keeps marker ids unique within the array.

    ``up``: the frame's up direction, for the label above the head (optical frames: -y).
    """
    if person.num_hypotheses == 0 or not np.isfinite(person.root_m).all():
        return []
    mean = person.mean_pose_m
    colour = track_colour(person.track_id)
    life = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    base = index * 4

    def marker(ns: str, mid: int, mtype: int) -> Marker:
        m = Marker(header=header, ns=ns, id=mid, type=mtype, action=Marker.ADD, lifetime=life)
        m.pose.orientation.w = 1.0
        return m

    # joints the camera saw in the track's colour; unseen ones (confidence 0: occluded or
    # outside the image, their position is the lifter's guess) faint grey
    seen = np.asarray(person.keypoint_conf) > 0
    joint_colours = [colour if s else UNSEEN_COLOUR for s in seen]
    bones = marker("skeleton", base, Marker.LINE_LIST)
    bones.scale.x = 0.03
    bones.color = colour
    bones.points = _bone_points(mean)
    bones.colors = [
        c for a, b in H36M_BONES for c in ((colour,) * 2 if seen[a] and seen[b] else
                                           (UNSEEN_COLOUR,) * 2)
    ]  # fmt: skip

    joints = marker("joints", base + 1, Marker.SPHERE_LIST)
    joints.scale.x = joints.scale.y = joints.scale.z = 0.06
    joints.color = colour
    joints.points = _points(mean)
    joints.colors = joint_colours

    cloud = marker("hypotheses", base + 2, Marker.LINE_LIST)
    cloud.scale.x = 0.01
    cloud.color = track_colour(person.track_id, alpha=0.15)
    step = max(1, person.num_hypotheses // max_hypotheses)
    for hyp in person.hypotheses_m[::step][:max_hypotheses]:
        cloud.points.extend(_bone_points(hyp))

    label = marker("labels", base + 3, Marker.TEXT_VIEW_FACING)
    label.scale.z = 0.25
    label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=0.9)
    head = mean[10]
    above = head + 0.3 * np.asarray(up, dtype=np.float64)
    label.pose.position = Point(x=float(above[0]), y=float(above[1]), z=float(above[2]))
    who = f"id {person.track_id}" if person.track_id >= 0 else "person"
    label.text = f"{who}  {float(np.linalg.norm(person.root_m)):.1f} m"
    return [bones, joints, cloud, label]


def markers_from_result(result: FrameResult, lifetime_s: float = 0.5) -> MarkerArray:
    """The whole MarkerArray for one processed image (DELETEALL first)."""
    header = Header(stamp=ns_to_stamp(result.stamp_ns), frame_id=result.frame_id)
    clear = Marker(header=header, action=Marker.DELETEALL)
    out = MarkerArray(markers=[clear])
    for i, person in enumerate(result.people):
        out.markers.extend(person_markers(person, i, header, lifetime_s))
    return out


def people_markers(people: PeopleList, lifetime_s: float = 0.5) -> MarkerArray:
    """``~/people`` as markers in the target frame (z up): per person the skeleton, joints,
    hypotheses and "id · distance" label in the colour of its global track id, and its
    position's 90 % covariance ellipsoid; DELETEALL first."""
    header = Header(stamp=ns_to_stamp(people.stamp_ns), frame_id=people.frame_id)
    out = MarkerArray(markers=[Marker(header=header, action=Marker.DELETEALL)])
    life = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    for i, p in enumerate(people.people):
        j = p.hypotheses_m.shape[1]
        std = np.sqrt(np.diag(p.position_cov))
        as_person = Person3D(p.track_id, p.score, np.zeros(4, np.float32),
                             np.full((j, 2), np.nan, np.float32), np.ones(j, np.float32),
                             p.position_m, std, p.hypotheses_m)  # fmt: skip
        out.markers.extend(person_markers(as_person, i, header, lifetime_s, up=(0.0, 0.0, 1.0)))
        out.markers.append(_covariance_marker(p.position_m, p.position_cov, i, header, life,
                                              track_colour(p.track_id, alpha=0.3)))  # fmt: skip
    return out


def _covariance_marker(mean, cov, index: int, header, life, colour: ColorRGBA) -> Marker:
    """A SPHERE scaled and turned to the 90 % ellipsoid of a 3x3 covariance."""
    vals, vecs = np.linalg.eigh(0.5 * (cov + np.transpose(cov)))
    if np.linalg.det(vecs) < 0:
        vecs[:, 0] = -vecs[:, 0]
    m = Marker(header=header, ns="position_covariance", id=index, type=Marker.SPHERE,
               action=Marker.ADD, lifetime=life, color=colour)  # fmt: skip
    m.pose.position = Point(x=float(mean[0]), y=float(mean[1]), z=float(mean[2]))
    x, y, z, w = Rotation.from_matrix(vecs).as_quat()
    m.pose.orientation.x, m.pose.orientation.y = float(x), float(y)
    m.pose.orientation.z, m.pose.orientation.w = float(z), float(w)
    # chi-square 3 dof, 90 %: 6.251; the diameter is twice the semi-axis
    axes = 2.0 * np.sqrt(6.251 * np.clip(vals, 1e-8, None))
    m.scale.x, m.scale.y, m.scale.z = (float(a) for a in axes)
    return m
