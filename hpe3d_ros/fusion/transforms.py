"""Rigid transforms between ROS frames, and a static transform tree (ROS-free).

Naming follows tf2: ``T_target_source`` maps coordinates in ``source`` to ``target``,
``p_target = R @ p_source + t``. Quaternions are in ROS order ``(x, y, z, w)``; roll, pitch
and yaw are ROS's fixed-axis convention (``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``, as
``tf2::Quaternion::setRPY`` and ``static_transform_publisher`` use).

:class:`TransformTree` is what every source of extrinsics feeds (camera parameters, a bag's
``/tf_static``, or a live TF listener through :class:`TransformSource`), so the fusion code
has one path after that.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.spatial.transform import Rotation


class TransformUnavailable(LookupError):
    """No transform between two frames (unknown frame, disconnected tree, stale TF...)."""


@dataclass(frozen=True)
class Transform:
    """``T_parent_child``: ``p_parent = rotation @ p_child + translation`` (metres).

    Attributes:
        rotation: (3, 3) proper rotation matrix.
        translation: (3,) metres.
        parent, child: frame ids (informative; "" when unknown).
    """

    rotation: np.ndarray
    translation: np.ndarray
    parent: str = ""
    child: str = ""

    def __post_init__(self) -> None:
        R = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        t = np.asarray(self.translation, dtype=np.float64).reshape(3)
        if not (np.isfinite(R).all() and np.isfinite(t).all()):
            raise ValueError("transform contains NaN or inf")
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise ValueError("rotation is not a proper rotation matrix")
        object.__setattr__(self, "rotation", R)
        object.__setattr__(self, "translation", t)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def identity(cls, parent: str = "", child: str = "") -> Transform:
        return cls(np.eye(3), np.zeros(3), parent, child)

    @classmethod
    def from_quaternion(
        cls, translation, quaternion_xyzw, parent: str = "", child: str = ""
    ) -> Transform:
        """From a translation (3,) and a quaternion (x, y, z, w); it is normalised."""
        q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(4)
        norm = float(np.linalg.norm(q))
        if not np.isfinite(norm) or norm < 1e-9:
            raise ValueError(f"quaternion {q.tolist()} has no direction (norm {norm:.3g})")
        R = Rotation.from_quat(q / norm).as_matrix()
        return cls(R, translation, parent, child)

    @classmethod
    def from_rpy(cls, translation, rpy_rad, parent: str = "", child: str = "") -> Transform:
        """From a translation (3,) and roll, pitch, yaw in radians (fixed axes X, Y, Z)."""
        rpy = np.asarray(rpy_rad, dtype=np.float64).reshape(3)
        return cls(Rotation.from_euler("xyz", rpy).as_matrix(), translation, parent, child)

    # ------------------------------------------------------------------ algebra
    def apply(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points in ``child`` -> the same points in ``parent``."""
        return np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def rotate(self, vectors: np.ndarray) -> np.ndarray:
        """(..., 3) free vectors (velocities, offsets) in ``child`` -> ``parent``."""
        return np.asarray(vectors, dtype=np.float64) @ self.rotation.T

    def rotate_covariance(self, cov: np.ndarray) -> np.ndarray:
        """(..., 3, 3) covariance in ``child`` -> ``parent`` (``R C R^T``)."""
        R = self.rotation
        return R @ np.asarray(cov, dtype=np.float64) @ R.T

    def inverse(self) -> Transform:
        R = self.rotation.T
        return Transform(R, -R @ self.translation, self.child, self.parent)

    def compose(self, other: Transform) -> Transform:
        """``T_a_b.compose(T_b_c) == T_a_c``."""
        R = self.rotation @ other.rotation
        t = self.rotation @ other.translation + self.translation
        return Transform(R, t, self.parent, other.child)

    def quaternion(self) -> np.ndarray:
        """(4,) (x, y, z, w) with w >= 0."""
        q = Rotation.from_matrix(self.rotation).as_quat()
        return -q if q[3] < 0 else q

    def matrix(self) -> np.ndarray:
        """(4, 4) homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.rotation, self.translation
        return m

    @property
    def origin(self) -> np.ndarray:
        """(3,) position of the child frame's origin in the parent frame."""
        return self.translation


class TransformSource(Protocol):
    """Anything that answers ``T_target_source`` at a time (a tree, a TF buffer adapter)."""

    def lookup(self, target: str, source: str, stamp_ns: int = 0) -> Transform:
        """Raises :class:`TransformUnavailable` with a one-line reason."""
        ...


@dataclass
class TransformTree:
    """Static transforms (edges parent -> child) and lookups between any two connected frames.

    A frame may have one parent; lookups walk the tree in both directions. Time-invariant:
    fed from parameters or ``/tf_static`` (a live TF buffer implements :class:`TransformSource`
    itself).
    """

    _edges: dict[str, Transform] = field(default_factory=dict)  # child -> T_parent_child

    def add(self, transform: Transform) -> None:
        """Adds or replaces ``T_parent_child``; refuses a loop or a frame without a name."""
        parent, child = transform.parent, transform.child
        if not parent or not child:
            raise ValueError("a static transform needs both parent and child frame ids")
        if parent == child:
            raise ValueError(f"transform from {child!r} to itself")
        if child in self._ancestors(parent):
            raise ValueError(f"{parent!r} -> {child!r} would close a loop in the tree")
        self._edges[child] = transform

    @property
    def frames(self) -> set[str]:
        return set(self._edges) | {t.parent for t in self._edges.values()}

    def edge(self, child: str) -> Transform | None:
        """``T_parent_child`` of a frame's own edge (None for a root or unknown frame)."""
        return self._edges.get(child)

    def __len__(self) -> int:
        return len(self._edges)

    def lookup(self, target: str, source: str, stamp_ns: int = 0) -> Transform:
        """``T_target_source`` (the stamp is ignored: every edge is static)."""
        if target == source:
            return Transform.identity(target, source)
        known = self.frames
        for name in (target, source):
            if name not in known:
                raise TransformUnavailable(f"frame {name!r} is unknown (known: {_names(known)})")
        up_src, up_tgt = self._ancestors(source), self._ancestors(target)
        common = next((f for f in up_src if f in set(up_tgt)), None)
        if common is None:
            raise TransformUnavailable(f"frames {target!r} and {source!r} are not connected")
        T_common_source = self._chain(source, common)
        T_common_target = self._chain(target, common)
        T = T_common_target.inverse().compose(T_common_source)
        return Transform(T.rotation, T.translation, target, source)

    def _ancestors(self, frame: str) -> list[str]:
        """[frame, parent, grandparent, ...]."""
        out, seen = [frame], {frame}
        while out[-1] in self._edges:
            nxt = self._edges[out[-1]].parent
            if nxt in seen:  # cannot happen through add(); guards a hand-made dict
                break
            out.append(nxt)
            seen.add(nxt)
        return out

    def _chain(self, frame: str, ancestor: str) -> Transform:
        """``T_ancestor_frame`` along the parent links."""
        T = Transform.identity(ancestor, ancestor)
        path: deque[Transform] = deque()
        while frame != ancestor:
            edge = self._edges[frame]
            path.appendleft(edge)
            frame = edge.parent
        for edge in path:
            T = T.compose(edge)
        return T


def _names(frames: set[str], limit: int = 8) -> str:
    names = sorted(frames)
    more = f", ... {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(repr(n) for n in names[:limit]) + more if names else "none"
