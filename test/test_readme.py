"""The README's generated and reference tables agree with the code they describe.

* the parameter table is what tools/params_table.py makes from hpe3d_ros/param_schema.py;
* the REP-155 table maps hri_msgs' Skeleton2D order onto our COCO-17 joints correctly;
* the QoS table is what a running node offers on each output.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys

import pytest

from hpe3d_ros import param_schema as config
from hpe3d_ros.skeleton import COCO_JOINT_NAMES
from test.conftest import REPO

README = REPO / "README.md"
#: hri_msgs/msg/Skeleton2D.msg (ros4hri/hri_msgs): the 18 constants in index order.
SKELETON2D = (
    "NOSE", "NECK", "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST", "LEFT_SHOULDER",
    "LEFT_ELBOW", "LEFT_WRIST", "RIGHT_HIP", "RIGHT_KNEE", "RIGHT_ANKLE", "LEFT_HIP",
    "LEFT_KNEE", "LEFT_ANKLE", "LEFT_EYE", "RIGHT_EYE", "LEFT_EAR", "RIGHT_EAR",
)  # fmt: skip


def _params_table():
    spec = importlib.util.spec_from_file_location("params_table", REPO / "tools/params_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_parameter_table_is_the_schemas():
    text = README.read_text()
    assert _params_table().update(text) == text, "run tools/params_table.py"
    table = text.split(_params_table().BEGIN)[1].split(_params_table().END)[0]
    names = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert names == [s.name for s in (*config.PARAMS, *config.camera_params("N"))]


def test_a_schema_change_makes_the_table_stale(monkeypatch):
    module = _params_table()
    text = README.read_text()
    changed = tuple(
        dataclasses.replace(s, default=7) if s.name == "lifter.num_hypotheses" else s
        for s in config.PARAMS
    )
    monkeypatch.setattr(module, "PARAMS", changed)
    new = module.update(text)
    assert new != text and "| `lifter.num_hypotheses` | int | `7` |" in new


def test_params_table_check_mode_answers_with_its_exit_code(tmp_path):
    tool = [sys.executable, str(REPO / "tools" / "params_table.py"), "--check", "--readme"]
    ok = subprocess.run([*tool, str(README)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text().replace("| `lifter.seed` | int | `0` |", "| x |"))
    proc = subprocess.run([*tool, str(stale)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "out of date" in proc.stderr
    broken = tmp_path / "broken.md"
    broken.write_text("no markers\n")
    proc = subprocess.run([*tool, str(broken)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def _rep155_rows() -> list[tuple[int, str, str]]:
    text = README.read_text()
    table = text.split("<!-- rep155-map")[1].split("\n\n")[0]
    rows = re.findall(r"^\| (\d+) \| ([A-Z_]+) \| (.+?) \|$", table, re.M)
    return [(int(i), name, ours) for i, name, ours in rows]


def test_rep155_table_follows_skeleton2d_and_our_coco17():
    rows = _rep155_rows()
    assert [(i, n) for i, n, _ in rows] == list(enumerate(SKELETON2D))
    for _, name, ours in rows:
        pairs = re.findall(r"(\d+) ([a-z_]+)", ours)
        for index, joint in pairs:
            assert COCO_JOINT_NAMES[int(index)] == joint, ours
        joints = [j for _, j in pairs]
        if name == "NECK":  # COCO-17 has no neck: the shoulders' midpoint
            assert "midpoint" in ours and joints == ["left_shoulder", "right_shoulder"]
        else:
            assert joints == [name.lower()], (name, ours)


def test_rep155_note_says_how_the_neck_maps():
    text = " ".join(README.read_text().split())
    note = text[text.index("**Relation to REP-155") : text.index("## Offline evaluation")]
    assert "**18** points" in note and "**neck**" in note
    assert (
        "COCO-17 in pixels, which has no neck" in note and "midpoint of the two shoulders" in note
    )


def _qos_table() -> dict[str, tuple[str, str, int]]:
    text = README.read_text()
    section = text[text.index("**QoS.** The node's outputs") :]
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \| (\w+) \| (\d+) \|$", section, re.M)
    return {topic: (rel, dur, int(depth)) for topic, rel, dur, depth in rows}


def test_readme_qos_table_is_what_the_node_offers(monkeypatch):
    pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
    from hpe3d_ros.pipeline import Pipeline
    from test.helpers.node_harness import NobodyDetector, NoLifter, running_node

    def profile(pub) -> tuple[str, str, int]:
        q = pub.qos_profile
        return q.reliability.name.lower(), q.durability.name.lower(), q.depth

    table = _qos_table()
    pipeline = Pipeline(NobodyDetector(), NoLifter())
    overrides = {"output.debug_image": True, "output.people": True}
    with running_node(monkeypatch, pipeline, overrides) as (node, _):
        (channel,) = node.channels
        offered = {f"~/N/{kind}": profile(pub) for kind, pub in channel.pubs.items()}
        offered["/diagnostics"] = profile(node.diag_pub)
        offered |= {f"~/{kind}": profile(pub) for kind, pub in node.vehicle.pubs.items()}
    assert offered == table
