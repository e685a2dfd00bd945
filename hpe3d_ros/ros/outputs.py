"""Everything the node publishes, as messages: the one builder the live node and the replay share.

:func:`frame_messages` turns one processed frame into the messages of the camera's output
topics (:data:`hpe3d_ros.ros.topics.OUTPUTS`); the node publishes them, the replay writes
them into its output bag. :func:`diagnostics_message` does the same for ``/diagnostics``
from the cameras' runners (:mod:`hpe3d_ros.runner`), on the node's clock or the bag's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image

from hpe3d_ros.config import OutputConfig
from hpe3d_ros.imaging import encode_raw
from hpe3d_ros.overlay import draw_overlay
from hpe3d_ros.results import FrameResult
from hpe3d_ros.ros import diagnostics
from hpe3d_ros.ros.conversions import hypotheses_to_msg, keypoints_to_msg, ns_to_stamp
from hpe3d_ros.ros.markers import markers_from_result


def frame_messages(
    result: FrameResult, image: np.ndarray | None, opts: OutputConfig
) -> list[tuple[str, Any]]:
    """``(kind, message)`` for one processed frame, kinds in publishing order.

    ``image`` is the decoded RGB frame (None for keypoint-level input: no keypoints message and
    no debug image then, as there is no detector output).
    """
    out: list[tuple[str, Any]] = [("hypotheses", hypotheses_to_msg(result))]
    if opts.keypoints and image is not None:
        out.append(("keypoints", keypoints_to_msg(result)))
    if opts.markers:
        out.append(("markers", markers_from_result(result, opts.marker_lifetime_s)))
    if opts.debug_image and image is not None:
        out.append(("debug_image", debug_image(result, image)))
    return out


def debug_image(result: FrameResult, image: np.ndarray) -> Image:
    """The 2D overlay (:func:`hpe3d_ros.overlay.draw_overlay`) as an ``rgb8`` Image."""
    data, step = encode_raw(draw_overlay(image, result), "rgb8")
    msg = Image(height=image.shape[0], width=image.shape[1], encoding="rgb8", step=step)
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(result.stamp_ns), result.frame_id
    msg.data = data
    return msg


@dataclass(frozen=True)
class CameraHealth:
    """One camera's line on ``/diagnostics``: its runner's snapshot and calibration state."""

    name: str
    snapshot: dict
    has_camera_info: bool


def diagnostics_message(
    stamp_ns: int,
    node_name: str,
    cameras: Sequence[CameraHealth],
    stale_timeout_s: float,
    extra: dict[str, str],
    stall_s: tuple[float, float] = (math.inf, math.inf),
) -> DiagnosticArray:
    """``/diagnostics`` for every camera (levels: :func:`diagnostics.stream_level`)."""
    statuses = [
        diagnostics.camera_status(
            node_name, c.name, c.snapshot, stale_timeout_s, c.has_camera_info, extra, stall_s
        )
        for c in cameras
    ]
    return diagnostics.diagnostic_array(ns_to_stamp(stamp_ns), statuses)
