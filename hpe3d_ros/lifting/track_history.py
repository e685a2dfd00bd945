"""Per-track 2D history for the temporal lifter, and the pipeline's temporal path (ROS-free).

For each (camera, track id) the last frames of a tracked person as the temporal lifter
reads them: stamp (seconds), normalised camera coordinates (17, 2) (NaN or confidence 0 where
a joint is missing), confidences (17,) and the 2D noise std (17,) (NaN = unknown). Frames
older than ``horizon_s`` before the track's newest are dropped; a track not updated for
``horizon_s`` is forgotten; a stamp that is not after the track's newest (a bag that loops,
a clock that jumps back) starts the track over. So memory is bounded by the number of
people in view, and the history a replay builds is the history the live node builds.
"""

from __future__ import annotations

import zlib
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
        """The track's frames, oldest first, as the temporal lifter takes them (keyed by
        (camera, id): the lifter remembers the codes of frames it has seen)."""
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
        return TrackInput(stamps, kp, conf, noise, key=(camera, int(track_id)))


class TemporalTracks:
    """The pipeline's temporal path (issue 17): every camera's track histories and the
    temporal model that lifts tracks with enough of it.

    Args:
        sampler: the lifter's :class:`~hpe3d_ros.lifting.temporal_runtime.TemporalSampler`.
        min_frames: frames of a track (this one included) before the temporal model lifts it.
        window: grid frames the model sees (0 = its own window).
        seed: the pipeline's seed; each track's hypotheses use one seed from it, the camera
            and the track id at every frame (common random numbers: coherent over time).
    """

    def __init__(self, sampler, min_frames: int = 3, window: int = 0, seed: int = 0) -> None:
        self.sampler = sampler
        self.min_frames = int(min_frames)
        self.window = int(window)
        self.seed = int(seed)
        self.history = TrackHistory(sampler.horizon_s)

    def clear(self) -> None:
        """Forget every track (and the codes the model remembered)."""
        self.history.clear()
        self.sampler.clear_cache()

    def track_seed(self, camera: str, track_id: int) -> int:
        """The seed of a track's hypotheses, the same at every frame."""
        return int(zlib.crc32(f"{self.seed}:{camera}:track:{int(track_id)}".encode()))

    def update(self, camera, stamp_ns, track_ids, kp_norm, conf, noise_std) -> np.ndarray:
        """Add a frame's people (N,) to their tracks (confidence 0 = missing joint); (N,) bool:
        the temporal model lifts them (a unique id with ``min_frames`` frames)."""
        n = len(kp_norm)
        ids = np.asarray(track_ids, dtype=np.int64).reshape(n)
        _, first, counts = np.unique(ids, return_index=True, return_counts=True)
        ids = np.where(np.isin(np.arange(n), first[counts == 1]), ids, -1)  # repeated: no
        kp = np.where(np.asarray(conf)[..., None] > 0, kp_norm, np.nan)
        self.history.update(camera, stamp_ns * 1e-9, ids, kp, conf, noise_std)
        frames = np.array([self.history.frames(camera, int(i)) for i in ids])
        return (ids >= 0) & (frames >= self.min_frames)

    def sample(self, camera: str, track_ids, k: int) -> np.ndarray:
        """(M, k, 17, 3) root-relative hypotheses of the newest frame of M tracks."""
        ids = [int(i) for i in track_ids]
        tracks = [self.history.track(camera, i) for i in ids]
        seeds = [self.track_seed(camera, i) for i in ids]
        return self.sampler.sample_tracks(tracks, k, seeds, self.window)
