"""Every scale in one call: near, border-cut and distant people on real frames.

Frames and boxes counted by eye: test/data/eval (see its LICENSE.md and make_eval.py).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from hpe3d_ros.detection import Detector, Person2D, load_detector
from hpe3d_ros.detection.evaluation import BIN_NAMES, Score, load_labels, match, score_frame
from hpe3d_ros.detection.movenet_multipose import MoveNetMultiPose
from hpe3d_ros.detection.nms import box_overlap
from hpe3d_ros.detection.scales import (
    NET_MAX_PX,
    NET_MIN_PX,
    plan_passes,
)
from hpe3d_ros.skeleton import COCO_JOINT_NAMES

EVAL = Path(__file__).resolve().parent / "data" / "eval"
LEGS = [COCO_JOINT_NAMES.index(f"{s}_{j}") for s in ("left", "right") for j in ("knee", "ankle")]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector()


@pytest.fixture(scope="module")
def frames() -> dict:
    return {f.path.name: f for f in load_labels(EVAL / "labels.json")}


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def found(people: list[Person2D], frame) -> list[Person2D]:
    """The detection matched to each labelled person (fails on a miss or a false person)."""
    assigned, false_people = match(people, frame.people)
    assert false_people == 0, f"{frame.path.name}: {false_people} false people"
    assert min(assigned) >= 0, f"{frame.path.name}: missed {assigned}"
    return [people[d] for d in assigned]


# ----------------------------------------------------------------------------- the plan
def test_plan_640x480_is_a_coarse_pass_and_one_fine_pass() -> None:
    coarse, fine = plan_passes(640, 480)
    assert coarse.regions == ((0, 0, 640, 480),) and coarse.input_px == 192
    assert fine.regions == ((0, 0, 640, 480),) and fine.input_px == 512
    # a 64 px person is NET_MIN_PX input pixels tall in the fine pass, give or take rounding
    assert 64 * fine.level == pytest.approx(NET_MIN_PX, rel=0.05)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (768, 576), (4000, 300)])
def test_plan_covers_every_person_size_and_the_whole_image(size: tuple[int, int]) -> None:
    w, h = size
    passes = plan_passes(w, h, min_person_px=48, budget=100)
    levels = [p.level for p in passes]
    assert levels == sorted(levels) and passes[0].regions == ((0, 0, w, h),)
    # neighbouring bands of person heights (image px) overlap: no size falls between passes
    for coarse, fine in itertools.pairwise(passes):
        assert NET_MIN_PX / coarse.level <= 1.25 * NET_MAX_PX / fine.level
    assert NET_MIN_PX / passes[-1].level <= 48 * 1.05
    for p in passes:
        covered = np.zeros((h, w), bool)
        for x0, y0, x1, y1 in p.regions:
            assert max(x1 - x0, y1 - y0) * p.scale((x0, y0, x1, y1)) == pytest.approx(p.input_px)
            assert p.input_px <= 512
            covered[y0:y1, x0:x1] = True
        assert covered.all()


def test_plan_explicit_tiles_and_no_coarse_pass() -> None:
    (fine,) = plan_passes(768, 576, tiles=(2, 1), coarse_size=0)
    assert len(fine.regions) == 2 and fine.input_px == 512
    with pytest.raises(ValueError):
        plan_passes(640, 480, min_person_px=0)


# ----------------------------------------------------------------------------- real frames
def test_two_people_filling_a_1280x720_frame_from_the_waist_up(
    detector: Detector, frames: dict
) -> None:
    """The case that found 0: both people, each once, legs marked unseen (below the frame)."""
    frame = frames["basketball1_waist_up.jpg"]
    people = detector.detect(read_rgb(frame.path))
    assert len(people) == 2
    for p in found(people, frame):
        # knees and ankles are outside the image: below the lifter's 0.2, most exactly 0
        assert (p.scores[LEGS] < 0.2).all() and (p.scores[LEGS] == 0).sum() >= 3
        assert (p.scores[5:7] > 0.2).all()  # the shoulders are seen
        assert p.box[3] - p.box[1] > 500


def test_person_cut_by_the_right_border_at_arms_length(detector: Detector, frames: dict) -> None:
    frame = frames["basketball1.jpg"]
    standing, cut = found(detector.detect(read_rgb(frame.path)), frame)
    assert cut.box[2] == pytest.approx(640, abs=8)
    assert (standing.scores[[15, 16]] > 0.2).all()  # the standing man's feet are seen
    h, w = 480, 640
    outside = (cut.keypoints[:, 0] > w) | (cut.keypoints[:, 1] > h)
    assert (cut.scores[outside] == 0).all()


@pytest.mark.parametrize(
    "name",
    ["astronaut.jpg", "camera_waist_up.jpg", "camera_head_missing.jpg",
     "vtest_0600_one_side.jpg", "vtest_0600_head_missing.jpg", "vtest_0600_near.jpg"],
)  # fmt: skip
def test_near_and_truncated_people_are_found_once(
    detector: Detector, frames: dict, name: str
) -> None:
    frame = frames[name]
    people = detector.detect(read_rgb(frame.path))
    found(people, frame)


def test_no_duplicate_when_one_person_spans_two_tiles(frames: dict) -> None:
    """People across the seams of the fine tiles, also seen whole by the coarse pass: once."""
    frame = frames["vtest_0700_mid.jpg"]  # 640x480, people 140-170 px
    det = load_detector(tiles=(3, 1), input_size=384)
    tiles = det.plan(640, 480)[-1].regions
    assert len(tiles) == 3
    edges = [t[2] for t in tiles[:-1]] + [t[0] for t in tiles[1:]]
    across = [lab for lab in frame.people if any(lab.box[0] < e < lab.box[2] for e in edges)]
    assert len(across) >= 2, "the test needs people across tile edges"
    people = det.detect(read_rgb(frame.path))
    assert len(people) == len(frame.people)
    found(people, frame)
    for lab in across:
        assert sum(box_overlap(p.box, lab.box)[0] > 0.3 for p in people) == 1


def test_shipped_detector_meets_the_targets_on_the_labelled_set(detector: Detector) -> None:
    """Recall >= 0.95 per height bin (people at least half visible), <= 0.05 false / frame."""
    score = Score()
    for frame in load_labels(EVAL / "labels.json"):
        score_frame(score, detector.detect(read_rgb(frame.path)), frame.people)
    for name in BIN_NAMES:
        assert score.total[name] >= 2
        assert score.recall(name) >= 0.95, (name, score.found[name], score.total[name])
    assert score.false_per_frame <= 0.05, score.false_people


def test_labels_are_consistent() -> None:
    frames = load_labels(EVAL / "labels.json")
    assert len(frames) >= 20
    bins = {name: 0 for name in BIN_NAMES}
    for frame in frames:
        h, w = cv2.imread(str(frame.path)).shape[:2]
        for lab in frame.people:
            x0, y0, x1, y1 = lab.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            bins[lab.bin] += lab.half_visible
    assert min(bins.values()) >= 2, bins


def test_a_crowd_beyond_the_slots_of_one_run_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 pedestrians in one network input: found in one run with 12 slots; with the export's
    6 slots the full pass is run again as two halves."""
    import hpe3d_ros.detection.movenet_multipose as multipose

    image = read_rgb(EVAL.parent / "vtest_0700.png")  # 8 people counted by eye
    wide = load_detector(tiles=(1, 1), coarse_size=0, input_size=768, slots=12)
    assert wide.slots == 12 and len(wide.detect(image)) == 8
    assert wide.last_work.used == wide.last_work.planned  # one run: nothing run again
    six = MoveNetMultiPose(tiles=(1, 1), coarse_size=0, input_size=768, slots=6)
    assert len(six.detect(image)) == 8
    assert six.last_work.used > 2 * six.last_work.planned  # the pass and its two halves
    monkeypatch.setattr(multipose, "MAX_SPLITS", 0)
    assert len(six.detect(image)) == 6  # without the split: 6 at most


def test_hd_frame_people_once_across_three_scales_and_many_tiles(
    detector: Detector, frames: dict
) -> None:
    """vtest 260 up-scaled to 1920x1080: coarse, middle and 6 fine tiles; 7 people, once each."""
    frame = frames["vtest_0260.jpg"]
    sx, sy = 1920 / 768, 1080 / 576
    image = cv2.resize(read_rgb(frame.path), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    assert [len(p.regions) for p in detector.plan(1920, 1080)] == [1, 2, 6]
    people = detector.detect(image)
    labels = [
        dataclasses.replace(lab, box=(lab.box[0] * sx, lab.box[1] * sy, lab.box[2] * sx,
                                      lab.box[3] * sy))
        for lab in frame.people
    ]  # fmt: skip
    assigned, false_people = match(people, tuple(labels))
    assert min(assigned) >= 0 and false_people == 0 and len(people) == 7
