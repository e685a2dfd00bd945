import numpy as np
import pytest

pytest.importorskip("visualization_msgs", reason="ROS 2 message wheels not installed")
from visualization_msgs.msg import Marker

from hpe3d_ros.ros.markers import markers_from_result, track_colour
from test.helpers.sample_results import make_sample_result


def test_marker_array_clears_then_draws_every_person():
    result = make_sample_result(people=3, k=50)
    result.people[2].hypotheses_m = np.zeros((0, 17, 3), np.float32)  # not lifted: no markers
    arr = markers_from_result(result, lifetime_s=0.5)
    assert arr.markers[0].action == Marker.DELETEALL
    drawn = arr.markers[1:]
    assert len(drawn) == 2 * 4
    assert len({(m.ns, m.id) for m in drawn}) == len(drawn)  # unique ids
    for m in drawn:
        assert m.header.frame_id == result.frame_id
        assert m.header.stamp.sec == result.stamp_ns // 10**9
        assert m.lifetime.nanosec == 500_000_000
    bones = [m for m in drawn if m.ns == "skeleton"]
    assert bones[0].type == Marker.LINE_LIST and len(bones[0].points) == 2 * 16
    joints = next(m for m in drawn if m.ns == "joints")
    mean = result.people[0].mean_pose_m
    np.testing.assert_allclose([joints.points[3].x, joints.points[3].y, joints.points[3].z],
                               mean[3], rtol=1e-6)  # fmt: skip
    label = next(m for m in drawn if m.ns == "labels")
    dist = np.linalg.norm(result.people[0].root_m)
    assert label.text == f"id {result.people[0].track_id}  {dist:.1f} m"


def test_colours_are_stable_and_distinct():
    assert track_colour(3) == track_colour(3)
    c = [track_colour(i) for i in range(6)]
    hues = {(round(x.r, 2), round(x.g, 2), round(x.b, 2)) for x in c}
    assert len(hues) == 6


def test_unseen_joints_are_drawn_faint_grey():
    from hpe3d_ros.ros.markers import UNSEEN_COLOUR
    from hpe3d_ros.skeleton import H36M_BONES

    result = make_sample_result(people=1, k=10)
    person = result.people[0]
    person.keypoint_conf = np.ones(17, np.float32)
    person.keypoint_conf[[2, 3, 5, 6]] = 0.0  # knees and ankles cut by the image border
    arr = markers_from_result(result)
    joints = next(m for m in arr.markers if m.ns == "joints")
    bones = next(m for m in arr.markers if m.ns == "skeleton")
    assert len(joints.colors) == len(joints.points) == 17
    assert [j for j, c in enumerate(joints.colors) if c == UNSEEN_COLOUR] == [2, 3, 5, 6]
    assert joints.colors[0] == track_colour(person.track_id)
    assert len(bones.colors) == len(bones.points)
    unseen_bones = {
        i for i, (a, b) in enumerate(H36M_BONES) if bones.colors[2 * i] == UNSEEN_COLOUR
    }
    assert unseen_bones == {i for i, (a, b) in enumerate(H36M_BONES) if {a, b} & {2, 3, 5, 6}}
