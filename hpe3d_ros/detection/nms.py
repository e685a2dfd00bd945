"""Suppress duplicate people: the same person found in two overlapping tiles or proposals."""

from __future__ import annotations

import numpy as np

from hpe3d_ros.detection.base import Person2D


def box_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float]:
    """(IoU, intersection over the smaller area) of two (x0, y0, x1, y1) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)
    area_b = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
    union = area_a + area_b - inter
    small = min(area_a, area_b)
    return (inter / union if union > 0 else 0.0), (inter / small if small > 0 else 0.0)


def keypoint_distance(a: Person2D, b: Person2D, min_score: float = 0.2) -> float:
    """Mean distance between joints both people see, over the larger box height; inf if none."""
    both = (a.scores >= min_score) & (b.scores >= min_score)
    if not both.any():
        return float("inf")
    height = max(a.box[3] - a.box[1], b.box[3] - b.box[1], 1.0)
    return float(np.linalg.norm(a.keypoints[both] - b.keypoints[both], axis=1).mean() / height)


def suppress_duplicates(
    people: list[Person2D],
    iou_threshold: float = 0.5,
    containment_threshold: float = 0.7,
    keypoint_threshold: float = 0.1,
) -> list[Person2D]:
    """Greedy suppression by score.

    A person is a duplicate of a higher-scored one when their boxes overlap with IoU above
    ``iou_threshold``, or when one box mostly lies inside the other (a person cut at a tile
    border; intersection over the smaller box above ``containment_threshold``) and the joints
    both see agree to within ``keypoint_threshold`` of the box height. Two people walking
    side by side keep each other because their joints disagree.
    """
    kept: list[Person2D] = []
    for p in sorted(people, key=lambda q: q.score, reverse=True):
        duplicate = False
        for k in kept:
            iou, contained = box_overlap(p.box, k.box)
            if iou > iou_threshold and keypoint_distance(p, k) < 2 * keypoint_threshold:
                duplicate = True
            elif (
                contained > containment_threshold and keypoint_distance(p, k) < keypoint_threshold
            ):
                duplicate = True
            if duplicate:
                break
        if not duplicate:
            kept.append(p)
    return kept
