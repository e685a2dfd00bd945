"""The node's parameter schema: every parameter once, with type, default, range (ROS-free).

:data:`PARAMS` (global) and :func:`camera_params` (per camera ``N``: ``cameras.N.*``, the
usual way to express a list of records as ROS parameters) declare each parameter with its
default, description and what a valid value is (:class:`ParamSpec`); :func:`resolve` fills in
defaults and checks a flat ``name -> value`` map against them, failing with one
:class:`ConfigError` line that names the parameter. The rclpy node declares exactly these
(:mod:`hpe3d_ros.ros.params`), the README's table is made from them
(``tools/params_table.py``), and :mod:`hpe3d_ros.config` builds the typed configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NODE_NAME = "hpe3d_pipeline"


class ConfigError(ValueError):
    """An invalid parameter value; the message names the parameter."""


#: A ROS topic name: absolute, relative or private (~/...), tokens of [A-Za-z0-9_] not starting
#: with a digit (rcl's rules, without substitutions).
TOPIC_NAME = r"(~/|/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*|~"
#: A camera name: it becomes part of parameter and topic names.
CAMERA_NAME = r"[A-Za-z][A-Za-z0-9_]*"
MAX_CAMERAS = 16
#: A TF frame id: printable ASCII without spaces.
FRAME_ID = r"[!-~]*"
#: Detector work per frame is bounded: tiles x (input_size / 512)^2 <= this (about 5 s per
#: frame on 2 CPU cores, 0.2 s on a GPU; more cannot keep up with any camera).
MAX_DETECTOR_TILE_UNITS = 64


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: type (of the default), range, allowed values, shape.

    ``min``/``max`` bound a number, or every item of a list; ``length`` bounds a list's
    length, ``max_chars`` a string's or each string item's; ``pattern`` is a regex a string
    (or each string item) must match in full; ``multiple_of`` applies to integers.
    """

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    length: tuple[int, int] | None = None
    multiple_of: int = 1
    max_chars: int = 4096
    pattern: str = ""
    pattern_text: str = ""  # the pattern in words, for messages and descriptors

    @property
    def kind(self) -> type:
        return type(self.default)

    @property
    def item_kind(self) -> type:
        if self.kind is not list:
            return self.kind
        return type(self.default[0]) if self.default else str

    @property
    def constraints(self) -> str:
        """What a valid value is, in words (the ROS descriptor's additional_constraints)."""
        parts = []
        if self.choices:
            parts.append(f"one of {list(self.choices)}")
        if self.length is not None:
            lo, hi = self.length
            parts.append(f"{lo} items" if lo == hi else f"{lo} to {hi} items")
        if self.min is not None or self.max is not None:
            each = "each item " if self.kind is list else ""
            parts.append(f"{each}in [{self.min}, {self.max}]")
        if self.multiple_of > 1:
            parts.append(f"a multiple of {self.multiple_of}")
        if self.pattern:
            parts.append(self.pattern_text or f"matching {self.pattern}")
        if self.item_kind is str and not self.choices:
            parts.append(f"at most {self.max_chars} characters")
        return "; ".join(parts)


