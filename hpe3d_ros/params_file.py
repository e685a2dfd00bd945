"""ROS 2 parameters files (``node: ros__parameters: ...``) read as rcl reads them (ROS-free).

Which sections apply to a node follows rcl's rule (:func:`section_applies`), and a file that
would leave the node on silent defaults (empty, or no section for this node: a misspelt key,
a node started under a namespace the file does not match) is refused with one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from hpe3d_ros.param_schema import NODE_NAME, ConfigError


def section_applies(key: str, node_fqn: str) -> bool:
    """Whether a parameters-file section ``key`` applies to the node ``node_fqn``.

    rcl's rule: a key without a leading ``/`` gets one, ``/*`` matches one name token and
    ``/**`` any number of them, and the key must match the whole fully qualified name
    (``hpe3d_pipeline`` applies to ``/hpe3d_pipeline`` only; ``/**`` to every node).
    """
    key = key if key.startswith("/") else "/" + key
    if not re.fullmatch(r"[A-Za-z0-9_/*]+", key):
        return False
    regex = re.escape(key).replace(r"/\*", r"(/\w+)").replace(r"\*", "*")
    return re.fullmatch(regex, node_fqn) is not None


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The YAML document of a parameters file (node key -> section), not yet matched.

    Raises:
        ConfigError: unreadable, not YAML, empty, or not a mapping.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read parameters file {path}: {exc}") from exc
    if not doc:
        raise ConfigError(f"parameters file {path} is empty: no parameter would be set")
    if not isinstance(doc, dict):
        raise ConfigError(f"parameters file {path} is not a mapping of node names to sections")
    return doc


def load_params_file(path: str | Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """Flat ``name -> value`` from a ROS 2 parameters YAML (``node: ros__parameters: ...``).

    Args:
        node_name: the node's name or fully qualified name (``/namespace/name``).

    Every section that applies to the node (:func:`section_applies`: ``/**``, the node's
    name, wildcards) is merged in file order, later sections winning, as rcl does.

    Raises:
        ConfigError: unreadable or empty file, or no section applies to this node (a
            misspelt node key or a namespace would otherwise mean silent defaults).
    """
    path = Path(path)
    fqn = node_name if node_name.startswith("/") else "/" + node_name
    doc = read_params_file(path)
    flat: dict[str, Any] = {}
    applied = []
    for key, section in doc.items():
        if not section_applies(str(key), fqn):
            continue
        params = section.get("ros__parameters") if isinstance(section, dict) else None
        if not isinstance(params, dict):
            raise ConfigError(
                f"parameters file {path}: section {str(key)[:80]!r} needs a "
                "'ros__parameters:' mapping"
            )
        applied.append(key)
        flat.update(_flatten(params))
    if not applied:
        keys = ", ".join(repr(str(k)[:80]) for k in list(doc)[:5])
        raise ConfigError(
            f"parameters file {path} has no section for node {fqn} (its sections: {keys}); "
            f"key the section '/**:' (every node) or '{fqn.rsplit('/', 1)[-1]}:'"
        )
    return flat


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out
