"""BVH motion files: reader and forward kinematics (numpy, vectorised over frames).

A BVH file is a joint tree (``HIERARCHY``: names, offsets from the parent, channels) and a
table of channel values per frame (``MOTION``). Conventions used here, which are those of
the common BVH exporters (cgspeed/CMU, iClone, Blender):

* Rotation channels are Euler angles in degrees applied in the order listed (intrinsic):
  ``Zrotation Xrotation Yrotation`` means ``R = Rz @ Rx @ Ry``. Any order is accepted.
* A joint's local translation is ``offset + (Xposition, Yposition, Zposition)`` (position
  channels are usually on the root only), and
  ``p_child = p_parent + R_parent_global @ local_translation``.
* An ``End Site`` becomes a joint without channels named ``<parent>_end``.

Positions come out in the file's own length unit; scaling is the caller's business.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

_AXES = "XYZ"


@dataclasses.dataclass(frozen=True)
class Bvh:
    """A parsed BVH file.

    Attributes:
        names: (J,) joint names in file order (parents come before children).
        parents: (J,) parent index per joint, -1 for the root.
        offsets: (J, 3) rest offset from the parent, file units.
        channels: per joint, the channel names in file order (e.g. ``("Zrotation", ...)``).
        frame_time: seconds per frame.
        motion: (F, C) channel values, C = total number of channels.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    frame_time: float
    motion: np.ndarray

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    def index(self, name: str) -> int:
        """Index of a joint by name (``ValueError`` if absent)."""
        return self.names.index(name)

    def with_motion(self, motion: np.ndarray) -> Bvh:
        """Same skeleton, other frames: (F', C) channel values."""
        motion = np.asarray(motion, dtype=np.float64)
        if motion.ndim != 2 or motion.shape[1] != self.motion.shape[1]:
            raise ValueError(f"expected (F, {self.motion.shape[1]}) motion, got {motion.shape}")
        return dataclasses.replace(self, motion=motion)


def parse_bvh(text: str) -> Bvh:
    """Parse the text of a BVH file.

    Trailing values that do not fill a whole frame are dropped; a file whose ``Frames:``
    count exceeds the data keeps the frames it has.
    """
    toks = text.split()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float] | None] = []
    channels: list[tuple[str, ...]] = []
    stack: list[int] = []
    i = 0
    while True:
        if i >= len(toks):
            raise ValueError("BVH: no MOTION section")
        t = toks[i]
        if t in ("ROOT", "JOINT", "End"):
            parent = stack[-1] if stack else -1
            if t == "End":
                if parent < 0:
                    raise ValueError("BVH: End Site outside a joint")
                names.append(names[parent] + "_end")
            else:
                names.append(toks[i + 1])
            parents.append(parent)
            offsets.append(None)
            channels.append(())
            i += 2
        elif t == "{":
            stack.append(len(names) - 1)
            i += 1
        elif t == "}":
            stack.pop()
            i += 1
        elif t == "OFFSET":
            offsets[stack[-1]] = [float(x) for x in toks[i + 1 : i + 4]]
            i += 4
        elif t == "CHANNELS":
            n = int(toks[i + 1])
            chans = tuple(toks[i + 2 : i + 2 + n])
            for c in chans:
                if len(c) < 2 or c[0] not in _AXES or c[1:] not in ("rotation", "position"):
                    raise ValueError(f"BVH: unknown channel {c!r}")
            channels[stack[-1]] = chans
            i += 2 + n
        elif t == "HIERARCHY":
            i += 1
        elif t == "MOTION":
            i += 1
            break
        else:
            raise ValueError(f"BVH: unexpected token {t!r}")
    if stack or not names:
        raise ValueError("BVH: unbalanced or empty hierarchy")
    if any(o is None for o in offsets):
        raise ValueError("BVH: joint without OFFSET")
    if not toks[i].startswith("Frames"):
        raise ValueError(f"BVH: expected 'Frames:', got {toks[i]!r}")
    declared = int(toks[i + 1])
    if toks[i + 2] != "Frame" or not toks[i + 3].startswith("Time"):
        raise ValueError("BVH: expected 'Frame Time:'")
    frame_time = float(toks[i + 4])
    n_ch = sum(len(c) for c in channels)
    vals = np.array(toks[i + 5 : i + 5 + declared * n_ch], dtype=np.float64)
    n_frames = len(vals) // n_ch if n_ch else declared
    return Bvh(
        names=tuple(names),
        parents=np.array(parents, dtype=np.int64),
        offsets=np.array(offsets, dtype=np.float64),
        channels=tuple(channels),
        frame_time=frame_time,
        motion=vals[: n_frames * n_ch].reshape(n_frames, n_ch),
    )


