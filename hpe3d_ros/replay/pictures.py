"""Pictures of a replay: 2D overlays (PNG), one person's K hypotheses in 3D, an MP4 per camera.

Per sequence and camera, ``overlays`` frames spread evenly over the stream are saved as
``overlay_<camera>_<index>.png``; of those, the frame with the most lifted people gives
``hypotheses_<camera>_<index>.png``: the overlay, the K hypotheses of its largest
person in 3D, and a bird's-eye view of everyone's position with its depth uncertainty;
``track_<camera>.png``: the longest track's hypotheses over time
(:mod:`hpe3d_ros.replay.track_picture`).
Frames are encoded into ``overlay_<camera>.mp4`` (MPEG-4, OpenCV) as they pass, at the
camera's rate measured from the stamps of its first frames (held back until then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hpe3d_ros.overlay import draw_overlay
from hpe3d_ros.replay.track_picture import TrackStrip, plot_axes
from hpe3d_ros.results import FrameResult, Person3D
from hpe3d_ros.skeleton import H36M_BONES


@dataclass
class _Camera:
    chosen: set[int]
    folder: Path
    held: list[tuple[int | None, np.ndarray]] = field(default_factory=list)  # (stamp, frame)
    video: cv2.VideoWriter | None = None
    video_size: tuple[int, ...] = ()
    best: tuple | None = None  # (lifted count, index, overlay, result)
    written: list[str] = field(default_factory=list)


class Pictures:
    """Collects pictures while frames stream past (see module docstring)."""

    def __init__(
        self, out_dir: Path, overlays: int = 4, video_max_frames: int = 600, lifting: str = ""
    ) -> None:
        self.out_dir = Path(out_dir)
        self.lifting = lifting  # how people were lifted, written on the track picture
        self.overlays = overlays
        self.video_max_frames = video_max_frames
        self._cams: dict[tuple[str, str], _Camera] = {}
        self._strip = TrackStrip()  # every camera's tracks over time

    #: Frames held back to measure a camera's rate before its MP4 is opened.
    RATE_FRAMES = 5

    def plan(self, sequence: str, camera: str, n_frames: int | None) -> None:
        """Choose the overlay frames (``n_frames`` unknown: the first ones)."""
        n = n_frames if n_frames else self.overlays
        k = min(self.overlays, n)
        chosen = {int(i) for i in np.linspace(0, n - 1, k + 2)[1:-1].round()} if k else set()
        self._cams[(sequence, camera)] = _Camera(chosen, self.out_dir / sequence)

    def add(
        self,
        sequence: str,
        camera: str,
        index: int,
        stamp_ns: int | None,
        image_rgb: np.ndarray | None,
        result: FrameResult | None,
        reason: str = "",
    ) -> None:
        cam = self._cams.get((sequence, camera))
        if cam is None or (self.overlays == 0 and self.video_max_frames == 0):
            return
        if result is not None and self.overlays:
            self._strip.add(f"{sequence}/{camera}", index, stamp_ns, result)
        wanted = index in cam.chosen
        if image_rgb is None and not (wanted and result is not None):
            return
        overlay = None if image_rgb is None else draw_overlay(image_rgb, result, reason)
        if overlay is not None and index < self.video_max_frames:
            cam.held.append((stamp_ns, overlay))
            if cam.video is not None or len(cam.held) >= self.RATE_FRAMES:
                self._flush(camera, cam)
        if not wanted:
            return
        cam.folder.mkdir(parents=True, exist_ok=True)
        if overlay is not None:
            path = cam.folder / f"overlay_{camera}_{index:05d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
            cam.written.append(str(path))
        if result is not None:
            lifted = sum(p.num_hypotheses > 0 for p in result.people)
            if lifted and (cam.best is None or lifted > cam.best[0]):
                cam.best = (lifted, index, overlay, result)

    def _flush(self, camera: str, cam: _Camera) -> None:
        """Write the held frames, opening the MP4 at the rate their stamps show."""
        if cam.video is None:
            stamps = np.array([t for t, _ in cam.held if t is not None], dtype=np.int64)
            dt = np.diff(stamps)
            dt = dt[dt > 0]
            fps = float(np.clip(1e9 / np.median(dt), 1.0, 60.0)) if dt.size else 10.0
            cam.folder.mkdir(parents=True, exist_ok=True)
            path = cam.folder / f"overlay_{camera}.mp4"
            h, w = cam.held[0][1].shape[:2]
            cam.video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            cam.video_size = (h, w)
            cam.written.append(str(path))
        for _, overlay in cam.held:
            if overlay.shape[:2] == cam.video_size:  # a frame of another size cannot go in
                cam.video.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
        cam.held.clear()

    def close(self) -> list[str]:
        """Finish videos and draw the hypotheses figures; returns every file written."""
        out = []
        for (sequence, camera), cam in self._cams.items():
            if cam.held:
                self._flush(camera, cam)
            if cam.video is not None:
                cam.video.release()
            if cam.best is not None:
                _, index, overlay, result = cam.best
                path = cam.folder / f"hypotheses_{camera}_{index:05d}.png"
                plot_hypotheses(result, overlay, path, index)
                cam.written.append(str(path))
            path = cam.folder / f"track_{camera}.png"
            if self._strip.plot(f"{sequence}/{camera}", path, self.lifting):
                cam.written.append(str(path))
            out.extend(cam.written)
        return sorted(out)


def plot_hypotheses(
    result: FrameResult, overlay: np.ndarray | None, path: Path, index: int = 0
) -> None:
    """Overlay | K hypotheses of the largest lifted person | bird's-eye view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lifted = [p for p in result.people if p.num_hypotheses > 0]
    person: Person3D = max(lifted, key=lambda p: (float(p.bbox_px[3] - p.bbox_px[1]), -p.track_id))
    panels = 3 if overlay is not None else 2
    fig = plt.figure(figsize=(5.2 * panels, 4.8), dpi=100)
    col = 1
    if overlay is not None:
        ax = fig.add_subplot(1, panels, col)
        ax.imshow(overlay)
        ax.set_axis_off()
        ax.set_title(f"camera {result.camera_name}, frame {index}: 2D keypoints")
        col += 1
    ax3 = fig.add_subplot(1, panels, col, projection="3d")
    hyps = plot_axes(person.hypotheses_m - person.root_m.astype(np.float32))
    for h in hyps:
        for a, b in H36M_BONES:
            ax3.plot(*zip(h[a], h[b], strict=True), color="tab:blue", alpha=0.15, lw=0.8)
    mean = hyps.mean(axis=0)
    for a, b in H36M_BONES:
        ax3.plot(*zip(mean[a], mean[b], strict=True), color="k", lw=2.0)
    ax3.set_box_aspect((1, 1, 1))
    for setter in (ax3.set_xlim, ax3.set_ylim, ax3.set_zlim):
        setter(-1.0, 1.0)
    ax3.set_xlabel("x (m)")
    ax3.set_ylabel("depth (m)")
    ax3.set_zlabel("up (m)")
    who = f"id {person.track_id}" if person.track_id >= 0 else "person"
    ax3.set_title(f"{who}: K={person.num_hypotheses} hypotheses (root-relative)")
    ax = fig.add_subplot(1, panels, col + 1)
    for p in lifted:
        x, _, z = p.root_m
        ax.errorbar(x, z, xerr=p.root_std_m[0], yerr=p.root_std_m[2], fmt="o", capsize=3,
                    color="tab:red" if p is person else "tab:blue")  # fmt: skip
        ax.annotate(str(p.track_id), (x, z), textcoords="offset points", xytext=(4, 4))
    ax.plot([0], [0], "k^", ms=10)
    ax.set_xlabel("x (m, right)")
    ax.set_ylabel("z (m, forward)")
    ax.set_title("bird's-eye view: positions +- 1 std")
    ax.grid(alpha=0.3)
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
