"""``/diagnostics`` for each camera stream: rates, drops, latency, backend, last error."""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else "inf" if math.isinf(value) else f"{value:.3f}"
    return str(value)


def stream_level(snap: dict, stale_timeout_s: float, has_camera_info: bool) -> tuple[int, str]:
    """(level, message) of one camera from its :meth:`StreamStats.snapshot`."""
    silent = snap["silent_s"]
    if math.isinf(silent):
        return WARN, "no image received yet"
    if silent > 3 * stale_timeout_s:
        return ERROR, f"no image for {silent:.1f} s"
    if silent > stale_timeout_s:
        return WARN, f"no image for {silent:.1f} s"
    if not has_camera_info:
        return WARN, "images arrive but no valid CameraInfo yet"
    if snap["processed_rate_hz"] == 0 and snap["failed"]:
        return WARN, f"frames failing: {snap['last_error']}"
    return OK, f"{snap['processed_rate_hz']:.1f} Hz processed"


def camera_status(
    node_name: str,
    camera: str,
    snap: dict,
    stale_timeout_s: float,
    has_camera_info: bool,
    extra: dict[str, str],
) -> DiagnosticStatus:
    level, message = stream_level(snap, stale_timeout_s, has_camera_info)
    values = [KeyValue(key=k, value=_fmt(v)) for k, v in snap.items()]
    values += [KeyValue(key=k, value=v) for k, v in extra.items()]
    return DiagnosticStatus(
        level=level,
        name=f"{node_name}: camera {camera}",
        message=message,
        hardware_id=camera,
        values=values,
    )


def diagnostic_array(stamp, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    arr = DiagnosticArray(status=statuses)
    arr.header.stamp = stamp
    return arr
