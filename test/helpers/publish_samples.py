"""Child process for the DDS test: publishes the sample messages until terminated."""

from __future__ import annotations

import sys
import time

import rclpy
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

from hpe3d_ros.msg import Keypoints2DArray, PoseHypothesesArray
from hpe3d_ros.ros.conversions import hypotheses_to_msg, keypoints_to_msg
from test.helpers.sample_results import make_sample_result


def main() -> int:
    rclpy.init()
    node = rclpy.create_node("sample_publisher")
    qos = QoSProfile(
        depth=1,
        reliability=QoSReliabilityPolicy.RELIABLE,
        durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
    )
    pub_h = node.create_publisher(PoseHypothesesArray, "/test/hypotheses", qos)
    pub_k = node.create_publisher(Keypoints2DArray, "/test/keypoints", qos)
    result = make_sample_result()
    msg_h, msg_k = hypotheses_to_msg(result), keypoints_to_msg(result)
    deadline = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 30)
    try:
        while time.monotonic() < deadline:
            pub_h.publish(msg_h)
            pub_k.publish(msg_k)
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
