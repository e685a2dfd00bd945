"""Log hygiene under attack: warnings are throttled per kind of problem (not per text), and
what came from outside (encodings, frame ids, formats) is cut and escaped in logs and
diagnostics. In-process node with a stand-in pipeline over real DDS; stderr captured."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from hpe3d_ros.pipeline import Pipeline  # noqa: E402
from hpe3d_ros.ros.throttle import Throttle  # noqa: E402
from hpe3d_ros.untrusted import error_line, one_line, show  # noqa: E402
from test.helpers.node_harness import NobodyDetector, NoLifter, running_node, wait_for  # noqa: E402
from test.helpers.ros_io import camera_for, image_msg, info_msg  # noqa: E402

DEEP = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
MB = 1_000_000


def test_throttle_is_bounded_whatever_the_keys():
    t = Throttle(5.0, max_keys=4)
    reported = [t(f"k{i}", now=0.0) for i in range(1000)]
    assert reported[:5] == [0, 0, 0, 0, 0]  # 4 keys, then the shared overflow key
    assert all(r is None for r in reported[5:])
    assert t("k999", now=6.0) == 995  # the overflow key counted what it swallowed


def test_show_and_one_line_cut_and_escape():
    assert show("rgb8") == "'rgb8'"
    s = show("a\nb" * MB)
    assert len(s) < 100 and "\n" not in s and "(3000000 chars)" in s
    line = one_line("x\r\n[FATAL] forged\x1b[2J" + "y" * MB)
    assert "\n" not in line and "\x1b" not in line and len(line) == 300
    assert line.endswith("... (1000021 chars)")
    assert len(one_line("\x00" * 300, 40)) == 40  # escapes count: 4 characters each
    assert one_line("short", 40) == "short"


def test_error_line_is_the_type_and_first_line_escaped_and_cut():
    assert error_line(ValueError("\n  bad file\nsecond")) == "ValueError: bad file"
    assert error_line(OSError()) == "OSError: "
    line = error_line(RuntimeError("\x1b[2J" + "z" * MB), 80)
    assert len(line) == 80 and "\x1b" not in line and line.startswith("RuntimeError: \\x1b")


@pytest.mark.dds
def test_a_flood_of_distinct_bad_inputs_logs_a_few_short_lines(monkeypatch, capfd):
    overrides = {"qos.image_reliability": "reliable", "qos.image_depth": 100,
                 "diagnostics.period_s": 0.2}  # fmt: skip
    pipeline = Pipeline(NobodyDetector(), NoLifter())
    with running_node(monkeypatch, pipeline, overrides, "log_driver") as (node, drv):
        raw = drv.create_publisher(Image, "/front/camera/image_raw", DEEP)
        info = drv.create_publisher(CameraInfo, "/front/camera/camera_info", DEEP)
        assert wait_for(lambda: raw.get_subscription_count() > 0, 20)
        rgb = np.zeros((48, 64, 3), np.uint8)
        cam = camera_for(rgb)
        info.publish(info_msg(cam, 1, "f" * MB))  # a 1 MB frame id
        t0 = time.monotonic()
        sent = 0
        for i in range(3000):  # 3,000 distinct unknown encodings, some of them 1 MB long
            msg = image_msg(rgb, time.time_ns(), "cam_optical")
            word = "".join(chr(97 + (i // 26**k) % 26) for k in range(3))  # aaa, baa, ...
            msg.encoding = f"enc_{word}\n[ERROR] forged" if i % 200 else "e" * MB
            raw.publish(msg)
            sent += 1
            if i % 100 == 0:  # good frames whose frame id differs from the 1 MB one
                raw.publish(image_msg(rgb, time.time_ns(), "cam_optical"))
                sent += 1
            time.sleep(0.002)  # reliable QoS delivers everything at this pace
        stats = node.channels[0].runner.stats
        assert wait_for(lambda: stats.snapshot()["received"] >= sent, 60), stats.snapshot()
        elapsed = time.monotonic() - t0
        time.sleep(0.5)
        snap = stats.snapshot()
        assert snap["failed"] == 3000 and snap["processed"] + snap["dropped"] == 30, snap
        assert len(snap["last_error"]) <= 340 and "\n" not in snap["last_error"]
    err = capfd.readouterr().err
    warns = [ln for ln in err.splitlines() if "WARN" in ln]
    kinds = 2  # unsupported encoding; image frame != CameraInfo frame
    assert 2 <= len(warns) <= kinds * (elapsed / 5.0 + 2), warns
    assert any("unsupported encoding" in w for w in warns)
    assert any("!= CameraInfo frame" in w for w in warns)
    assert max(len(w) for w in warns) < 500
    assert "forged" not in "".join(w.split("unsupported encoding")[0] for w in warns)
    assert not [ln for ln in err.splitlines() if ln.startswith("[ERROR] forged")]
    assert len(err) < 20_000, len(err)
