"""Topic names of the node's outputs, shared by the node, replay and tests (ROS-free).

Per camera ``N``, under the node's namespace and name (``~/N/...`` in ROS terms):

* ``~/N/hypotheses``  hpe3d_ros/msg/PoseHypothesesArray
* ``~/N/keypoints``   hpe3d_ros/msg/Keypoints2DArray
* ``~/N/markers``     visualization_msgs/msg/MarkerArray
* ``~/N/debug_image`` sensor_msgs/msg/Image (only with output.debug_image)

and ``/diagnostics`` (diagnostic_msgs/msg/DiagnosticArray) for all cameras; with
``output.people``, for the whole node (every camera fused in ``target_frame``):

* ``~/people``         hpe3d_ros/msg/People
* ``~/people_markers`` visualization_msgs/msg/MarkerArray (with output.markers)
"""

from __future__ import annotations

DIAGNOSTICS = "/diagnostics"
OUTPUTS = {
    "hypotheses": "hpe3d_ros/msg/PoseHypothesesArray",
    "keypoints": "hpe3d_ros/msg/Keypoints2DArray",
    "markers": "visualization_msgs/msg/MarkerArray",
    "debug_image": "sensor_msgs/msg/Image",
}


PEOPLE_OUTPUTS = {
    "people": "hpe3d_ros/msg/People",
    "people_markers": "visualization_msgs/msg/MarkerArray",
}


def node_prefix(node_name: str, namespace: str = "/") -> str:
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{node_name}"


def output_topic(
    camera: str, kind: str, node_name: str = "hpe3d_pipeline", namespace: str = "/"
) -> str:
    """Fully qualified output topic, e.g. ``/hpe3d_pipeline/front/hypotheses``."""
    if kind not in OUTPUTS:
        raise ValueError(f"unknown output {kind!r}; one of {sorted(OUTPUTS)}")
    return f"{node_prefix(node_name, namespace)}/{camera}/{kind}"


def people_topic(
    kind: str = "people", node_name: str = "hpe3d_pipeline", namespace: str = "/"
) -> str:
    """Fully qualified node-wide output, e.g. ``/hpe3d_pipeline/people``."""
    if kind not in PEOPLE_OUTPUTS:
        raise ValueError(f"unknown output {kind!r}; one of {sorted(PEOPLE_OUTPUTS)}")
    return f"{node_prefix(node_name, namespace)}/{kind}"
