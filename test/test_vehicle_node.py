"""``~/people`` from the live node over DDS: camera poses from a TF buffer (a fake with
tf2_ros.Buffer's ``lookup_transform``: tf2_ros is not in the pip world) or from parameters,
a missing transform reported on /diagnostics while the node keeps serving, and the real node
process fusing two cameras into one list."""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

import hpe3d_ros.ros.vehicle as vehicle_mod  # noqa: E402
from hpe3d_ros.fusion import Transform  # noqa: E402
from hpe3d_ros.msg import People, PoseHypothesesArray  # noqa: E402
from hpe3d_ros.pipeline import Pipeline  # noqa: E402
from hpe3d_ros.ros.conversions import hypotheses_from_msg, stamp_to_ns  # noqa: E402
from hpe3d_ros.ros.people import people_from_msg  # noqa: E402
from hpe3d_ros.ros.topics import output_topic, people_topic  # noqa: E402
from test.helpers.node_harness import NobodyDetector, NoLifter, running_node, wait_for  # noqa: E402
from test.helpers.node_process import RELIABLE, NodeUnderTest  # noqa: E402
from test.helpers.ros_io import camera_for, image_msg, info_msg, load_rgb  # noqa: E402
from test.test_vehicle import FakeTfBuffer  # noqa: E402

pytestmark = pytest.mark.dds


def _status(diags, camera):
    return [s for d in list(diags) for s in d.status if s.hardware_id == camera]


def test_poses_from_tf_at_the_image_stamp_and_a_missing_transform_warns(monkeypatch):
    """Cameras a (TF knows it), b (TF does not) and c (parameters; TF never asked)."""
    fake = FakeTfBuffer({"a_optical": Transform.from_rpy([2.0, 0, 1.5], [0, 0, 0], "base_link",
                                                         "a_optical")})  # fmt: skip
    monkeypatch.setattr(vehicle_mod, "make_tf_buffer", lambda node: (fake, object(), ""))
    overrides = {"camera_names": ["a", "b", "c"], "output.people": True,
                 "diagnostics.period_s": 0.2, "cameras.c.extrinsics.parent_frame": "base_link",
                 "cameras.c.extrinsics.translation": [1.0, 0.0, 1.5]}  # fmt: skip
    pipeline = Pipeline(NobodyDetector(), NoLifter())
    with running_node(monkeypatch, pipeline, overrides, "tf_driver") as (node, drv):
        got: dict[str, list] = {"people": [], "markers": [], "b": []}
        drv.create_subscription(People, people_topic(), got["people"].append, RELIABLE)
        drv.create_subscription(MarkerArray, people_topic("people_markers"),
                                got["markers"].append, RELIABLE)  # fmt: skip
        drv.create_subscription(PoseHypothesesArray, output_topic("b", "hypotheses"),
                                got["b"].append, RELIABLE)  # fmt: skip
        diags: list = []
        drv.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
        pubs = {c: (drv.create_publisher(Image, f"/{c}/camera/image_raw", RELIABLE),
                    drv.create_publisher(CameraInfo, f"/{c}/camera/camera_info", RELIABLE))
                for c in "abc"}  # fmt: skip
        assert wait_for(lambda: all(p[0].get_subscription_count() for p in pubs.values()), 20)
        rgb = np.zeros((48, 64, 3), np.uint8)
        cam = camera_for(rgb)
        sent = []
        for i in range(8):
            stamp = 1_700_000_000_000_000_000 + i * 100_000_000
            sent.append(stamp)
            for c, (img, info) in pubs.items():
                info.publish(info_msg(cam, stamp, f"{c}_optical"))
                img.publish(image_msg(rgb, stamp, f"{c}_optical"))
            time.sleep(0.15)
        assert wait_for(lambda: len(got["people"]) >= 8 and len(got["b"]) >= 4, 20), got
        warn = wait_for(lambda: any(s.level == DiagnosticStatus.WARN
                                    for s in _status(diags, "b")[-1:]), 5)  # fmt: skip
        assert warn, _status(diags, "b")[-3:]
    # lookups at each image's stamp, with the timeout; never for c (its parameters win)
    asked = {(t, s) for t, s, _, _ in fake.calls}
    assert asked == {("base_link", "a_optical"), ("base_link", "b_optical")}
    assert {n for _, s, n, _ in fake.calls if s == "a_optical"} <= set(sent)
    assert {timeout for *_, timeout in fake.calls} == {50_000_000}
    # ~/people: one list per fused frame (a's and c's), in base_link, at an image stamp
    assert all(m.header.frame_id == "base_link" and stamp_to_ns(m.header.stamp) in sent
               for m in got["people"])  # fmt: skip
    assert got["markers"] and got["markers"][-1].markers[0].header.frame_id == "base_link"
    b = _status(diags, "b")[-1]
    assert "not in ~/people" in b.message and "b_optical" in b.message
    values = {kv.key: kv.value for kv in b.values}
    assert int(values["missing_transform"]) >= 4 and values["people_frames"] == "0"
    for ok in ("a", "c"):
        last = _status(diags, ok)[-1]
        assert last.level == DiagnosticStatus.OK, (ok, last.message)
        assert int({kv.key: kv.value for kv in last.values}["people_frames"]) >= 4
    assert node.vehicle.view.fuser.status("b").frames == 0  # b's frames kept their outputs only


