"""The node's configuration: typed, frozen dataclasses built from checked parameters (ROS-free).

The parameters are declared once in :mod:`hpe3d_ros.param_schema`; the rclpy node declares
exactly those, replay and benchmarks read the same YAML through :func:`load_config` (files:
:mod:`hpe3d_ros.params_file`), and :func:`build_config` turns the flat ``name -> value`` map
into frozen dataclasses, failing with one :class:`ConfigError` line that names the offending
parameter (a single parameter's range, or a rule between parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpe3d_ros.fusion.driver import VehicleConfig
from hpe3d_ros.fusion.extrinsics import ExtrinsicsError, extrinsics_from_flat, optical_frame_id
from hpe3d_ros.fusion.transforms import Transform
from hpe3d_ros.param_schema import MAX_DETECTOR_TILE_UNITS, ConfigError, resolve
from hpe3d_ros.pipeline_config import PipelineConfig


@dataclass(frozen=True)
class CameraConfig:
    name: str
    image_topic: str
    camera_info_topic: str
    compressed: bool = False
    frame_id: str = ""  # "" keeps the image header's frame id
    rectified: bool = False  # images already undistorted: the camera model is CameraInfo P
    extrinsics: Transform | None = None  # T_parent_optical from parameters; None: from TF


@dataclass(frozen=True)
class DetectorConfig:
    """``detector.*``: which 2D detector, where it runs, how it covers the image."""

    name: str
    model_path: str  # "" = the shipped weights
    mode: str
    device: str
    backend: str
    input_size: int
    tiles: tuple[int, int]  # (0, 0) = planned from min_person_px
    coarse_size: int
    min_person_px: int
    budget: float  # network runs of 512x512 px per frame (hpe3d_ros.detection.budget)
    person_threshold: float
    threads: int


@dataclass(frozen=True)
class TrackingConfig:
    max_missed: int
    min_iou: float


@dataclass(frozen=True)
class SmoothingConfig:
    min_cutoff: float  # Hz
    beta: float


@dataclass(frozen=True)
class LifterConfig:
    """``lifter.*`` that choose the model and its runtime (sampling is in PipelineConfig)."""

    weights: str  # "" = the shipped default weights
    device: str
    backend: str
    threads: int


@dataclass(frozen=True)
class QosConfig:
    image_reliability: str
    image_depth: int
    camera_info_reliability: str


@dataclass(frozen=True)
class OutputConfig:
    """Which optional outputs every camera has (``output.*``)."""

    keypoints: bool = True
    markers: bool = True
    debug_image: bool = False
    marker_lifetime_s: float = 0.5
    people: bool = False  # ~/people and ~/people_markers (the node's, not per camera)


@dataclass(frozen=True)
class DiagnosticsConfig:
    period_s: float
    stale_timeout_s: float
    stall_warn_s: float
    stall_error_s: float


@dataclass(frozen=True)
class NodeConfig:
    """Everything the node, the replay and the fleet need, typed; ``values`` keeps the flat
    ``name -> value`` map only to echo the parameters into reports."""

    cameras: tuple[CameraConfig, ...]
    pipeline: PipelineConfig
    detector: DetectorConfig
    tracking: TrackingConfig | None  # None: no ids across frames
    smoothing: SmoothingConfig | None  # None: no One-Euro filter
    lifter: LifterConfig
    qos: QosConfig
    output: OutputConfig
    diagnostics: DiagnosticsConfig
    camera_info_tolerance_s: float
    vehicle: VehicleConfig = field(default_factory=VehicleConfig)  # ~/people, fusion, frames
    values: dict[str, Any] = field(default_factory=dict)


def build_config(values: dict[str, Any]) -> NodeConfig:
    """Validate a flat parameter map and build the node's configuration."""
    if isinstance(values.get("camera_names"), list) and not values["camera_names"]:
        raise ConfigError("parameter 'camera_names' is empty: list at least one camera")
    v = resolve(values)
    names = v["camera_names"]
    if len(set(names)) != len(names):
        raise ConfigError(f"parameter 'camera_names' has duplicate names: {names}")
    cameras = tuple(_camera(v, n) for n in names)
    _check_combinations(v)
    try:
        vehicle = VehicleConfig.from_values(v)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    height = v["placement.camera_height_m"]
    return NodeConfig(
        cameras=cameras,
        pipeline=PipelineConfig(
            num_hypotheses=v["lifter.num_hypotheses"],
            min_keypoint_confidence=v["lifter.min_keypoint_confidence"],
            min_visible_joints=v["lifter.min_visible_joints"],
            seed=v["lifter.seed"],
            temporal=v["lifter.temporal"],
            temporal_window=v["lifter.temporal_window"],
            temporal_min_frames=v["lifter.temporal_min_frames"],
            camera_height_m=height if height > 0 else None,
            camera_pitch_deg=v["placement.camera_pitch_deg"],
            ground_weight=v["placement.ground_weight"],
            ankle_height_m=v["placement.ankle_height_m"],
            size_log_std=v["placement.size_log_std"],
        ),
        detector=DetectorConfig(**_section(v, "detector.", tiles=tuple(v["detector.tiles"]))),
        tracking=TrackingConfig(v["tracking.max_missed"], v["tracking.min_iou"])
        if v["tracking.enabled"] else None,
        smoothing=SmoothingConfig(v["smoothing.min_cutoff_hz"], v["smoothing.beta"])
        if v["smoothing.enabled"] else None,
        lifter=LifterConfig(v["lifter.weights"], v["lifter.device"], v["lifter.backend"],
                            v["lifter.threads"]),
        qos=QosConfig(**_section(v, "qos.")),
        output=OutputConfig(**_section(v, "output.")),
        diagnostics=DiagnosticsConfig(**_section(v, "diagnostics.")),
        camera_info_tolerance_s=v["camera_info_tolerance_s"],
        vehicle=vehicle,
        values=v,
    )  # fmt: skip


