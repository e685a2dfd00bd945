"""What the pipeline asks of its stages: structural types, so any detector, tracker, 2D
smoother or lifter with these methods plugs into :class:`~hpe3d_ros.pipeline.Pipeline`
(the bundled ones, a user's own, or a test's fake) without inheriting from anything."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Person2DLike(Protocol):
    keypoints: np.ndarray  # (17, 2) px, COCO order
    scores: np.ndarray  # (17,)
    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    track_id: int

    def to_h36m(self) -> tuple[np.ndarray, np.ndarray]: ...


class Detector(Protocol):
    def detect(self, image_rgb: np.ndarray) -> list[Person2DLike]: ...


class Tracker(Protocol):
    def update(self, people: list[Person2DLike]) -> list[Person2DLike]: ...


class Smoother(Protocol):
    def smooth(self, people: list[Person2DLike], t_s: float) -> list[Person2DLike]: ...


class Lifter(Protocol):
    joint_names: Sequence[str]

    def sample(
        self, keypoints_norm: np.ndarray, confidence: np.ndarray, k: int, seed: int | None
    ) -> np.ndarray: ...
