"""Command-line manners: a bad option, path or file is one line and a non-zero exit (no
traceback, nothing started), and --help shows the defaults."""

from __future__ import annotations

import subprocess
import sys

import pytest

from test.conftest import REPO


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "rc", "says"),
    [
        (["--bogus"], 2, "unrecognised argument '--bogus'"),
        (["--params-file", "missing.yaml"], 2, "missing.yaml"),
        (["extra", "--ros-args", "-p", "lifter.seed:=1"], 2, "unrecognised argument 'extra'"),
    ],
)
def test_the_node_refuses_bad_arguments_in_one_line(args, rc, says):
    pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
    proc = _run("hpe3d_ros.ros.node", *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == rc and says in out, out
    assert "Traceback" not in out and "starting" not in out  # refused before anything ran


def test_the_node_help_names_its_options_and_exit_codes():
    pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
    proc = _run("hpe3d_ros.ros.node", "--help")
    assert proc.returncode == 0
    assert "--params-file FILE" in proc.stdout and "exit status" in proc.stdout


@pytest.mark.parametrize(
    ("module", "defaults"),
    [
        (["hpe3d_ros.replay"], ["(default: 4)", "(default: mcap)", "pipeline.yaml"]),
        (["hpe3d_ros.fleet", "run"], ["(default: mcap)", "pipeline.yaml"]),
    ],
)
def test_help_shows_the_defaults(module, defaults):
    pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
    proc = _run(*module, "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    for d in defaults:
        assert d in text, d
