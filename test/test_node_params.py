"""The node and its parameters files: rcl's section rules, namespaces, descriptors from the
schema, and a file with no section for this node refused at start-up (one line, exit 2)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from rclpy.node import Node  # noqa: E402

from hpe3d_ros.param_schema import NODE_NAME, PARAMS, camera_params  # noqa: E402
from hpe3d_ros.params_file import section_applies  # noqa: E402
from hpe3d_ros.ros.params import descriptor  # noqa: E402
from test.conftest import REPO  # noqa: E402

SHIPPED = REPO / "config" / "pipeline.yaml"
KEYS = [
    "/**", "**", "hpe3d_pipeline", "/hpe3d_pipeline", "/perception/hpe3d_pipeline",
    "perception/hpe3d_pipeline", "/perception/*", "/*/hpe3d_pipeline", "/**/hpe3d_pipeline",
    "/perception/**", "/*", "*", "/**/*", "/a/**/hpe3d_pipeline", "/a/*/hpe3d_pipeline",
    "/hpe3d_pipeline/**", "/other", "other_node", "/a/b/*",
]  # fmt: skip


def _rcl_applies(tmp_path, key: str, namespace: str) -> bool:
    f = tmp_path / "k.yaml"
    f.write_text(f'"{key}":\n  ros__parameters:\n    probe: 5\n')
    args = ["probe", "--ros-args", "--params-file", str(f)]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    ctx = rclpy.Context()
    rclpy.init(args=args, context=ctx)
    try:
        node = Node(NODE_NAME, context=ctx)
        applies = "probe" in node._parameter_overrides
        node.destroy_node()
        return applies
    finally:
        rclpy.shutdown(context=ctx)


@pytest.mark.parametrize("namespace", ["", "/perception", "/a/b"])
def test_section_rule_is_rcls(tmp_path, namespace):
    fqn = f"{namespace}/{NODE_NAME}"
    ours = {k for k in KEYS if section_applies(k, fqn)}
    rcl = {k for k in KEYS if _rcl_applies(tmp_path, k, namespace)}
    assert ours == rcl
    assert "/**" in ours


def test_descriptors_follow_the_schema():
    for spec in (*PARAMS, *camera_params("front")):
        d = descriptor(spec)
        assert d.additional_constraints == spec.constraints, spec.name
        assert d.read_only
        if spec.kind is int and spec.min is not None:
            (r,) = d.integer_range
            assert (r.from_value, r.to_value, r.step) == (spec.min, spec.max, spec.multiple_of)
        elif spec.kind is float and spec.min is not None:
            (r,) = d.floating_point_range
            assert (r.from_value, r.to_value) == (spec.min, spec.max)
    tiles = descriptor(next(s for s in PARAMS if s.name == "detector.tiles"))
    assert "2 items; each item in [" in tiles.additional_constraints


def _start(tmp_path, text: str | None, *ros_args: str, timeout: float = 120):
    cmd = [sys.executable, "-m", "hpe3d_ros.ros.node"]
    if text is not None:
        f = tmp_path / "p.yaml"
        f.write_text(text)
        cmd += ["--params-file", str(f)]
    cmd += ["--ros-args", *ros_args] if ros_args else []
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _params(section: str, params: dict) -> str:
    return yaml.safe_dump({section: {"ros__parameters": params}})


@pytest.mark.dds
@pytest.mark.parametrize(
    ("text", "ros_args", "needle"),
    [
        ("", (), "is empty"),
        ("# nothing here\n", (), "is empty"),
        (_params("hpe3d_pipline", {"lifter": {"seed": 3}}), (),
         "no section for node /hpe3d_pipeline (its sections: 'hpe3d_pipline')"),
        (_params("hpe3d_pipeline", {"lifter": {"seed": 3}}), ("-r", "__ns:=/perception"),
         "no section for node /perception/hpe3d_pipeline"),
        (_params("/**", {"detector": {"tiles": [1000, 1000]}}), (), "detector.tiles"),
        ("hpe3d_pipeline:\n  lifter: {seed: 3}\n", (), "ros__parameters"),
        ("a: [unclosed\n", (), "cannot read parameters file"),
    ],
)  # fmt: skip
def test_start_up_refuses_a_file_that_would_mean_silent_defaults(tmp_path, text, ros_args,
                                                                  needle):  # fmt: skip
    proc = _start(tmp_path, text, *ros_args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert needle in out and "Traceback" not in out
    errors = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("[INFO]")]
    assert len(errors) <= 2, out  # one clear line (and rcl's own for its parse errors)


@pytest.mark.dds
def test_missing_params_file_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "hpe3d_ros.ros.node", "--params-file", str(tmp_path / "no.yaml")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "cannot read parameters file" in out, out
    assert "Traceback" not in out


@pytest.mark.dds
@pytest.mark.slow
def test_a_namespaced_node_keeps_the_configuration(tmp_path):
    cfg = yaml.safe_load(SHIPPED.read_text())
    assert list(cfg) == ["/**"]
    cfg["/**"]["ros__parameters"]["lifter"]["num_hypotheses"] = 7
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(cfg))
    log = tmp_path / "node.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpe3d_ros.ros.node", "--params-file", str(f),
             "--ros-args", "-r", "__ns:=/perception"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "camera front:" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert "parameters for /perception/hpe3d_pipeline from" in text, text
        assert "K=7" in text, text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
