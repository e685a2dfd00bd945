"""The node's process around the node: arguments, transport profile, signals, exit.

Interrupts are ours, not rclpy's: rclpy's default handler shuts the context down from under
a worker that is still publishing (``publisher's context is invalid``). Here SIGINT and
SIGTERM only raise a flag; the main loop sees it within ``period_s``, stops and joins the
worker, then destroys the node and the context, in that order. A second signal exits at
once (someone insists), without running C++ destructors under a thread that is still busy.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


def ros_args(argv: list[str]) -> list[str]:
    """Accept ``--params-file F`` before ``--ros-args`` (pip-world convenience)."""
    out, ros, i = [argv[0]], [], 1
    while i < len(argv):
        if argv[i] == "--ros-args":
            ros += argv[i + 1 :]
            break
        if argv[i] == "--params-file" and i + 1 < len(argv):
            ros += ["--params-file", argv[i + 1]]
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out + (["--ros-args", *ros] if ros else [])


def params_files(args: list[str]) -> list[str]:
    """The ``--params-file`` values among ROS arguments (``--ros-args ... [--]`` sections)."""
    files, in_ros = [], False
    for i, arg in enumerate(args):
        if arg == "--ros-args":
            in_ros = True
        elif arg == "--":
            in_ros = False
        elif in_ros and arg == "--params-file" and i + 1 < len(args):
            files.append(args[i + 1])
    return files


def default_transport_profile() -> None:
    """Large images need the shared-memory profile; use ours unless the user set one."""
    if os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE") or os.environ.get(
        "FASTDDS_DEFAULT_PROFILES_FILE"
    ):
        return
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "config" / "fastdds_shm.xml"]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(
            Path(get_package_share_directory("hpe3d_ros")) / "config" / "fastdds_shm.xml"
        )
    except Exception:  # not in an ament index: the checkout path is enough
        pass
    for c in candidates:
        if c.is_file():
            os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(c)
            os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(c)
            return


class Interrupts:
    """SIGINT/SIGTERM handlers: the first sets :attr:`requested`, a second exits at once."""

    def __init__(self, logger) -> None:
        self.requested = threading.Event()
        self._logger = logger
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame) -> None:
        if self.requested.is_set():
            exit_now(1, f"{signal.Signals(signum).name} again: exiting without waiting for "
                        "the worker", self._logger)  # fmt: skip
        self.requested.set()


def spin_until(node: Node, stop: threading.Event, period_s: float = 0.1) -> None:
    """Spin ``node`` until ``stop`` is set (checked every ``period_s``) or the context ends."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while not stop.is_set() and node.context.ok():
            executor.spin_once(timeout_sec=period_s)
    finally:
        executor.remove_node(node)
        executor.shutdown(timeout_sec=0)


def exit_now(code: int, message: str, logger) -> None:
    """Log one line and leave the process without destructors or atexit handlers: a thread
    stuck in native code (a hung backend) would abort them (``terminate called ...``)."""
    logger.error(message)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
