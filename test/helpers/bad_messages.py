"""Generators of malformed camera messages for the fuzz test (deterministic, seeded)."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from hpe3d_ros.ros.conversions import ns_to_stamp

KINDS_IMAGE = (
    "unknown_encoding", "sixteen_bit", "short_step", "short_data", "zero_size", "huge_header",
    "frame_mismatch", "zero_stamp", "backwards_stamp",
)  # fmt: skip
KINDS_INFO = ("zero_k", "nan_k", "nan_d", "unknown_model", "wrong_k_length")
KINDS_JPEG = ("corrupt_jpeg", "empty_jpeg", "depth_format")


def bad_image(kind: str, rng: np.random.Generator, stamp_ns: int, frame: str) -> Image:
    w, h = 64, 48
    data = rng.integers(0, 256, w * h * 3, dtype=np.uint8).tobytes()
    msg = Image(width=w, height=h, encoding="rgb8", step=w * 3, data=data)
    msg.header.frame_id = frame
    msg.header.stamp = ns_to_stamp(stamp_ns)
    if kind == "unknown_encoding":
        msg.encoding = str(rng.choice(["bayer_rggb8", "weird", "", "RGB8x", "nv12"]))
    elif kind == "sixteen_bit":
        msg.encoding = str(rng.choice(["mono16", "16UC1", "32FC1"]))
    elif kind == "short_step":
        msg.step = int(rng.integers(0, w * 3))
    elif kind == "short_data":
        msg.data = data[: int(rng.integers(0, len(data) - 1))]
    elif kind == "zero_size":
        msg.width, msg.height, msg.step, msg.data = 0, 0, 0, b""
    elif kind == "huge_header":
        msg.width, msg.height, msg.step = 10000, 10000, 30000
    elif kind == "frame_mismatch":
        msg.header.frame_id = "some_other_frame"
    elif kind == "zero_stamp":
        msg.header.stamp = ns_to_stamp(0)
    elif kind == "backwards_stamp":
        msg.header.stamp = ns_to_stamp(max(0, stamp_ns - 10**12))
    return msg


def bad_info(kind: str, rng: np.random.Generator, stamp_ns: int, frame: str) -> CameraInfo:
    msg = CameraInfo(width=64, height=48, distortion_model="plumb_bob", d=[0.0] * 5)
    msg.k = [60.0, 0.0, 32.0, 0.0, 60.0, 24.0, 0.0, 0.0, 1.0]
    msg.header.frame_id, msg.header.stamp = frame, ns_to_stamp(stamp_ns)
    if kind == "zero_k":
        msg.k = [0.0] * 9
    elif kind == "nan_k":
        msg.k = [float("nan")] * 9
    elif kind == "nan_d":
        msg.d = [float("nan"), 0.0, 0.0, 0.0, 0.0]
    elif kind == "unknown_model":
        msg.distortion_model = str(rng.choice(["kannala_brandt", "fov", "xyz"]))
    return msg


def bad_jpeg(kind: str, rng: np.random.Generator, stamp_ns: int, frame: str) -> CompressedImage:
    msg = CompressedImage(format="jpeg")
    msg.header.frame_id, msg.header.stamp = frame, ns_to_stamp(stamp_ns)
    if kind == "corrupt_jpeg":
        msg.data = b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
    elif kind == "depth_format":
        msg.format = "16UC1; compressedDepth png"
        msg.data = b"\x89PNG" + bytes(100)
    return msg
