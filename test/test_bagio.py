"""Bags through rosbags: every published message type round-trips rclpy <-> rosbags CDR in
both storage formats, and damaged bags give every good message and then one clear error."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.serialization import deserialize_message, serialize_message

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.replay.bag_messages import camera_info_msg, image_msgs
from hpe3d_ros.replay.bagio import (
    BagReader,
    BagReadError,
    BagWriter,
    canonical_cdr,
    deserialize,
    msg_dir,
    msgtype_of,
    serialize_ros,
    typestore,
)
from hpe3d_ros.replay.make_bag import write_image_bag
from hpe3d_ros.ros.conversions import hypotheses_to_msg, keypoints_to_msg
from hpe3d_ros.ros.markers import markers_from_result
from test.helpers.sample_results import make_sample_result

STORAGES = ["mcap", "sqlite3"]


def _published_messages() -> list:
    """One message of every type the node (or make-bag) publishes."""
    result = make_sample_result(people=2, k=5)
    hyp = hypotheses_to_msg(result)
    kps = keypoints_to_msg(result)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    cam = CameraModel(16, 12, np.array([[20.0, 0, 8], [0, 20, 6], [0, 0, 1]]), [0.1, 0, 0, 0, 0])
    diag = DiagnosticArray()
    diag.header.stamp = hyp.header.stamp
    diag.status = [
        DiagnosticStatus(level=DiagnosticStatus.WARN, name="hpe3d_pipeline: front",
                         message="stale", hardware_id="front",
                         values=[KeyValue(key="frames", value="12")])
    ]  # fmt: skip
    return [
        hyp,
        hyp.people[0],  # PoseHypotheses
        kps,
        kps.people[0],  # Keypoints2D
        markers_from_result(result),
        image_msgs(img, 5, "cam", compressed=False),
        image_msgs(img, 5, "cam", compressed=True),
        camera_info_msg(cam, 5, "cam"),
        diag,
    ]


def _msgtype(msg) -> str:
    mod = type(msg).__module__.split(".")  # e.g. sensor_msgs.msg._image
    return f"{mod[0]}/msg/{type(msg).__name__}"


def test_msg_dir_and_custom_types_are_registered():
    assert (msg_dir() / "PoseHypotheses.msg").is_file()
    for name in ("PoseHypotheses", "PoseHypothesesArray", "Keypoints2D", "Keypoints2DArray"):
        assert f"hpe3d_ros/msg/{name}" in typestore().types


@pytest.mark.parametrize("storage", STORAGES)
def test_every_message_type_round_trips_rclpy_and_rosbags(tmp_path, storage):
    msgs = _published_messages()
    bag = tmp_path / "bag"
    with BagWriter(bag, storage) as w:
        for i, m in enumerate(msgs):
            # rclpy bytes written by rosbags ...
            w.write(f"/rclpy/t{i}", _msgtype(m), 100 + i, serialize_message(m))
            # ... and bytes that rosbags serialised itself from its own objects
            ros = deserialize(serialize_message(m), _msgtype(m))
            w.write(
                f"/rosbags/t{i}", _msgtype(m), 100 + i, typestore().serialize_cdr(ros, _msgtype(m))
            )
    got = {}
    with BagReader(bag) as r:
        assert r.damage is None
        for topic, msgtype, _, raw in r.messages(r.topics):
            got[topic] = (msgtype, bytes(raw))
    for i, m in enumerate(msgs):
        for side in ("rclpy", "rosbags"):
            msgtype, raw = got[f"/{side}/t{i}"]
            assert msgtype == _msgtype(m)
            want = _canonical(serialize_message(m), msgtype)
            assert _canonical(raw, msgtype) == want, f"{msgtype} via {side}"
            back = deserialize_message(raw, type(m))  # rclpy reads what rosbags wrote
            assert _canonical(serialize_message(back), msgtype) == want
            _assert_same_fields(back, deserialize(raw, msgtype))  # both readers agree


def _assert_same_fields(ros_msg, obj, where: str = "") -> None:
    """Field-by-field equality of an rclpy message and a rosbags object (NaN == NaN)."""
    for name in ros_msg.get_fields_and_field_types():
        a, b = getattr(ros_msg, name), getattr(obj, name)
        if hasattr(a, "get_fields_and_field_types"):
            _assert_same_fields(a, b, f"{where}.{name}")
        elif isinstance(a, list) and a and hasattr(a[0], "get_fields_and_field_types"):
            assert len(a) == len(b), f"{where}.{name}"
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                _assert_same_fields(x, y, f"{where}.{name}[{i}]")
        else:
            a = np.frombuffer(a, np.uint8) if isinstance(a, bytes | bytearray) else a
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=where + name)


def _canonical(raw: bytes, msgtype: str) -> bytes:
    """CDR with zeroed alignment padding (rclpy leaves padding bytes uninitialised), so equal
    messages compare equal byte for byte, NaNs included."""
    return bytes(typestore().serialize_cdr(deserialize(raw, msgtype), msgtype))


def _small_bag(path, storage, frames=30, compressed=False):
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(frames)]
    cam = CameraModel.from_fov(64, 48, 60.0)
    write_image_bag(path, imgs, cam, storage=storage, compressed=compressed)
    return imgs


@pytest.mark.parametrize("storage", STORAGES)
def test_truncated_bag_yields_good_messages_then_one_clear_error(tmp_path, storage):
    bag = tmp_path / "cut"
    _small_bag(bag, storage, frames=30)
    (f,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    os.truncate(f, int(f.stat().st_size * 0.6))
    n = 0
    with pytest.raises(BagReadError) as err, BagReader(bag) as r:
        assert r.damage and "/front/camera/image_raw" in r.topics
        for _ in r.messages(r.topics):
            n += 1
    assert 0 < n < 60  # 30 images + 30 CameraInfo in all
    msg = str(err.value)
    assert str(bag) in msg and "damaged" in msg and "\n" not in msg


def test_missing_bag_and_not_a_bag(tmp_path):
    with pytest.raises(BagReadError, match="does not exist"):
        BagReader(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagReadError, match="folder is empty"):
        BagReader(tmp_path / "empty")


def test_type_hashes_in_our_bags_are_rosidls(tmp_path):
    """rosbag2 checks RIHS01 type hashes: ours must equal the ones rosidl generated."""
    msgs = _published_messages()
    with BagWriter(tmp_path / "b", "mcap") as w:
        for i, m in enumerate(msgs):
            w.write(f"/t{i}", _msgtype(m), i, serialize_message(m))
    meta = (tmp_path / "b" / "metadata.yaml").read_text()
    checked = 0
    for m in msgs:
        pkg, _, name = _msgtype(m).split("/")
        share = Path(sys.prefix) / "share" / pkg / "msg" / f"{name}.json"
        if not share.is_file():
            continue
        (want,) = [h["hash_string"] for h in json.loads(share.read_text())["type_hashes"]
                   if h["type_name"] == _msgtype(m)]  # fmt: skip
        assert typestore().hash_rihs01(_msgtype(m)) == want, _msgtype(m)
        assert want in meta
        checked += 1
    if not checked:
        pytest.skip("no rosidl type descriptions (share/<pkg>/msg/*.json) in this prefix")


@pytest.mark.parametrize("storage", STORAGES)
def test_written_bags_are_byte_identical_run_to_run(tmp_path, storage):
    """serialize_ros zeroes rclpy's uninitialised CDR padding: equal runs, equal bytes."""
    for run in ("a", "b"):
        with BagWriter(tmp_path / run / "bag", storage) as w:
            for i, m in enumerate(_published_messages()):
                raw = serialize_ros(m)
                assert raw == canonical_cdr(serialize_message(m), msgtype_of(m))
                w.write(f"/t{i}", msgtype_of(m), 100 + i, raw)
    a, b = tmp_path / "a" / "bag", tmp_path / "b" / "bag"
    for f in sorted(p.name for p in a.iterdir()):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    with BagReader(a) as r:  # and the bytes still read back as the messages
        for (_, msgtype, _, raw), m in zip(
            r.messages(r.topics), _published_messages(), strict=True
        ):
            assert msgtype == _msgtype(m)
            _assert_same_fields(deserialize_message(raw, type(m)), deserialize(raw, msgtype))


