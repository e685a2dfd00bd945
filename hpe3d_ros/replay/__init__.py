"""Offline evaluation: rosbag2 bags through what the node runs, into tables, bags and pictures.

Read from the top: :mod:`.cli` (``hpe3d-replay``: checks, models, exit codes) calls
:func:`.run.replay`, which reads a bag (:mod:`.bagio`, with :mod:`.bag_files`,
:mod:`.bag_mcap`, :mod:`.bag_sqlite` underneath), finds its cameras (:mod:`.inputs`), feeds
every message to the camera's :class:`hpe3d_ros.runner.CameraRunner` (the live node's
per-frame runner), writes the node's messages (:mod:`hpe3d_ros.ros.outputs`) into an output
bag, turns each outcome into table rows with GT errors (:mod:`.evaluate`,
:mod:`.ground_truth`), collects them (:mod:`.report`) and pictures (:mod:`.pictures`).
:mod:`.output` guards the output folder and :mod:`.signals` the interrupts.
:mod:`.make_bag` writes test and demo bags.
"""

from hpe3d_ros.replay.cli import SHIPPED_PARAMS, main
from hpe3d_ros.replay.inputs import discover_streams
from hpe3d_ros.replay.run import replay

__all__ = ["SHIPPED_PARAMS", "discover_streams", "main", "replay"]
