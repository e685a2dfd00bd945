"""Transforms over time, as a bag's ``/tf`` and ``/tf_static`` record them (ROS-free).

:class:`TransformBuffer` is what the replay builds from a bag: static edges (``/tf_static``)
and timed edges (``/tf``: per child frame a series of stamped transforms). A lookup walks the
tree like :class:`~hpe3d_ros.fusion.transforms.TransformTree`, each timed edge evaluated at
the requested stamp (translation interpolated linearly, rotation by slerp between the two
neighbouring samples). A stamp before a timed edge's first sample, or more than
``max_extrapolation_s`` after its last, is *stale*: the lookup raises
:class:`~hpe3d_ros.fusion.transforms.TransformUnavailable` as tf2 raises an extrapolation
error. A frame with a timed parent and a static one is refused (tf2 keeps one parent too).

:func:`transform_from_msg` reads a ``geometry_msgs/TransformStamped`` (rclpy or ``rosbags``
object, duck-typed), so the node's TF adapter and the replay share it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from hpe3d_ros.fusion.transforms import Transform, TransformTree, TransformUnavailable
from hpe3d_ros.stamps import stamp_to_ns


def transform_from_msg(msg: Any) -> tuple[int, Transform]:
    """``(stamp_ns, T_parent_child)`` of a ``geometry_msgs/TransformStamped``.

    Raises:
        ValueError: empty frame ids, NaN, or a zero quaternion.
    """
    t, q = msg.transform.translation, msg.transform.rotation
    T = Transform.from_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w],
                                  str(msg.header.frame_id).lstrip("/"),
                                  str(msg.child_frame_id).lstrip("/"))  # fmt: skip
    if not T.parent or not T.child:
        raise ValueError("a TransformStamped needs header.frame_id and child_frame_id")
    return stamp_to_ns(msg.header.stamp), T


@dataclass
class _Series:
    """One timed edge: stamps (sorted) and the transforms at them."""

    parent: str
    stamps: list[int] = field(default_factory=list)
    transforms: list[Transform] = field(default_factory=list)

    def add(self, stamp_ns: int, T: Transform) -> None:
        i = bisect.bisect_left(self.stamps, stamp_ns)
        if i < len(self.stamps) and self.stamps[i] == stamp_ns:
            self.transforms[i] = T
            return
        self.stamps.insert(i, stamp_ns)
        self.transforms.insert(i, T)

    def at(self, stamp_ns: int, max_extrapolation_ns: int) -> Transform:
        first, last = self.stamps[0], self.stamps[-1]
        child = self.transforms[0].child
        if stamp_ns < first or stamp_ns > last + max_extrapolation_ns:
            side = "before the first" if stamp_ns < first else "after the last"
            gap = (first - stamp_ns) if stamp_ns < first else (stamp_ns - last)
            raise TransformUnavailable(
                f"transform {self.parent!r} -> {child!r} at {stamp_ns} ns is {gap * 1e-9:.3f} s "
                f"{side} one recorded (stale)"
            )
        i = bisect.bisect_right(self.stamps, stamp_ns)
        if i >= len(self.stamps):
            return self.transforms[-1]
        if i == 0 or self.stamps[i - 1] == stamp_ns:
            return self.transforms[max(i - 1, 0)]
        a, b = self.transforms[i - 1], self.transforms[i]
        w = (stamp_ns - self.stamps[i - 1]) / (self.stamps[i] - self.stamps[i - 1])
        slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a.rotation, b.rotation])))
        R = slerp([w]).as_matrix()[0]
        return Transform(R, (1 - w) * a.translation + w * b.translation, a.parent, a.child)


class TransformBuffer:
    """Static and timed transforms; ``lookup(target, source, stamp_ns)`` (a TransformSource).

    Args:
        max_extrapolation_s: how far past its newest sample a timed edge is still used.
    """

    def __init__(self, max_extrapolation_s: float = 0.1) -> None:
        self.static = TransformTree()
        self._timed: dict[str, _Series] = {}
        self.max_extrapolation_ns = round(max_extrapolation_s * 1e9)

    def add_static(self, T: Transform) -> None:
        if T.child in self._timed:
            raise ValueError(f"frame {T.child!r} already has a timed parent")
        self.static.add(T)

    def add(self, stamp_ns: int, T: Transform) -> None:
        """One ``/tf`` sample of ``T_parent_child``."""
        if self.static.edge(T.child) is not None:
            raise ValueError(f"frame {T.child!r} already has a static parent")
        series = self._timed.setdefault(T.child, _Series(T.parent))
        if series.parent != T.parent:
            raise ValueError(f"frame {T.child!r} changes parent {series.parent!r} -> {T.parent!r}")
        series.add(int(stamp_ns), T)

    def add_message(self, msg: Any, static: bool) -> int:
        """Every TransformStamped of a ``tf2_msgs/TFMessage``; returns how many were refused
        (bad numbers, loops, parent changes): one bad edge does not spoil the others."""
        bad = 0
        for ts in msg.transforms:
            try:
                stamp, T = transform_from_msg(ts)
                if static:
                    self.add_static(T)
                else:
                    self.add(stamp, T)
            except ValueError:
                bad += 1
        return bad

    @property
    def frames(self) -> set[str]:
        return self.static.frames | set(self._timed) | {s.parent for s in self._timed.values()}

    def __len__(self) -> int:
        return len(self.static) + len(self._timed)

    def lookup(self, target: str, source: str, stamp_ns: int = 0) -> Transform:
        """``T_target_source`` at ``stamp_ns``; raises TransformUnavailable (one line)."""
        if target == source:
            return Transform.identity(target, source)
        if not self._timed:
            return self.static.lookup(target, source, stamp_ns)
        known = self.frames
        for name in (target, source):
            if name not in known:
                raise TransformUnavailable(f"frame {name!r} is unknown")
        up_src, up_tgt = self._ancestors(source), self._ancestors(target)
        common = next((f for f in up_src if f in set(up_tgt)), None)
        if common is None:
            raise TransformUnavailable(f"frames {target!r} and {source!r} are not connected")
        T = (
            self._chain(target, common, stamp_ns)
            .inverse()
            .compose(self._chain(source, common, stamp_ns))
        )
        return Transform(T.rotation, T.translation, target, source)

    def _parent(self, frame: str) -> str | None:
        if frame in self._timed:
            return self._timed[frame].parent
        edge = self.static.edge(frame)
        return None if edge is None else edge.parent

    def _ancestors(self, frame: str) -> list[str]:
        out, seen = [frame], {frame}
        while (nxt := self._parent(out[-1])) is not None and nxt not in seen:
            out.append(nxt)
            seen.add(nxt)
        return out

    def _chain(self, frame: str, ancestor: str, stamp_ns: int) -> Transform:
        """``T_ancestor_frame`` at ``stamp_ns``."""
        T = Transform.identity(frame, frame)
        while frame != ancestor:
            if frame in self._timed:
                edge = self._timed[frame].at(stamp_ns, self.max_extrapolation_ns)
            else:
                edge = self.static.edge(frame)
            T = edge.compose(T)
            frame = edge.parent
        return T
