"""The pipeline node: cameras in, 3D skeletons, hypotheses, keypoints and diagnostics out.

Wiring only: subscriptions, QoS, one worker thread and publishing. Each camera has a
:class:`~hpe3d_ros.runner.CameraRunner` (the per-frame runner the replay drives too): the
subscription callback hands it the frame (a malformed header is refused at once) and puts
the frame into the camera's newest-frame slot, counting the frame it replaces as dropped;
the worker takes slots round-robin, lets the runner process the frame and publishes what
:mod:`hpe3d_ros.ros.outputs` builds. A bad frame is counted and reported (throttled) and
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
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from hpe3d_ros.build import ModelLoadError, build_pipeline
from hpe3d_ros.config import CameraConfig, ConfigError
from hpe3d_ros.msg import Keypoints2DArray, PoseHypothesesArray
from hpe3d_ros.param_schema import NODE_NAME
from hpe3d_ros.params_file import load_params_file, read_params_file
from hpe3d_ros.ros import process
from hpe3d_ros.ros.outputs import CameraHealth, diagnostics_message, frame_messages
from hpe3d_ros.ros.params import declare_and_read
from hpe3d_ros.ros.slot import LatestSlot
from hpe3d_ros.ros.throttle import Throttle
from hpe3d_ros.ros.topics import DIAGNOSTICS
from hpe3d_ros.ros.vehicle import NodeVehicle
from hpe3d_ros.runner import COMPRESSED, RAW, CameraRunner, Frame, Outcome, frame_from_msg
from hpe3d_ros.stamps import stamp_is_valid
from hpe3d_ros.untrusted import LINE_CHARS, one_line, show

#: rclpy hands a two-argument subscription callback the message info (with the publisher's
#: sequence number) from Iron on; Humble's calls every callback with the message alone.
WITH_MESSAGE_INFO = hasattr(Subscription, "CallbackType")
#: How long shutdown waits for the frame in flight before giving up on the worker.
SHUTDOWN_WAIT_S = 5.0
#: Message type and queue depth of each per-camera output (kinds of :mod:`hpe3d_ros.ros.topics`).
PUBLISHED = {
    "hypotheses": (PoseHypothesesArray, 10),
    "keypoints": (Keypoints2DArray, 10),
    "markers": (MarkerArray, 10),
    "debug_image": (Image, 2),
}


@dataclass
class CameraChannel:
    """One camera: its runner, its newest-frame slot, its publishers."""

    cfg: CameraConfig
    runner: CameraRunner
    slot: LatestSlot = field(default_factory=LatestSlot)
    pubs: dict = field(default_factory=dict)
    subs: list = field(default_factory=list)
    #: the image topic has exactly one publisher (refreshed with each diagnostics report):
    #: only then do the message info's sequence numbers count the frames lost on the way
    one_publisher: bool = False


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
        self.config = cfg = declare_and_read(self)  # ConfigError: caught in main()
        self.pipeline = build_pipeline(cfg)  # ModelLoadError: caught in main()
        self.throttle = Throttle(5.0)
        self.get_logger().info(
            f"detector {cfg.detector.name} ({cfg.detector.mode}, {cfg.detector.device}); "
            f"lifter {self.pipeline.model_id} on {cfg.lifter.device}, "
            f"K={cfg.pipeline.num_hypotheses}"
        )
        img_qos = _qos(cfg.qos.image_reliability, cfg.qos.image_depth)
        info_qos = _qos(cfg.qos.camera_info_reliability, 5)
        self.channels: list[CameraChannel] = []
        for cam in cfg.cameras:
            runner = CameraRunner(cam.name, self.pipeline, frame_id=cam.frame_id,
                                  info_tolerance_s=cfg.camera_info_tolerance_s,
                                  rectified=cam.rectified)  # fmt: skip
            ch = CameraChannel(cam, runner)
            for kind, (msg_type, depth) in PUBLISHED.items():
                if kind == "hypotheses" or getattr(cfg.output, kind):
                    ch.pubs[kind] = self.create_publisher(msg_type, f"~/{cam.name}/{kind}", depth)
            msg_type = CompressedImage if cam.compressed else Image
            on_image = (
                (lambda m, info, c=ch: self._on_image(c, m, info))
                if WITH_MESSAGE_INFO
                else (lambda m, c=ch: self._on_image(c, m))
            )
            ch.subs.append(self.create_subscription(msg_type, cam.image_topic, on_image, img_qos))
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
                f"{cfg.qos.image_reliability}) + {cam.camera_info_topic}"
                + (" (rectified: CameraInfo P)" if cam.rectified else "")
            )  # fmt: skip
        self.vehicle = NodeVehicle(self, cfg, self.pipeline)  # ~/people: poses, fuser
        if cfg.vehicle.people:
            self.get_logger().info(f"~/people in {cfg.vehicle.target_frame}; camera poses: "
                                   f"{self.vehicle.summary}")  # fmt: skip
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self.create_timer(cfg.diagnostics.period_s, self._publish_diagnostics)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._publish_lock = threading.Lock()  # shutdown() closes publishing under it
        self._closed = False
        self._busy: tuple[str, float] | None = None  # (camera, since) while processing
        self._last_finish = time.monotonic()  # the worker last finished a frame (any camera)
        self._worker = threading.Thread(target=self._work, name="hpe3d-worker", daemon=True)
        self._worker.start()

    # ---------------------------------------------------------------- callbacks
    def _on_image(self, ch: CameraChannel, msg, info=None) -> None:
        t = time.monotonic()
        frame = frame_from_msg(msg, COMPRESSED if isinstance(msg, CompressedImage) else RAW)
        # the publisher's number for this message (None where the middleware has none, e.g.
        # Cyclone DDS): holes in it are frames lost before the node, counted exactly
        sequence = info.get("publication_sequence_number") if info and ch.one_publisher else None
        # header checks cost next to nothing: a malformed frame or a decompression bomb never
        # waits for (or displaces a good frame from) the worker
        rejected = ch.runner.arrive(frame, t, sequence)
        if rejected is not None:
            return self._report(ch, rejected)
        if not stamp_is_valid(msg.header.stamp):
            self._warn(ch, "stamp", f"stamp nanosec {msg.header.stamp.nanosec} >= 10^9 is "
                                    "invalid; passed through unchanged")  # fmt: skip
        if ch.slot.put((frame, t)):
            ch.runner.stats.on_drop()
        self._wake.set()

    def _on_info(self, ch: CameraChannel, msg: CameraInfo) -> None:
        why = ch.runner.camera_info(msg)
        if why:
            self._warn(ch, "camera_info", f"invalid CameraInfo: {why}", "invalid")

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
                    name = type(exc).__name__
                    ch.runner.stats.on_failed("publish", f"{name}: {exc}")
                    self._warn(ch, "publish", f"{name}: {exc}", name)
                finally:
                    self._busy = None
                    self._last_finish = time.monotonic()
                    ch.slot.done()
            if not busy:
                self._wake.wait(0.05)
                self._wake.clear()

    def _process(self, ch: CameraChannel, frame: Frame, t_rx: float) -> None:
        info_frame = ch.runner.calibration.frame_id
        if info_frame and frame.frame_id != info_frame:
            self._warn(ch, "frame_id", f"image frame {show(frame.frame_id)} != "
                                       f"CameraInfo frame {show(info_frame)}")  # fmt: skip
        pose = self.vehicle.pose(ch.cfg.name, ch.cfg.frame_id or frame.frame_id, frame.stamp_ns)
        out = ch.runner.process(frame, t_rx, time.monotonic())
        if not out.ok:
            return self._report(ch, out)
        msgs = frame_messages(out.result, out.image, self.config.output)
        with self._publish_lock:
            if self._closed:  # shutting down: publishers may be gone
                return
            for kind, msg in msgs:
                ch.pubs[kind].publish(msg)
        people = self.vehicle.messages(ch.cfg.name, out, pose)  # after the camera's outputs
        if self.config.vehicle.people and pose.transform is None:
            self._warn(ch, "pose", f"not in ~/people: {pose.reason}")
        with self._publish_lock:
            if self._closed:
                return
            for kind, msg in people:
                self.vehicle.pubs[kind].publish(msg)

    def _stalled_s(self, ch: CameraChannel) -> float:
        """How long this camera's oldest frame has waited while the worker finished nothing
        (a slow but working round-robin over many cameras is not a stall)."""
        return min(ch.slot.waiting_s(), time.monotonic() - self._last_finish)

    def busy_text(self) -> str:
        busy = self._busy
        if busy is None:
            return "idle"
        return f"busy with camera {busy[0]} for {time.monotonic() - busy[1]:.1f} s"

    def _report(self, ch: CameraChannel, out: Outcome) -> None:
        """A failed frame (already counted by the runner), logged at most once per kind."""
        self._warn(ch, out.kind, out.reason, out.code)

    def _warn(self, ch: CameraChannel, kind: str, message: str, reason: str = "") -> None:
        """At most one line per camera, kind and reason code every 5 s, whatever the text
        (36,000 distinct bad encodings are one kind of problem); the line is cut and
        escaped, since messages embed what the camera sent."""
        suppressed = self.throttle(f"{ch.cfg.name}/{kind}/{reason}")
        if suppressed is not None:
            more = f" (+{suppressed} more of this kind in the last 5 s)" if suppressed else ""
            line = one_line(f"camera {ch.cfg.name}: {message}", LINE_CHARS - len(more))
            self.get_logger().warning(line + more)  # LINE_CHARS in all, after the logger's prefix

    # ---------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        d = self.config.diagnostics
        for ch in self.channels:
            ch.one_publisher = self.count_publishers(ch.cfg.image_topic) == 1
        now, worker = time.monotonic(), self.busy_text()
        health = [
            CameraHealth(
                ch.cfg.name,
                {
                    **ch.runner.snapshot(now),
                    "waiting_s": self._stalled_s(ch),
                    "worker": worker,
                    **self.vehicle.view.snapshot(ch.cfg.name),
                },
                len(ch.runner.calibration) > 0,
            )
            for ch in self.channels
        ]
        extra = {"lifter": self.pipeline.model_id, "detector": self.config.detector.mode}
        stamp = self.get_clock().now().nanoseconds
        self.diag_pub.publish(diagnostics_message(
            stamp, self.get_fully_qualified_name(), health, d.stale_timeout_s, extra,
            (d.stall_warn_s, d.stall_error_s)))  # fmt: skip

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
USAGE = """usage: hpe3d-pipeline [--params-file FILE] [--ros-args ROS_ARGS ...]

