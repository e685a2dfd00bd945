"""The messages a test bag is made of, shared by the single-camera bags
(:mod:`hpe3d_ros.replay.make_bag`) and the vehicle-rig bags (:mod:`hpe3d_ros.replay.rig_bag`):
per-camera topic names, ``CameraInfo`` and image messages, the stamps' clock."""

from __future__ import annotations

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.imaging import encode_compressed, encode_raw

MOCAP_FPS = 30.0
START_NS = 1_700_000_000_000_000_000


def topics(camera: str) -> dict[str, str]:
    """The topics of camera ``camera`` in a test bag, by role."""
    ns = f"/{camera}/camera"
    return {
        "image": f"{ns}/image_raw",
        "compressed": f"{ns}/image_raw/compressed",
        "camera_info": f"{ns}/camera_info",
        "keypoints": f"{ns}/keypoints",
        "gt": f"{ns}/gt_poses",
    }


def camera_info_msg(camera: CameraModel, stamp_ns: int, frame_id: str):
    """A ``sensor_msgs/CameraInfo`` (rclpy) describing ``camera``."""
    from sensor_msgs.msg import CameraInfo

    from hpe3d_ros.ros.conversions import ns_to_stamp

    K = camera.K.astype(np.float64)
    P = np.hstack([K, np.zeros((3, 1))])
    msg = CameraInfo(width=camera.width, height=camera.height)
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp_ns), frame_id
    msg.distortion_model = (
        "plumb_bob" if camera.distortion_model == "none" else camera.distortion_model
    )
    msg.d = [float(v) for v in camera.D] or [0.0] * 5
    msg.k, msg.r, msg.p = K.ravel(), np.eye(3).ravel(), P.ravel()
    return msg


def image_msgs(image_rgb: np.ndarray, stamp_ns: int, frame_id: str, compressed: bool,
               quality: int = 90):  # fmt: skip
    """A ``sensor_msgs/Image`` (rgb8) or ``CompressedImage`` (JPEG) of one frame."""
    from sensor_msgs.msg import CompressedImage, Image

    from hpe3d_ros.ros.conversions import ns_to_stamp

    if compressed:
        msg = CompressedImage(format="rgb8; jpeg compressed bgr8")
        msg.data = encode_compressed(image_rgb, "jpeg", quality)
    else:
        data, step = encode_raw(image_rgb)
        h, w = image_rgb.shape[:2]
        msg = Image(height=h, width=w, encoding="rgb8", step=step)
        msg.data = data
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp_ns), frame_id
    return msg


def box_of(kp: np.ndarray) -> np.ndarray:
    """The pixel box (x0, y0, x1, y1) of a person's finite keypoints (zeros: none)."""
    pts = kp[np.isfinite(kp).all(-1)]
    if not len(pts):
        return np.zeros(4, np.float32)
    return np.r_[pts.min(0), pts.max(0)].astype(np.float32)
