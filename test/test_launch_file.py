"""The launch file: its structure, what it hands launch_ros, and the node that results.

The `launch` package cannot be installed here, so the file is executed against recording
stand-ins of the names it imports, and the node is started with the command launch_ros builds.
"""

import ast
import runpy
import subprocess
import sys
import time
import types

import pytest
import yaml

from hpe3d_ros.param_schema import NODE_NAME
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

    from hpe3d_ros.ros.topics import output_topic, people_topic

    layout = yaml.safe_load((REPO / "config" / "hpe3d.rviz").read_text())
    displays = layout["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert topics == {output_topic("front", "markers"), output_topic("front", "debug_image"),
                      people_topic("people_markers")}  # fmt: skip
    kinds = {d["Class"] for d in displays}
    assert {"rviz_default_plugins/MarkerArray", "rviz_default_plugins/Image"} <= kinds
    # the vehicle's layout: base_link fixed, TF shown, the fused people and every rig camera
    text = (REPO / "config" / "vehicle.rviz").read_text()
    vehicle = yaml.safe_load(text)["Visualization Manager"]
    assert vehicle["Global Options"]["Fixed Frame"] == "base_link"
    displays = vehicle["Displays"]
    assert "rviz_default_plugins/TF" in {d["Class"] for d in displays}
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    rig = ("front_left", "front_right", "front", "roof")
    assert topics == {people_topic("people_markers")} | {output_topic(c, "markers") for c in rig}


# ------------------------------------------------------------------ executing the launch file
# `launch` and `launch_ros` are not installable here (no wheels), so the launch file runs against
# the few names it imports, each recording what it is given; what launch_ros then does with a
# Node's arguments (its actions/node.py on Humble and Jazzy) is restated in _launch_ros_argv.
class _Recorded:
    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context) -> str:
        return context.launch_configurations[self.name]


