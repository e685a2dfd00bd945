"""Replay inputs: which topics of a bag are cameras, and their messages as runner frames.

Cameras: with a camera list, those cameras of the parameters file; without one, every
``Image``/``CompressedImage`` (or keypoint-level ``Keypoints2DArray``) topic with a
``camera_info`` topic in the same namespace, named after the configured camera with that
CameraInfo topic, else after its namespace. How a frame meets its CameraInfo is the runner's
rule (:mod:`hpe3d_ros.runner`), the same as the live node's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpe3d_ros.config import ConfigError, NodeConfig
from hpe3d_ros.replay.bagio import deserialize
from hpe3d_ros.replay.ground_truth import GT_TOPIC_NAME, GT_TYPE
from hpe3d_ros.runner import COMPRESSED as COMPRESSED_KIND
from hpe3d_ros.runner import KEYPOINTS as KEYPOINTS_KIND
from hpe3d_ros.runner import RAW, Frame, frame_from_msg

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
KEYPOINTS = "hpe3d_ros/msg/Keypoints2DArray"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
_GENERIC = {"camera", "cam", "image", "image_raw", "image_rect", "image_color", "color", "rgb"}


@dataclass(frozen=True)
class Stream:
    """One camera's input in a bag: frames on ``topic``, calibration on ``info_topic``."""

    camera: str
    topic: str
    msgtype: str  # IMAGE, COMPRESSED or KEYPOINTS (keypoint-level, H36M-17 pixels)
    info_topic: str
    gt_topic: str | None = None
    frame_id: str = ""  # override of the image header's frame id


def _namespace(topic: str) -> str:
    base = topic[: -len("/compressed")] if topic.endswith("/compressed") else topic
    return base.rsplit("/", 1)[0]


def _derived_name(ns: str) -> str:
    parts = [p for p in ns.split("/") if p]
    keep = [p for p in parts if p not in _GENERIC] or parts[:1] or ["camera"]
    name = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(keep))
    return name if name[:1].isalpha() else f"cam_{name}"


def discover_streams(
    topics: dict[str, str], cfg: NodeConfig, cameras: Sequence[str] | None = None
) -> list[Stream]:
    """The camera streams of a bag (see module docstring); ``topics``: topic -> type."""

    def gt(ns: str) -> str | None:
        t = f"{ns}/{GT_TOPIC_NAME}"
        return t if topics.get(t) == GT_TYPE else None

    by_name = {c.name: c for c in cfg.cameras}
    if cameras:
        out = []
        for name in cameras:
            if name not in by_name:
                raise ConfigError(f"camera {name!r} is not in camera_names {list(by_name)}")
            c = by_name[name]
            topic = next((t for t in (c.image_topic, c.image_topic + "/compressed")
                          if topics.get(t) in (IMAGE, COMPRESSED, KEYPOINTS)), None)  # fmt: skip
            if topic is None:
                raise ConfigError(f"camera {name!r}: topic {c.image_topic} is not in the bag")
            out.append(Stream(name, topic, topics[topic], c.camera_info_topic,
                              gt(_namespace(topic)), c.frame_id))  # fmt: skip
        return out
    out, used_ns, used_names = [], set(), set()
    for topic, msgtype in sorted(topics.items()):
        ns = _namespace(topic)
        info = f"{ns}/camera_info"
        if msgtype not in (IMAGE, COMPRESSED, KEYPOINTS) or topics.get(info) != CAMERA_INFO:
            continue
        if ns in used_ns:  # raw and compressed copies of one camera: the raw one is enough
            continue
        conf = next((c for c in cfg.cameras if _same_camera(c, topic, info)), None)
        name = conf.name if conf else _derived_name(ns)
        while name in used_names:
            name += "_2"
        used_ns.add(ns)
        used_names.add(name)
        out.append(Stream(name, topic, msgtype, info, gt(ns), conf.frame_id if conf else ""))
    return sorted(out, key=lambda s: (KEYPOINTS == s.msgtype, s.topic))


def _same_camera(c: Any, topic: str, info: str) -> bool:
    return info == c.camera_info_topic or topic in (c.image_topic, c.image_topic + "/compressed")


_KIND = {IMAGE: RAW, COMPRESSED: COMPRESSED_KIND, KEYPOINTS: KEYPOINTS_KIND}


def read_frame(raw: bytes, msgtype: str) -> Frame:
    """A frame message of a bag (CDR bytes) as the runner's :class:`~hpe3d_ros.runner.Frame`.

    Raises:
        ValueError: the bytes are not a ``msgtype`` message (the frame fails as a decode error).
    """
    try:
        msg = deserialize(raw, msgtype)
    except Exception as exc:  # garbage bytes raise many types
        raise ValueError(f"cannot deserialize {msgtype}: {type(exc).__name__}: {exc}") from exc
    return frame_from_msg(msg, _KIND[msgtype])
