"""``~/people`` in the node: camera poses from TF or parameters, one fuser, its publishers.

Thin ROS glue around :class:`hpe3d_ros.fusion.driver.VehicleView` (the replay drives the same
view): :class:`NodeVehicle` makes the TF buffer and listener where tf2_ros is installed
(real ROS 2; the pip world has none, so poses come from ``cameras.<name>.extrinsics``), the
``~/people`` and ``~/people_markers`` publishers, and turns a people list into messages
(:func:`people_messages`, shared with the replay).
"""

from __future__ import annotations

from typing import Any

from rclpy.duration import Duration
from rclpy.time import Time
from visualization_msgs.msg import MarkerArray

from hpe3d_ros.config import NodeConfig, OutputConfig
from hpe3d_ros.fusion.buffer import transform_from_msg
from hpe3d_ros.fusion.driver import CameraPose, VehicleView
from hpe3d_ros.fusion.tracks import PeopleList
from hpe3d_ros.fusion.transforms import Transform, TransformUnavailable
from hpe3d_ros.msg import People
from hpe3d_ros.ros.markers import people_markers
from hpe3d_ros.ros.people import people_to_msg
from hpe3d_ros.runner import Outcome
from hpe3d_ros.untrusted import one_line

#: Node-wide outputs of the vehicle's view: kind -> (message type, queue depth).
PEOPLE_OUTPUTS = {"people": (People, 10), "people_markers": (MarkerArray, 10)}


def people_messages(people: PeopleList, opts: OutputConfig) -> list[tuple[str, Any]]:
    """``(kind, message)`` for one people list: ``people``, then ``people_markers`` (with
    ``output.markers``)."""
    out: list[tuple[str, Any]] = [("people", people_to_msg(people))]
    if opts.markers:
        out.append(("people_markers", people_markers(people, opts.marker_lifetime_s)))
    return out


class TfSource:
    """A ``tf2_ros.Buffer`` (anything with its ``lookup_transform``) as a TransformSource:
    the lookup is at the image stamp and waits up to ``timeout_s`` for it."""

    def __init__(self, buffer: Any, timeout_s: float) -> None:
        self.buffer = buffer
        self.timeout = Duration(nanoseconds=round(timeout_s * 1e9))

    def lookup(self, target: str, source: str, stamp_ns: int = 0) -> Transform:
        try:
            msg = self.buffer.lookup_transform(target, source, Time(nanoseconds=int(stamp_ns)),
                                               timeout=self.timeout)  # fmt: skip
            return transform_from_msg(msg)[1]
        except Exception as exc:  # tf2's Lookup/Connectivity/Extrapolation/Timeout errors
            raise TransformUnavailable(f"{type(exc).__name__}: {one_line(exc, 200)}") from None


def make_tf_buffer(node: Any) -> tuple[Any, Any, str]:
    """``(tf2_ros.Buffer, its TransformListener on node, "")``, or ``(None, None, why not)``."""
    try:
        import tf2_ros
    except ImportError:
        return None, None, "tf2_ros is not installed (pip world): give cameras.N.extrinsics"
    buffer = tf2_ros.Buffer()
    return buffer, tf2_ros.TransformListener(buffer, node), ""


class NodeVehicle:
    """The node's vehicle view (see the module docstring)."""

    def __init__(self, node: Any, cfg: NodeConfig, pipeline: Any) -> None:
        v = cfg.vehicle
        transforms, why = None, "output.people is off"
        self.pubs: dict[str, Any] = {}
        self.listener = None  # kept alive with the node
        if v.people:
            buffer, self.listener, why = make_tf_buffer(node)
            transforms = TfSource(buffer, v.tf_timeout_s) if buffer is not None else None
            for kind, (msg_type, depth) in PEOPLE_OUTPUTS.items():
                if kind == "people" or cfg.output.markers:
                    self.pubs[kind] = node.create_publisher(msg_type, f"~/{kind}", depth)
        self.output = cfg.output
        self.view = VehicleView(v, {c.name: c.extrinsics for c in cfg.cameras}, pipeline,
                                transforms, why)  # fmt: skip
        tf = "TF" if transforms is not None else why
        self.summary = ", ".join(
            f"{c.name} ({'parameters' if c.extrinsics is not None else tf})" for c in cfg.cameras
        )

    def pose(self, camera: str, frame_id: str, stamp_ns: int) -> CameraPose:
        return self.view.pose(camera, frame_id, stamp_ns)

    def messages(self, camera: str, out: Outcome, pose: CameraPose) -> list[tuple[str, Any]]:
        """Fuse one processed frame; the ``~/people`` messages to publish (maybe none)."""
        people = self.view.fuse(camera, out.result, out.camera, pose)
        return [] if people is None else people_messages(people, self.output)