def read_bvh(path: str | Path) -> Bvh:
    """Read and parse a BVH file (latin-1, so odd bytes in names never fail)."""
    return parse_bvh(Path(path).read_text(encoding="latin-1"))


def axis_rotation(axis: str, angle_rad: np.ndarray) -> np.ndarray:
    """Right-handed rotation about ``"X"``, ``"Y"`` or ``"Z"``: (...) radians -> (..., 3, 3)."""
    a = np.asarray(angle_rad, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    rows = {
        "X": ((o, z, z), (z, c, -s), (z, s, c)),
        "Y": ((c, z, s), (z, o, z), (-s, z, c)),
        "Z": ((c, -s, z), (s, c, z), (z, z, o)),
    }[axis]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def euler_to_matrix(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles to matrices: (..., n) degrees, order e.g. ``"ZXY"`` -> (..., 3, 3).

    ``angles_deg[..., k]`` is the angle about axis ``order[k]``; the result is
    ``R_order[0] @ R_order[1] @ ...`` (as BVH channels are applied).
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    if angles.shape[-1] != len(order):
        raise ValueError(f"{len(order)} angles expected for order {order!r}, got {angles.shape}")
    rot = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3)).copy()
    for k, axis in enumerate(order.upper()):
        rot = rot @ axis_rotation(axis, np.deg2rad(angles[..., k]))
    return rot


def forward_kinematics(
    bvh: Bvh, frames: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Global joint positions and orientations.

    Args:
        bvh: parsed file.
        frames: optional frame indices (or mask) to evaluate; default all frames.

    Returns:
        positions (F, J, 3) in file units and rotations (F, J, 3, 3) (joint to world).
    """
    mot = bvh.motion if frames is None else bvh.motion[frames]
    n_f, n_j = mot.shape[0], len(bvh.names)
    pos = np.zeros((n_f, n_j, 3))
    rot = np.zeros((n_f, n_j, 3, 3))
    col = 0
    for j in range(n_j):
        local_rot = np.broadcast_to(np.eye(3), (n_f, 3, 3)).copy()
        trans = np.zeros((n_f, 3))
        for ch in bvh.channels[j]:
            axis = ch[0]
            if ch.endswith("position"):
                trans[:, _AXES.index(axis)] = mot[:, col]
            else:
                local_rot = local_rot @ axis_rotation(axis, np.deg2rad(mot[:, col]))
            col += 1
        local_t = bvh.offsets[j][None] + trans
        p = bvh.parents[j]
        if p < 0:
            pos[:, j] = local_t
            rot[:, j] = local_rot
        else:
            pos[:, j] = pos[:, p] + np.einsum("fij,fj->fi", rot[:, p], local_t)
            rot[:, j] = rot[:, p] @ local_rot
    return pos, rot


def subsample_indices(
    num_frames: int, fps_in: float, fps_out: float, start: int = 0
) -> tuple[np.ndarray, float]:
    """Frame indices for an integer-stride subsampling to about ``fps_out``.

    Returns the indices ``start, start + s, ...`` with ``s = max(1, round(fps_in / fps_out))``
    and the effective rate ``fps_in / s`` (120 Hz -> every 4th frame for 30 Hz).
    """
    if fps_in <= 0 or fps_out <= 0:
        raise ValueError(f"frame rates must be positive, got {fps_in}, {fps_out}")
    step = max(1, round(fps_in / fps_out))
    return np.arange(start, num_frames, step), fps_in / step