def _fake_module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _launch(monkeypatch, **given: str):
    """(launch configurations, the Node's keyword arguments, environment) for `ros2 launch
    hpe3d_ros pipeline.launch.py name:=value ...`, the package's share folder being the repo."""
    actions = _fake_module(
        "launch.actions", DeclareLaunchArgument=type("DeclareLaunchArgument", (_Recorded,), {}),
        OpaqueFunction=type("OpaqueFunction", (_Recorded,), {}),
        SetEnvironmentVariable=type("SetEnvironmentVariable", (_Recorded,), {}),
    )  # fmt: skip
    modules = {
        "launch": _fake_module("launch", LaunchDescription=_Recorded, actions=actions),
        "launch.actions": actions,
        "launch.substitutions": _fake_module(
            "launch.substitutions", LaunchConfiguration=_LaunchConfiguration
        ),
        "launch_ros": _fake_module("launch_ros"),
        "launch_ros.actions": _fake_module(
            "launch_ros.actions", Node=type("Node", (_Recorded,), {})
        ),
        "ament_index_python.packages": _fake_module(
            "ament_index_python.packages", get_package_share_directory=lambda pkg: str(REPO)
        ),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    ld = runpy.run_path(str(LAUNCH))["generate_launch_description"]()
    (entities,) = ld.args
    declared = {
        e.args[0]: e.kwargs.get("default_value", "")
        for e in entities
        if type(e).__name__ == "DeclareLaunchArgument"
    }
    assert set(given) <= set(declared)
    context = types.SimpleNamespace(launch_configurations={**declared, **given})
    env = {e.args[0]: e.args[1] for e in entities if type(e).__name__ == "SetEnvironmentVariable"}
    (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    (node,) = opaque.kwargs["function"](context)

    def resolve(value):
        if isinstance(value, _LaunchConfiguration):
            return value.perform(context)
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    return context.launch_configurations, {k: resolve(v) for k, v in node.kwargs.items()}, env


def test_launch_defaults_run_the_shipped_config_with_the_shared_memory_profile(monkeypatch):
    monkeypatch.delenv("FASTRTPS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    configs, node, env = _launch(monkeypatch)
    assert configs["config_file"] == str(REPO / "config" / "pipeline.yaml")
    assert node["namespace"] == "" and node["name"] == NODE_NAME
    assert node["parameters"] == [configs["config_file"], {"use_sim_time": False}]
    assert node["arguments"] == ["--ros-args", "--log-level", "info"]
    profile = str(REPO / "config" / "fastdds_shm.xml")
    assert env == {"FASTRTPS_DEFAULT_PROFILES_FILE": profile,
                   "FASTDDS_DEFAULT_PROFILES_FILE": profile}  # fmt: skip


def test_launch_keeps_a_profile_the_user_exported(monkeypatch):
    monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", "/etc/mine.xml")
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/etc/mine.xml")
    assert set(_launch(monkeypatch)[2].values()) == {"/etc/mine.xml"}


@pytest.mark.parametrize(
    ("given", "cameras"),
    [("[front, rear]", ["front", "rear"]), (" [ a ,b ] ", ["a", "b"]), ("front", ["front"])],
)
def test_launch_arguments_become_the_nodes_namespace_and_overrides(monkeypatch, given, cameras):
    _, node, _ = _launch(
        monkeypatch, namespace="perception", camera_names=given, use_sim_time="true",
        log_level="debug", config_file="/cfg/mine.yaml",
    )  # fmt: skip
    assert node["namespace"] == "perception"
    assert node["parameters"] == [
        "/cfg/mine.yaml",
        {"use_sim_time": True, "camera_names": cameras},
    ]
    assert node["arguments"] == ["--ros-args", "--log-level", "debug"]
    # no remappings of its own: an including launch file's SetRemap rules reach the node
    assert "remappings" not in node


def _launch_ros_argv(exe: list[str], node: dict, tmp_path, remaps=()) -> list[str]:
    """The command launch_ros runs for ``Node(**node)``: its ``arguments``, then ROS arguments:
    the name, the namespace made absolute, one ``--params-file`` per file and per dict (written
    to a file keyed by the node's fully qualified name), then the remappings in scope."""
    ns = "/" + node["namespace"].strip("/") if node["namespace"].strip("/") else "/"
    fqn = ns.rstrip("/") + "/" + node["name"]
    cmd = [*exe, *node["arguments"], "--ros-args", "-r", f"__node:={node['name']}",
           "-r", f"__ns:={ns}"]  # fmt: skip
    for i, params in enumerate(node["parameters"]):
        if isinstance(params, dict):
            path = tmp_path / f"launch_params_{i}"
            path.write_text(yaml.safe_dump({fqn: {"ros__parameters": params}}))
            params = str(path)
        cmd += ["--params-file", params]
    for src, dst in remaps:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


@pytest.mark.dds
@pytest.mark.slow
def test_launched_node_takes_namespace_config_overrides_and_remaps(monkeypatch, tmp_path):
    """`ros2 launch hpe3d_ros pipeline.launch.py namespace:=perception camera_names:="[front,
    rear]"` with a config of the user's, included under SetRemap(/front/camera/image_raw ->
    /usb_cam/image_raw): the real node, started with the command launch_ros would run."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
    cfg = yaml.safe_load((REPO / "config" / "pipeline.yaml").read_text())
    cfg["/**"]["ros__parameters"]["lifter"]["num_hypotheses"] = 9
    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump(cfg))
    _, node, _ = _launch(
        monkeypatch, namespace="perception", camera_names="[front, rear]",
        config_file=str(config),
    )  # fmt: skip
    remaps = [("/front/camera/image_raw", "/usb_cam/image_raw")]
    exe = [sys.executable, str(REPO / "scripts" / node["executable"])]
    cmd = _launch_ros_argv(exe, node, tmp_path, remaps)
    log = tmp_path / "node.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    rclpy.init()
    probe = rclpy.create_node("launch_probe")
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "camera rear:" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert f"parameters for /perception/{NODE_NAME} from {config}" in text, text
        assert "K=9" in text and "camera front:" in text, text

        def graph():
            subs = probe.get_subscriber_names_and_types_by_node(NODE_NAME, "/perception")
            pubs = probe.get_publisher_names_and_types_by_node(NODE_NAME, "/perception")
            return {t for t, _ in subs}, {t for t, _ in pubs}

        want_subs = {"/usb_cam/image_raw", "/front/camera/camera_info",
                     "/rear/camera/image_raw", "/rear/camera/camera_info"}  # fmt: skip
        want_pubs = {f"/perception/{NODE_NAME}/{c}/{k}" for c in ("front", "rear")
                     for k in ("hypotheses", "keypoints", "markers")}  # fmt: skip
        while time.monotonic() < deadline:
            try:
                subs, pubs = graph()
            except Exception:  # node not discovered yet
                subs, pubs = set(), set()
            if want_subs <= subs and want_pubs <= pubs:
                break
            time.sleep(0.2)
        assert want_subs <= subs and "/front/camera/image_raw" not in subs, subs
        assert want_pubs <= pubs, pubs
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
        proc.terminate()
        proc.wait(timeout=30)
