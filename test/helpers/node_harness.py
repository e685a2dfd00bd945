"""An in-process pipeline node with a stand-in pipeline, plus a driver node, on one executor.

For node tests that need to control what the pipeline does (fail, block, answer at once)
while everything else (subscriptions, worker thread, publishers, diagnostics) is the real
node over real DDS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

import hpe3d_ros.ros.node as node_mod


class NoLifter:
    """A lifter that is never reached: the stand-in detectors find nobody."""

    joint_names = ()

    def sample(self, *a, **k):
        raise AssertionError("the lifter should not be called")


class NobodyDetector:
    """Finds nobody, at once (every frame is processed and published with no people)."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image_rgb):
        self.calls += 1
        return []


@contextmanager
def running_node(
    monkeypatch, pipeline, overrides: dict[str, Any] | None = None, driver: str = "driver"
) -> Iterator[tuple[node_mod.PipelineNode, Any]]:
    """(node, driver node) spinning on a background executor; torn down in order."""
    monkeypatch.setattr(node_mod, "build_pipeline", lambda cfg: pipeline)
    rclpy.init()
    node = node_mod.PipelineNode(
        parameter_overrides=[Parameter(k, value=v) for k, v in (overrides or {}).items()]
    )
    drv = rclpy.create_node(driver)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(drv)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    try:
        yield node, drv
    finally:
        ex.shutdown()
        node.shutdown()
        node.destroy_node()
        drv.destroy_node()
        rclpy.try_shutdown()


def wait_for(done: Callable[[], bool], timeout_s: float, period_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(period_s)
    return done()
