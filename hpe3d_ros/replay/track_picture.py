"""A track's hypotheses over time (replay pictures, ``make demo``; issue 17).

:class:`TrackStrip` keeps, for every (camera, track id), the root-relative mean and the first
``keep`` hypotheses of each frame the person was lifted. :meth:`TrackStrip.plot` draws the
camera's longest track: a row of 3D skeletons at evenly spaced frames (hypothesis k in the
same colour in every panel, the mean in black), and below, hypothesis k's right wrist
relative to the pelvis along the track (x, height, depth against time): with the temporal
lifter each hypothesis is a smooth curve (the same mode from frame to frame); independent
per-frame draws make a cloud.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpe3d_ros.results import FrameResult
from hpe3d_ros.skeleton import H36M_BONES

WRIST = 16  # right wrist (H36M-17)
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")


def plot_axes(p: np.ndarray) -> np.ndarray:
    """Optical (x right, y down, z forward) -> plot axes (x right, z forward, up)."""
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


class TrackStrip:
    """Collects tracks' hypotheses frame by frame (see the module docstring).

    Args:
        keep: hypotheses kept per frame (the first ones: hypothesis k is k in every frame).
        panels: skeletons drawn along the track.
        max_frames: frames kept per track.
    """

    def __init__(self, keep: int = 4, panels: int = 6, max_frames: int = 900) -> None:
        self.keep = keep
        self.panels = panels
        self.max_frames = max_frames
        self._tracks: dict[tuple[str, int], list] = {}

    def add(self, camera: str, index: int, stamp_ns: int | None, result: FrameResult) -> None:
        for p in result.people:
            if p.track_id < 0 or p.num_hypotheses == 0:
                continue
            frames = self._tracks.setdefault((camera, int(p.track_id)), [])
            if len(frames) < self.max_frames:
                rel = p.hypotheses_m - p.root_m.astype(np.float32)
                t = index / 10.0 if stamp_ns is None else stamp_ns * 1e-9
                frames.append((index, t, rel.mean(0), rel[: self.keep].copy()))

    def longest(self, camera: str) -> tuple[int, list] | None:
        """(track id, frames) of the camera's track with the most lifted frames."""
        mine = [(len(f), -tid, tid, f) for (cam, tid), f in self._tracks.items() if cam == camera]
        if not mine:
            return None
        _, _, tid, frames = max(mine, key=lambda x: x[:2])
        return tid, frames

    def plot(self, camera: str, path: Path, lifting: str = "") -> bool:
        """Draw the camera's longest track (at least 3 frames); False when there is none.
        ``lifting``: how the people were lifted (a line under the plots)."""
        found = self.longest(camera)
        if found is None or len(found[1]) < 3:
            return False
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tid, frames = found
        n = min(self.panels, len(frames))
        picks = np.linspace(0, len(frames) - 1, n).round().astype(int)
        fig = plt.figure(figsize=(max(2.6 * n, 9.0), 6.4), dpi=100)
        # fixed margins (no tight_layout: it gives up on some tracks' tick labels)
        top = fig.add_gridspec(1, n, left=0.02, right=0.98, top=0.90, bottom=0.52, wspace=0.05)
        bottom = fig.add_gridspec(1, 3, left=0.06, right=0.98, top=0.44, bottom=0.14, wspace=0.25)
        for col, i in enumerate(picks):
            index, t, mean, hyps = frames[i]
            ax = fig.add_subplot(top[0, col], projection="3d")
            for k, h in enumerate(plot_axes(hyps)):
                for a, b in H36M_BONES:
                    ax.plot(*zip(h[a], h[b], strict=True), color=COLOURS[k % 6], lw=0.9)
            m = plot_axes(mean)
            for a, b in H36M_BONES:
                ax.plot(*zip(m[a], m[b], strict=True), color="k", lw=1.8)
            ax.set_box_aspect((1, 1, 1))
            for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
                setter(-0.9, 0.9)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_zticks([])
            ax.set_title(f"frame {index} ({t - frames[0][1]:.1f} s)", fontsize=9)
        times = np.array([f[1] for f in frames]) - frames[0][1]
        wrist = plot_axes(np.stack([f[3] for f in frames]))[:, :, WRIST]  # (T, keep, 3)
        for j, name in enumerate(("x (right)", "depth", "height")):
            ax = fig.add_subplot(bottom[0, j])
            for k in range(wrist.shape[1]):
                ax.plot(times, wrist[:, k, j], ".-", ms=2, lw=0.8, color=COLOURS[k % 6])
            ax.set_xlabel("time (s)")
            ax.set_ylabel(f"right wrist {name} (m)")
            ax.grid(alpha=0.3)
        fig.suptitle(
            f"camera {camera}, track {tid}: hypotheses 0-{wrist.shape[1] - 1} "
            "over time (one colour per hypothesis; black: mean of K)"
        )
        if lifting:
            fig.text(0.5, 0.012, lifting, ha="center", va="bottom", fontsize=9)
        fig.savefig(path)
        plt.close(fig)
        return True