# ------------------------------------------------------------------ the real node process
@pytest.fixture
def vehicle_node(tmp_path):
    """Cameras left and right: the same street image, the same pose on a mast (one view
    seen twice, so one list must hold each person once); camera nopose has none."""

    def pose() -> dict:  # a new one each time: rcl refuses YAML aliases
        return {"parent_frame": "base_link", "translation": [0.0, 0.0, 6.0],
                "rpy_deg": [0.0, 25.0, 0.0]}  # fmt: skip

    cams = {c: {"image_topic": f"/v/{c}/image", "camera_info_topic": f"/v/{c}/info"}
            for c in ("left", "right", "nopose")}  # fmt: skip
    cams["left"]["extrinsics"], cams["right"]["extrinsics"] = pose(), pose()
    params = {"camera_names": list(cams), "cameras": cams, "output": {"people": True},
              "lifter": {"num_hypotheses": 20}, "detector": {"input_size": 384},
              "diagnostics": {"period_s": 0.5}}  # fmt: skip
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"hpe3d_pipeline": {"ros__parameters": params}}))
    under = NodeUnderTest(f, tmp_path / "node.log")
    yield under
    under.close()


@pytest.mark.slow
def test_two_cameras_answer_on_people_with_one_list(vehicle_node):
    t = vehicle_node
    rgb = load_rgb("vtest_0260.jpg")
    cam = camera_for(rgb)
    for c in ("left", "nopose"):
        t.listen(c)
    lists: list[People] = []
    t.node.create_subscription(People, people_topic(), lists.append, RELIABLE)
    diags: list = []
    t.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
    pubs = {c: (t.node.create_publisher(Image, f"/v/{c}/image", RELIABLE),
                t.node.create_publisher(CameraInfo, f"/v/{c}/info", RELIABLE))
            for c in ("left", "right", "nopose")}  # fmt: skip
    sent: set[int] = set()
    last = [0.0]

    def tick():
        now = time.monotonic()
        if now - last[0] < 0.6:
            return
        last[0] = now
        stamp = 1_700_000_000_000_000_000 + int(now * 1e9)
        for c, (img, info) in pubs.items():
            info.publish(info_msg(cam, stamp, f"{c}_optical"))
            img.publish(image_msg(rgb, stamp, f"{c}_optical"))
        sent.add(stamp)

    def both(m: People) -> int:
        return sum({v.camera_name for v in p.views} == {"left", "right"} for p in m.people)

    def done():
        warned = any(s.level == DiagnosticStatus.WARN for s in _status(diags, "nopose")[-1:])
        return any(both(m) >= 3 for m in lists) and warned and t.got["nopose/hypotheses"]

    assert t.spin_until(done, 150, tick), (len(lists), [both(m) for m in lists], t.log())
    assert t.proc.poll() is None
    best = max(lists, key=both)
    people = people_from_msg(best)
    assert people.frame_id == "base_link" and people.stamp_ns in sent
    # the left camera's own people, placed: the fused list holds each of them once, not twice
    one_view = max(
        (hypotheses_from_msg(h) for h in t.got["left/hypotheses"]),
        key=lambda r: sum(p.num_hypotheses > 0 for p in r.people),
    )
    placed = sum(p.num_hypotheses > 0 for p in one_view.people)
    assert 3 <= len(people.people) <= placed, (len(people.people), placed)
    assert len({p.track_id for p in people.people}) == len(people.people)
    for p in people.people:
        assert p.state in ("confirmed", "lost") and p.hypotheses_m.shape[1:] == (17, 3)
        assert 0.0 < p.position_m[0] < 80.0 and -0.5 < p.position_m[2] < 2.5  # ahead, z up
        assert {v.camera_name for v in p.views} <= {"left", "right"}
    # the camera without a pose: WARN, its own outputs continue
    nopose = _status(diags, "nopose")[-1]
    assert "not in ~/people" in nopose.message and "extrinsics" in nopose.message
    assert stamp_to_ns(t.got["nopose/hypotheses"][-1].header.stamp) in sent
    assert "not in ~/people" in t.log(tail=0)
