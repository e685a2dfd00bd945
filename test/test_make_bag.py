"""hpe3d-make-bag: camera-driver-like bags from real frames, mocap GT bags, CLI errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.imaging import decode_compressed, decode_raw
from hpe3d_ros.replay.bagio import BagReader, deserialize
from hpe3d_ros.replay.make_bag import main, mocap_scene, read_images, write_image_bag
from test.conftest import TEST_DATA

FRAMES = ["vtest_0040.jpg", "vtest_0260.jpg", "vtest_0480.jpg"]


def _frames() -> list[np.ndarray]:
    return list(read_images(TEST_DATA))[:3]


@pytest.mark.parametrize("compressed", [False, True])
def test_image_bag_holds_frames_and_camera_info(tmp_path, compressed):
    frames = _frames()
    cam = CameraModel(768, 576, np.array([[600.0, 0, 380], [0, 610, 290], [0, 0, 1]]),
                      [-0.1, 0.02, 0, 0, 0])  # fmt: skip
    n = write_image_bag(tmp_path / "b", frames, cam, fps=5.0, compressed=compressed)
    assert n == 3
    with BagReader(tmp_path / "b") as r:
        img_topic = "/front/camera/image_raw" + ("/compressed" if compressed else "")
        assert r.counts == {img_topic: 3, "/front/camera/camera_info": 3}
        stamps = {"img": [], "info": []}
        for topic, msgtype, log_ns, raw in r.messages(r.topics):
            msg = deserialize(raw, msgtype)
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            assert stamp == log_ns and msg.header.frame_id == "front_camera_optical_frame"
            if topic.endswith("camera_info"):
                stamps["info"].append(stamp)
                np.testing.assert_array_equal(msg.k.reshape(3, 3), cam.K)
                np.testing.assert_array_equal(msg.d, cam.D)
                assert (msg.width, msg.height, msg.distortion_model) == (768, 576, "plumb_bob")
                continue
            i = len(stamps["img"])
            stamps["img"].append(stamp)
            if compressed:
                img = decode_compressed(msg.data, msg.format)
                assert np.abs(img.astype(int) - frames[i]).mean() < 3.0  # JPEG q90
            else:
                img = decode_raw(msg.data, msg.width, msg.height, msg.encoding, msg.step)
                np.testing.assert_array_equal(img, frames[i])
    assert stamps["img"] == stamps["info"]
    assert np.diff(stamps["img"]).tolist() == [200_000_000, 200_000_000]


def test_mocap_scene_projects_the_ground_truth(shared_mocap):
    cam = CameraModel.from_fov(1280, 720, 90.0)
    scene = mocap_scene(shared_mocap, cam, frames=8, people=3, seed=1)
    assert scene.kp_px.shape == (8, 3, 17, 2) and scene.gt_m.shape == (8, 3, 17, 3)
    seen = scene.conf > 0
    assert seen.mean() > 0.8 and len(set(scene.sequences)) == 3
    px = cam.project(scene.gt_m.astype(np.float64))
    np.testing.assert_allclose(scene.kp_px[seen], px[seen], atol=1e-3)
    assert np.isnan(scene.kp_px[~seen]).all()
    assert (scene.gt_m[..., 2] > 2.0).all()  # in front of the camera
    np.testing.assert_allclose(np.diff(scene.stamps_ns), 1e9 / 30, atol=1)


def test_cli_writes_a_bag_and_fails_with_one_line(tmp_path, capsys):
    out = tmp_path / "bag"
    assert main([str(out), "--images", str(TEST_DATA), "--max-frames", "2", "--fx", "700"]) == 0
    assert "wrote 2 frames" in capsys.readouterr().out
    assert main([str(out), "--images", str(TEST_DATA)]) == 1  # exists already
    assert main([str(tmp_path / "v"), "--video", str(tmp_path / "missing.mp4")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("hpe3d-make-bag: error:") for e in err)
    assert "missing.mp4" in err[1]


def test_a_failed_run_leaves_nothing_that_blocks_the_corrected_one(tmp_path, capsys):
    import cv2

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i, size in enumerate([(48, 64), (48, 64), (30, 40)]):  # the third has another size
        cv2.imwrite(str(imgs / f"{i}.png"), np.zeros((*size, 3), np.uint8))
    out = tmp_path / "bag"
    assert main([str(out), "--images", str(imgs)]) == 1
    assert "frame 2 is 40x30" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]  # nothing half-written
    (imgs / "2.png").unlink()
    assert main([str(out), "--images", str(imgs)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bag.mcap", "metadata.yaml"]
    assert main([str(out), "--images", str(imgs)]) == 1  # exists: refused, kept
    assert "exists" in capsys.readouterr().err and (out / "bag.mcap").is_file()
