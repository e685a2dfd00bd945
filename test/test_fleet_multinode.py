"""A two-node Ray cluster on this machine: a head and a second node started as separate
``ray start`` processes (1 CPU each), joined by ``hpe3d-fleet run --address``. The bags are
spread over both nodes and each bag's tables are those of a single-machine replay."""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")

from hpe3d_ros.lifting import DEFAULT_WEIGHTS
from hpe3d_ros.replay import SHIPPED_PARAMS
from test.conftest import REPO, SHARED_DATA
from test.helpers.fleet_bags import fleet_command, make_campaign, same_tables, single_machine

RAY = str(Path(sys.executable).with_name("ray"))
pytestmark = pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no lifter weights yet")


_HANDED_OUT: set[int] = set()


def _free_port() -> int:
    """A port free on the loopback now and not handed out before by this module: Ray binds
    some of its ports on another address, where a loopback bind does not see them (a CI run
    gave the second node's metrics port the head's GCS port)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _node_args(worker_ports: int) -> list[str]:
    """Ports of one node, none shared with the other node on this machine."""
    args = [
        "--num-cpus",
        "1",
        "--object-store-memory",
        str(100 << 20),
        "--block",
        "--disable-usage-stats",
        "--min-worker-port",
        str(worker_ports),
        "--max-worker-port",
        str(worker_ports + 99),
    ]
    for flag in (
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--runtime-env-agent-port",
    ):
        args += [flag, str(_free_port())]
    return args


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to a ``ray start --block`` (it stops the node's processes), else SIGKILL to its
    process group (started as its own session by this test)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def two_nodes():
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "PYTHONPATH": str(REPO),
    }
    temp = tempfile.mkdtemp(prefix="rayfleet", dir="/tmp")  # short: Ray's socket paths
    port = _free_port()
    address = f"127.0.0.1:{port}"
    base = random.Random().randrange(20000, 29000, 200)
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    RAY,
                    "start",
                    "--head",
                    "--port",
                    str(port),
                    "--include-dashboard",
                    "false",
                    "--temp-dir",
                    temp,
                    *_node_args(base),
                ],
                env=env,
                start_new_session=True,
                stdout=open(Path(temp) / "head.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert procs[0].poll() is None, (Path(temp) / "head.log").read_text()[-2000:]
                time.sleep(0.5)
        procs.append(
            subprocess.Popen(
                [RAY, "start", "--address", address, *_node_args(base + 100)],
                env=env,
                start_new_session=True,
                stdout=open(Path(temp) / "node2.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )
        wait = (
            f"import ray, time\nray.init(address='{address}')\nt = time.time()\n"
            "while sum(n['Alive'] for n in ray.nodes()) < 2 and time.time() - t < 120:\n"
            "    time.sleep(0.5)\nprint(sum(n['Alive'] for n in ray.nodes()))\n"
        )
        alive = subprocess.run(
            [sys.executable, "-c", wait], env=env, capture_output=True, text=True, timeout=240
        )
        assert alive.stdout.strip().endswith("2"), alive.stderr[-2000:]
        yield address, env
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)


def test_the_fleet_spreads_over_two_nodes_with_single_machine_results(two_nodes, tmp_path):
    address, env = two_nodes
    mocap = SHARED_DATA / "cmu_h36m17_30fps.npz"
    if not mocap.exists():
        pytest.skip(f"shared mocap not found at {mocap} (only CI and developers have ../shared)")
    root = tmp_path / "campaign"
    rels = make_campaign(root, mocap, bags=4, frames=40)
    refs = single_machine(root, rels, tmp_path / "single", str(SHIPPED_PARAMS))
    out = tmp_path / "out"
    proc = subprocess.run(
        fleet_command(out, address, "--quiet"),
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # the last bag is damaged
    assert "bag run3: failed: bag veh_b/run3 is damaged" in proc.stderr
    timings = json.loads((out / "timings.json").read_text())
    assert timings["cluster"]["nodes"] == 2 and timings["workers"] == 2
    nodes = {json.loads((out / "bags" / n / "fleet.json").read_text())["node_id"] for n in refs}
    assert len(nodes) == 2, "every bag ran on one node"
    for name, ref in refs.items():
        assert same_tables(out / "bags" / name, ref) == [], name
