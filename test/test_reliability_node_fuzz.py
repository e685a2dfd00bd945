"""3,000 hostile messages of 39 kinds (short variant of benchmarks/bench_node_fuzz.py) into the
live node over DDS: it stays up, accounts for every frame, keeps the healthy camera going,
refuses every bomb without the memory it would take, logs a few short lines, and exits 0 on
SIGTERM afterwards."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed")
from benchmarks.bench_node_fuzz import run_fuzz
from benchmarks.fuzz_messages import COMPRESSED_KINDS, INFO_KINDS, RAW_KINDS

pytestmark = [pytest.mark.dds, pytest.mark.slow]


def test_three_thousand_hostile_messages(tmp_path):
    log = tmp_path / "node.log"
    r = run_fuzz(messages=3000, seed=7, log_path=log)
    text = log.read_text(errors="replace")
    assert r["alive"] and r["exit_status"] == 0, text[-3000:]
    assert len(r["kinds"]) == len(RAW_KINDS) + len(COMPRESSED_KINDS) + len(INFO_KINDS) == 39
    for name, c in r["cameras"].items():  # exact accounting, every camera
        assert c["received"] == c["processed"] + c["dropped"] + c["failed"], (name, c)
    for cam, stream in (("raw", "raw"), ("jpeg", "compressed")):
        assert r["cameras"][cam]["received"] >= 0.9 * r["sent"][stream], r
        assert r["cameras"][cam]["failed"] > 0.5 * r["sent"][stream], r
    # the healthy camera loses nothing to the fuzz (before it, at start-up, its first image
    # may reach the node before its first CameraInfo: one "missing CameraInfo", by design)
    assert r["good_failed_during"] == 0, r["cameras"]["good"]
    assert r["cameras"]["good"]["failed"] <= 2, r["cameras"]["good"]
    assert r["good_rate_during_hz"] >= 0.5 * r["good_rate_before_hz"], r
    # bombs are refused from their headers: one of them decoded would add 0.5-1 GB
    assert r["hwm_end_mb"] - r["hwm_after_warmup_mb"] < 300, r
    lg = r["log"]
    assert lg["bytes"] < 64_000 and lg["longest_line"] < 400, lg
    assert lg["warn_lines"] < 100, lg
    for needle in ("unsupported encoding", "non-intensity data", "neither JPEG nor PNG",
                   "invalid CameraInfo"):  # fmt: skip
        assert needle in text, needle
    assert "\n[FATAL] [0.0]" not in text  # forged lines inside encodings stay escaped
    assert "Traceback" not in text and "terminate called" not in text
