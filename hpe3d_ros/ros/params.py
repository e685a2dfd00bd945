"""Declare the schema of :mod:`hpe3d_ros.param_schema` as ROS parameters and read them back."""

from __future__ import annotations

import array
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from hpe3d_ros.config import NodeConfig, build_config
from hpe3d_ros.param_schema import PARAMS, ConfigError, ParamSpec, camera_params

#: Parameters rclpy or launch manage themselves; never "unknown".
_ROS_OWNED = ("use_sim_time", "start_type_description_service", "qos_overrides.")


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Descriptor with description, range and allowed values; read-only (restart to change)."""
    text = spec.description
    if spec.choices:
        text += f" (one of: {', '.join(spec.choices)})"
    d = ParameterDescriptor(
        description=text,
        read_only=True,
        dynamic_typing=True,  # wrong types reach our own check, which names the parameter
        additional_constraints=spec.constraints,  # the whole schema rule, lists included
    )
    bounded = spec.min is not None and spec.max is not None
    if bounded and spec.kind is int:
        d.integer_range = [
            IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=spec.multiple_of)
        ]
    elif bounded and spec.kind is float:
        d.floating_point_range = [
            FloatingPointRange(from_value=float(spec.min), to_value=float(spec.max), step=0.0)
        ]
    return d


def _plain(value: Any) -> Any:
    if isinstance(value, array.array):
        return list(value)
    return value


def declare_and_read(node: Node) -> NodeConfig:
    """Declare every parameter (global, then per camera) and build the configuration.

    Raises:
        ConfigError: one line naming the first invalid or unknown parameter.
    """
    values: dict[str, Any] = {}

    def declare(spec: ParamSpec) -> None:
        try:
            param = node.declare_parameter(spec.name, spec.default, descriptor(spec))
        except Exception as exc:  # rclpy's range/type exceptions: re-word with the name
            raise ConfigError(f"parameter {spec.name!r}: {exc}") from exc
        values[spec.name] = _plain(param.value)

    for spec in PARAMS:
        declare(spec)
    cams = values["camera_names"]
    if isinstance(cams, list) and all(isinstance(c, str) for c in cams):
        for cam in dict.fromkeys(cams):
            if cam:
                for spec in camera_params(cam):
                    declare(spec)
    overrides = set(getattr(node, "_parameter_overrides", {}))
    unknown = sorted(
        n for n in overrides - set(values) if not any(n.startswith(p) for p in _ROS_OWNED)
    )
    if unknown:
        raise ConfigError(
            f"unknown parameter {unknown[0]!r} (typo, or a camera missing from camera_names?)"
        )
    return build_config(values)