P = ParamSpec
#: Global parameters (per-camera ones are in :func:`camera_params`).
PARAMS: tuple[ParamSpec, ...] = (
    P("camera_names", ["front"], "Cameras to process; each name N has cameras.N.* params",
      length=(1, MAX_CAMERAS), max_chars=64, pattern=CAMERA_NAME,
      pattern_text="names of a letter then letters, digits or _"),
    P("detector.name", "movenet", "2D keypoint detector backend (yolo_pose_onnx: your own file)",
      choices=("movenet", "yolo_pose_onnx")),
    P("detector.model_path", "", "Detector ONNX file; required for yolo_pose_onnx, '' = shipped",
      max_chars=4096),
    P("detector.mode", "bottom_up", "bottom_up: MultiPose on tiles; top_down: + crop refinement",
      choices=("bottom_up", "top_down")),
    P("detector.device", "cpu", "ONNX Runtime device for the detector", choices=("cpu", "cuda")),
    P("detector.backend", "onnxruntime-cpu", "Runtime of the detector's ONNX models",
      choices=("onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt")),
    P("detector.input_size", 512, "Long side of each fine detector input (pixels, x32)",
      128, 2048, multiple_of=32),
    P("detector.tiles", [0, 0], "Fine tile grid [columns, rows]; [0, 0] = from min_person_px",
      0, 8, length=(2, 2)),
    P("detector.coarse_size", 192, "Long side of the whole-image pass for near people; 0 = off",
      0, 1024, multiple_of=32),
    P("detector.min_person_px", 64, "Height of the smallest person to find (pixels)", 24, 2000),
    P("detector.budget", 8.0, "Most detector work per frame, in runs of 512x512 px; larger "
      "images give up their smallest people", 0.5, float(MAX_DETECTOR_TILE_UNITS)),
    P("detector.person_threshold", 0.2, "Minimum person score", 0.0, 1.0),
    P("detector.threads", 2, "ONNX Runtime intra-op threads of the detector", 1, 64),
    P("tracking.enabled", True, "Give people ids that persist across frames (per camera)"),
    P("tracking.max_missed", 10, "Frames a track survives without a detection", 0, 1000),
    P("tracking.min_iou", 0.1, "Minimum box IoU to continue a track", 0.0, 1.0),
    P("smoothing.enabled", False, "One-Euro filter on each track's 2D keypoints (needs tracking)"),
    P("smoothing.min_cutoff_hz", 1.0, "One-Euro minimum cut-off frequency", 0.01, 100.0),
    P("smoothing.beta", 0.05, "One-Euro speed coefficient (higher: less lag when moving)",
      0.0, 10.0),
    P("lifter.weights", "", "Lifter checkpoint (.pt); empty = the shipped default weights",
      max_chars=4096),
    P("lifter.device", "cpu", "Device of the lifter", choices=("cpu", "cuda")),
    P("lifter.backend", "auto", "auto: TensorRT > ONNX Runtime CUDA > torch CUDA > CPU",
      choices=("auto", "torch", "onnxruntime", "tensorrt")),
    P("lifter.threads", 1, "CPU threads of the lifter (1 avoids spinning on shared cores)",
      1, 64),
    P("lifter.num_hypotheses", 50, "K: 3D hypotheses sampled per person", 1, 1000),
    P("lifter.min_keypoint_confidence", 0.2, "Joints below this are treated as missing", 0.0, 1.0),
    P("lifter.min_visible_joints", 6, "People with fewer visible joints are not lifted", 2, 17),
    P("lifter.seed", 0, "Seed of the hypothesis sampler (results are reproducible)", 0, 2**31 - 1),
    P("lifter.temporal", True,
      "Tracked people through the weights' temporal model, if they have one (issue 17)"),
    P("lifter.temporal_window", 0,
      "Frames of a track's history the temporal model sees; 0 = the model's own window",
      0, 1000),
    P("lifter.temporal_min_frames", 3,
      "Frames a track needs before the temporal model lifts it (single-frame before)", 1, 1000),
    P("placement.camera_height_m", 0.0, "Camera height above flat ground; 0 = no ground prior",
      0.0, 10.0),
    P("placement.camera_pitch_deg", 0.0, "Downward pitch of the optical axis (degrees)",
      -45.0, 45.0),
    P("placement.ground_weight", 10.0, "Strength of the ground prior vs one joint", 0.0, 1e4),
    P("placement.ankle_height_m", 0.10,
      "Height of a standing foot's ankle joint above the ground (the prior pins it)", 0.0, 0.3),
    P("placement.size_log_std", 0.05,
      "With a ground: people's size from where their feet stand (over their track), adults "
      "within this log-std of the lifter's size, children a second mode; 0 = the lifter's "
      "size", 0.0, 1.0),
    P("placement.ground_z_m", 0.0,
      "Ground height in target_frame (z up) for cameras whose pose is known", -10.0, 10.0),
    P("qos.image_reliability", "best_effort", "QoS reliability of image subscriptions",
      choices=("best_effort", "reliable")),
    P("qos.image_depth", 1, "QoS history depth of image subscriptions", 1, 100),
    P("qos.camera_info_reliability", "reliable", "QoS reliability of CameraInfo subscriptions",
      choices=("best_effort", "reliable")),
    P("camera_info_tolerance_s", 0.0,
      "Max |image stamp - CameraInfo stamp|; 0 = use the latest CameraInfo", 0.0, 3600.0),
    P("output.markers", True, "Publish visualization_msgs/MarkerArray skeletons"),
    P("output.keypoints", True, "Publish the detector's 2D keypoints"),
    P("output.debug_image", False, "Publish an image with the 2D overlay (costs CPU)"),
    P("output.marker_lifetime_s", 0.5, "Lifetime of RViz markers", 0.0, 60.0),
    P("diagnostics.period_s", 1.0, "Period of /diagnostics updates", 0.05, 60.0),
    P("diagnostics.stale_timeout_s", 2.0, "Camera silent this long -> WARN (x3 -> ERROR)",
      0.1, 3600.0),
    P("diagnostics.stall_warn_s", 5.0,
      "A frame waiting this long for the worker (nothing finishes) -> WARN", 0.5, 3600.0),
    P("diagnostics.stall_error_s", 15.0,
      "A frame waiting this long for the worker -> ERROR (more than stall_warn_s)", 1.0, 3600.0),
    P("target_frame", "base_link", "Frame of ~/people (REP-105: base_link, odom, map)",
      max_chars=256, pattern=r"[!-~]+", pattern_text="a frame id, printable ASCII, no spaces"),
    P("output.people", False,
      "Publish ~/people + ~/people_markers: every camera fused in target_frame (needs poses)"),
    P("fusion.max_stamp_skew_s", 0.05,
      "Frames of different cameras this far apart are one moment (motion-compensated)", 0.0, 1.0),
    P("fusion.gate_probability", 0.999,
      "Association gate, chi-square 3 dof: 0.9, 0.95, 0.99 or 0.999", 0.9, 0.999),
    P("fusion.confirm_hits", 3, "Sightings that confirm a new person", 1, 100),
    P("fusion.tentative_timeout_s", 0.3, "An unconfirmed person unseen this long is dropped",
      0.01, 60.0),
    P("fusion.lost_after_s", 0.3, "A person no camera saw this long is lost", 0.01, 60.0),
    P("fusion.delete_after_s", 2.0, "A lost person unseen this long is dropped", 0.01, 600.0),
    P("fusion.merge_max_distance_m", 1.0, "Two tracks closer than this (and gated) merge",
      0.0, 10.0),
    P("fusion.output_tentative", False, "List unconfirmed people on ~/people too"),
    P("fusion.num_hypotheses", 0, "K of each fused pose; 0 = as many as one view had", 0, 1000),
    P("fusion.tf_timeout_s", 0.05, "How long a TF lookup at the image stamp may wait", 0.0, 1.0),
)  # fmt: skip


