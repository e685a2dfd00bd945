"""Bags our tools write are readable by rosbag2 on Humble and on Jazzy (metadata format).

rosbag2 reads a bag's ``metadata.yaml`` (and Jazzy also the copy inside the storage file: the
MCAP ``rosbag2`` metadata record, the sqlite3 ``metadata`` table) with yaml-cpp, field by field,
by the rules of ``rosbag2_storage``'s YAML decoder of each distribution (``yaml.hpp`` /
``metadata_io.cpp``, branches ``humble`` and ``jazzy`` of ros2/rosbag2). Neither refuses a
version newer than its own (Humble writes 5, Jazzy 9): a newer file fails only where a field
it reads has another shape. The one such change is version 9's ``offered_qos_profiles``: a YAML
list of QoS mappings, where versions 4-8 hold a string (itself YAML) and Humble calls
``as<std::string>()`` on it, which throws on a list ("Exception on parsing info file").
:func:`humble_problems` and :func:`jazzy_problems` restate those rules (no rosbag2 here).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip("rosbags", reason="rosbags not installed")

from hpe3d_ros.replay.bagio import BagWriter
from hpe3d_ros.replay.make_bag import main as make_bag

STORAGES = ("mcap", "sqlite3")
QOS_KEYS = {
    "history", "depth", "reliability", "durability", "deadline", "lifespan", "liveliness",
    "liveliness_lease_duration", "avoid_ros_namespace_conventions",
}  # fmt: skip


def _uint(node, where: str) -> list[str]:
    ok = isinstance(node, int) and not isinstance(node, bool) and node >= 0
    return [] if ok else [f"{where}: not an unsigned integer ({node!r})"]


def _string(node, where: str) -> list[str]:
    """yaml-cpp ``as<std::string>()``: any scalar, not null, not a list or mapping."""
    if node is None or isinstance(node, (list, dict)):
        return [f"{where}: not a string scalar ({type(node).__name__})"]
    return []


def _qos_list(node, where: str, policies_as: type) -> list[str]:
    if not isinstance(node, list):
        return [f"{where}: not a list of QoS profiles"]
    out = []
    for i, q in enumerate(node):
        if not isinstance(q, dict) or set(q) != QOS_KEYS:
            out.append(f"{where}[{i}]: QoS keys {sorted(q) if isinstance(q, dict) else q!r}")
        elif not all(isinstance(q[k], policies_as) for k in ("history", "reliability")):
            out.append(f"{where}[{i}]: policies must be {policies_as.__name__}s")
    return out


def _qos_string(node, where: str) -> list[str]:
    """Versions 4-8: a string holding YAML (empty: no profile), policies as integers."""
    out = _string(node, where)
    if out or node == "":
        return out
    return _qos_list(yaml.safe_load(str(node)), where, int)


def _common(info: dict, version: int) -> list[str]:
    """The fields both distributions read, with the same shapes."""
    out = []
    for key in ("version", "storage_identifier", "duration", "starting_time", "message_count",
                "topics_with_message_count", "relative_file_paths"):  # fmt: skip
        if key not in info:
            out.append(f"missing {key}")
    if out:
        return out
    out += _string(info["storage_identifier"], "storage_identifier")
    out += _uint(info["duration"].get("nanoseconds"), "duration.nanoseconds")
    out += _uint(info["starting_time"].get("nanoseconds_since_epoch"), "starting_time")
    out += _uint(info["message_count"], "message_count")
    if not all(isinstance(p, str) for p in info["relative_file_paths"]):
        out.append("relative_file_paths: not strings")
    if version >= 3:
        out += _string(info.get("compression_format"), "compression_format")
        out += _string(info.get("compression_mode"), "compression_mode")
    if version >= 5:
        for i, f in enumerate(info.get("files") or [None]):
            if not isinstance(f, dict):
                out.append(f"files[{i}]: missing")
                continue
            out += _string(f.get("path"), f"files[{i}].path")
            out += _uint(f.get("message_count"), f"files[{i}].message_count")
            out += _uint((f.get("duration") or {}).get("nanoseconds"), f"files[{i}].duration")
    topics = info["topics_with_message_count"]
    if not isinstance(topics, list):
        return [*out, "topics_with_message_count: not a list"]
    for i, t in enumerate(topics):
        meta = t.get("topic_metadata") or {}
        for key in ("name", "type", "serialization_format"):
            out += _string(meta.get(key), f"topics[{i}].{key}")
        out += _uint(t.get("message_count"), f"topics[{i}].message_count")
    return out


def humble_problems(info: dict) -> list[str]:
    """Why Humble's rosbag2 could not decode this ``rosbag2_bagfile_information`` ([] = none)."""
    version = info.get("version")
    if not isinstance(version, int):
        return ["version: not an integer"]
    out = _common(info, version)
    if version >= 4:
        for i, t in enumerate(info.get("topics_with_message_count") or []):
            qos = (t.get("topic_metadata") or {}).get("offered_qos_profiles")
            out += _qos_string(qos, f"topics[{i}].offered_qos_profiles")
    return out