def test_serialize_ros_pads_with_zeros():
    """A CameraInfo has padding after its frame id; rclpy may leave it as garbage."""
    m = _published_messages()[7]
    raw = serialize_ros(m)
    m.header.frame_id = "x" * 5  # 4 + 6 bytes: two bytes of padding before the height
    padded = serialize_ros(m)
    assert padded[4 + 8 + 4 + 6 : 4 + 8 + 4 + 8] == b"\x00\x00"
    assert len(raw) > 0


@pytest.mark.parametrize("storage", STORAGES)
def test_version_8_metadata_has_qos_as_a_string(tmp_path, storage):
    """Humble's metadata parser wants offered_qos_profiles as a YAML string (v8), not a list."""
    import yaml

    m = _published_messages()[7]
    with BagWriter(tmp_path / "b", storage, version=8) as w:
        w.write("/info", msgtype_of(m), 5, serialize_ros(m))
    info = yaml.safe_load((tmp_path / "b" / "metadata.yaml").read_text())
    info = info["rosbag2_bagfile_information"]
    assert info["version"] == 8
    (topic,) = info["topics_with_message_count"]
    assert isinstance(topic["topic_metadata"]["offered_qos_profiles"], str)
    with BagReader(tmp_path / "b") as r:
        assert [t for t, *_ in r.messages(r.topics)] == ["/info"]
    with pytest.raises(ValueError, match="8 or 9"):
        BagWriter(tmp_path / "c", storage, version=5)


@pytest.mark.parametrize("version", [8, 9])
def test_tf_static_is_recorded_latched(tmp_path, version):
    """``ros2 bag play`` offers a topic with its recorded QoS: /tf_static must say transient
    local (what tf2 listeners ask for), other topics keep the player's defaults."""
    import yaml

    m = _published_messages()[7]
    with BagWriter(tmp_path / "b", "mcap", version=version) as w:
        w.write("/tf_static", msgtype_of(m), 5, serialize_ros(m))
        w.write("/info", msgtype_of(m), 6, serialize_ros(m))
    info = yaml.safe_load((tmp_path / "b" / "metadata.yaml").read_text())
    topics = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
        for t in info["rosbag2_bagfile_information"]["topics_with_message_count"]
    }
    qos = {n: yaml.safe_load(q) if isinstance(q, str) else q for n, q in topics.items()}
    (latched,) = qos["/tf_static"]
    assert latched["durability"] in (1, "transient_local")
    assert latched["reliability"] in (1, "reliable") and latched["depth"] == 1
    assert not qos["/info"]
    with BagReader(tmp_path / "b") as r:
        assert [t for t, *_ in r.messages(r.topics)] == ["/tf_static", "/info"]
