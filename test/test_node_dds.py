"""The node over real DDS: real frames with people in, every output topic answers.

The node runs as its own process through the pip-world runner (`hpe3d-pipeline
--params-file ...`); this test process publishes cameras and listens to the outputs.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from hpe3d_ros.ros.conversions import hypotheses_from_msg, stamp_to_ns  # noqa: E402
from test.conftest import REPO  # noqa: E402
from test.helpers.node_process import NodeUnderTest  # noqa: E402
from test.helpers.ros_io import (  # noqa: E402
    camera_for,
    compressed_msg,
    image_msg,
    info_msg,
    load_rgb,
)

pytestmark = [pytest.mark.dds, pytest.mark.slow]
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def write_params(path, cameras: dict[str, dict]) -> None:
    params = {
        "camera_names": list(cameras),
        "cameras": cameras,
        "lifter": {"num_hypotheses": 20},
        "detector": {"input_size": 384},
        "diagnostics": {"period_s": 0.5},
        "output": {"debug_image": True},
    }
    path.write_text(yaml.safe_dump({"hpe3d_pipeline": {"ros__parameters": params}}))


@pytest.fixture
def two_cameras(tmp_path):
    params = tmp_path / "p.yaml"
    write_params(
        params,
        {
            "front": {"image_topic": "/t/front/image_raw", "camera_info_topic": "/t/front/info"},
            "rear": {
                "image_topic": "/t/rear/image_raw/compressed",
                "camera_info_topic": "/t/rear/info",
                "compressed": True,
            },
        },
    )
    under = NodeUnderTest(params, tmp_path / "node.log")
    yield under
    under.close()


def test_two_cameras_raw_and_compressed_answer_on_every_topic(two_cameras):
    t = two_cameras
    front, rear = load_rgb("vtest_0260.jpg"), load_rgb("vtest_0480.jpg")
    cam_f, cam_r = camera_for(front), camera_for(rear)
    t.listen("front")
    t.listen("rear")
    diags: list[DiagnosticArray] = []
    t.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
    pub = {
        "fi": t.node.create_publisher(Image, "/t/front/image_raw", RELIABLE),
        "fc": t.node.create_publisher(CameraInfo, "/t/front/info", RELIABLE),
        "ri": t.node.create_publisher(CompressedImage, "/t/rear/image_raw/compressed", RELIABLE),
        "rc": t.node.create_publisher(CameraInfo, "/t/rear/info", RELIABLE),
    }
    sent: dict[str, set[int]] = {"front": set(), "rear": set()}
    last = [0.0]

    def tick():
        now = time.monotonic()
        if now - last[0] < 0.5:
            return
        last[0] = now
        stamp = 1_700_000_000_000_000_000 + int(now * 1e9)
        pub["fc"].publish(info_msg(cam_f, stamp, "front_optical"))
        pub["rc"].publish(info_msg(cam_r, stamp, "rear_optical"))
        pub["fi"].publish(image_msg(front, stamp, "front_optical"))
        pub["ri"].publish(compressed_msg(rear, stamp, "rear_optical"))
        sent["front"].add(stamp)
        sent["rear"].add(stamp)

    def done():
        kinds = ("hypotheses", "keypoints", "markers", "debug_image")
        counts = [len(t.got[f"{c}/{k}"]) for c in ("front", "rear") for k in kinds]
        return min(counts) >= 2 and any(_count(d, "front") >= 2 for d in diags)

    assert t.spin_until(done, 120, tick), (
        f"outputs: { {k: len(v) for k, v in t.got.items()} }\n{t.log()}"
    )

    for cam, frame in (("front", "front_optical"), ("rear", "rear_optical")):
        hyp = t.got[f"{cam}/hypotheses"][-1]
        assert hyp.header.frame_id == frame and hyp.camera_name == cam
        assert stamp_to_ns(hyp.header.stamp) in sent[cam]  # output carries the input stamp
        res = hypotheses_from_msg(hyp)
        assert 3 <= len(res.people) <= 10, len(res.people)  # 6-7 pedestrians by eye
        placed = [p for p in res.people if p.num_hypotheses]
        assert len(placed) >= 3
        for p in placed:
            assert p.hypotheses_m.shape == (20, 17, 3)
            assert 2.0 < p.root_m[2] < 80.0  # in front of the camera, street distances
            mean = p.mean_pose_m
            stature = np.linalg.norm(mean[10] - (mean[3] + mean[6]) / 2)
            assert 1.0 < stature < 2.3
            # the lifted pose reprojects near the 2D keypoints it came from
            cam_model = cam_f if cam == "front" else cam_r
            px = cam_model.project(mean)
            ok = p.keypoint_conf > 0.3
            err = np.linalg.norm(px[ok] - p.keypoints_px[ok], axis=-1)
            assert np.median(err) < 0.15 * (p.bbox_px[3] - p.bbox_px[1])
        kp = t.got[f"{cam}/keypoints"][-1]
        assert kp.joint_layout == "coco17" and kp.header.frame_id == frame
        assert len(kp.people) == len(hyp.people)
        mk = t.got[f"{cam}/markers"][-1]
        assert mk.markers[0].action == Marker.DELETEALL
        assert all(m.header.frame_id == frame for m in mk.markers[1:])
        dbg = t.got[f"{cam}/debug_image"][-1]
        assert (dbg.width, dbg.height, dbg.encoding) == (768, 576, "rgb8")
    names = {s.hardware_id: s for s in diags[-1].status}
    assert set(names) >= {"front", "rear"}
    values = {kv.key: kv.value for kv in names["front"].values}
    assert float(values["latency_p95_ms"]) > 0 and values["lifter"].startswith("lifter_")


def _count(diag: DiagnosticArray, camera: str, key: str = "processed") -> int:
    for s in diag.status:
        if s.hardware_id == camera:
            return int({kv.key: kv.value for kv in s.values}[key])
    return 0


@pytest.fixture
def three_cameras(tmp_path):
    params = tmp_path / "p.yaml"
    cams = {c: {"image_topic": f"/t/{c}/image", "camera_info_topic": f"/t/{c}/info"}
            for c in ("a", "b", "bad")}  # fmt: skip
    write_params(params, cams)
    under = NodeUnderTest(params, tmp_path / "node.log")
    yield under
    under.close()


def test_one_cameras_bad_input_does_not_disturb_the_others(three_cameras):
    t = three_cameras
    rgb = load_rgb("vtest_0040.jpg")
    cam = camera_for(rgb)
    for c in ("a", "b", "bad"):
        t.listen(c)
    diags: list[DiagnosticArray] = []
    t.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
    pubs = {
        c: (
            t.node.create_publisher(Image, f"/t/{c}/image", RELIABLE),
            t.node.create_publisher(CameraInfo, f"/t/{c}/info", RELIABLE),
        )
        for c in ("a", "b", "bad")
    }
    # every publisher matched first: a CameraInfo sent before its topic is discovered is lost
    # (volatile durability), and the next image would rightly count as 'missing CameraInfo'
    matched = lambda: all(p.get_subscription_count() for pair in pubs.values() for p in pair)  # noqa: E731
    assert t.spin_until(matched, 60), t.log()
    bad_kinds = iter(range(10**6))
    last = [0.0]
    started: list[bool] = []

    def tick():
        now = time.monotonic()
        if now - last[0] < 0.4:
            return
        last[0] = now
        stamp = int(now * 1e9)
        first = not started
        started.append(True)
        for c in ("a", "b"):
            pubs[c][1].publish(info_msg(cam, stamp, f"{c}_optical"))
            if not first:  # a camera's very first image may overtake its first CameraInfo
                pubs[c][0].publish(image_msg(rgb, stamp, f"{c}_optical"))
        i = next(bad_kinds) % 4
        img = image_msg(rgb, stamp, "bad_optical")
        info = info_msg(cam, stamp, "bad_optical")
        if i == 0:
            img.encoding = "16UC1"  # depth
        elif i == 1:
            img.data = bytes(img.data[:1000])  # truncated payload
        elif i == 2:
            info.k = [float("nan")] * 9  # NaN intrinsics, and a row stride that is too short
            img.step = 10
        else:
            img.height, img.width, img.step = 0, 0, 0
        pubs["bad"][1].publish(info)
        pubs["bad"][0].publish(img)

    def done():
        good = all(len(t.got[f"{c}/hypotheses"]) >= 3 for c in ("a", "b"))
        return good and any(_count(d, "bad", "failed") >= 8 for d in diags)  # every kind twice

    assert t.spin_until(done, 150, tick), t.log()
    assert t.proc.poll() is None  # alive
    assert t.got["bad/hypotheses"] == []  # nothing fake published for bad frames
    bad = [s for d in diags for s in d.status if s.hardware_id == "bad"][-1]
    assert bad.level != DiagnosticStatus.OK
    good = [s for d in diags for s in d.status if s.hardware_id == "a"][-1]
    values = {kv.key: kv.value for kv in good.values}
    assert int(values["failed"]) == 0, values["last_error"]
    log = t.log(tail=0)
    assert (
        "depth or other non-intensity data" in log and "needs" in log and "NaN" in log
    )  # clear, specific warnings


def _run_node(tmp_path, params: dict) -> subprocess.CompletedProcess:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"hpe3d_pipeline": {"ros__parameters": params}}))
    return subprocess.run(
        [sys.executable, "-m", "hpe3d_ros.ros.node", "--params-file", str(f)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("params", "rc", "needle"),
    [
        ({"lifter": {"num_hypotheses": -3}}, 2, "lifter.num_hypotheses"),
        ({"camera_names": []}, 2, "camera_names"),
        ({"detector": {"mode": 7}}, 2, "detector.mode"),
        ({"cameras": {"side": {"image_topic": "/x"}}}, 2, "cameras.side.image_topic"),
        ({"lifter": {"weights": "/nonexistent/lifter.pt"}}, 1, "/nonexistent/lifter.pt"),
    ],
)
def test_bad_start_up_fails_with_one_clear_message(tmp_path, params, rc, needle):
    proc = _run_node(tmp_path, params)
    out = proc.stdout + proc.stderr
    assert proc.returncode == rc, out
    assert needle in out
    assert "Traceback" not in out


def test_corrupt_lifter_weights_name_the_file(tmp_path):
    bad = tmp_path / "corrupt_lifter.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    proc = _run_node(tmp_path, {"lifter": {"weights": str(bad)}})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert str(bad) in out and "Traceback" not in out