def camera_params(name: str) -> tuple[ParamSpec, ...]:
    """Parameters of camera ``name`` (defaults follow the usual driver topic layout)."""
    pre = f"cameras.{name}."
    return (
        P(pre + "image_topic", f"/{name}/camera/image_raw", "sensor_msgs/Image topic",
          max_chars=200, pattern=TOPIC_NAME, pattern_text="a ROS topic name"),
        P(pre + "camera_info_topic", f"/{name}/camera/camera_info", "CameraInfo topic",
          max_chars=200, pattern=TOPIC_NAME, pattern_text="a ROS topic name"),
        P(pre + "compressed", False, "Subscribe sensor_msgs/CompressedImage on image_topic"),
        P(pre + "frame_id", "", "Override the optical frame id of this camera's outputs",
          max_chars=256, pattern=r"[!-~]*", pattern_text="printable ASCII, no spaces"),
        P(pre + "rectified", False,
          "Images are rectified (e.g. image_rect): use CameraInfo P, not K and D"),
        P(pre + "extrinsics.parent_frame", "",
          "Frame of the camera pose below; '' = the pose comes from TF", max_chars=256,
          pattern=FRAME_ID, pattern_text="printable ASCII, no spaces"),
        P(pre + "extrinsics.translation", [0.0, 0.0, 0.0],
          "Camera position [x, y, z] in parent_frame (m)", -1000.0, 1000.0, length=(3, 3)),
        P(pre + "extrinsics.rpy_deg", [0.0, 0.0, 0.0],
          "Roll, pitch (+ looks down), yaw (+ turns left), degrees, fixed axes", -360.0, 360.0,
          length=(3, 3)),
        P(pre + "extrinsics.quaternion_xyzw", [0.0, 0.0, 0.0, 0.0],
          "Rotation as a quaternion instead of rpy_deg; all 0 = use rpy_deg", -1.0, 1.0,
          length=(4, 4)),
        P(pre + "extrinsics.optical", False,
          "The rotation is the optical frame's (z forward), not the camera body's (x forward)"),
    )  # fmt: skip


def all_specs(values: dict[str, Any]) -> tuple[ParamSpec, ...]:
    cams = values.get("camera_names", PARAMS[0].default)
    per_cam = tuple(s for c in (cams if isinstance(cams, list) else []) for s in camera_params(c))
    return PARAMS + per_cam


def resolve(values: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value checked against its spec (type, range, choices)."""
    if "camera_names" in values:  # checked first: it decides which other names exist
        _check(PARAMS[0], values["camera_names"])
    specs = all_specs(values)
    known = {s.name for s in specs}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown parameter {unknown[0]!r} (camera_names: {values.get('camera_names')})"
        )
    out = {}
    for spec in specs:
        out[spec.name] = _check(spec, values.get(spec.name, spec.default))
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _check(spec: ParamSpec, value: Any) -> Any:
    kind = spec.kind

    def bad(why: str) -> ConfigError:
        return ConfigError(f"parameter {spec.name!r} must be {why}, got {_shown(value)}")

    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is list:
        item = spec.item_kind
        if item is float and isinstance(value, list):
            value = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                     for v in value]  # fmt: skip
        if not isinstance(value, list) or not all(
            isinstance(v, item) and not isinstance(v, bool) for v in value
        ):
            raise bad(f"a list of {item.__name__}")
        lo, hi = spec.length or (0, 10**6)
        if not lo <= len(value) <= hi:
            raise bad(spec.constraints)
        items = value
    elif not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise bad(f"{kind.__name__} ({type(value).__name__} given)")
    else:
        items = [value]
    if spec.choices and value not in spec.choices:
        raise bad(f"one of {spec.choices}")
    for v in items:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            low = -float("inf") if spec.min is None else spec.min
            high = float("inf") if spec.max is None else spec.max
            if not low <= v <= high or (isinstance(v, int) and v % spec.multiple_of):
                raise bad(spec.constraints)
        if isinstance(v, str) and (
            len(v) > spec.max_chars or (spec.pattern and not re.fullmatch(spec.pattern, v))
        ):
            raise bad(spec.constraints)
    return value
