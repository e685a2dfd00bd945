"""One camera, one frame at a time: the runner that the live node and the replay both drive.

ROS-free. A driver hands over what arrived, in arrival order:

* :meth:`CameraRunner.camera_info` for each CameraInfo (any object with the CameraInfo
  fields: an rclpy message, a ``rosbags`` message, a test double);
* :meth:`CameraRunner.arrive` for each frame (a :class:`Frame`, see :func:`frame_from_msg`):
  counts it and rejects a malformed header at once, before it waits for the worker;
* :meth:`CameraRunner.process` when the frame's turn comes: decode, pair with its CameraInfo,
  run the :class:`~hpe3d_ros.pipeline.Pipeline`; returns an :class:`Outcome`, a frame result
  or a counted failure whose ``kind`` is one of :data:`FAILURE_KINDS`.

The node (:mod:`hpe3d_ros.ros.node`) calls ``arrive`` in its subscription callback and
``process`` in its worker thread; the replay calls both for every frame of a bag, in log-time
order, with CameraInfo messages interleaved as they were recorded. So both see the same
CameraInfo rule, decoding, failure kinds and statistics, and an offline figure is a fact
about the deployed node.

**CameraInfo rule.** Of the CameraInfo messages received so far (the last
:data:`CALIBRATION_MEMORY`), the one whose stamp is nearest the image stamp, if it is within
``info_tolerance_s``; with a tolerance of 0, the latest received. A CameraInfo that cannot
describe a camera (zero focal length, NaN…) is kept as such: frames matched to it fail as
``bad CameraInfo`` rather than silently using an older calibration.

**Rectified input** (``rectified=True``, e.g. ``image_rect`` topics): the image is already
undistorted, so the camera model is the projection matrix P (fx, fy, cx, cy) without
distortion; undistorting again with D would bend straight lines.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpe3d_ros.camera import CameraModel, CameraModelError
from hpe3d_ros.imaging import (
    ImageDecodeError,
    check_compressed,
    check_raw_header,
    decode_compressed,
    decode_raw,
)
from hpe3d_ros.pipeline import Pipeline, PipelineInputError
from hpe3d_ros.results import FrameResult
from hpe3d_ros.skeleton import H36M_JOINT_NAMES, H36M_LAYOUT_ID
from hpe3d_ros.stamps import stamp_to_ns
from hpe3d_ros.stream_stats import StampGaps, StreamStats

RAW, COMPRESSED, KEYPOINTS = "raw", "compressed", "keypoints"
MISSING_INFO = "missing CameraInfo"
BAD_INFO = "bad CameraInfo"
DECODE = "decode error"
SIZE = "size mismatch"
BAD_IMAGE = "bad image"
BAD_KEYPOINTS = "bad keypoints"
PIPELINE = "pipeline error"
#: Every way a frame can fail, as written in ``frames.csv`` and counted on ``/diagnostics``.
FAILURE_KINDS = (MISSING_INFO, BAD_INFO, DECODE, SIZE, BAD_IMAGE, BAD_KEYPOINTS, PIPELINE)
#: CameraInfo messages remembered per camera.
CALIBRATION_MEMORY = 32


@dataclass(frozen=True)
class Frame:
    """One camera input as it arrived (ROS-free).

    ``kind`` says which fields are used: RAW (``data``, ``width``, ``height``, ``encoding``,
    ``step``), COMPRESSED (``data``, ``format``) or KEYPOINTS (``keypoints``: a keypoint-level
    input, ``(layout, kp (P, 17, 2) px, conf (P, 17), who)`` with ``who`` per person
    ``(track_id, score, bbox)``).
    """

    kind: str
    stamp_ns: int
    frame_id: str
    data: Any = b""
    width: int = 0
    height: int = 0
    encoding: str = ""
    step: int = 0
    format: str = ""
    keypoints: tuple | None = None


def frame_from_msg(msg: Any, kind: str) -> Frame:
    """A ``sensor_msgs/Image`` (RAW), ``CompressedImage`` (COMPRESSED) or
    ``hpe3d_ros/Keypoints2DArray`` (KEYPOINTS) message, rclpy or ``rosbags``, as a Frame.

    Only reads fields: no pixel is copied or decoded here.
    """
    stamp, frame_id = stamp_to_ns(msg.header.stamp), str(msg.header.frame_id)
    if kind == RAW:
        return Frame(RAW, stamp, frame_id, msg.data, int(msg.width), int(msg.height),
                     str(msg.encoding), int(msg.step))  # fmt: skip
    if kind == COMPRESSED:
        return Frame(COMPRESSED, stamp, frame_id, msg.data, format=str(msg.format))
    if kind != KEYPOINTS:
        raise ValueError(f"unknown frame kind {kind!r}")
    try:
        kp = np.array([np.asarray(p.keypoints, np.float64).reshape(17, 2) for p in msg.people])
        conf = np.array([np.asarray(p.confidence, np.float64).reshape(17) for p in msg.people])
        who = [(int(p.track_id), float(p.score), np.asarray(p.bbox, np.float64).reshape(4))
               for p in msg.people]  # fmt: skip
        keypoints = (str(msg.joint_layout), kp.reshape(-1, 17, 2), conf.reshape(-1, 17), who)
    except (ValueError, TypeError) as exc:  # wrong sizes: the frame fails when processed
        keypoints = (str(msg.joint_layout), None, None, f"{type(exc).__name__}: {exc}")
    return Frame(KEYPOINTS, stamp, frame_id, keypoints=keypoints)


@dataclass
class Outcome:
    """What :meth:`CameraRunner.process` made of one frame."""

    frame: Frame | None  # None: a message that could not even be read as a frame
    frame_id: str = ""  # the outputs' frame id (the camera's override, else the header's)
    result: FrameResult | None = None
    image: np.ndarray | None = None  # decoded RGB (image frames that got that far)
    camera: CameraModel | None = None  # the calibration the frame was processed with
    kind: str = ""  # failure kind ("" when processed)
    message: str = ""
    code: str = ""  # finer reason of a failure, for throttling (e.g. ImageDecodeError.reason)
    latency_ms: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def reason(self) -> str:
        """``"<kind>: <message>"`` of a failure, "" when processed."""
        return f"{self.kind}: {self.message}" if self.kind else ""


class _Failed(Exception):
    def __init__(self, kind: str, message: str, code: str = "") -> None:
        super().__init__(message)
        self.kind, self.code = kind, code


class Calibration:
    """CameraInfo messages of one camera by stamp (the rule in the module docstring)."""

    def __init__(self, tolerance_s: float, rectified: bool) -> None:
        self.tolerance_ns = round(tolerance_s * 1e9)
        self.rectified = rectified
        self._stamps: deque[int] = deque(maxlen=CALIBRATION_MEMORY)
        self._models: deque[CameraModel | str] = deque(maxlen=CALIBRATION_MEMORY)
        self._decoded: dict[tuple, CameraModel | str] = {}
        self.frame_id = ""

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def valid(self) -> bool:
        """True when the latest CameraInfo describes a camera."""
        return bool(self._models) and not isinstance(self._models[-1], str)

    def add(self, msg: Any) -> str:
        """Remember one CameraInfo; returns why it is unusable ("" when it is fine)."""
        if self.rectified:
            p = np.asarray(msg.p, dtype=np.float64).reshape(-1)
            k = p[[0, 1, 2, 4, 5, 6, 8, 9, 10]] if p.size == 12 else p
            key = (int(msg.width), int(msg.height), tuple(k), (), "none")
        else:
            key = (int(msg.width), int(msg.height), tuple(np.asarray(msg.k, np.float64)),
                   tuple(np.asarray(msg.d, np.float64)), str(msg.distortion_model))  # fmt: skip
        model = self._decoded.get(key)
        if model is None:
            try:
                model = CameraModel.from_camera_info_fields(*key)
            except (CameraModelError, ValueError) as exc:
                model = f"{exc}"
            if len(self._decoded) < 64:
                self._decoded[key] = model
        stamp = stamp_to_ns(msg.header.stamp)
        if self._stamps and stamp < self._stamps[-1]:  # clock restarted: start over
            self._stamps.clear()
            self._models.clear()
        self._stamps.append(stamp)
        self._models.append(model)
        self.frame_id = str(msg.header.frame_id)
        return model if isinstance(model, str) else ""

    def lookup(self, stamp_ns: int) -> CameraModel:
        """The camera model for an image stamp; :class:`_Failed` says why there is none."""
        if not self._stamps:
            raise _Failed(MISSING_INFO, "no CameraInfo received yet")
        if self.tolerance_ns <= 0:
            model = self._models[-1]
        else:
            stamps = list(self._stamps)
            i = bisect.bisect_left(stamps, stamp_ns)
            best = min((j for j in (i - 1, i) if 0 <= j < len(stamps)),
                       key=lambda j: abs(stamps[j] - stamp_ns))  # fmt: skip
            gap = abs(stamps[best] - stamp_ns)
            if gap > self.tolerance_ns:
                raise _Failed(MISSING_INFO, f"nearest CameraInfo is {gap / 1e9:.3f} s from the "
                                            f"image stamp (tolerance {self.tolerance_ns / 1e9:.3f}"
                                            f" s)")  # fmt: skip
            model = self._models[best]
        if isinstance(model, str):
            raise _Failed(BAD_INFO, model)
        return model


class CameraRunner:
    """The per-frame job of one camera (see the module docstring).

    Args:
        name: the camera's name (outputs, seeds, tracks and statistics are keyed by it).
        pipeline: the shared pipeline (it keeps one tracker per camera name).
        frame_id: overrides the image header's frame id in every output ("" keeps it).
        info_tolerance_s: CameraInfo stamp tolerance (0: the latest CameraInfo).
        rectified: the images are rectified: use CameraInfo P, not K and D.
        stats_window_s: window of the rates in :attr:`stats`.
        clock: the clock of :meth:`process`'s ``arrived`` for latencies (``time.monotonic``
            live); None measures none (a replay's outputs must not depend on the machine).
    """

    def __init__(
        self,
        name: str,
        pipeline: Pipeline,
        *,
        frame_id: str = "",
        info_tolerance_s: float = 0.0,
        rectified: bool = False,
        stats_window_s: float = 5.0,
        clock: Callable[[], float] | None = time.monotonic,
    ) -> None:
        self.name = name
        self.clock = clock
        self.pipeline = pipeline
        self.frame_id = frame_id
        self.calibration = Calibration(info_tolerance_s, rectified)
        self.stats = StreamStats(window_s=stats_window_s)
        self.gaps = StampGaps(stats_window_s)

    def snapshot(self, now: float) -> dict:
        """Everything ``/diagnostics`` shows for this camera (plain values)."""
        return {**self.stats.snapshot(now), **self.gaps.snapshot(now)}

    def camera_info(self, msg: Any) -> str:
        """Take one CameraInfo; returns why it is unusable ("" when it is fine)."""
        return self.calibration.add(msg)

    def unreadable(self, message: str, now: float) -> Outcome:
        """Count a message that is not a frame at all (a bag's garbage bytes)."""
        self.stats.on_receive(now)
        return self._failed(Outcome(None), DECODE, message, now)

    def arrive(self, frame: Frame, now: float, sequence: int | None = None) -> Outcome | None:
        """Count an arriving frame; a malformed header is a failure at once (returned).

        ``now``: the driver's clock in seconds (monotonic time live, log time in a replay);
        ``sequence``: the publisher's number for the message, where the transport gives one
        (frames lost on the way are then counted exactly: :class:`StampGaps`).
        """
        self.stats.on_receive(now)
        self.gaps.add(frame.stamp_ns, now, sequence)
        try:
            if frame.kind == RAW:
                check_raw_header(frame.width, frame.height, frame.encoding, frame.step,
                                 len(frame.data))  # fmt: skip
            elif frame.kind == COMPRESSED:
                check_compressed(frame.data, frame.format)
        except ImageDecodeError as exc:
            return self._failed(self._outcome(frame), DECODE, str(exc), now, exc.reason)
        return None

    def _outcome(self, frame: Frame) -> Outcome:
        return Outcome(frame, self.frame_id or frame.frame_id)

    def process(self, frame: Frame, arrived: float, now: float) -> Outcome:
        """Run one frame that :meth:`arrive` accepted.

        ``arrived``: :attr:`clock` when it arrived (latency is measured from there);
        ``now``: the driver's clock (as in :meth:`arrive`) for the statistics.
        """
        out = self._outcome(frame)
        try:
            out.camera = camera = self.calibration.lookup(frame.stamp_ns)
            if frame.kind == KEYPOINTS:
                out.result = self._lift_keypoints(frame, camera, out.frame_id)
            else:
                out.image = self._decode(frame)
                out.result = self._run(out.image, camera, out.frame_id, frame.stamp_ns)
        except _Failed as exc:
            return self._failed(out, exc.kind, str(exc), now, exc.code)
        if self.clock is not None:
            out.latency_ms = 1e3 * (self.clock() - arrived)
        self.stats.on_processed(out.latency_ms, now)
        return out

    def _failed(
        self, out: Outcome, kind: str, message: str, now: float, code: str = ""
    ) -> Outcome:
        out.kind, out.message, out.code = kind, message, code
        self.stats.on_failed(kind, message)
        return out

    @staticmethod
    def _decode(frame: Frame) -> np.ndarray:
        try:
            if frame.kind == COMPRESSED:
                return decode_compressed(frame.data, frame.format)
            return decode_raw(frame.data, frame.width, frame.height, frame.encoding, frame.step)
        except ImageDecodeError as exc:
            raise _Failed(DECODE, str(exc), exc.reason) from exc

    def _run(self, image: np.ndarray, camera: CameraModel, frame_id: str, stamp: int):
        try:
            return self.pipeline.process(image, camera, camera_name=self.name,
                                         frame_id=frame_id, stamp_ns=stamp)  # fmt: skip
        except PipelineInputError as exc:
            kind = SIZE if "CameraInfo says" in str(exc) else BAD_IMAGE
            raise _Failed(kind, str(exc)) from exc
        except Exception as exc:  # a backend failing mid-stream costs one frame, not the node
            raise _Failed(PIPELINE, f"{type(exc).__name__}: {exc}") from exc

    def _lift_keypoints(self, frame: Frame, camera: CameraModel, frame_id: str) -> FrameResult:
        """A keypoint-level frame (H36M-17 pixels) through the 2D->3D half of the pipeline."""
        layout, kp, conf, who = frame.keypoints
        if layout != H36M_LAYOUT_ID:
            raise _Failed(BAD_KEYPOINTS, f"keypoint-level input must be h36m17, got {layout!r}")
        if kp is None:
            raise _Failed(BAD_KEYPOINTS, who)
        res = FrameResult(self.name, frame_id, frame.stamp_ns,
                          joint_names=tuple(H36M_JOINT_NAMES),
                          model_id=self.pipeline.model_id)  # fmt: skip
        if len(kp):
            try:
                res.people = self.pipeline.lift_people(kp, conf, camera, self.name,
                                                       frame.stamp_ns, who)  # fmt: skip
            except Exception as exc:
                raise _Failed(PIPELINE, f"{type(exc).__name__}: {exc}") from exc
        return res
