"""Build real sensor messages from images for node tests (test-side, uses rclpy classes)."""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.imaging import encode_compressed, encode_raw
from hpe3d_ros.ros.conversions import ns_to_stamp
from test.conftest import TEST_DATA


def load_rgb(name: str) -> np.ndarray:
    bgr = cv2.imread(str(TEST_DATA / name), cv2.IMREAD_COLOR)
    assert bgr is not None, name
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def camera_for(image: np.ndarray, hfov_deg: float = 60.0) -> CameraModel:
    h, w = image.shape[:2]
    return CameraModel.from_fov(w, h, hfov_deg)


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "bgr8") -> Image:
    data, step = encode_raw(rgb, encoding)
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=step, data=data)
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp_ns), frame_id
    return msg


def compressed_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str) -> CompressedImage:
    msg = CompressedImage(format="jpeg", data=encode_compressed(rgb, "jpeg", 90))
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp_ns), frame_id
    return msg


def info_msg(cam: CameraModel, stamp_ns: int, frame_id: str) -> CameraInfo:
    msg = CameraInfo(width=cam.width, height=cam.height, distortion_model="plumb_bob")
    msg.k = cam.K.ravel().tolist()
    msg.d = [0.0] * 5
    msg.p = np.hstack([cam.K, np.zeros((3, 1))]).ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp_ns), frame_id
    return msg
