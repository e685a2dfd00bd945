"""Per-track 2D history for the temporal lifter (ROS-free; the pipeline keeps one).

For each (camera, track id) the last frames of a tracked person as the temporal lifter
reads them: stamp (seconds), normalised camera coordinates (17, 2) (NaN or confidence 0 where
a joint is missing), confidences (17,) and the 2D noise std (17,) (NaN = unknown). Frames
older than ``horizon_s`` before the track's newest are dropped; a track not updated for
``horizon_s`` is forgotten; a stamp that is not after the track's newest (a bag that loops,
a clock that jumps back) starts the track over. So memory is bounded by the number of
people in view, and the history a replay builds is the history the live node builds.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from hpe3d_ros.lifting.temporal_runtime import TrackInput


class TrackHistory:
    """The recent 2D of every tracked person, per camera (module docstring).

    Args:
        horizon_s: how far back a track is kept (the temporal window plus a gap).
        max_frames: frames kept per track at most (a fast camera within the horizon).
    """

    def __init__(self, horizon_s: float, max_frames: int = 256) -> None:
        self.horizon_s = float(horizon_s)
        self.max_frames = int(max_frames)
        self._tracks: dict[tuple[str, int], deque] = {}

    def __len__(self) -> int:
        return len(self._tracks)

    def clear(self) -> None:
        self._tracks.clear()

    def update(
        self,
        camera: str,
        stamp_s: float,
        track_ids: np.ndarray,
        kp_norm: np.ndarray,
        conf: np.ndarray,
        noise_std: np.ndarray | None = None,
    ) -> None:
        """Add one frame of a camera's people: ids (N,), (N, 17, 2), (N, 17), (N, 17) or None.

        People with a negative id (untracked) are skipped; so is a second person with an id
        already added at this stamp.
        """
        stamp_s = float(stamp_s)
        for key, frames in list(self._tracks.items()):  # forget tracks gone from view
            if key[0] == camera and stamp_s - frames[-1][0] > self.horizon_s:
                del self._tracks[key]
        for i, tid in enumerate(np.asarray(track_ids).reshape(-1)):
            if tid < 0:
                continue
            key = (camera, int(tid))
            frames = self._tracks.get(key)
            if frames and stamp_s <= frames[-1][0]:
                if stamp_s == frames[-1][0]:
                    continue  # the same id twice in one frame: keep the first
                frames = None  # time went backwards: start the track over
            if frames is None:
                frames = self._tracks[key] = deque(maxlen=self.max_frames)
            noise = None if noise_std is None else np.array(noise_std[i], dtype=np.float64)
            frames.append(
                (
                    stamp_s,
                    np.array(kp_norm[i], dtype=np.float64),
                    np.array(conf[i], dtype=np.float64),
                    noise,
                )
            )
            while stamp_s - frames[0][0] > self.horizon_s:
                frames.popleft()

    def frames(self, camera: str, track_id: int) -> int:
        """How many frames of the track are kept (0 = unknown track)."""
        return len(self._tracks.get((camera, int(track_id)), ()))

    def track(self, camera: str, track_id: int) -> TrackInput | None:
        """The track's frames, oldest first, as the temporal lifter takes them."""
        frames = self._tracks.get((camera, int(track_id)))
        if not frames:
            return None
        stamps = np.array([f[0] for f in frames])
        kp = np.stack([f[1] for f in frames])
        conf = np.stack([f[2] for f in frames])
        noise = None  # frames without a noise level: unknown (NaN rows)
        if any(f[3] is not None for f in frames):
            unknown = np.full(conf.shape[1], np.nan)
            noise = np.stack([unknown if f[3] is None else f[3] for f in frames])
        return TrackInput(stamps, kp, conf, noise)