The hpe3d_ros pipeline node (also `ros2 run hpe3d_ros pipeline_node`).

options:
  -h, --help          show this help and exit
  --params-file FILE  node parameters YAML, keyed `/**:` or by the node's name (default: none:
                      the built-in defaults, which config/pipeline.yaml lists with their meaning)
  --ros-args ...      ROS arguments: -r remappings (e.g. -r __ns:=/perception), -p name:=value,
                      --params-file, --log-level

exit status: 0 after SIGINT/SIGTERM, 1 when a model cannot load (or the worker does not stop
within 5 s), 2 for an invalid configuration or argument."""


def main(argv: list[str] | None = None) -> int:
    """``hpe3d-pipeline [--params-file F] [--ros-args ...]`` (also ``ros2 run``'s entry).

    Exit status: 0 after SIGINT/SIGTERM (worker stopped and joined before the context goes),
    2 for an invalid configuration, 1 for a model that cannot load or a worker that does not
    stop within 5 s (e.g. a hung backend: one line, no abort).
    """
    args = process.ros_args(list(sys.argv if argv is None else argv))
    ours = args[1 : args.index("--ros-args")] if "--ros-args" in args else args[1:]
    if "-h" in ours or "--help" in ours:
        print(USAGE)
        return 0
    if ours:  # anything but --params-file and ROS arguments is a mistake, not something to skip
        print(f"hpe3d-pipeline: error: unrecognised argument {show(ours[0])} (see --help)",
              file=sys.stderr)  # fmt: skip
        return 2
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
