"""A ROS install gets the whole tool: every command is a ROS executable, every Python library
the code imports is declared in package.xml (rosdep key) or documented as a pip step, and
setup.py, package.xml, requirements.lock and the README say the same thing.

The colcon build itself (executables installed and answering ``--help``) is in
test_build_colcon.py; this file checks the sources, in a second.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import sys
import xml.etree.ElementTree as ET

from test.conftest import REPO

#: import name -> (PyPI name, package.xml rosdep key; None: no usable key, a README pip step).
#: Keys checked in rosdistro's rosdep/python.yaml: the apt ones resolve on Ubuntu 22.04 and
#: 24.04 and Debian; the *-pip ones make rosdep run pip. torch has a key (python3-torch), but
#: Ubuntu 22.04's build is 1.8 and every Ubuntu build is CPU-only: the wheel is the user's
#: choice (CPU, CUDA, Jetson).
PYTHON_DEPS: dict[str, tuple[str, str | None]] = {
    "numpy": ("numpy", "python3-numpy"),
    "cv2": ("opencv-python-headless", "python3-opencv"),
    "yaml": ("PyYAML", "python3-yaml"),
    "scipy": ("scipy", "python3-scipy"),
    "tqdm": ("tqdm", "python3-tqdm"),
    "matplotlib": ("matplotlib", "python3-matplotlib"),
    "rosbags": ("rosbags", "python3-rosbags-pip"),
    "onnxruntime": ("onnxruntime", "python3-onnxruntime-pip"),
    "torch": ("torch", None),
    "onnx": ("onnx", None),
    "mcap": ("mcap", None),
    "zstandard": ("zstandard", None),
    "lz4": ("lz4", None),
}
#: Optional: import name -> (PyPI name, setup.py extra); imported only by hpe3d_ros/fleet/
#: (``hpe3d-fleet``), never by the node or hpe3d-replay; a README pip step, no rosdep key.
OPTIONAL_DEPS: dict[str, tuple[str, str]] = {"ray": ("ray", "fleet")}
#: ROS packages the Python code imports (package.xml names them as they are).
ROS_DEPS = {
    "rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "geometry_msgs", "visualization_msgs",
    "diagnostic_msgs", "builtin_interfaces", "ament_index_python", "tf2_ros",
}  # fmt: skip
#: the ROS executable of each console script: its name with "_" (the node keeps its old name)
SPECIAL_NAMES = {"hpe3d-pipeline": "pipeline_node"}


def _setup_keywords() -> dict[str, object]:
    tree = ast.parse((REPO / "setup.py").read_text())
    (call,) = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"
    ]
    out = {}
    for kw in call.keywords:
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:  # computed values (paths) are not needed here
            pass
    return out


def _console_scripts() -> dict[str, str]:
    """``console name -> "module:function"``."""
    entries = _setup_keywords()["entry_points"]["console_scripts"]
    return dict(tuple(p.strip() for p in e.split("=")) for e in entries)


def _installed_programs() -> list[str]:
    """The scripts CMakeLists.txt installs into lib/hpe3d_ros (``ros2 run``'s folder)."""
    text = (REPO / "CMakeLists.txt").read_text()
    (block,) = re.findall(r"install\(PROGRAMS(.*?)DESTINATION lib/\$\{PROJECT_NAME\}", text, re.S)
    return block.split()


def _script_target(path) -> str:
    """``module:function`` a launcher in scripts/ imports and runs."""
    tree = ast.parse(path.read_text())
    (imp,) = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert [a.name for a in imp.names] == ["main"], path
    calls = {ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert "sys.exit(main())" in calls, path
    return f"{imp.module}:main"


def ros_executables() -> dict[str, str]:
    """``ROS executable -> console script`` for every command of setup.py."""
    return {SPECIAL_NAMES.get(c, c.replace("-", "_")): c for c in _console_scripts()}


def test_every_command_is_an_installed_ros_executable():
    scripts = REPO / "scripts"
    exes = ros_executables()
    assert sorted(p.name for p in scripts.iterdir()) == sorted(exes)
    assert sorted(_installed_programs()) == sorted(f"scripts/{e}" for e in exes)
    consoles = _console_scripts()
    for exe, console in exes.items():
        path = scripts / exe
        assert path.read_text().startswith("#!/usr/bin/env python3\n"), exe
        assert os.access(path, os.X_OK), f"{exe} is not executable (git update-index --chmod=+x)"
        assert _script_target(path) == consoles[console], exe
        module, func = consoles[console].split(":")
        assert callable(getattr(importlib.import_module(module), func)), consoles[console]


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files of hpe3d_ros/ importing it (stdlib and ourselves left out)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "hpe3d_ros").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "hpe3d_ros":
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_library_is_declared_and_every_declared_one_is_used():
    imports = _third_party_imports()
    declared = set(PYTHON_DEPS) | set(OPTIONAL_DEPS) | ROS_DEPS
    undeclared = {m: sorted(f) for m, f in imports.items() if m not in declared}
    assert not undeclared, (
        "declare these in package.xml (rosdep key) or as a README pip step, in setup.py's "
        f"install_requires and in PYTHON_DEPS here: {undeclared}"
    )
    assert declared == set(imports), "declared but imported nowhere"
    for name in OPTIONAL_DEPS:
        outside = [f for f in imports[name] if not f.startswith("hpe3d_ros/fleet/")]
        assert not outside, f"{name} is for hpe3d-fleet only: {outside}"


def _package_xml_depends() -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {e.text for e in root if e.tag in ("depend", "exec_depend")}


def test_package_xml_declares_the_rosdep_keys_and_names_the_pip_steps():
    depends = _package_xml_depends()
    keys = {key for _, key in PYTHON_DEPS.values() if key}
    assert keys | ROS_DEPS <= depends
    assert {d for d in depends if d.startswith("python3-")} == keys
    text = (REPO / "package.xml").read_text()
    for pypi, key in PYTHON_DEPS.values():
        if key is None:
            assert re.search(rf"<!--[^>]*\b{pypi}\b[^>]*-->", text, re.S), pypi


def test_setup_py_and_the_lock_agree_with_package_xml():
    requires = _setup_keywords()["install_requires"]
    assert sorted(requires) == sorted(pypi for pypi, _ in PYTHON_DEPS.values())
    extras: dict[str, list[str]] = {}
    for pypi, extra in OPTIONAL_DEPS.values():
        extras.setdefault(extra, []).append(pypi)
    assert _setup_keywords().get("extras_require", {}) == extras
    requires = [*requires, *(p for p, _ in OPTIONAL_DEPS.values())]

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {
        norm(line.split("==")[0])
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert {norm(r) for r in requires} <= pins, "pin every runtime dependency in the lock"


def test_readme_gives_the_pip_step_for_what_rosdep_does_not_install():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Python dependencies") :]
    section = section[: section.index("\n## ")]
    pip_lines = [ln for ln in section.splitlines() if "pip install" in ln]
    pip_text = " ".join(pip_lines)
    for pypi, key in PYTHON_DEPS.values():
        if key is None or key.endswith("-pip"):
            assert re.search(rf"\b{pypi}\b", pip_text), f"README pip step lacks {pypi}"
    for pypi, _ in OPTIONAL_DEPS.values():
        assert re.search(rf"\b{pypi}\b", pip_text), f"README pip step lacks {pypi}"
    # Ubuntu 24.04 (PEP 668): both ways are spelt out
    assert "--break-system-packages" in section and "--system-site-packages" in section
    assert "PIP_BREAK_SYSTEM_PACKAGES" in section
    for exe in ros_executables():
        assert f"ros2 run hpe3d_ros {exe}" in readme, exe


def test_one_version_everywhere():
    """package.xml, setup.py, ``hpe3d_ros.__version__`` and the newest CHANGELOG section agree
    (catkin_generate_changelog / bloom read the CHANGELOG's headings against package.xml)."""
    xml_version = ET.parse(REPO / "package.xml").getroot().findtext("version")
    setup_version = re.search(r'^VERSION = "([^"]+)"', (REPO / "setup.py").read_text(), re.M)
    init_version = re.search(
        r'^__version__ = "([^"]+)"', (REPO / "hpe3d_ros" / "__init__.py").read_text(), re.M
    )
    changelog = re.search(r"^(\d+\.\d+\.\d+) \(", (REPO / "CHANGELOG.rst").read_text(), re.M)
    assert setup_version and init_version and changelog
    assert xml_version == setup_version[1] == init_version[1] == changelog[1]