def _camera(v: dict[str, Any], name: str) -> CameraConfig:
    """One camera's block; ``extrinsics.*`` become ``T_parent_optical`` (None: from TF)."""
    fields = {k: val for k, val in _section(v, f"cameras.{name}.").items()
              if not k.startswith("extrinsics.")}  # fmt: skip
    try:
        T = extrinsics_from_flat(name, v, fields["frame_id"] or optical_frame_id(name))
    except ExtrinsicsError as exc:
        raise ConfigError(f"parameter {exc}") from None
    return CameraConfig(name, **fields, extrinsics=T)


def _section(v: dict[str, Any], prefix: str, **replace: Any) -> dict[str, Any]:
    """The parameters ``prefix*`` as keyword arguments of their dataclass."""
    out = {k[len(prefix) :]: val for k, val in v.items() if k.startswith(prefix)}
    return out | replace


def _check_combinations(v: dict[str, Any]) -> None:
    """Rules between parameters (each parameter alone was checked by :func:`resolve`)."""
    tiles = v["detector.tiles"]
    if min(tiles) == 0 and max(tiles) != 0:
        raise ConfigError(
            f"parameter 'detector.tiles' must be [0, 0] (planned) or both >= 1, got {tiles}"
        )
    if v["detector.name"] == "yolo_pose_onnx" and not v["detector.model_path"]:
        raise ConfigError(
            "parameter 'detector.model_path' must name your YOLO-pose ONNX file for detector.name "
            "yolo_pose_onnx (no such weights ship: AGPL-3.0)"
        )
    units = tiles[0] * tiles[1] * (v["detector.input_size"] / 512) ** 2
    if units > MAX_DETECTOR_TILE_UNITS:
        raise ConfigError(
            f"parameters 'detector.tiles' {tiles} x 'detector.input_size' "
            f"{v['detector.input_size']} ask for {units:g} tiles of 512 px per frame; at most "
            f"{MAX_DETECTOR_TILE_UNITS} can keep up with a camera"
        )
    if v["diagnostics.stall_error_s"] <= v["diagnostics.stall_warn_s"]:
        raise ConfigError("parameter 'diagnostics.stall_error_s' must exceed "
                          "'diagnostics.stall_warn_s'")  # fmt: skip
    if v["smoothing.enabled"] and not v["tracking.enabled"]:
        raise ConfigError("parameter 'smoothing.enabled' needs 'tracking.enabled' (per-id filter)")


def load_config(path: str | Path | None = None, **overrides: Any) -> NodeConfig:
    """Read a parameters file (None = defaults) and apply ``name=value`` overrides.

    Raises:
        ConfigError: an invalid value, or a file that is unreadable, empty or has no section
            for ``/hpe3d_pipeline`` (see :func:`hpe3d_ros.params_file.load_params_file`).
    """
    from hpe3d_ros.params_file import load_params_file  # it raises our ConfigError

    values = load_params_file(path) if path is not None else {}
    values.update(overrides)
    return build_config(values)
