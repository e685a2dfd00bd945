"""The node's parameters: one schema, read from ``config/pipeline.yaml`` (ROS-free).

Every parameter is declared once here, with its type, default, description and range. The
rclpy node declares exactly these (with ``ParameterDescriptor``s), replay and benchmarks read
the same YAML through :func:`load_params_file`, and :func:`build_config` turns the flat
``name -> value`` map into frozen dataclasses, failing with one :class:`ConfigError` line that
names the offending parameter.

Cameras come from a list of names (``camera_names``); each name ``N`` has its own parameters
``cameras.N.image_topic`` etc., the usual way to express a list of records as ROS parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpe3d_ros.pipeline import PipelineConfig

NODE_NAME = "hpe3d_pipeline"


class ConfigError(ValueError):
    """An invalid parameter value; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def kind(self) -> type:
        return type(self.default)


P = ParamSpec
#: Global parameters (per-camera ones are in :func:`camera_params`).
PARAMS: tuple[ParamSpec, ...] = (
    P("camera_names", ["front"], "Cameras to process; each name N has cameras.N.* params"),
    P("detector.name", "movenet", "2D keypoint detector backend", choices=("movenet",)),
    P("detector.mode", "bottom_up", "bottom_up: MultiPose on tiles; top_down: + crop refinement",
      choices=("bottom_up", "top_down")),
    P("detector.device", "cpu", "ONNX Runtime device for the detector", choices=("cpu", "cuda")),
    P("detector.backend", "onnxruntime-cpu", "Runtime of the detector's ONNX models",
      choices=("onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt")),
    P("detector.input_size", 512, "Long side of each detector tile (pixels, x32)", 128, 2048),
    P("detector.tiles", [2, 1], "Detector tile grid [columns, rows]; [1, 1] = whole image"),
    P("detector.person_threshold", 0.2, "Minimum person score", 0.0, 1.0),
    P("detector.threads", 2, "ONNX Runtime intra-op threads of the detector", 1, 64),
    P("tracking.enabled", True, "Give people ids that persist across frames (per camera)"),
    P("tracking.max_missed", 10, "Frames a track survives without a detection", 0, 1000),
    P("tracking.min_iou", 0.1, "Minimum box IoU to continue a track", 0.0, 1.0),
    P("smoothing.enabled", False, "One-Euro filter on each track's 2D keypoints (needs tracking)"),
    P("smoothing.min_cutoff_hz", 1.0, "One-Euro minimum cut-off frequency", 0.01, 100.0),
    P("smoothing.beta", 0.05, "One-Euro speed coefficient (higher: less lag when moving)",
      0.0, 10.0),
    P("lifter.weights", "", "Lifter checkpoint (.pt); empty = the shipped default weights"),
    P("lifter.device", "cpu", "Device of the lifter", choices=("cpu", "cuda")),
    P("lifter.backend", "auto", "auto: TensorRT > ONNX Runtime CUDA > torch CUDA > CPU",
      choices=("auto", "torch", "onnxruntime", "tensorrt")),
    P("lifter.threads", 1, "CPU threads of the lifter (1 avoids spinning on shared cores)",
      1, 64),
    P("lifter.num_hypotheses", 50, "K: 3D hypotheses sampled per person", 1, 1000),
    P("lifter.min_keypoint_confidence", 0.2, "Joints below this are treated as missing", 0.0, 1.0),
    P("lifter.min_visible_joints", 6, "People with fewer visible joints are not lifted", 2, 17),
    P("lifter.seed", 0, "Seed of the hypothesis sampler (results are reproducible)", 0, 2**31 - 1),
    P("placement.camera_height_m", 0.0, "Camera height above flat ground; 0 = no ground prior",
      0.0, 10.0),
    P("placement.camera_pitch_deg", 0.0, "Downward pitch of the optical axis (degrees)",
      -45.0, 45.0),
    P("placement.ground_weight", 20.0, "Strength of the ground prior vs one joint", 0.0, 1e4),
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
)  # fmt: skip


def camera_params(name: str) -> tuple[ParamSpec, ...]:
    """Parameters of camera ``name`` (defaults follow the usual driver topic layout)."""
    pre = f"cameras.{name}."
    return (
        P(pre + "image_topic", f"/{name}/camera/image_raw", "sensor_msgs/Image topic"),
        P(pre + "camera_info_topic", f"/{name}/camera/camera_info", "CameraInfo topic"),
        P(pre + "compressed", False, "Subscribe sensor_msgs/CompressedImage on image_topic"),
        P(pre + "frame_id", "", "Override the optical frame id of this camera's outputs"),
    )


@dataclass(frozen=True)
class CameraConfig:
    name: str
    image_topic: str
    camera_info_topic: str
    compressed: bool = False
    frame_id: str = ""


@dataclass(frozen=True)
class NodeConfig:
    cameras: tuple[CameraConfig, ...]
    pipeline: PipelineConfig
    detector: dict[str, Any] = field(default_factory=dict)  # load_detector keyword args
    tracking: dict[str, Any] = field(default_factory=dict)  # Tracker args; {} = disabled
    smoothing: dict[str, Any] = field(default_factory=dict)  # KeypointSmoother args; {} = off
    lifter_weights: str = ""
    lifter_device: str = "cpu"
    values: dict[str, Any] = field(default_factory=dict)  # every parameter, flat

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


