"""The package builds as a ROS 2 workspace builds it (colcon + ament_cmake), not only via make."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from test.conftest import REPO
from test.test_packaging import ros_executables

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
    assert (share / "launch" / "pipeline.launch.py").is_file()
    exes = sorted(p.name for p in (colcon_install / "lib" / "hpe3d_ros").iterdir())
    assert exes == sorted(ros_executables())
    for exe in exes:
        assert os.access(colcon_install / "lib" / "hpe3d_ros" / exe, os.X_OK), exe


def _install_env(colcon_install) -> dict[str, str]:
    """What `source install/setup.bash` gives a Python program of this package."""
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    return dict(
        os.environ,
        PYTHONPATH=str(site),
        LD_LIBRARY_PATH=f"{colcon_install / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}",
        AMENT_PREFIX_PATH=f"{colcon_install}:{os.environ.get('AMENT_PREFIX_PATH', str(VENV))}",
    )


@pytest.mark.parametrize("exe", sorted(ros_executables()))
def test_every_ros_executable_answers_help_from_the_install_space(colcon_install, tmp_path, exe):
    # `ros2 run hpe3d_ros <exe> --help` runs lib/hpe3d_ros/<exe> with the workspace sourced;
    # here the venv's python stands in for the shebang's python3
    path = colcon_install / "lib" / "hpe3d_ros" / exe
    proc = subprocess.run(
        [sys.executable, str(path), "--help"], cwd=tmp_path, env=_install_env(colcon_install),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    console = ros_executables()[exe]
    assert console in proc.stdout and "--" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr


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
    env = _install_env(colcon_install)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    msg_file, camera_file = proc.stdout.split()
    assert msg_file.startswith(str(site)) and camera_file.startswith(str(site))


def test_our_init_replaces_rosidls_even_when_both_have_the_same_mtime(colcon_install):
    # file(INSTALL) calls a file "Up-to-date" when its time is within a second of the one
    # installed; on a fast machine rosidl generates its empty __init__.py within a second of
    # the checkout being copied, and the package lost its __init__ (a CI run did). Make the two
    # times equal and install again: ours must still win.
    out = colcon_install.parent.parent
    generated = out / "build" / "hpe3d_ros" / "rosidl_generator_py" / "hpe3d_ros" / "__init__.py"
    ours = out / "src" / "hpe3d_ros" / "hpe3d_ros" / "__init__.py"
    assert generated.read_text() == "" and "ROS-free core" in ours.read_text()
    stamp = generated.stat().st_mtime_ns
    os.utime(ours, ns=(stamp, stamp))
    cmake = shutil.which("cmake")
    proc = subprocess.run(
        [cmake, "--install", str(out / "build" / "hpe3d_ros")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = next((colcon_install / "lib").glob("python3*/site-packages"))
    assert (site / "hpe3d_ros" / "__init__.py").read_text() == ours.read_text()
