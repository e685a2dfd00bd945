"""The node as its own process (the pip-world runner) plus a test node that talks to it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from hpe3d_ros.msg import Keypoints2DArray, PoseHypothesesArray
from hpe3d_ros.ros.topics import output_topic
from test.conftest import REPO

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class NodeUnderTest:
    """The node process plus a test node that publishes cameras and records outputs."""

    def __init__(self, params_file, log_file):
        self.log_file = log_file
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hpe3d_ros.ros.node", "--params-file", str(params_file)],
            cwd=REPO,
            stdout=log_file.open("w"),
            stderr=subprocess.STDOUT,
        )
        rclpy.init()
        self.node = rclpy.create_node("node_test_driver")
        self.got: dict[str, list] = defaultdict(list)

    def listen(self, camera: str) -> None:
        for kind, typ in (
            ("hypotheses", PoseHypothesesArray),
            ("keypoints", Keypoints2DArray),
            ("markers", MarkerArray),
            ("debug_image", Image),
        ):
            key = f"{camera}/{kind}"
            self.node.create_subscription(
                typ, output_topic(camera, kind), lambda m, k=key: self.got[k].append(m), RELIABLE
            )

    def spin_until(self, done, timeout_s: float, tick=None) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node exited {self.proc.returncode}:\n{self.log()}")
            if tick is not None:
                tick()
            rclpy.spin_once(self.node, timeout_sec=0.2)
            if done():
                return True
        return False

    def log(self, tail: int = 4000) -> str:
        text = self.log_file.read_text(errors="replace")
        return text[-tail:] if tail else text

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.try_shutdown()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
