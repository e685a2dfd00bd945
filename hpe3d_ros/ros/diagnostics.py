"""``/diagnostics`` for each camera stream: rates, drops, latency, backend, last error."""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
#: More than this share of a camera's frames lost before the node (stamp gaps) is a WARN.
LOSS_WARN_FRACTION = 0.05


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else "inf" if math.isinf(value) else f"{value:.3f}"
    return str(value)


def stream_level(
    snap: dict,
    stale_timeout_s: float,
    has_camera_info: bool,
    stall_warn_s: float = math.inf,
    stall_error_s: float = math.inf,
) -> tuple[int, str]:
    """(level, message) of one camera from its :meth:`StreamStats.snapshot`.

    ``snap["waiting_s"]`` (optional) is how long its oldest unfinished frame has waited
    while the worker finished nothing: a worker that stops finishing frames while they
    arrive is *stalled*, WARN after ``stall_warn_s`` and ERROR after ``stall_error_s``, never
    "0.0 Hz processed" and OK. ``snap["pose_problem"]`` (optional, with ``output.people``): why
    the camera's latest frame had no pose in the target frame, a WARN.
    """
    silent = snap["silent_s"]
    waiting = snap.get("waiting_s", 0.0)
    stalled = f"stalled: a frame has waited {waiting:.1f} s for the worker"
    if snap.get("worker"):
        stalled += f" ({snap['worker']})"
    if waiting > stall_error_s:
        return ERROR, stalled
    if math.isinf(silent):
        return WARN, "no image received yet"
    if silent > 3 * stale_timeout_s:
        return ERROR, f"no image for {silent:.1f} s"
    if waiting > stall_warn_s:
        return WARN, stalled
    if silent > stale_timeout_s:
        return WARN, f"no image for {silent:.1f} s"
    if not has_camera_info:
        return WARN, "images arrive but no valid CameraInfo yet"
    lost, rate = snap.get("lost_rate_hz", 0.0), snap.get("input_rate_hz", 0.0)
    if lost > LOSS_WARN_FRACTION * (lost + rate):
        return WARN, (f"{lost:.1f} frames/s lost before the node (holes in the image "
                      "stamps): check the publisher's transport (large best-effort images need "
                      "the shared-memory profile) and QoS")  # fmt: skip
    if snap["processed_rate_hz"] == 0 and snap["failed"]:
        return WARN, f"frames failing: {snap['last_error']}"
    if snap.get("pose_problem"):  # ~/people lacks this camera; its own outputs go on
        rate = snap["processed_rate_hz"]
        return WARN, f"{rate:.1f} Hz processed, not in ~/people: {snap['pose_problem']}"
    return OK, f"{snap['processed_rate_hz']:.1f} Hz processed"


def camera_status(
    node_name: str,
    camera: str,
    snap: dict,
    stale_timeout_s: float,
    has_camera_info: bool,
    extra: dict[str, str],
    stall_s: tuple[float, float] = (math.inf, math.inf),
) -> DiagnosticStatus:
    """``stall_s``: (WARN, ERROR) thresholds of ``snap["waiting_s"]``."""
    level, message = stream_level(snap, stale_timeout_s, has_camera_info, *stall_s)
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
