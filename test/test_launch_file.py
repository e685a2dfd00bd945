"""The launch file's structure (the `launch` package cannot be installed here to execute it)."""

import ast

from hpe3d_ros.config import NODE_NAME
from test.conftest import REPO

LAUNCH = REPO / "launch" / "pipeline.launch.py"


def _tree():
    return ast.parse(LAUNCH.read_text())


def _calls(tree, name):
    return [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == name
    ]


def test_declares_the_documented_arguments():
    args = {c.args[0].value for c in _calls(_tree(), "DeclareLaunchArgument")}
    assert args == {"config_file", "namespace", "camera_names", "use_sim_time", "log_level"}


def test_starts_the_installed_executable_with_the_config_file():
    (node,) = _calls(_tree(), "Node")
    kw = {k.arg: k.value for k in node.keywords}
    assert kw["package"].value == "hpe3d_ros"
    assert kw["name"].value == NODE_NAME
    exe = kw["executable"].value
    # CMakeLists installs this launcher into lib/hpe3d_ros for `ros2 run` / launch
    assert (REPO / "scripts" / exe).is_file()
    assert f"scripts/{exe}" in (REPO / "CMakeLists.txt").read_text()
    assert isinstance(kw["parameters"], ast.Name)
    src = LAUNCH.read_text()
    assert '"config", "pipeline.yaml"' in src and "use_sim_time" in src


def test_sets_the_shared_memory_profile_and_compiles():
    src = LAUNCH.read_text()
    assert "fastdds_shm.xml" in src and "FASTRTPS_DEFAULT_PROFILES_FILE" in src
    compile(src, str(LAUNCH), "exec")
    assert any(
        isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
        for n in ast.walk(_tree())
    )


def test_rviz_layout_shows_the_node_outputs():
    import yaml

    from hpe3d_ros.topics import output_topic

    layout = yaml.safe_load((REPO / "config" / "hpe3d.rviz").read_text())
    displays = layout["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert topics == {output_topic("front", "markers"), output_topic("front", "debug_image")}
    kinds = {d["Class"] for d in displays}
    assert {"rviz_default_plugins/MarkerArray", "rviz_default_plugins/Image"} <= kinds
