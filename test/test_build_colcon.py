"""The package builds as a ROS 2 workspace builds it (colcon + ament_cmake), not only via make."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from test.conftest import REPO

pytestmark = pytest.mark.slow
VENV = REPO / ".venv"


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory):
    if not (VENV / "bin" / "colcon").exists():
        pytest.skip("colcon not installed in .venv (run `make test`, which sets it up)")
    out = tmp_path_factory.mktemp("colcon")
    env = dict(os.environ, VENV=str(VENV), COLCON_OUT=str(out))
    proc = subprocess.run(
        [str(REPO / "tools" / "colcon_build.sh")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "install" / "hpe3d_ros"


def test_colcon_installs_messages_core_launch_and_executables(colcon_install):
    site = colcon_install / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    pkg = site / "site-packages" / "hpe3d_ros"
    assert (pkg / "msg" / "_pose_hypotheses_array.py").is_file()
    assert (pkg / "camera.py").is_file() and (pkg / "skeleton.py").is_file()
    # our __init__ replaced rosidl's empty one
    assert "ROS-free core" in (pkg / "__init__.py").read_text()
    share = colcon_install / "share" / "hpe3d_ros"
    assert (share / "package.xml").is_file()
    assert (share / "msg" / "PoseHypothesesArray.msg").is_file()
    assert (share / "config" / "fastdds_shm.xml").is_file()
    assert os.access(colcon_install / "lib" / "hpe3d_ros" / "pipeline_node", os.X_OK)


def test_colcon_install_imports_from_install_space(colcon_install, tmp_path):
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    code = (
        "import hpe3d_ros, hpe3d_ros.msg as m, hpe3d_ros.camera as c\n"
        "from rclpy.serialization import serialize_message, deserialize_message\n"
        "a = m.PoseHypothesesArray(camera_name='x')\n"
        "b = deserialize_message(serialize_message(a), m.PoseHypothesesArray)\n"
        "assert b.camera_name == 'x'\n"
        "print(m.__file__); print(c.__file__)\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=str(site),
        LD_LIBRARY_PATH=f"{colcon_install / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}",
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    msg_file, camera_file = proc.stdout.split()
    assert msg_file.startswith(str(site)) and camera_file.startswith(str(site))