def jazzy_problems(info: dict) -> list[str]:
    """Why Jazzy's rosbag2 could not decode this ``rosbag2_bagfile_information`` ([] = none)."""
    version = info.get("version")
    if not isinstance(version, int):
        return ["version: not an integer"]
    out = _common(info, version)
    for i, t in enumerate(info.get("topics_with_message_count") or []):
        meta = t.get("topic_metadata") or {}
        where = f"topics[{i}]"
        if version >= 9:
            out += _qos_list(meta.get("offered_qos_profiles"), f"{where}.offered_qos", str)
        elif version >= 4:
            out += _qos_string(meta.get("offered_qos_profiles"), f"{where}.offered_qos")
        if version >= 7:
            out += _string(meta.get("type_description_hash"), f"{where}.type_description_hash")
    if version >= 6 and not isinstance(info.get("custom_data", 0), (dict, type(None))):
        out.append("custom_data: not a mapping")
    if version >= 6 and "custom_data" not in info:
        out.append("missing custom_data")
    if version >= 8:
        out += _string(info.get("ros_distro"), "ros_distro")
    return out


# ------------------------------------------------------------------ the rules themselves
def _rosbag2_humble_sample() -> dict:
    """A metadata.yaml as Humble's `ros2 bag record` writes it (version 5)."""
    qos = (
        "- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n"
        "  deadline:\n    sec: 2147483647\n    nsec: 4294967295\n"
        "  lifespan:\n    sec: 2147483647\n    nsec: 4294967295\n  liveliness: 1\n"
        "  liveliness_lease_duration:\n    sec: 2147483647\n    nsec: 4294967295\n"
        "  avoid_ros_namespace_conventions: false"
    )
    return {
        "version": 5, "storage_identifier": "sqlite3",
        "duration": {"nanoseconds": 10}, "starting_time": {"nanoseconds_since_epoch": 5},
        "message_count": 1,
        "topics_with_message_count": [{"topic_metadata": {
            "name": "/a", "type": "std_msgs/msg/String", "serialization_format": "cdr",
            "offered_qos_profiles": qos}, "message_count": 1}],
        "compression_format": "", "compression_mode": "",
        "relative_file_paths": ["b_0.db3"],
        "files": [{"path": "b_0.db3", "starting_time": {"nanoseconds_since_epoch": 5},
                   "duration": {"nanoseconds": 10}, "message_count": 1}],
    }  # fmt: skip


def test_the_rules_accept_what_humble_writes_and_refuse_a_qos_list_on_humble():
    info = _rosbag2_humble_sample()
    assert humble_problems(info) == [] and jazzy_problems(info) == []
    qos = yaml.safe_load(
        info["topics_with_message_count"][0]["topic_metadata"]["offered_qos_profiles"]
    )
    v9 = dict(info, version=9, custom_data=None, ros_distro="jazzy")
    v9["topics_with_message_count"] = [{"message_count": 1, "topic_metadata": {
        "name": "/a", "type": "std_msgs/msg/String", "serialization_format": "cdr",
        "type_description_hash": "RIHS01_00", "offered_qos_profiles": [
            dict(q, history="keep_last", reliability="reliable", durability="volatile",
                 liveliness="automatic") for q in qos]}}]  # fmt: skip
    assert jazzy_problems(v9) == []
    assert humble_problems(v9) == ["topics[0].offered_qos_profiles: not a string scalar (list)"]
    assert "missing ros_distro" not in jazzy_problems(v9)
    assert jazzy_problems(dict(v9, ros_distro=None)) == ["ros_distro: not a string scalar"
                                                         " (NoneType)"]  # fmt: skip


