"""Replay inputs: which topics of a bag are cameras, their calibration, decoding frames and
serialising the node's outputs for one processed frame.

Cameras: with a camera list, those cameras of the parameters file; without one, every
``Image``/``CompressedImage`` (or keypoint-level ``Keypoints2DArray``) topic with a
``camera_info`` topic in the same namespace, named after the configured camera with that
CameraInfo topic, else after its namespace. Each frame is paired with the CameraInfo of the
same stamp, else the latest earlier one (within ``camera_info_tolerance_s`` when that is > 0).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpe3d_ros.bagio import serialize_ros
from hpe3d_ros.camera import CameraModel
from hpe3d_ros.config import ConfigError, NodeConfig
from hpe3d_ros.imaging import decode_compressed, decode_raw
from hpe3d_ros.pipeline import Pipeline
from hpe3d_ros.replay_gt import GT_TOPIC_NAME, GT_TYPE
from hpe3d_ros.results import FrameResult
from hpe3d_ros.ros.conversions import stamp_to_ns
from hpe3d_ros.skeleton import H36M_JOINT_NAMES
from hpe3d_ros.topics import DIAGNOSTICS, OUTPUTS, output_topic

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


class CameraInfoIndex:
    """CameraInfo messages of one bag by topic and stamp, decoded into camera models once."""

    def __init__(self, tolerance_s: float) -> None:
        self.tol_ns = int(tolerance_s * 1e9)
        self._stamps: dict[str, list[int]] = {}
        self._msgs: dict[str, list[Any]] = {}
        self._models: dict[tuple, CameraModel | str] = {}

    def add(self, topic: str, msg: Any) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        i = bisect.bisect_right(self._stamps.setdefault(topic, []), stamp)
        self._stamps[topic].insert(i, stamp)
        self._msgs.setdefault(topic, []).insert(i, msg)

    def stamps(self, topic: str) -> list[int]:
        return self._stamps.get(topic, [])

    def lookup(self, topic: str, stamp_ns: int) -> CameraModel:
        """The camera model for an image stamp; ``ValueError`` says why there is none."""
        stamps = self._stamps.get(topic, [])
        i = bisect.bisect_right(stamps, stamp_ns) - 1
        if i < 0 or (self.tol_ns and stamp_ns - stamps[i] > self.tol_ns):
            raise ValueError(f"missing CameraInfo: none on {topic} at or before {stamp_ns} ns")
        m = self._msgs[topic][i]
        key = (m.width, m.height, tuple(m.k), tuple(m.d), m.distortion_model)
        if key not in self._models:
            try:
                self._models[key] = CameraModel.from_camera_info_fields(*key)
            except ValueError as exc:
                self._models[key] = f"bad CameraInfo: {exc}"
        model = self._models[key]
        if isinstance(model, str):
            raise ValueError(model)
        return model


def frame_seed(pipeline: Pipeline, camera: str, stamp_ns: int) -> int:
    """The lifter seed the pipeline uses for this camera and stamp (keypoint-level frames)."""
    return pipeline.seed_for(camera, stamp_ns)


def lift_keypoint_msg(
    pipeline: Pipeline, msg: Any, camera: CameraModel, name: str, frame_id: str, stamp_ns: int
) -> FrameResult:
    """A keypoint-level frame (``Keypoints2DArray``, H36M-17 pixels) through the 2D->3D half."""
    if msg.joint_layout != "h36m17":
        raise ValueError(f"keypoint-level input must be h36m17, got {msg.joint_layout!r}")
    n = len(msg.people)
    kp = np.array([np.asarray(p.keypoints, np.float64).reshape(17, 2) for p in msg.people])
    conf = np.array([np.asarray(p.confidence, np.float64) for p in msg.people])
    res = FrameResult(name, frame_id, stamp_ns, joint_names=tuple(H36M_JOINT_NAMES),
                      model_id=pipeline.model_id)  # fmt: skip
    if n == 0:
        return res
    who = [(p.track_id, p.score, p.bbox) for p in msg.people]
    res.people = pipeline.lift_people(kp, conf, camera, name, stamp_ns, who)
    return res


def decode_image(msg: Any, msgtype: str) -> np.ndarray:
    if msgtype == COMPRESSED:
        return decode_compressed(msg.data, msg.format)
    return decode_raw(msg.data, msg.width, msg.height, msg.encoding, msg.step)


def output_messages(result: FrameResult, cfg: NodeConfig, image: np.ndarray | None) -> list:
    """(topic, type, cdr bytes) of everything the live node publishes for this frame."""
    from hpe3d_ros.ros.conversions import hypotheses_to_msg, keypoints_to_msg
    from hpe3d_ros.ros.markers import markers_from_result

    cam = result.camera_name
    out = [(output_topic(cam, "hypotheses"), hypotheses_to_msg(result))]
    if cfg["output.keypoints"] and image is not None:
        out.append((output_topic(cam, "keypoints"), keypoints_to_msg(result)))
    if cfg["output.markers"]:
        msg = markers_from_result(result, cfg["output.marker_lifetime_s"])
        out.append((output_topic(cam, "markers"), msg))
    if cfg["output.debug_image"] and image is not None:
        out.append((output_topic(cam, "debug_image"), _debug_image(result, image)))
    return [(t, OUTPUTS[t.rsplit("/", 1)[1]], serialize_ros(m)) for t, m in out]


def _debug_image(result: FrameResult, image: np.ndarray) -> Any:
    from sensor_msgs.msg import Image

    from hpe3d_ros.imaging import encode_raw
    from hpe3d_ros.replay_pictures import draw_overlay
    from hpe3d_ros.ros.conversions import ns_to_stamp

    data, step = encode_raw(draw_overlay(image, result))
    msg = Image(height=image.shape[0], width=image.shape[1], encoding="rgb8", step=step)
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(result.stamp_ns), result.frame_id
    msg.data = data
    return msg


class BagDiagnostics:
    """``/diagnostics`` as the live node would publish them, on the bag's clock.

    Every ``period_s`` of log time, one ``DiagnosticArray`` with a status per camera
    (:mod:`hpe3d_ros.ros.diagnostics`): counts so far, rates over the last 5 s of bag time,
    processing latency (wall time of this replay) and the last failure.
    """

    WINDOW_S = 5.0

    def __init__(self, cameras: Sequence[str], cfg: NodeConfig, model_id: str) -> None:
        self.period_ns = int(cfg["diagnostics.period_s"] * 1e9)
        self.stale_s = cfg["diagnostics.stale_timeout_s"]
        self.extra = {"lifter": model_id, "detector": str(cfg.detector.get("mode", ""))}
        self.cams = {c: {"received": 0, "processed": 0, "failed": 0, "rx": [], "done": [],
                         "ms": [], "last": None, "error": ""} for c in cameras}  # fmt: skip
        self._next: int | None = None

    def on_frame(self, camera: str, log_ns: int, ok: bool, reason: str, ms: float) -> None:
        c = self.cams[camera]
        c["received"] += 1
        c["rx"].append(log_ns)
        c["last"] = log_ns
        if ok:
            c["processed"] += 1
            c["done"].append(log_ns)
            c["ms"] = (c["ms"] + [ms])[-100:]
        else:
            c["failed"] += 1
            c["error"] = reason

    def due(self, log_ns: int) -> list[tuple[str, str, bytes]]:
        """The array to write at ``log_ns`` when a period has passed, else nothing."""
        if self._next is None:
            self._next = log_ns + self.period_ns
        if log_ns < self._next:
            return []
        self._next = log_ns + self.period_ns
        from hpe3d_ros.ros import diagnostics
        from hpe3d_ros.ros.conversions import ns_to_stamp

        window = int(self.WINDOW_S * 1e9)
        statuses = []
        for name, c in self.cams.items():
            c["rx"] = [t for t in c["rx"] if log_ns - t <= window]
            c["done"] = [t for t in c["done"] if log_ns - t <= window]
            lat = np.asarray(c["ms"], dtype=np.float64)
            snap = {
                "received": c["received"], "processed": c["processed"], "dropped": 0,
                "failed": c["failed"],
                "input_rate_hz": len(c["rx"]) / self.WINDOW_S,
                "processed_rate_hz": len(c["done"]) / self.WINDOW_S,
                "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "silent_s": float("inf") if c["last"] is None else (log_ns - c["last"]) / 1e9,
                "last_error": c["error"],
            }  # fmt: skip
            has_info = c["processed"] > 0
            status = diagnostics.camera_status(
                "/hpe3d_pipeline", name, snap, self.stale_s, has_info, self.extra
            )
            statuses.append(status)
        msg = diagnostics.diagnostic_array(ns_to_stamp(log_ns), statuses)
        return [(DIAGNOSTICS, DIAGNOSTICS_TYPE, serialize_ros(msg))]
