"""2D keypoint stage on real frames (OpenCV's vtest.avi, see test/data/LICENSE.md)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hpe3d_ros.detection import Detector, Person2D, load_detector
from hpe3d_ros.detection.movenet_topdown import MoveNetTopDown
from hpe3d_ros.skeleton import COCO_FLIP, COCO_JOINT_NAMES

DATA = Path(__file__).resolve().parent / "data"
#: Frame file -> people counted by eye.
BY_EYE = {"vtest_0040.jpg": 6, "vtest_0260.jpg": 7, "vtest_0480.jpg": 4, "vtest_0700.png": 8}
L_SHOULDER, R_SHOULDER = (
    COCO_JOINT_NAMES.index("left_shoulder"),
    COCO_JOINT_NAMES.index("right_shoulder"),
)
L_HIP, R_HIP = COCO_JOINT_NAMES.index("left_hip"), COCO_JOINT_NAMES.index("right_hip")


def read_rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(DATA / name)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector()


@pytest.fixture(scope="module")
def frame700() -> np.ndarray:
    return read_rgb("vtest_0700.png")


@pytest.fixture(scope="module")
def people700(detector: Detector, frame700: np.ndarray) -> list[Person2D]:
    return detector.detect(frame700)


def person_at(people: list[Person2D], x: float, y: float) -> Person2D:
    """The person whose box centre is nearest (x, y) px."""
    centres = np.array([[(p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2] for p in people])
    return people[int(np.argmin(np.linalg.norm(centres - [x, y], axis=1)))]


def test_default_detector_follows_the_protocol(detector: Detector) -> None:
    assert isinstance(detector, Detector)
    assert detector.session.get_session_options().intra_op_num_threads == 2


@pytest.mark.parametrize("name", sorted(BY_EYE))
def test_default_finds_the_people_counted_by_eye(detector: Detector, name: str) -> None:
    people = detector.detect(read_rgb(name))
    assert abs(len(people) - BY_EYE[name]) <= 1, f"{name}: {len(people)} vs {BY_EYE[name]}"


def test_top_down_finds_the_people_counted_by_eye() -> None:
    det = load_detector(mode="top_down", single_model="lightning")
    assert isinstance(det, MoveNetTopDown) and det.crop_px == 192
    counts = [len(det.detect(read_rgb(n))) for n in ("vtest_0260.jpg", "vtest_0700.png")]
    assert abs(counts[0] - 7) <= 1 and abs(counts[1] - 8) <= 1, counts


def test_native_size_single_pass_misses_people(frame700: np.ndarray) -> None:
    """Why the default tiles: one 256 px pass sees at most a few of the 8 pedestrians."""
    small = load_detector(input_size=256, tiles=(1, 1)).detect(frame700)
    assert len(small) <= 4


def test_person_fields_and_units(people700: list[Person2D], frame700: np.ndarray) -> None:
    h, w = frame700.shape[:2]
    for p in people700:
        assert p.keypoints.shape == (17, 2) and p.keypoints.dtype == np.float32
        assert p.scores.shape == (17,) and p.scores.dtype == np.float32
        assert 0.0 <= p.scores.min() and p.scores.max() <= 1.0
        assert p.track_id == -1
        x0, y0, x1, y1 = p.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert 0.2 <= p.score <= 1.0
        # Pedestrians here are 60-110 px tall and upright.
        assert 50 < y1 - y0 < 130 and (y1 - y0) > (x1 - x0)


def test_confident_keypoints_lie_in_their_box(people700: list[Person2D]) -> None:
    for p in people700:
        x0, y0, x1, y1 = p.box
        margin = 0.15 * (y1 - y0)
        kp = p.keypoints[p.scores >= 0.3]
        assert len(kp) >= 8
        assert np.all((kp[:, 0] > x0 - margin) & (kp[:, 0] < x1 + margin))
        assert np.all((kp[:, 1] > y0 - margin) & (kp[:, 1] < y1 + margin))
        # Head above hips above ankles (image y grows downwards).
        assert p.keypoints[0, 1] < p.keypoints[11:13, 1].mean() < p.keypoints[15:17, 1].mean()


def test_left_and_right_are_the_persons_own(people700: list[Person2D]) -> None:
    # Checked on the video: the woman at the bottom left walks away from the camera (back
    # view: her left is on the image left); the man at (197, 200) walks towards it.
    away = person_at(people700, 120, 340)
    assert away.keypoints[L_SHOULDER, 0] < away.keypoints[R_SHOULDER, 0]
    assert away.keypoints[L_HIP, 0] < away.keypoints[R_HIP, 0]
    towards = person_at(people700, 197, 200)
    assert towards.keypoints[L_SHOULDER, 0] > towards.keypoints[R_SHOULDER, 0]
    assert towards.keypoints[L_HIP, 0] > towards.keypoints[R_HIP, 0]


def test_mirrored_image_mirrors_people(
    detector: Detector, frame700: np.ndarray, people700: list[Person2D]
) -> None:
    """Pixel mapping and joint labels survive a horizontal flip (x -> W - x, left <-> right)."""
    w = frame700.shape[1]
    mirrored = detector.detect(frame700[:, ::-1])
    matched = 0
    for p in people700:
        q = person_at(mirrored, w - (p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2)
        kp_back = q.keypoints[COCO_FLIP].copy()
        kp_back[:, 0] = w - kp_back[:, 0]
        ok = (p.scores >= 0.4) & (q.scores[COCO_FLIP] >= 0.4)
        err = np.linalg.norm(kp_back[ok] - p.keypoints[ok], axis=1)
        if ok.sum() >= 6 and np.median(err) < 0.06 * (p.box[3] - p.box[1]):
            matched += 1
    assert matched >= len(people700) - 1


def test_matches_stored_reference_run(people700: list[Person2D]) -> None:
    """Same output as test/data/make_reference.py recorded (weights, pre/post-processing)."""
    ref = np.load(DATA / "reference_vtest_0700.npz")
    people = sorted(people700, key=lambda p: -p.score)
    assert len(people) == len(ref["person_scores"])
    np.testing.assert_allclose(
        np.stack([p.keypoints for p in people]), ref["keypoints"], atol=0.05
    )
    np.testing.assert_allclose(np.stack([p.scores for p in people]), ref["scores"], atol=1e-3)
    np.testing.assert_allclose([p.box for p in people], ref["boxes"], atol=0.05)
    np.testing.assert_allclose([p.score for p in people], ref["person_scores"], atol=1e-3)


def test_to_h36m(people700: list[Person2D]) -> None:
    kp, conf = people700[0].to_h36m()
    assert kp.shape == (17, 2) and conf.shape == (17,) and kp.dtype == np.float32
    p = people700[0]
    np.testing.assert_allclose(kp[0], p.keypoints[11:13].mean(axis=0), atol=1e-4)  # pelvis
    assert conf[0] == pytest.approx(p.scores[11:13].min())
