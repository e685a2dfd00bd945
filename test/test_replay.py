"""Replay = the pipeline called directly, in both storage formats; deterministic tables;
every frame a row (bad ones failed, with reasons); damaged bags; GT errors = metrics."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from hpe3d_ros import metrics
from hpe3d_ros.build import build_pipeline
from hpe3d_ros.camera import CameraModel
from hpe3d_ros.config import ConfigError, load_config
from hpe3d_ros.imaging import decode_compressed, encode_compressed
from hpe3d_ros.lifting import DEFAULT_WEIGHTS
from hpe3d_ros.msg import PoseHypothesesArray
from hpe3d_ros.replay import SHIPPED_PARAMS, discover_streams, main, replay
from hpe3d_ros.replay.bag_messages import camera_info_msg, image_msgs
from hpe3d_ros.replay.bagio import BagReader, BagWriter
from hpe3d_ros.replay.make_bag import (
    mocap_scene,
    read_images,
    write_image_bag,
    write_mocap_bag,
    write_sidecar,
)
from hpe3d_ros.ros.conversions import hypotheses_from_msg
from hpe3d_ros.ros.topics import output_topic
from test.conftest import TEST_DATA

K = 5
CAM = CameraModel(768, 576, np.array([[660.0, 0, 384], [0, 660, 288], [0, 0, 1]]))
IMG, INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"

pytestmark = pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no lifter weights yet")


@pytest.fixture(scope="module")
def cfg():
    return load_config(SHIPPED_PARAMS, **{"lifter.num_hypotheses": K})


@pytest.fixture(scope="module")
def pipeline(cfg):
    return build_pipeline(cfg)


def _replay(bags, out, cfg, pipeline, **kw):
    kw.setdefault("overlays", 0)
    kw.setdefault("video_max_frames", 0)
    return replay(bags, out, cfg, pipeline, **kw)


def _outputs(bag_dir):
    with BagReader(bag_dir) as r:
        got = {}
        for topic, _, t, raw in r.messages(r.topics):
            got.setdefault(topic, []).append((t, raw))
        return r.topics, got


@pytest.mark.parametrize("storage,compressed", [("sqlite3", False), ("mcap", True)])
def test_replay_equals_the_pipeline_called_directly(tmp_path, cfg, pipeline, storage, compressed):
    frames = list(read_images(TEST_DATA))[:3]
    write_image_bag(tmp_path / "seq", frames, CAM, compressed=compressed, storage=storage)
    summary = _replay([tmp_path / "seq"], tmp_path / "out", cfg, pipeline)
    assert summary["complete"] and summary["frames"] == summary["frames_ok"] == 3
    topics, got = _outputs(tmp_path / "out" / "bags" / "seq")
    assert topics == {
        output_topic("front", "hypotheses"): "hpe3d_ros/msg/PoseHypothesesArray",
        output_topic("front", "keypoints"): "hpe3d_ros/msg/Keypoints2DArray",
        output_topic("front", "markers"): "visualization_msgs/msg/MarkerArray",
    }
    pipeline.reset()
    hyps = got[output_topic("front", "hypotheses")]
    assert len(hyps) == 3
    people = 0
    for i, (frame, (log_ns, raw)) in enumerate(zip(frames, hyps, strict=True)):
        image = decode_compressed(encode_compressed(frame)) if compressed else frame
        stamp = 1_700_000_000_000_000_000 + i * 100_000_000
        want = pipeline.process(image, CAM, camera_name="front",
                                frame_id="front_camera_optical_frame", stamp_ns=stamp)  # fmt: skip
        res = hypotheses_from_msg(deserialize_message(raw, PoseHypothesesArray))
        assert log_ns == res.stamp_ns == stamp and res.frame_id == want.frame_id
        assert len(res.people) == len(want.people)
        people += len(res.people)
        for a, b in zip(res.people, want.people, strict=True):
            assert a.track_id == b.track_id
            np.testing.assert_array_equal(a.hypotheses_m, b.hypotheses_m)
            np.testing.assert_allclose(a.root_m, b.root_m, rtol=1e-6)
    assert people >= 10  # vtest frames show 4-8 people each


def _messy_bag(path):
    """8 frames: good, corrupt JPEG, wrong size, before any CameraInfo, 16-bit, NaN K..."""
    rng = np.random.default_rng(0)
    good = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    cam = CameraModel.from_fov(64, 48, 60.0)
    s = [1_000_000_000 * (i + 1) for i in range(8)]
    with BagWriter(path, "mcap") as w:

        def put(topic, mtype, stamp, msg):
            w.write(topic, mtype, stamp, serialize_message(msg))

        put("/cam/image_raw", IMG, s[0], image_msgs(good, s[0], "f", False))  # no CameraInfo yet
        put("/cam/camera_info", INFO, s[1], camera_info_msg(cam, s[1], "f"))
        put("/cam/image_raw", IMG, s[1], image_msgs(good, s[1], "f", False))  # ok
        big = image_msgs(np.zeros((50, 64, 3), np.uint8), s[2], "f", False)
        put("/cam/image_raw", IMG, s[2], big)  # size mismatch
        mono16 = image_msgs(good, s[3], "f", False)
        mono16.encoding = "16UC1"  # depth
        put("/cam/image_raw", IMG, s[3], mono16)  # decode error
        short = image_msgs(good, s[4], "f", False)
        short.data = short.data[:100]
        put("/cam/image_raw", IMG, s[4], short)  # decode error: data too short
        w.write("/cam/image_raw", IMG, s[5], b"\x00\x01garbage")  # cannot deserialize
        bad_k = camera_info_msg(cam, s[6], "f")
        bad_k.k = np.zeros(9)
        put("/cam/camera_info", INFO, s[6], bad_k)
        put("/cam/image_raw", IMG, s[6], image_msgs(good, s[6], "f", False))  # bad CameraInfo
        put("/cam/image_raw", IMG, s[7], image_msgs(good, s[7], "f", False))  # latest = bad K
    return 8


def test_every_frame_gives_one_row_bad_ones_failed_with_reason(tmp_path, cfg, pipeline):
    n = _messy_bag(tmp_path / "messy")
    summary = _replay([tmp_path / "messy"], tmp_path / "out", cfg, pipeline)
    with open(tmp_path / "out" / "frames.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n == summary["frames"]
    status = [r["status"] for r in rows]
    reasons = [r["reason"].split(":")[0] for r in rows]
    assert status == ["failed", "ok"] + ["failed"] * 6
    assert reasons == ["missing CameraInfo", "", "size mismatch", "decode error", "decode error",
                       "decode error", "bad CameraInfo", "bad CameraInfo"]  # fmt: skip
    (cam,) = summary["cameras"]
    assert cam["camera"] == "cam" and cam["failed"] == 7 and cam["failures"]["decode error"] == 3
    _, got = _outputs(tmp_path / "out" / "bags" / "messy")
    assert len(got[output_topic("cam", "hypotheses")]) == 1  # published for processed frames
    diag = [deserialize_message(raw, DiagnosticArray) for _, raw in got["/diagnostics"]]
    assert len(diag) >= 5  # one per diagnostics.period_s (1 s) of bag time
    (status,) = diag[-1].status
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "/hpe3d_pipeline: camera cam" and int(values["failed"]) >= 5


def test_same_bag_and_seed_give_byte_identical_tables(tmp_path, cfg, pipeline):
    frames = list(read_images(TEST_DATA))[:2]
    write_image_bag(tmp_path / "seq", frames, CAM)
    tables = []
    for run, pictures in (("a", 2), ("b", 0)):  # pictures do not change the tables
        _replay([tmp_path / "seq"], tmp_path / run, cfg, pipeline, overlays=pictures,
                video_max_frames=10 * pictures)  # fmt: skip
        tables.append([(tmp_path / run / f).read_bytes() for f in ("frames.csv", "people.csv")])
    assert tables[0] == tables[1]
    assert tables[0][1].count(b"\n") > 5  # people were found
    pics = sorted(p.name for p in (tmp_path / "a" / "pictures" / "seq").iterdir())
    assert pics == ["hypotheses_front_00001.png", "overlay_front.mp4", "overlay_front_00000.png",
                    "overlay_front_00001.png"]  # fmt: skip
    assert all(p.stat().st_size > 10_000 for p in (tmp_path / "a" / "pictures" / "seq").iterdir())


def test_truncated_bag_clear_error_and_results_up_to_the_damage(tmp_path, capsys):
    rng = np.random.default_rng(2)
    imgs = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(20)]
    write_image_bag(tmp_path / "cut", imgs, CameraModel.from_fov(64, 48, 60.0))
    (f,) = (tmp_path / "cut").glob("*.mcap")
    os.truncate(f, int(f.stat().st_size * 0.5))
    out = tmp_path / "out"
    rc = main([str(tmp_path / "cut"), "-o", str(out), "--quiet", "--no-pictures",
               "--set", f"lifter.num_hypotheses={K}"])  # fmt: skip
    assert rc == 1
    err = [e for e in capsys.readouterr().err.splitlines() if e.startswith("hpe3d-replay")]
    assert len(err) == 1 and str(tmp_path / "cut") in err[0] and "damaged" in err[0]
    rows = (out / "frames.csv").read_text().splitlines()[1:]
    assert 3 <= len(rows) < 20 and all(",ok," in r for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["frames"] == len(rows)


def test_gt_bag_mpjpe_equals_metrics_on_the_same_frames(tmp_path, shared_mocap):
    # the expected figures lift every frame on its own: the replay does too (no temporal path)
    cfg = load_config(SHIPPED_PARAMS, **{"lifter.num_hypotheses": K, "lifter.temporal": False})
    pipeline = build_pipeline(cfg)
    cam = CameraModel.from_fov(1280, 720, 90.0)
    scene = mocap_scene(shared_mocap, cam, frames=6, people=3, seed=3, noise_px=1.0)
    write_mocap_bag(tmp_path / "gt", scene, cam)
    summary = _replay([tmp_path / "gt"], tmp_path / "out", cfg, pipeline)
    want = {c: [] for c in ("mpjpe_mm", "p_mpjpe_mm", "best_of_k_mm", "root_err_m")}
    for f, stamp in enumerate(scene.stamps_ns.tolist()):
        seed = pipeline.seed_for("front", stamp)
        lifted = pipeline.lift_keypoints(scene.kp_px[f], scene.conf[f], cam, seed)
        for p in np.flatnonzero(lifted.lifted):
            hyps, gt = lifted.hypotheses_m[p].astype(np.float64), scene.gt_m[f, p]
            rel, gt_rel = hyps - hyps[:, :1], gt - gt[:1]
            want["mpjpe_mm"].append(1e3 * metrics.mpjpe(rel.mean(0), gt_rel))
            want["p_mpjpe_mm"].append(1e3 * metrics.p_mpjpe(rel.mean(0), gt_rel))
            want["best_of_k_mm"].append(1e3 * metrics.best_of_k_mpjpe(rel, gt_rel))
            want["root_err_m"].append(np.linalg.norm(lifted.root_m[p] - gt[0]))
    gt_by_cam = summary["ground_truth"]["camera"]
    for col, values in want.items():
        front, _ = gt_by_cam[col]
        assert front["group"] == "front" and front["count"] == len(values) == 18
        assert front["mean"] == pytest.approx(np.mean(values), rel=1e-6, abs=1e-9), col
    assert summary["ground_truth"]["sequence"]["mpjpe_mm"][0]["group"] == "gt"
    # the same GT from a side-car file gives the same table
    write_sidecar(tmp_path / "gt.npz", scene)
    side = _replay([tmp_path / "gt"], tmp_path / "out2", cfg, pipeline, gt_npz=tmp_path / "gt.npz")
    assert side["ground_truth"] == summary["ground_truth"]


def test_two_cameras_in_one_bag(tmp_path, cfg, pipeline):
    rng = np.random.default_rng(5)
    cams = {
        "front": CameraModel.from_fov(64, 48, 60.0),
        "rear": CameraModel.from_fov(80, 60, 90.0),
    }
    with BagWriter(tmp_path / "two", "sqlite3") as w:
        for i in range(2):
            for name, cam in cams.items():
                stamp = 10**9 * (i + 1) + (name == "rear")
                img = rng.integers(0, 255, (cam.height, cam.width, 3), dtype=np.uint8)
                info = camera_info_msg(cam, stamp, name)
                w.write(f"/{name}/camera/camera_info", INFO, stamp, serialize_message(info))
                msg = image_msgs(img, stamp, name, compressed=True)
                topic = f"/{name}/camera/image_raw/compressed"
                w.write(topic, "sensor_msgs/msg/CompressedImage", stamp, serialize_message(msg))
    debug = load_config(SHIPPED_PARAMS, **{"lifter.num_hypotheses": K, "output.debug_image": True})
    summary = _replay([tmp_path / "two"], tmp_path / "out", debug, pipeline)
    assert [(c["camera"], c["frames"], c["ok"]) for c in summary["cameras"]] == [
        ("front", 2, 2), ("rear", 2, 2)]  # fmt: skip
    _, got = _outputs(tmp_path / "out" / "bags" / "two")
    for name in cams:
        hyps = got[output_topic(name, "hypotheses")]
        assert len(hyps) == 2
        res = hypotheses_from_msg(deserialize_message(hyps[0][1], PoseHypothesesArray))
        assert res.camera_name == name and res.frame_id == name
        (_, raw), _ = got[output_topic(name, "debug_image")]
        img = deserialize_message(raw, Image)
        assert (img.width, img.height, img.encoding) == (
            cams[name].width,
            cams[name].height,
            "rgb8",
        )


def test_cli_help_and_bad_parameter(capsys):
    with pytest.raises(SystemExit) as ok:
        main(["--help"])
    assert ok.value.code == 0 and "--gt-npz" in capsys.readouterr().out
    assert main(["x", "-o", "y", "--set", "lifter.num_hypotheses=0"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("hpe3d-replay: error:") and "lifter.num_hypotheses" in line


def test_camera_discovery(cfg):
    topics = {
        "/front/camera/image_raw": IMG,
        "/front/camera/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
        "/front/camera/camera_info": INFO,
        "/rear/cam/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
        "/rear/cam/camera_info": INFO,
        "/lonely/image_raw": IMG,  # no CameraInfo beside it
        "/hpe3d_pipeline/front/keypoints": "hpe3d_ros/msg/Keypoints2DArray",
    }
    streams = discover_streams(topics, cfg)
    assert [(s.camera, s.topic) for s in streams] == [
        ("front", "/front/camera/image_raw"),
        ("rear", "/rear/cam/image_raw/compressed"),
    ]
    assert discover_streams(topics, cfg, ["front"])[0].info_topic == "/front/camera/camera_info"
    with pytest.raises(ConfigError, match="rear"):
        discover_streams(topics, cfg, ["rear"])
