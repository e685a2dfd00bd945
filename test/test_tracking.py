"""Tracker ids and One-Euro smoothing: synthetic motion with known truth, then real video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hpe3d_ros.detection import load_detector
from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.smoothing import KeypointSmoother, OneEuroFilter
from hpe3d_ros.detection.tracking import Tracker

DEMO = Path(__file__).resolve().parents[1] / "demo" / "vtest_600_750.mp4"

#: A 100 px tall standing skeleton (x, y) around the origin, COCO-17 order.
TEMPLATE = np.array(
    [[0, -45], [-3, -48], [3, -48], [-6, -46], [6, -46], [-12, -30], [12, -30], [-15, -10],
     [15, -10], [-16, 8], [16, 8], [-8, 5], [8, 5], [-8, 27], [8, 27], [-8, 48], [8, 48]],
    dtype=np.float32,
)  # fmt: skip


def person(cx: float, cy: float) -> Person2D:
    """A synthetic upright person centred at (cx, cy) px."""
    kp = TEMPLATE + np.array([cx, cy], dtype=np.float32)
    return Person2D(kp, np.full(17, 0.8), (cx - 20, cy - 50, cx + 20, cy + 50), 0.5)


def test_ids_follow_two_walkers_in_any_detection_order() -> None:
    tracker = Tracker()
    rng = np.random.default_rng(0)
    ids_a, ids_b = set(), set()
    for f in range(30):
        a, b = person(100 + 4 * f, 200), person(400 - 4 * f, 200)
        order = [a, b] if rng.random() < 0.5 else [b, a]
        out = tracker.update(order)
        by_x = sorted(out, key=lambda p: p.keypoints[0, 0])
        # They stay apart (they would meet at frame 37), so the left one is always a.
        ids_a.add(by_x[0].track_id)
        ids_b.add(by_x[1].track_id)
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_walkers_crossing_keep_ids_thanks_to_velocity() -> None:
    tracker = Tracker()
    first = tracker.update([person(100, 200), person(300, 205)])
    id_left, id_right = first[0].track_id, first[1].track_id
    for f in range(1, 40):
        out = tracker.update([person(100 + 5 * f, 200), person(300 - 5 * f, 205)])
        assert [p.track_id for p in out] == [id_left, id_right], f"frame {f}"


def test_missed_frames_and_new_people() -> None:
    tracker = Tracker(max_missed=3)
    (p0,) = tracker.update([person(100, 100)])
    for _ in range(2):
        assert tracker.update([]) == []
    (p1,) = tracker.update([person(106, 100)])
    assert p1.track_id == p0.track_id  # survived 2 missed frames
    for _ in range(4):
        tracker.update([])
    assert tracker.active_ids == []
    (p2,) = tracker.update([person(110, 100)])
    assert p2.track_id != p0.track_id  # ids are never reused
    out = tracker.update([person(112, 100), person(500, 300)])
    assert out[0].track_id == p2.track_id and out[1].track_id not in (p0.track_id, p2.track_id)


def test_tracker_returns_copies_in_input_order() -> None:
    people = [person(100, 100), person(300, 100)]
    out = Tracker().update(people)
    assert [p.track_id for p in people] == [-1, -1]
    np.testing.assert_array_equal(out[1].keypoints, people[1].keypoints)


def test_one_euro_reduces_jitter_and_follows_motion() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(200) / 30.0
    # x walks at 50 px/s, y stands still; 2 px detector noise on both.
    truth = np.stack([50 * t, np.zeros_like(t)], axis=1)
    noisy = truth + rng.normal(0, 2.0, truth.shape)
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    out = np.array([filt(x, ti) for x, ti in zip(noisy, t, strict=True)])
    np.testing.assert_array_equal(out[0], noisy[0])  # first sample passes through
    err_raw, err_smooth = np.abs(noisy[30:] - truth[30:]), np.abs(out[30:] - truth[30:])
    assert err_smooth[:, 1].mean() < 0.5 * err_raw[:, 1].mean()  # still axis: less noise
    assert abs((out[30:, 0] - truth[30:, 0]).mean()) < 3.0  # moving axis: lag under 3 px
    jitter_raw = np.abs(np.diff(noisy[30:], 2, axis=0)).mean()
    jitter_smooth = np.abs(np.diff(out[30:], 2, axis=0)).mean()
    assert jitter_smooth < 0.5 * jitter_raw


def test_one_euro_restarts_on_non_increasing_time() -> None:
    filt = OneEuroFilter()
    filt(np.zeros(2), 1.0)
    np.testing.assert_array_equal(filt(np.ones(2), 1.0), np.ones(2))


def test_smoother_is_per_track_and_forgets() -> None:
    smoother = KeypointSmoother(forget_after_s=1.0)
    a, b = person(100, 100).with_track_id(0), person(300, 100).with_track_id(1)
    smoother.smooth([a, b], 0.0)
    moved = person(110, 100).with_track_id(0)
    (sa,) = smoother.smooth([moved], 0.1)
    assert 100 < sa.keypoints[0, 0] < 110  # smoothed towards the old position
    np.testing.assert_array_equal(smoother.smooth([person(5, 5)], 0.2)[0].keypoints[0], [5, -40])
    (sb,) = smoother.smooth([person(320, 100).with_track_id(1)], 5.0)
    np.testing.assert_allclose(sb.keypoints[0, 0], 320)  # track 1 was forgotten: restarts


@pytest.fixture(scope="module")
def demo_frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DEMO))
    frames = []
    while len(frames) < 20:
        ok, bgr = cap.read()
        assert ok, f"cannot read {DEMO}"
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return frames


def test_ids_stable_on_real_video(demo_frames: list[np.ndarray]) -> None:
    """20 frames (2 s) of vtest with 5-8 pedestrians: few ids beyond the people present."""
    det, tracker = load_detector(), Tracker()
    counts, ids = [], set()
    for rgb in demo_frames:
        people = tracker.update(det.detect(rgb))
        counts.append(len(people))
        ids |= {p.track_id for p in people}
        assert len({p.track_id for p in people}) == len(people)
    assert min(counts) >= 4
    assert len(ids) <= max(counts) + 2, (sorted(ids), counts)