# ------------------------------------------------------------------ our bags
def _embedded(bag: Path, storage: str) -> dict:
    """The metadata copy inside the storage file (what Jazzy's storage plugins decode)."""
    if storage == "sqlite3":
        (db,) = bag.glob("*.db3")
        with sqlite3.connect(db) as con:
            (text,) = con.execute(
                "SELECT metadata FROM metadata ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return yaml.safe_load(text)
    from mcap.reader import make_reader

    (path,) = bag.glob("*.mcap")
    with path.open("rb") as f:
        reader = make_reader(f)
        (record,) = [m for m in reader.iter_metadata() if m.name == "rosbag2"]
        summary = reader.get_summary()
    for channel in summary.channels.values():
        assert channel.message_encoding == "cdr"
        assert summary.schemas[channel.schema_id].encoding == "ros2msg"
    return yaml.safe_load(record.metadata["serialized_metadata"])


def _check(bag: Path, storage: str) -> dict[str, list[str]]:
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == storage
    embedded = _embedded(bag, storage)
    return {
        "humble": humble_problems(info),
        "jazzy": jazzy_problems(info) + jazzy_problems(embedded),
    }


def _images(folder: Path) -> Path:
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    return folder


def _assert_humble_reads(problems: list[str]) -> None:
    assert problems == [], problems


@pytest.mark.parametrize("storage", STORAGES)
def test_jazzy_reads_the_bags_make_bag_writes(tmp_path, storage):
    out = tmp_path / "bag"
    rc = make_bag([str(out), "--images", str(_images(tmp_path / "img")), "--storage", storage])
    assert rc == 0
    assert _check(out, storage)["jazzy"] == []


@pytest.mark.parametrize("storage", STORAGES)
def test_humble_reads_the_bags_make_bag_writes(tmp_path, storage):
    out = tmp_path / "bag"
    rc = make_bag([str(out), "--images", str(_images(tmp_path / "img")), "--storage", storage])
    assert rc == 0
    _assert_humble_reads(_check(out, storage)["humble"])


@pytest.fixture(scope="module")
def camera_bag(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("camera")
    assert make_bag([str(tmp / "bag"), "--images", str(_images(tmp / "img"))]) == 0
    return tmp / "bag"


@pytest.mark.parametrize("storage", STORAGES)
def test_humble_reads_the_output_bags_replay_writes(tmp_path, camera_bag, storage):
    from hpe3d_ros.replay import main as replay

    out = tmp_path / "out"
    args = [str(camera_bag), "-o", str(out), "--storage", storage, "--no-pictures", "--quiet"]
    assert replay(args) == 0
    _assert_humble_reads(_check(out / "bags" / "bag", storage)["humble"])


@pytest.mark.parametrize("storage", STORAGES)
def test_version_8_is_read_by_both(tmp_path, storage):
    """Version 8 (the writers' default) is read by both distributions."""
    from std_msgs.msg import Header

    from hpe3d_ros.msg import PoseHypothesesArray
    from hpe3d_ros.replay.bagio import msgtype_of, serialize_ros

    msg = PoseHypothesesArray(header=Header(frame_id="cam"), camera_name="front")
    with BagWriter(tmp_path / "b", storage, version=8) as w:
        w.write("/hpe3d_pipeline/front/hypotheses", msgtype_of(msg), 7, serialize_ros(msg))
    assert _check(tmp_path / "b", storage) == {
        "humble": [],
        "jazzy": [],
    }
