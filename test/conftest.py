"""Shared test fixtures: paths to the repository, test data and the shared mocap data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "test" / "data"
#: CI and developers have ../shared beside the checkout; a user's clone does not.
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_mocap() -> Path:
    path = SHARED_DATA / "cmu_h36m17_30fps.npz"
    if not path.exists():
        pytest.skip(f"shared mocap not found at {path} (only CI and developers have ../shared)")
    return path


def _ros_test_environment() -> None:
    """Localhost-only discovery, a domain id unique to this run, the SHM profile, logs in build/.

    Set before any rclpy context exists; child processes inherit it. tools/run_tests.sh sets
    the same variables, so this only matters when pytest is started by hand.
    """
    profile = str(REPO / "config" / "fastdds_shm.xml")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", profile)
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", profile)
    os.environ.setdefault("ROS_LOG_DIR", str(REPO / "build" / "ros_log"))
    # exported ONNX files and TensorRT engines stay inside the checkout
    os.environ.setdefault("HPE3D_ONNX_CACHE", str(REPO / "build" / "cache" / "onnx"))
    os.environ.setdefault("HPE3D_ENGINE_CACHE", str(REPO / "build" / "cache" / "engines"))


_ros_test_environment()
