"""Suppress duplicate people: the same person found in two tiles, two scales or two proposals."""

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
        for i, k in enumerate(kept):
            iou, contained = box_overlap(p.box, k.box)
            if iou > iou_threshold and keypoint_distance(p, k) < 2 * keypoint_threshold:
                break
            if contained > containment_threshold and keypoint_distance(p, k) < keypoint_threshold:
                # a fragment and the whole person: keep the whole one, whatever its score
                if _area(p.box) > _area(k.box):
                    kept[i] = p
                break
        else:
            kept.append(p)
    return kept


def _area(box: tuple[float, ...]) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def merge_passes(
    found: list[tuple[Person2D, float, tuple[int, int, int, int]]],
    net_min_px: float,
    net_max_px: float,
    image_wh: tuple[int, int],
    containment_threshold: float = 0.6,
) -> list[Person2D]:
    """Merge the people of several scales and tiles into one list without duplicates.

    Args:
        found: (person, network input pixels per image pixel of the pass that found it, the
            (x0, y0, x1, y1) region of the image that pass's network saw).
        net_min_px, net_max_px: band of person heights, in network input pixels, that a pass
            sees reliably (:mod:`~hpe3d_ros.detection.scales`).
        image_wh: the image's (width, height).

    Each pass is trusted within its band: a person a pass saw shorter than ``net_min_px`` is
    dropped when the finest pass saw them within its band (at that size two pedestrians side
    by side come out as one); a person a pass saw taller than ``net_max_px`` is dropped when
    a coarser pass found someone whose box mostly contains it (a fragment of a large person,
    whose joint labels are unreliable). A person whose box ends on the edge of a tile inside
    the image is a piece cut by that tile: dropped when someone else's box mostly contains
    it. The rest go through :func:`suppress_duplicates`.
    """
    finest = max((s for _, s, _ in found), default=0.0)
    kept: list[Person2D] = []
    for p, scale, region in found:
        height_in = (p.box[3] - p.box[1]) * scale
        if scale < finest and height_in < net_min_px and height_in * finest / scale <= net_max_px:
            continue
        if height_in > net_max_px and any(
            s < scale and box_overlap(p.box, q.box)[1] > containment_threshold for q, s, _ in found
        ):
            continue
        if _cut_by_tile(p.box, region, image_wh) and any(
            q is not p
            and not _cut_by_tile(q.box, r, image_wh)
            and _inside(p.box, q.box) > containment_threshold
            for q, _, r in found
        ):
            continue
        kept.append(p)
    return suppress_duplicates(kept)


def _cut_by_tile(
    box: tuple[float, ...], region: tuple[int, int, int, int], image_wh: tuple[int, int]
) -> bool:
    """Whether ``box`` ends on an edge of ``region`` that lies inside the image (2 px)."""
    x0, y0, x1, y1 = region
    w, h = image_wh
    return (
        (x0 > 0 and box[0] <= x0 + 2)
        or (y0 > 0 and box[1] <= y0 + 2)
        or (x1 < w and box[2] >= x1 - 2)
        or (y1 < h and box[3] >= y1 - 2)
    )


def _inside(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Fraction of box ``a``'s area inside box ``b``."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / max(_area(a), 1e-9)
