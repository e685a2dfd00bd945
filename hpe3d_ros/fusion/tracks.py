"""What the fuser keeps per person (:class:`Track`) and what it hands out
(:class:`TrackedPerson`): one list of people in the target frame, ids unique across cameras.

Track states (the order is the message's constants ``TENTATIVE=0, CONFIRMED=1, LOST=2``):

* ``tentative``: born from an observation nobody explained; confirmed after
  ``confirm_hits`` updates, deleted if not updated for ``tentative_timeout_s``;
* ``confirmed``: a person; becomes ``lost`` when no camera has seen it for ``lost_after_s``;
* ``lost``: still predicted (constant velocity, growing covariance) so that a person who
  walks from one camera's view into another's, or behind an obstacle, keeps the id; back to
  ``confirmed`` on the next update, deleted after ``delete_after_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hpe3d_ros.fusion.observations import Observation
from hpe3d_ros.skeleton import H36M_JOINT_NAMES, H36M_LAYOUT_ID

TENTATIVE, CONFIRMED, LOST = "tentative", "confirmed", "lost"
#: Every state, in the order of the message constants.
TRACK_STATES = (TENTATIVE, CONFIRMED, LOST)


@dataclass(frozen=True)
class ViewInfo:
    """One camera's latest sight of a tracked person."""

    camera_name: str
    frame_id: str  # the camera's optical frame
    stamp_ns: int  # the image stamp
    camera_track_id: int  # the per-camera track id (-1 untracked)


@dataclass
class TrackedPerson:
    """One person in the target frame at ``stamp_ns``.

    Attributes:
        track_id: global id (>= 1, unique across cameras, never reused while the fuser lives).
        state: one of :data:`TRACK_STATES`.
        stamp_ns: the time every value below refers to.
        position_m: (3,) root (pelvis); position_cov: (3, 3), m^2.
        velocity_mps: (3,); velocity_cov: (3, 3), (m/s)^2.
        hypotheses_m: (K, J, 3) float32 absolute hypotheses at ``position_m`` (K may be 0).
        views: the cameras whose latest sight went into the fused pose, with image stamps.
        score: best detection score among those views.
    """

    track_id: int
    state: str
    stamp_ns: int
    position_m: np.ndarray
    position_cov: np.ndarray
    velocity_mps: np.ndarray
    velocity_cov: np.ndarray
    hypotheses_m: np.ndarray
    views: list[ViewInfo] = field(default_factory=list)
    score: float = 0.0

    @property
    def num_hypotheses(self) -> int:
        return int(self.hypotheses_m.shape[0])

    @property
    def mean_pose_m(self) -> np.ndarray:
        """(J, 3) mean over hypotheses (NaN if K == 0)."""
        if self.num_hypotheses == 0:
            return np.full((self.hypotheses_m.shape[1], 3), np.nan, np.float32)
        return self.hypotheses_m.mean(axis=0)

    @property
    def joint_std_m(self) -> np.ndarray:
        """(J, 3) per-axis spread over hypotheses (NaN if K == 0)."""
        if self.num_hypotheses == 0:
            return np.full((self.hypotheses_m.shape[1], 3), np.nan, np.float32)
        return self.hypotheses_m.std(axis=0)


@dataclass
class PeopleList:
    """Everybody in the target frame at one stamp: what ``~/people`` carries."""

    frame_id: str  # the target frame
    stamp_ns: int
    people: list[TrackedPerson] = field(default_factory=list)
    joint_layout: str = H36M_LAYOUT_ID
    joint_names: tuple[str, ...] = H36M_JOINT_NAMES


@dataclass
class Track:
    """The fuser's state of one person (internal).

    ``x`` (6,) = position, velocity and ``P`` (6, 6) are at ``t_ns``, the stamp of the last
    update (predictions are made on copies).
    """

    track_id: int
    x: np.ndarray
    P: np.ndarray
    t_ns: int
    state: str = TENTATIVE
    hits: int = 1
    born_ns: int = 0
    views: dict[str, Observation] = field(default_factory=dict)  # latest per camera
    version: int = 0  # bumped on every change, keys the fused-pose cache

    def seen_by(self, camera_name: str, stamp_ns: int) -> bool:
        """True if this camera's frame at ``stamp_ns`` already updated the track."""
        view = self.views.get(camera_name)
        return view is not None and view.stamp_ns == stamp_ns
