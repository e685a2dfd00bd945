"""The per-camera runner that node and replay share: its CameraInfo rule, rectified input,
failure kinds and accounting, and the estimate of frames lost before the node."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.imaging import encode_compressed, encode_raw
from hpe3d_ros.pipeline import Pipeline
from hpe3d_ros.runner import (
    BAD_INFO,
    COMPRESSED,
    DECODE,
    KEYPOINTS,
    MISSING_INFO,
    RAW,
    SIZE,
    CameraRunner,
    Frame,
)
from hpe3d_ros.stamps import ns_to_sec_nanosec
from hpe3d_ros.stream_stats import StampGaps

CAM = CameraModel.from_fov(64, 48, 60.0)


class Nobody:
    def detect(self, image_rgb):
        return []


class Echo:
    """A lifter whose hypotheses repeat the normalised 2D input at depth 1 (exact, cheap)."""

    joint_names = ()

    def sample(self, kp_norm, conf, k, seed, **kw):
        out = np.concatenate([kp_norm, np.ones_like(kp_norm[..., :1])], -1)
        return np.repeat(out[:, None] - out[:, None, :1], k, axis=1).astype(np.float32)


def _runner(**kw) -> CameraRunner:
    return CameraRunner("front", Pipeline(Nobody(), Echo()), clock=None, **kw)


def _info(stamp_ns: int, cam: CameraModel = CAM, p=None, frame_id="front_optical"):
    sec, nsec = ns_to_sec_nanosec(stamp_ns)
    k = cam.K.ravel()
    return SimpleNamespace(
        header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nsec), frame_id=frame_id),
        width=cam.width, height=cam.height, k=k, d=np.zeros(5), distortion_model="plumb_bob",
        p=np.hstack([cam.K, np.zeros((3, 1))]).ravel() if p is None else np.asarray(p),
    )  # fmt: skip


def _raw(stamp_ns: int, w: int = 64, h: int = 48) -> Frame:
    data, step = encode_raw(np.zeros((h, w, 3), np.uint8))
    return Frame(RAW, stamp_ns, "front_optical", data, w, h, "rgb8", step)


def _run(runner: CameraRunner, frame: Frame, now: float = 0.0):
    return runner.arrive(frame, now) or runner.process(frame, 0.0, now)


def test_camera_info_rule_latest_or_nearest_within_tolerance():
    r = _runner()
    assert _run(r, _raw(10)).kind == MISSING_INFO  # none yet
    r.camera_info(_info(5))
    assert _run(r, _raw(10)).ok  # tolerance 0: the latest, whatever its stamp
    near = _runner(info_tolerance_s=0.01)
    near.camera_info(_info(0))
    near.camera_info(_info(100_000_000))
    out = _run(near, _raw(95_000_000))
    assert out.ok and out.camera is not None
    far = _run(near, _raw(300_000_000))
    assert far.kind == MISSING_INFO and "0.200 s" in far.message


def test_an_invalid_camera_info_fails_its_frames_instead_of_an_older_one_being_used():
    r = _runner()
    r.camera_info(_info(1))
    bad = _info(2)
    bad.k = np.zeros(9)
    assert r.camera_info(bad)  # the reason is returned for the warning
    out = _run(r, _raw(3))
    assert out.kind == BAD_INFO and not r.calibration.valid


def test_rectified_input_uses_the_projection_matrix():
    r = _runner(rectified=True)
    p = np.array([[50.0, 0, 30, 0], [0, 51, 20, 0], [0, 0, 1, 0]])
    info = _info(1, p=p)
    info.d = np.array([-0.3, 0.1, 0, 0, 0])  # would bend the image if applied again
    r.camera_info(info)
    out = _run(r, _raw(1))
    assert out.ok and not out.camera.is_distorted
    np.testing.assert_allclose(out.camera.K, p[:, :3])


def test_failure_kinds_and_exact_accounting():
    r = _runner()
    r.camera_info(_info(0))
    jpeg = encode_compressed(np.zeros((48, 64, 3), np.uint8))
    frames = [
        _raw(1),  # ok
        _raw(2, 32, 24),  # size mismatch
        Frame(RAW, 3, "f", b"\0" * 10, 64, 48, "rgb8", 192),  # short data: refused on arrival
        Frame(COMPRESSED, 4, "f", b"\xff\xd8garbage", format="jpeg"),  # refused on arrival
        Frame(COMPRESSED, 5, "f", jpeg, format="jpeg"),
    ]  # fmt: skip
    kinds = [_run(r, f, now=i * 0.1).kind for i, f in enumerate(frames)]
    assert kinds == ["", SIZE, DECODE, DECODE, ""]
    assert r.unreadable("cannot deserialize", 0.5).kind == DECODE
    snap = r.snapshot(0.5)
    assert (snap["received"], snap["processed"], snap["failed"]) == (6, 2, 4)


def test_keypoint_level_frames_are_lifted_and_checked():
    r = _runner()
    r.camera_info(_info(0))
    kp = np.full((1, 17, 2), 32.0)
    kp[0, :, 1] = np.linspace(5, 45, 17)
    ok = Frame(KEYPOINTS, 1, "f", keypoints=("h36m17", kp, np.ones((1, 17)),
                                               [(4, 0.9, np.zeros(4))]))  # fmt: skip
    out = _run(r, ok)
    assert out.ok and out.result.people[0].track_id == 4
    wrong = Frame(KEYPOINTS, 2, "f", keypoints=("coco17", kp, np.ones((1, 17)), []))
    assert _run(r, wrong).kind == "bad keypoints"


def test_stamp_gaps_count_the_frames_that_never_arrived():
    g = StampGaps(window_s=5.0)
    period = 100_000_000
    stamps = [i * period for i in range(30) if i not in (12, 20, 21, 22)]
    for s in stamps:
        g.add(s, now=s / 1e9)
    snap = g.snapshot(now=3.0)
    assert (snap["lost_before_node"], snap["stamp_gaps"]) == (4, 2)
    assert snap["period_ms"] == pytest.approx(100.0)
    assert snap["lost_rate_hz"] == pytest.approx(4 / 5.0)
    assert g.snapshot(now=30.0)["lost_rate_hz"] == 0.0  # outside the window
    g.add(0, now=31.0)  # a restarted driver: no false loss
    g.add(period, now=31.1)
    assert g.lost == 4


def test_sequence_numbers_count_the_lost_frames_exactly_where_the_transport_gives_them():
    g = StampGaps(window_s=5.0)
    period = 100_000_000
    # irregular stamps (a starved publisher) would fool the estimate; the numbers do not
    jitter = np.random.default_rng(0).uniform(-0.4, 0.4, 40) * period
    kept = [i for i in range(40) if i not in (1, 2, 12, 30, 31, 32, 33)]
    for i in kept:
        g.add(int(i * period + jitter[i]), now=i / 10, sequence=100 + i)
    snap = g.snapshot(now=4.0)
    assert (snap["lost_before_node"], snap["stamp_gaps"]) == (7, 3)
    assert snap["lost_counted_from"] == "sequence numbers"
    g.add(0, now=4.1, sequence=1)  # a restarted publisher: no loss
    g.add(period, now=4.2, sequence=2)
    assert g.lost == 7
    g.add(5 * period, now=4.6)  # numbers no longer given: the stamps again
    assert g.snapshot(now=4.6)["lost_counted_from"] == "image stamps"


def test_losses_before_the_node_turn_diagnostics_to_warn():
    pytest.importorskip("diagnostic_msgs", reason="ROS 2 message wheels not installed")
    from hpe3d_ros.ros.diagnostics import OK, WARN, stream_level

    base = {"silent_s": 0.1, "processed_rate_hz": 10.0, "failed": 0, "input_rate_hz": 10.0}
    assert stream_level({**base, "lost_rate_hz": 0.2}, 2.0, True)[0] == OK
    level, text = stream_level({**base, "lost_rate_hz": 3.0}, 2.0, True)
    assert level == WARN and "lost before the node" in text and "shared-memory" in text