# ---------------------------------------------------------------------------- loading
def load_params_file(path: str | Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """Flat ``name -> value`` from a ROS 2 parameters YAML (``node: ros__parameters: ...``).

    Parameters under ``/**`` apply to every node; the node's own section wins.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read parameters file {path}: {exc}") from exc
    flat: dict[str, Any] = {}
    for key in ("/**", "**", node_name, f"/{node_name}"):
        section = doc.get(key) if isinstance(doc, dict) else None
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            flat.update(_flatten(section["ros__parameters"]))
    return flat


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def all_specs(values: dict[str, Any]) -> tuple[ParamSpec, ...]:
    cams = values.get("camera_names", PARAMS[0].default)
    per_cam = tuple(s for c in (cams if isinstance(cams, list) else []) for s in camera_params(c))
    return PARAMS + per_cam


def resolve(values: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value checked against its spec (type, range, choices)."""
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


def _check(spec: ParamSpec, value: Any) -> Any:
    kind = spec.kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is list:
        item = type(spec.default[0]) if spec.default else str
        if not isinstance(value, list) or not all(
            isinstance(v, item) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"parameter {spec.name!r} must be a list of {item.__name__}, got "
                              f"{value!r}")  # fmt: skip
    elif not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(
            f"parameter {spec.name!r} must be {kind.__name__}, got {type(value).__name__} "
            f"{value!r}"
        )
    if spec.choices and value not in spec.choices:
        raise ConfigError(f"parameter {spec.name!r} must be one of {spec.choices}, got {value!r}")
    if spec.min is not None and not (spec.min <= value <= spec.max):
        raise ConfigError(
            f"parameter {spec.name!r} must be in [{spec.min}, {spec.max}], got {value!r}"
        )
    return value


def build_config(values: dict[str, Any]) -> NodeConfig:
    """Validate a flat parameter map and build the node's configuration."""
    v = resolve(values)
    names = v["camera_names"]
    if not names:
        raise ConfigError("parameter 'camera_names' is empty: list at least one camera")
    if len(set(names)) != len(names):
        raise ConfigError(f"parameter 'camera_names' has duplicate names: {names}")
    for n in names:
        if not n or not n.replace("_", "").isalnum() or not n[0].isalpha():
            raise ConfigError(
                f"camera name {n!r} in 'camera_names': use a letter then [A-Za-z0-9_]"
            )
    cameras = tuple(
        CameraConfig(
            name=n,
            image_topic=v[f"cameras.{n}.image_topic"],
            camera_info_topic=v[f"cameras.{n}.camera_info_topic"],
            compressed=v[f"cameras.{n}.compressed"],
            frame_id=v[f"cameras.{n}.frame_id"],
        )
        for n in names
    )
    tiles = v["detector.tiles"]
    if len(tiles) != 2 or min(tiles) < 1:
        raise ConfigError(f"parameter 'detector.tiles' must be [columns, rows] >= 1, got {tiles}")
    if v["detector.input_size"] % 32:
        raise ConfigError("parameter 'detector.input_size' must be a multiple of 32")
    height = v["placement.camera_height_m"]
    pipeline = PipelineConfig(
        num_hypotheses=v["lifter.num_hypotheses"],
        min_keypoint_confidence=v["lifter.min_keypoint_confidence"],
        min_visible_joints=v["lifter.min_visible_joints"],
        seed=v["lifter.seed"],
        camera_height_m=height if height > 0 else None,
        camera_pitch_deg=v["placement.camera_pitch_deg"],
        ground_weight=v["placement.ground_weight"],
    )
    detector = {
        "name": v["detector.name"],
        "device": v["detector.device"],
        "mode": v["detector.mode"],
        "input_size": v["detector.input_size"],
        "tiles": tuple(tiles),
        "person_threshold": v["detector.person_threshold"],
        "threads": v["detector.threads"],
    }
    tracking = (
        {"max_missed": v["tracking.max_missed"], "min_iou": v["tracking.min_iou"]}
        if v["tracking.enabled"]
        else {}
    )
    if v["smoothing.enabled"] and not tracking:
        raise ConfigError("parameter 'smoothing.enabled' needs 'tracking.enabled' (per-id filter)")
    smoothing = (
        {"min_cutoff": v["smoothing.min_cutoff_hz"], "beta": v["smoothing.beta"]}
        if v["smoothing.enabled"]
        else {}
    )
    return NodeConfig(
        cameras=cameras,
        pipeline=pipeline,
        detector=detector,
        tracking=tracking,
        smoothing=smoothing,
        lifter_weights=v["lifter.weights"],
        lifter_device=v["lifter.device"],
        values=v,
    )


def load_config(path: str | Path | None = None, **overrides: Any) -> NodeConfig:
    """Read a parameters file (None = defaults) and apply ``name=value`` overrides."""
    values = load_params_file(path) if path is not None else {}
    values.update(overrides)
    return build_config(values)
