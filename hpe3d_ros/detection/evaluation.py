"""Score a detector against people boxed by eye: recall by person height, false people per frame.

The labelled set is ``test/data/eval/labels.json`` (built by ``test/data/eval/make_eval.py``):
per frame, each person's visible box in pixels, whether the frame border cuts them
(``truncated``) and whether at least half of the body is in view (``half_visible``).

A detection matches a labelled person when their boxes overlap with IoU >= ``iou_threshold``;
matching is greedy by detection score, one detection per person, so a second detection of
the same person is a false person. People are binned by the height of their box
(:data:`HEIGHT_BINS`); everyone the border cuts goes to the ``truncated`` bin whatever their
size. Recall counts only half-visible people; detections of the others are neither misses
nor false people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.nms import box_overlap

#: (label, lowest height px, highest height px) of the size bins of untruncated people.
HEIGHT_BINS: tuple[tuple[str, float, float], ...] = (
    ("< 100 px", 0.0, 100.0),
    ("100-300 px", 100.0, 300.0),
    ("> 300 px", 300.0, float("inf")),
)
TRUNCATED = "truncated"
BIN_NAMES: tuple[str, ...] = (*(b[0] for b in HEIGHT_BINS), TRUNCATED)


@dataclass(frozen=True)
class LabelledPerson:
    box: tuple[float, float, float, float]
    truncated: bool
    half_visible: bool

    @property
    def bin(self) -> str:
        if self.truncated:
            return TRUNCATED
        h = self.box[3] - self.box[1]
        return next(name for name, lo, hi in HEIGHT_BINS if lo <= h < hi)


@dataclass(frozen=True)
class LabelledFrame:
    path: Path
    people: tuple[LabelledPerson, ...]


@dataclass
class Score:
    """Counts over a set of frames; ``found``/``total`` per bin over half-visible people."""

    frames: int = 0
    false_people: int = 0
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BIN_NAMES, 0))
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BIN_NAMES, 0))
    partial_found: int = 0  # people less than half visible (not in recall)
    partial_total: int = 0

    def recall(self, name: str) -> float:
        return self.found[name] / self.total[name] if self.total[name] else float("nan")

    @property
    def false_per_frame(self) -> float:
        return self.false_people / self.frames if self.frames else float("nan")


def load_labels(path: str | Path) -> list[LabelledFrame]:
    """Frames of a labels file; image paths are relative to the file's parent's parent."""
    path = Path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    root = path.resolve().parent.parent
    return [
        LabelledFrame(
            root / f["file"],
            tuple(
                LabelledPerson(tuple(p["box"]), bool(p["truncated"]), bool(p["half_visible"]))
                for p in f["people"]
            ),
        )
        for f in doc["frames"]
    ]


def match(
    people: list[Person2D], labels: tuple[LabelledPerson, ...], iou_threshold: float = 0.4
) -> tuple[list[int], int]:
    """Greedy matching by score: (labelled index -> detection index or -1, false people)."""
    assigned = [-1] * len(labels)
    false_people = 0
    for d in sorted(range(len(people)), key=lambda i: -people[i].score):
        ious = [
            box_overlap(people[d].box, lab.box)[0] if assigned[j] < 0 else -1.0
            for j, lab in enumerate(labels)
        ]
        best = int(np.argmax(ious)) if ious else -1
        if best >= 0 and ious[best] >= iou_threshold:
            assigned[best] = d
        elif not any(
            box_overlap(people[d].box, lab.box)[0] >= iou_threshold and not lab.half_visible
            for lab in labels
        ):
            false_people += 1
    return assigned, false_people


def score_frame(
    score: Score,
    people: list[Person2D],
    labels: tuple[LabelledPerson, ...],
    iou_threshold: float = 0.4,
) -> list[int]:
    """Add one frame's detections to ``score``; returns the matching (see :func:`match`)."""
    assigned, false_people = match(people, labels, iou_threshold)
    score.frames += 1
    score.false_people += false_people
    for lab, d in zip(labels, assigned, strict=True):
        if lab.half_visible:
            score.total[lab.bin] += 1
            score.found[lab.bin] += d >= 0
        else:
            score.partial_total += 1
            score.partial_found += d >= 0
    return assigned
