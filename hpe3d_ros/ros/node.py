"""The pipeline node: cameras in, 3D skeletons, hypotheses, keypoints and diagnostics out.

Wiring only. Subscription callbacks just put the newest frame into a per-camera slot
(counting the frame they replace as dropped); one worker thread takes slots round-robin and
runs :class:`hpe3d_ros.pipeline.Pipeline`. A bad frame is counted and reported (throttled) and
never stops the node or the other cameras.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from hpe3d_ros.build import ModelLoadError, build_pipeline
from hpe3d_ros.camera import CameraModel, CameraModelError
from hpe3d_ros.config import NODE_NAME, CameraConfig, ConfigError
from hpe3d_ros.imaging import (
    ImageDecodeError,
    check_compressed,
    check_raw_header,
    decode_compressed,
    decode_raw,
    encode_raw,
)
from hpe3d_ros.msg import Keypoints2DArray, PoseHypothesesArray
from hpe3d_ros.params_file import load_params_file, read_params_file
from hpe3d_ros.pipeline import PipelineInputError
from hpe3d_ros.ros import diagnostics, process
from hpe3d_ros.ros.conversions import (
    hypotheses_to_msg,
    keypoints_to_msg,
    stamp_is_valid,
    stamp_to_ns,
)
from hpe3d_ros.ros.markers import markers_from_result
from hpe3d_ros.ros.params import declare_and_read
from hpe3d_ros.streams import CameraInfoCache, LatestSlot, MissingCameraInfo, StreamStats, Throttle
from hpe3d_ros.topics import DIAGNOSTICS
from hpe3d_ros.untrusted import one_line, show

#: How long shutdown waits for the frame in flight before giving up on the worker.
SHUTDOWN_WAIT_S = 5.0


@dataclass
class CameraChannel:
    """Runtime state of one camera."""

    cfg: CameraConfig
    info: CameraInfoCache
    slot: LatestSlot = field(default_factory=LatestSlot)
    stats: StreamStats = field(default_factory=StreamStats)
    info_frame_id: str = ""
    pubs: dict = field(default_factory=dict)
    subs: list = field(default_factory=list)


def _qos(reliability: str, depth: int) -> QoSProfile:
    rel = (
        ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    )
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel)


class PipelineNode(Node):
    def __init__(self, params_files: Sequence[str] = (), **kwargs) -> None:
        """``params_files``: the ``--params-file`` arguments, checked for a section that
        applies to this node (a misspelt key or a namespace must not mean silent defaults)."""
        super().__init__(NODE_NAME, **kwargs)
        fqn = self.get_fully_qualified_name()
        for path in params_files:  # ConfigError: caught in main()
            n = len(load_params_file(path, fqn))
            self.get_logger().info(f"{n} parameters for {fqn} from {path}")
        self.config = declare_and_read(self)  # ConfigError: caught in main()
        self.pipeline = build_pipeline(self.config)  # ModelLoadError: caught in main()
        self.throttle = Throttle(5.0)
        v = self.config.values
        self.get_logger().info(
            f"detector {self.config.detector['name']} ({self.config.detector['mode']}, "
            f"{self.config.detector['device']}); lifter {self.pipeline.model_id} on "
            f"{self.config.lifter_device}, K={self.config.pipeline.num_hypotheses}"
        )
        img_qos = _qos(v["qos.image_reliability"], v["qos.image_depth"])
        info_qos = _qos(v["qos.camera_info_reliability"], 5)
        self.channels: list[CameraChannel] = []
        for cam in self.config.cameras:
            ch = CameraChannel(cam, CameraInfoCache(v["camera_info_tolerance_s"]))
            ch.pubs["hypotheses"] = self.create_publisher(
                PoseHypothesesArray, f"~/{cam.name}/hypotheses", 10
            )
            if v["output.keypoints"]:
                ch.pubs["keypoints"] = self.create_publisher(
                    Keypoints2DArray, f"~/{cam.name}/keypoints", 10
                )
            if v["output.markers"]:
                ch.pubs["markers"] = self.create_publisher(
                    MarkerArray, f"~/{cam.name}/markers", 10
                )
            if v["output.debug_image"]:
                ch.pubs["debug_image"] = self.create_publisher(
                    Image, f"~/{cam.name}/debug_image", 2
                )
            msg_type = CompressedImage if cam.compressed else Image
            ch.subs.append(
                self.create_subscription(
                    msg_type, cam.image_topic, lambda m, c=ch: self._on_image(c, m), img_qos
                )
            )
            ch.subs.append(
                self.create_subscription(
                    CameraInfo,
                    cam.camera_info_topic,
                    lambda m, c=ch: self._on_info(c, m),
                    info_qos,
                )
            )
            self.channels.append(ch)
            self.get_logger().info(
                f"camera {cam.name}: {cam.image_topic} ({msg_type.__name__}, "
                f"{v['qos.image_reliability']}) + {cam.camera_info_topic}"
            )
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self.create_timer(v["diagnostics.period_s"], self._publish_diagnostics)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._publish_lock = threading.Lock()  # shutdown() closes publishing under it
        self._closed = False
        self._busy: tuple[str, float] | None = None  # (camera, since) while processing
        self._last_finish = time.monotonic()  # the worker last finished a frame (any camera)
        self._worker = threading.Thread(target=self._work, name="hpe3d-worker", daemon=True)
        self._worker.start()

    # ---------------------------------------------------------------- callbacks
    def _on_image(self, ch: CameraChannel, msg) -> None:
        ch.stats.on_receive()
        # header checks cost next to nothing: a malformed frame or a decompression bomb never
        # waits for (or displaces a good frame from) the worker
        try:
            if isinstance(msg, Image):
                check_raw_header(msg.width, msg.height, msg.encoding, msg.step, len(msg.data))
            else:
                check_compressed(msg.data, msg.format)
        except ImageDecodeError as exc:
            return self._fail(ch, "decode", str(exc), exc.reason)
        if ch.slot.put((msg, time.monotonic())):
            ch.stats.on_drop()
        self._wake.set()

    def _on_info(self, ch: CameraChannel, msg: CameraInfo) -> None:
        try:
            model = CameraModel.from_camera_info_fields(
                msg.width, msg.height, msg.k, msg.d, msg.distortion_model
            )
        except CameraModelError as exc:
            ch.info.last_error = one_line(exc)
            self._warn(ch, "camera_info", f"invalid CameraInfo ignored: {exc}", "invalid")
            return
        ch.info_frame_id = msg.header.frame_id
        ch.info.add(stamp_to_ns(msg.header.stamp), model)

    # ---------------------------------------------------------------- worker
    def _work(self) -> None:
        while not self._stop.is_set():
            busy = False
            for ch in self.channels:
                item = None if self._stop.is_set() else ch.slot.take()
                if item is None:
                    continue
                busy = True
                self._busy = (ch.cfg.name, time.monotonic())
                try:
                    self._process(ch, *item)
                except Exception as exc:  # building or publishing outputs: never kill the worker
                    self._fail(ch, "publish", f"{type(exc).__name__}: {exc}", type(exc).__name__)
                finally:
                    self._busy = None
                    self._last_finish = time.monotonic()
                    ch.slot.done()
            if not busy:
                self._wake.wait(0.05)
                self._wake.clear()

    def _stalled_s(self, ch: CameraChannel) -> float:
        """How long this camera's oldest frame has waited while the worker finished nothing
        (a slow but working round-robin over many cameras is not a stall)."""
        return min(ch.slot.waiting_s(), time.monotonic() - self._last_finish)

    def busy_text(self) -> str:
        busy = self._busy
        if busy is None:
            return "idle"
        return f"busy with camera {busy[0]} for {time.monotonic() - busy[1]:.1f} s"

    def _process(self, ch: CameraChannel, msg, t_rx: float) -> None:
        stamp_ns = stamp_to_ns(msg.header.stamp)  # outputs carry this very stamp, bit for bit
        if not stamp_is_valid(msg.header.stamp):
            self._warn(ch, "stamp", f"stamp nanosec {msg.header.stamp.nanosec} >= 10^9 is "
                                    "invalid; passed through unchanged")  # fmt: skip
        try:
            if isinstance(msg, CompressedImage):
                image = decode_compressed(msg.data, msg.format)
            else:
                image = decode_raw(msg.data, msg.width, msg.height, msg.encoding, msg.step)
            camera = ch.info.lookup(stamp_ns)
            if ch.info_frame_id and msg.header.frame_id != ch.info_frame_id:
                self._warn(
                    ch,
                    "frame_id",
                    f"image frame {show(msg.header.frame_id)} != "
                    f"CameraInfo frame {show(ch.info_frame_id)}",
                )
            frame_id = ch.cfg.frame_id or msg.header.frame_id
            result = self.pipeline.process(
                image, camera, camera_name=ch.cfg.name, frame_id=frame_id, stamp_ns=stamp_ns
            )
        except MissingCameraInfo as exc:
            return self._fail(ch, "camera_info", f"frame skipped: {exc}", "missing")
        except ImageDecodeError as exc:
            return self._fail(ch, "decode", str(exc), exc.reason)
        except PipelineInputError as exc:
            return self._fail(ch, "input", str(exc))
        except Exception as exc:  # a backend failing mid-stream costs one frame, not the node
            name = type(exc).__name__
            return self._fail(ch, "pipeline", f"{name}: {exc}", name)
        outputs = [("hypotheses", hypotheses_to_msg(result))]
        if "keypoints" in ch.pubs:
            outputs.append(("keypoints", keypoints_to_msg(result)))
        if "markers" in ch.pubs:
            lifetime = self.config["output.marker_lifetime_s"]
            outputs.append(("markers", markers_from_result(result, lifetime)))
        if "debug_image" in ch.pubs:
            outputs.append(("debug_image", self._debug_image(msg, image, result)))
        with self._publish_lock:
            if self._closed:  # shutting down: publishers may be gone
                return
            for topic, out in outputs:
                ch.pubs[topic].publish(out)
        ch.stats.on_processed(1e3 * (time.monotonic() - t_rx))

    def _debug_image(self, msg, image, result) -> Image:
        from hpe3d_ros.detection.base import Person2D
        from hpe3d_ros.detection.draw import draw_people

        people = [
            Person2D(d.keypoints_px, d.confidence, tuple(d.bbox_px), d.score, d.track_id)
            for d in result.detections
        ]
        data, step = encode_raw(draw_people(image, people), "rgb8")
        out = Image(header=msg.header, height=image.shape[0], width=image.shape[1])
        out.header.frame_id = result.frame_id
        out.encoding, out.step, out.data = "rgb8", step, data
        return out

    def _fail(self, ch: CameraChannel, kind: str, message: str, reason: str = "") -> None:
        ch.stats.on_failed(kind, message)
        self._warn(ch, kind, message, reason)

    def _warn(self, ch: CameraChannel, kind: str, message: str, reason: str = "") -> None:
        """At most one line per camera, kind and reason code every 5 s, whatever the text
        (36,000 distinct bad encodings are one kind of problem); the line is cut and
        escaped, since messages embed what the camera sent."""
        suppressed = self.throttle(f"{ch.cfg.name}/{kind}/{reason}")
        if suppressed is not None:
            more = f" (+{suppressed} more of this kind in the last 5 s)" if suppressed else ""
            self.get_logger().warning(f"camera {ch.cfg.name}: {one_line(message)}{more}")

    # ---------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        extra = {"lifter": self.pipeline.model_id, "detector": str(self.config.detector["mode"])}
        stall = (self.config["diagnostics.stall_warn_s"], self.config["diagnostics.stall_error_s"])
        worker = self.busy_text()
        statuses = [
            diagnostics.camera_status(
                self.get_fully_qualified_name(),
                ch.cfg.name,
                {**ch.stats.snapshot(), "waiting_s": self._stalled_s(ch), "worker": worker},
                self.config["diagnostics.stale_timeout_s"],
                len(ch.info) > 0,
                extra,
                stall,
            )
            for ch in self.channels
        ]
        self.diag_pub.publish(
            diagnostics.diagnostic_array(self.get_clock().now().to_msg(), statuses)
        )

    def shutdown(self, timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
        """Stop the worker (its frame in flight is finished and published) and close
        publishing, before the node and the context go. False: the worker is still busy
        after ``timeout_s`` (a hung backend); it will publish nothing more."""
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout=timeout_s)
        if self._publish_lock.acquire(timeout=1.0):
            self._closed = True
            self._publish_lock.release()
        return not self._worker.is_alive()


# -------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    """``hpe3d-pipeline [--params-file F] [--ros-args ...]`` (also ``ros2 run``'s entry).

    Exit status: 0 after SIGINT/SIGTERM (worker stopped and joined before the context goes),
    2 for an invalid configuration, 1 for a model that cannot load or a worker that does not
    stop within 5 s (e.g. a hung backend: one line, no abort).
    """
    args = process.ros_args(list(sys.argv if argv is None else argv))
    if "-h" in args[1:] or "--help" in args[1:]:
        print(main.__doc__ + "\nParameters: see config/pipeline.yaml.")
        return 0
    process.default_transport_profile()
    files = process.params_files(args)
    log = rclpy.logging.get_logger(NODE_NAME)
    interrupts = process.Interrupts(log)  # before anything slow: no KeyboardInterrupt anywhere
    try:
        for path in files:  # unreadable or empty: one line, before rcl's own parser
            read_params_file(path)
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except (ConfigError, RCLError) as exc:
        log.fatal(f"invalid configuration: {exc}".splitlines()[0])
        return 2
    log.info(f"starting (pid {os.getpid()}); SIGINT/SIGTERM stop it cleanly from here on")
    node = None
    worker_stopped = True
    try:
        node = PipelineNode(params_files=files)
        process.spin_until(node, interrupts.requested)
        return 0
    except ConfigError as exc:
        log.fatal(f"invalid configuration: {exc}")
        return 2
    except ModelLoadError as exc:
        log.fatal(str(exc))
        return 1
    except ExternalShutdownException:
        return 0
    finally:
        if node is not None:
            worker_stopped = node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
        if not worker_stopped:
            process.exit_now(1, f"worker still busy after {SHUTDOWN_WAIT_S:.0f} s "
                                f"({node.busy_text()}); exiting without it", log)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
