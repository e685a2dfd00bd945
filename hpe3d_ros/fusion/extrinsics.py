"""Camera extrinsics from parameters, and the ground plane they imply (ROS-free).

A camera's block ``cameras.<name>.extrinsics`` gives its pose in a parent frame (REP-105:
usually ``base_link``, x forward, y left, z up)::

    extrinsics:
      parent_frame: base_link
      translation: [3.8, 0.0, 1.45]     # metres, the camera in the parent frame
      rpy_deg: [0.0, 5.0, 0.0]          # roll, pitch (+ looks down), yaw (+ turns left)
      # or quaternion_xyzw: [0.0, 0.0436, 0.0, 0.999]
      optical: false                    # the rotation is the camera *body* frame's

With ``optical: false`` (the default, as a URDF's ``camera_link``) the rotation describes the
camera body frame (x forward along the optical axis, y left, z up) and the optical frame
(x right, y down, z forward, what images and our per-camera messages use) is derived; with
``optical: true`` it is the optical frame's own rotation. Either way the result is
``T_parent_<frame_id>`` for the camera's optical frame id, one edge of a
:class:`~hpe3d_ros.fusion.transforms.TransformTree`.

The ground plane follows from the extrinsics: the parent frame's ``z = ground_z_m`` plane
seen from the camera, so the placement's ground prior needs no hand-typed height and pitch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from hpe3d_ros.frames import R_BODY_FROM_OPTICAL
from hpe3d_ros.fusion.transforms import Transform, TransformTree
from hpe3d_ros.placement import ANKLE_HEIGHT_M, GROUND_WEIGHT, GroundPrior

_KEYS = {"parent_frame", "translation", "rpy_deg", "quaternion_xyzw", "optical"}


class ExtrinsicsError(ValueError):
    """A parameter block that cannot describe a camera pose (one line, naming the key)."""


def optical_frame_id(camera_name: str) -> str:
    """The default optical frame of a camera (what ``hpe3d-make-bag`` writes)."""
    return f"{camera_name}_camera_optical_frame"


def extrinsics_from_params(
    camera_name: str, block: Mapping[str, Any], frame_id: str = ""
) -> Transform:
    """``T_parent_optical`` of one camera from its ``extrinsics`` parameter block.

    Args:
        camera_name: for messages and the default frame id.
        block: the mapping described in the module docstring.
        frame_id: the camera's optical frame id ("" = :func:`optical_frame_id`).

    Raises:
        ExtrinsicsError: unknown key, missing parent frame, wrong sizes, NaN, both or neither
            rotation given, a zero quaternion.
    """
    where = f"cameras.{camera_name}.extrinsics"
    unknown = sorted(set(block) - _KEYS)
    if unknown:
        raise ExtrinsicsError(f"{where}: unknown key(s) {unknown}; known: {sorted(_KEYS)}")
    parent = str(block.get("parent_frame", "") or "")
    if not parent or any(c.isspace() for c in parent):
        raise ExtrinsicsError(f"{where}.parent_frame: a frame id without spaces is required")
    t = _vector(block.get("translation"), 3, f"{where}.translation")
    rpy, quat = block.get("rpy_deg"), block.get("quaternion_xyzw")
    has_rpy, has_quat = _given(rpy), _given(quat)
    if has_rpy == has_quat:
        raise ExtrinsicsError(f"{where}: give exactly one of rpy_deg or quaternion_xyzw")
    child = frame_id or optical_frame_id(camera_name)
    try:
        if has_rpy:
            r = np.radians(_vector(rpy, 3, f"{where}.rpy_deg"))
            T = Transform.from_rpy(t, r, parent, child)
        else:
            T = Transform.from_quaternion(
                t, _vector(quat, 4, f"{where}.quaternion_xyzw"), parent, child
            )
    except ValueError as exc:
        raise ExtrinsicsError(f"{where}: {exc}") from None
    if not bool(block.get("optical", False)):
        T = Transform(T.rotation @ R_BODY_FROM_OPTICAL, T.translation, parent, child)
    return T


def extrinsics_from_flat(
    camera_name: str, values: Mapping[str, Any], frame_id: str = ""
) -> Transform | None:
    """``T_parent_optical`` from the node's flat parameters ``cameras.<name>.extrinsics.*``
    (ROS parameters cannot be absent, so "not given" has a value: ``parent_frame`` "" means the
    pose comes from TF, a quaternion of zeros means the rotation is ``rpy_deg``).

    Returns:
        None when ``parent_frame`` is empty.

    Raises:
        ExtrinsicsError: both a quaternion and a non-zero ``rpy_deg``, a bad value (the
            message names the parameter).
    """
    pre = f"cameras.{camera_name}.extrinsics."
    parent = str(values.get(pre + "parent_frame", "") or "")
    if not parent:
        return None
    rpy = list(values.get(pre + "rpy_deg") or [0.0, 0.0, 0.0])
    quat = list(values.get(pre + "quaternion_xyzw") or [0.0, 0.0, 0.0, 0.0])
    use_quat = any(float(q) != 0.0 for q in quat)
    if use_quat and any(float(r) != 0.0 for r in rpy):
        raise ExtrinsicsError(
            f"cameras.{camera_name}.extrinsics: give rpy_deg or quaternion_xyzw, not both "
            f"(rpy_deg {rpy}, quaternion_xyzw {quat}); the unused one stays all zeros"
        )
    block = {
        "parent_frame": parent,
        "translation": values.get(pre + "translation", [0.0, 0.0, 0.0]),
        "optical": bool(values.get(pre + "optical", False)),
        **({"quaternion_xyzw": quat} if use_quat else {"rpy_deg": rpy}),
    }
    return extrinsics_from_params(camera_name, block, frame_id)


def tree_from_params(
    cameras: Mapping[str, Mapping[str, Any]], frame_ids: Mapping[str, str] | None = None
) -> TransformTree:
    """A tree with one edge per camera that has an ``extrinsics`` block.

    Args:
        cameras: camera name -> its parameter block (``{"extrinsics": {...}, ...}``).
        frame_ids: optional camera name -> optical frame id overrides.
    """
    tree = TransformTree()
    for name, cam in cameras.items():
        block = cam.get("extrinsics") if isinstance(cam, Mapping) else None
        if block:
            tree.add(extrinsics_from_params(name, block, (frame_ids or {}).get(name, "")))
    return tree


def ground_plane_in_camera(
    T_target_optical: Transform, ground_z_m: float = 0.0
) -> tuple[np.ndarray, float]:
    """The target frame's ``z = ground_z_m`` plane in the camera's optical frame.

    Returns:
        (n, d): unit normal pointing down (towards the ground) in the optical frame and the
        camera's height above the ground, so ground points satisfy ``n @ p == d`` (the
        convention of :func:`hpe3d_ros.frames.ground_plane_optical`).

    Raises:
        ValueError: the camera is not above the ground.
    """
    down_target = np.array([0.0, 0.0, -1.0])
    n = T_target_optical.rotation.T @ down_target
    height = float(T_target_optical.translation[2] - ground_z_m)
    if not height > 0:
        raise ValueError(
            f"camera {T_target_optical.child!r} is {height:.3f} m above the ground plane "
            f"z = {ground_z_m} m of {T_target_optical.parent!r}; it must be above it"
        )
    return n, height


def ground_prior_from_extrinsics(
    T_target_optical: Transform,
    ground_z_m: float = 0.0,
    weight: float = GROUND_WEIGHT,
    ankle_height_m: float = ANKLE_HEIGHT_M,
) -> GroundPrior:
    """The placement's :class:`~hpe3d_ros.placement.GroundPrior` for a mounted camera.

    Raises:
        ValueError: the camera is not above the ground, or not above a standing ankle.
    """
    n, d = ground_plane_in_camera(T_target_optical, ground_z_m)
    if not d > ankle_height_m:
        raise ValueError(
            f"camera {T_target_optical.child!r} is {d:.3f} m above the ground, not above a "
            f"standing ankle ({ankle_height_m} m)"
        )
    return GroundPrior(n, d, weight, ankle_height_m)


def height_and_pitch(T_target_optical: Transform, ground_z_m: float = 0.0) -> tuple[float, float]:
    """(camera height above the ground in m, downward pitch of the optical axis in degrees):
    what ``placement.camera_height_m`` / ``camera_pitch_deg`` would be for this camera."""
    n, d = ground_plane_in_camera(T_target_optical, ground_z_m)
    # the optical axis (0, 0, 1) leans towards the ground by asin(n_z)
    return d, math.degrees(math.asin(float(np.clip(n[2], -1.0, 1.0))))


def _given(value: Any) -> bool:
    return value is not None and not (hasattr(value, "__len__") and len(value) == 0)


def _vector(value: Any, n: int, where: str) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ExtrinsicsError(f"{where}: expected {n} numbers, got {value!r}") from None
    if v.size != n:
        raise ExtrinsicsError(f"{where}: expected {n} numbers, got {v.size}")
    if not np.isfinite(v).all():
        raise ExtrinsicsError(f"{where}: NaN or inf in {v.tolist()}")
    return v
