"""Per-camera identities for people across frames (greedy-free: Hungarian on IoU + joints).

One :class:`Tracker` per camera stream. Each track predicts its box with a constant-velocity
model (in pixels per frame); detections are assigned to tracks by minimising a cost mixing
box IoU and the mean distance between joints both see, with a gate so that far-apart pairs
are never matched. Unmatched detections start new tracks; a track unseen for ``max_missed``
frames is dropped (its id is never reused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.nms import box_overlap, keypoint_distance

#: Cost given to pairs outside the gate (never matched).
_NO_MATCH = 1e6


@dataclass
class _Track:
    track_id: int
    person: Person2D
    velocity_xy: np.ndarray  # (2,) px / frame of the box centre
    missed: int = 0

    def predicted(self) -> Person2D:
        """The last person moved by ``(missed + 1)`` frames of velocity."""
        shift = self.velocity_xy * (self.missed + 1)
        x0, y0, x1, y1 = self.person.box
        box = (x0 + shift[0], y0 + shift[1], x1 + shift[0], y1 + shift[1])
        return Person2D(self.person.keypoints + shift, self.person.scores, box, self.person.score)


def _centre(box: tuple[float, float, float, float]) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


class Tracker:
    """Assigns ``track_id`` to the people of successive frames of one camera.

    Args:
        max_missed: frames a track survives without a detection.
        min_iou: pairs with box IoU below this are only matched if their joints agree.
        max_keypoint_distance: gate on the mean joint distance, in box heights.
        velocity_smoothing: weight of the newest box-centre displacement in the velocity.
    """

    def __init__(
        self,
        max_missed: int = 10,
        min_iou: float = 0.1,
        max_keypoint_distance: float = 0.5,
        velocity_smoothing: float = 0.5,
    ) -> None:
        self.max_missed = int(max_missed)
        self.min_iou = float(min_iou)
        self.max_keypoint_distance = float(max_keypoint_distance)
        self.velocity_smoothing = float(velocity_smoothing)
        self._tracks: list[_Track] = []
        self._next_id = 0

    def reset(self) -> None:
        """Forget all tracks (ids keep increasing)."""
        self._tracks = []

    @property
    def active_ids(self) -> list[int]:
        """Ids of the tracks currently kept (seen within ``max_missed`` frames)."""
        return [t.track_id for t in self._tracks]

    def cost(self, track: Person2D, det: Person2D) -> float:
        """Assignment cost in [0, 1], or a large number outside the gate."""
        iou, _ = box_overlap(track.box, det.box)
        dist = keypoint_distance(track, det)
        if iou < self.min_iou and not dist < self.max_keypoint_distance:
            return _NO_MATCH
        if dist > 2 * self.max_keypoint_distance:
            return _NO_MATCH
        return 0.5 * (1.0 - iou) + 0.5 * min(dist / self.max_keypoint_distance, 1.0)

    def update(self, people: list[Person2D]) -> list[Person2D]:
        """Match this frame's people to tracks; return them (same order) with ``track_id`` set."""
        predicted = [t.predicted() for t in self._tracks]
        cost = np.full((len(predicted), len(people)), _NO_MATCH)
        for i, tp in enumerate(predicted):
            for j, det in enumerate(people):
                cost[i, j] = self.cost(tp, det)
        ids = [-1] * len(people)
        matched_tracks: set[int] = set()
        if cost.size:
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols, strict=True):
                if cost[i, j] >= _NO_MATCH:
                    continue
                track = self._tracks[i]
                step = (_centre(people[j].box) - _centre(track.person.box)) / (track.missed + 1)
                a = self.velocity_smoothing
                track.velocity_xy = a * step + (1 - a) * track.velocity_xy
                track.person, track.missed = people[j], 0
                ids[j] = track.track_id
                matched_tracks.add(i)
        for i, track in enumerate(self._tracks):
            if i not in matched_tracks:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        for j, det in enumerate(people):
            if ids[j] < 0:
                ids[j] = self._next_id
                self._tracks.append(_Track(self._next_id, det, np.zeros(2)))
                self._next_id += 1
        return [p.with_track_id(i) for p, i in zip(people, ids, strict=True)]
