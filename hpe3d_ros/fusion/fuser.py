"""Every camera's people in one list in the target frame: association, fusion and 3D tracks.

A driver (the node or the replay) calls, for each processed camera frame in arrival order::

    people = fuser.update(camera_name, frame_result, camera_model, T_target_camera)

with ``T_target_camera`` the camera's optical frame in the target frame (None when the
transform is missing: the miss is counted per camera, see :meth:`PeopleFuser.status`, and
nothing else changes), and ``fuser.people(stamp_ns)`` whenever it publishes.

One update, top-down:

1. the frame's people become :class:`~hpe3d_ros.fusion.observations.Observation` s in the
   target frame (root with a ray-shaped covariance, hypotheses, 2D keypoints);
2. every track is predicted to the frame's stamp (constant velocity). A frame up to
   ``max_stamp_skew_s`` older than a track's last update (another camera's frame that came
   in later) is compared at the track's time instead, its position moved by the track's
   velocity and its covariance grown by that velocity's uncertainty (motion compensation);
   an older frame is dropped and counted as stale;
3. observations are assigned to tracks by Hungarian assignment on the squared Mahalanobis
   distance (gate: ``gate_probability`` of a chi-square with 3 dof), with a bonus where the
   camera's own tracker already linked the observation to that track;
4. matched tracks take a Kalman update (cameras' crossing rays shrink the covariance: the
   fused root comes from both rays); unmatched observations start tentative tracks; two
   tracks that turn out to be one person (both cameras started one before they met) merge
   into the older id;
5. states move on (tentative -> confirmed -> lost -> deleted; see
   :mod:`hpe3d_ros.fusion.tracks`).

The pose of a person is fused lazily, when :meth:`PeopleFuser.people` is asked: the latest
sight of every camera within ``max_stamp_skew_s`` of the track's last update, hypotheses
re-weighted by reprojection into all of them (:func:`hpe3d_ros.fusion.views.fuse_hypotheses`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.fusion import kalman
from hpe3d_ros.fusion.association import CHI2_3DOF, assign
from hpe3d_ros.fusion.observations import Observation, RootNoise, observations_from_result
from hpe3d_ros.fusion.tracks import (
    CONFIRMED,
    LOST,
    TENTATIVE,
    PeopleList,
    Track,
    TrackedPerson,
    ViewInfo,
)
from hpe3d_ros.fusion.transforms import Transform, TransformSource, TransformUnavailable
from hpe3d_ros.fusion.views import ReprojectionModel, fuse_hypotheses
from hpe3d_ros.results import FrameResult


@dataclass(frozen=True)
class FuserConfig:
    """Association, track management and fusion settings."""

    target_frame: str = "base_link"
    max_stamp_skew_s: float = 0.05  # frames of different cameras this far apart are one moment
    gate_probability: float = 0.999  # of the chi-square gate (3 dof): 0.9, 0.95, 0.99, 0.999
    camera_id_bonus: float = 4.0  # cost bonus when the camera's tracker already linked them
    confirm_hits: int = 3
    tentative_timeout_s: float = 0.3
    lost_after_s: float = 0.3
    delete_after_s: float = 2.0
    merge_max_distance_m: float = 1.0  # two tracks closer than this (and within the gate) merge
    output_tentative: bool = False  # people() lists tentative tracks too
    num_hypotheses: int = 0  # K of the fused pose; 0 = as many as one view had
    seed: int = 0
    motion: kalman.MotionModel = field(default_factory=kalman.MotionModel)
    noise: RootNoise = field(default_factory=RootNoise)
    reprojection: ReprojectionModel = field(default_factory=ReprojectionModel)

    def __post_init__(self) -> None:
        if self.gate_probability not in CHI2_3DOF:
            raise ValueError(f"gate_probability must be one of {sorted(CHI2_3DOF)}")
        if not 0 <= self.max_stamp_skew_s <= 1.0:
            raise ValueError("max_stamp_skew_s must be in [0, 1] s")
        if self.confirm_hits < 1:
            raise ValueError("confirm_hits must be >= 1")

    @property
    def gate(self) -> float:
        return CHI2_3DOF[self.gate_probability]


@dataclass
class CameraStatus:
    """Per-camera counters for diagnostics."""

    frames: int = 0  # frames fused
    missing_transform: int = 0  # frames skipped: no transform to the target frame
    stale: int = 0  # frames skipped: older than max_stamp_skew_s behind the newest
    last_problem: str = ""  # the latest reason a frame was skipped ("" = none yet)
    last_ok_ns: int | None = None  # stamp of the latest fused frame

    @property
    def ok(self) -> bool:
        """True while the latest frame of this camera was fused."""
        return self.frames > 0 and not self.last_problem


class PeopleFuser:
    """Multi-camera association, fusion and tracking (see the module docstring)."""

    def __init__(self, config: FuserConfig | None = None) -> None:
        self.config = config or FuserConfig()
        self._tracks: list[Track] = []
        self._next_id = 1
        self._latest_ns: int | None = None
        self._status: dict[str, CameraStatus] = {}
        self._pose_cache: dict[int, tuple[int, np.ndarray]] = {}

    # ------------------------------------------------------------------ inputs
    def update(
        self,
        camera_name: str,
        result: FrameResult,
        camera: CameraModel,
        T_target_camera: Transform | None,
        stamp_ns: int | None = None,
        *,
        reason: str = "",
    ) -> list[TrackedPerson]:
        """Fuse one camera frame; returns the people at that frame's stamp.

        Args:
            T_target_camera: the camera's optical frame in the target frame; None = unknown
                (``reason`` says why): counted, the frame is skipped, tracks live on.
            stamp_ns: the frame's stamp (default ``result.stamp_ns``).
        """
        status = self._status.setdefault(camera_name, CameraStatus())
        stamp = int(result.stamp_ns if stamp_ns is None else stamp_ns)
        skew_ns = round(self.config.max_stamp_skew_s * 1e9)
        if T_target_camera is None:
            status.missing_transform += 1
            status.last_problem = reason or f"no transform to {self.config.target_frame!r}"
            return self.people(max(stamp, self._latest_ns or stamp))
        if self._latest_ns is not None and stamp < self._latest_ns - skew_ns:
            status.stale += 1
            status.last_problem = (
                f"frame {(self._latest_ns - stamp) * 1e-6:.0f} ms older than the newest fused "
                f"frame (max_stamp_skew_s {self.config.max_stamp_skew_s})"
            )
            return self.people(self._latest_ns)
        obs = observations_from_result(result, camera, T_target_camera, self.config.noise, stamp)
        self._associate_and_update(camera_name, obs, stamp)
        self._latest_ns = stamp if self._latest_ns is None else max(self._latest_ns, stamp)
        self._manage(self._latest_ns)
        status.frames += 1
        status.last_problem = ""
        status.last_ok_ns = stamp
        return self.people(stamp)

    def update_from(
        self,
        camera_name: str,
        result: FrameResult,
        camera: CameraModel,
        transforms: TransformSource,
        stamp_ns: int | None = None,
    ) -> list[TrackedPerson]:
        """:meth:`update` with the transform looked up in ``transforms`` (a tree or TF)."""
        stamp = int(result.stamp_ns if stamp_ns is None else stamp_ns)
        try:
            T = transforms.lookup(self.config.target_frame, result.frame_id, stamp)
        except TransformUnavailable as exc:
            return self.update(camera_name, result, camera, None, stamp, reason=str(exc))
        return self.update(camera_name, result, camera, T, stamp)

    def status(self, camera_name: str) -> CameraStatus:
        """Counters of one camera (a fresh, empty one if it never sent a frame)."""
        return self._status.get(camera_name, CameraStatus())

    def reset(self) -> None:
        """Forget every track (a bag restarts, the clock jumps back)."""
        self._tracks.clear()
        self._pose_cache.clear()
        self._latest_ns = None

    # ------------------------------------------------------------------ outputs
    def people(self, stamp_ns: int) -> list[TrackedPerson]:
        """Every live track predicted to ``stamp_ns`` (tentative ones only if configured)."""
        out = []
        for tr in self._tracks:
            if tr.state == TENTATIVE and not self.config.output_tentative:
                continue
            dt = (stamp_ns - tr.t_ns) * 1e-9
            x, P = kalman.predict(tr.x, tr.P, dt, self.config.motion)
            views = self._fusion_views(tr)
            rel = self._fused_relative_pose(tr, views)
            out.append(TrackedPerson(
                track_id=tr.track_id, state=tr.state, stamp_ns=int(stamp_ns),
                position_m=x[:3], position_cov=P[:3, :3], velocity_mps=x[3:],
                velocity_cov=P[3:, 3:], hypotheses_m=(rel + x[:3]).astype(np.float32),
                views=[ViewInfo(v.camera_name, v.frame_id, v.stamp_ns, v.camera_track_id)
                       for v in views],
                score=max((v.score for v in views), default=0.0),
            ))  # fmt: skip
        return sorted(out, key=lambda p: p.track_id)

    def people_list(self, stamp_ns: int) -> PeopleList:
        """:meth:`people` with the target frame and stamp: one ``~/people`` message."""
        return PeopleList(self.config.target_frame, int(stamp_ns), self.people(stamp_ns))

    @property
    def latest_ns(self) -> int | None:
        """Stamp of the newest fused frame (None before the first): where to publish."""
        return self._latest_ns

    @property
    def tracks(self) -> list[Track]:
        """The live tracks (read-only use: tests, diagnostics)."""
        return list(self._tracks)

    # ------------------------------------------------------------------ association
    def _associate_and_update(self, camera_name: str, obs: list[Observation], stamp: int) -> None:
        cfg = self.config
        tracks = [t for t in self._tracks if not t.seen_by(camera_name, stamp)]
        n, m = len(tracks), len(obs)
        cost = np.full((n, m), np.inf)
        prepared = {}
        for i, tr in enumerate(tracks):
            x, P, shift, extra = self._at(tr, stamp)
            prepared[i] = (x, P, shift, extra, self._views_now(tr, camera_name, stamp))
            for j, o in enumerate(obs):
                y, S = kalman.innovation(x, P, o.root_m + shift, o.root_cov + extra)
                d2 = kalman.mahalanobis_sq(y, S)
                if d2 <= cfg.gate:
                    prev = tr.views.get(camera_name)
                    linked = prev is not None and o.camera_track_id >= 0
                    linked = linked and prev.camera_track_id == o.camera_track_id
                    cost[i, j] = d2 - (cfg.camera_id_bonus if linked else 0.0)
        matches, _, new = assign(cost, np.isfinite(cost))
        for i, j in matches:
            tr, o = tracks[i], obs[j]
            x, P, shift, extra, views_now = prepared[i]
            R = o.filter_covariance(views_now**cfg.noise.views_exponent,
                                    cfg.noise.depth_correlation)  # fmt: skip
            tr.x, tr.P = kalman.update(x, P, o.root_m + shift, R + extra)
            tr.t_ns = max(tr.t_ns, stamp)
            tr.views[camera_name] = o
            tr.hits += 1
            tr.version += 1
            if tr.state == LOST:
                tr.state = CONFIRMED
        for j in new:  # a new track starts from one calibrated monocular root
            x, P = kalman.initial_state(obs[j].root_m, obs[j].root_cov, cfg.motion)
            tr = Track(self._next_id, x, P, stamp, born_ns=stamp)
            tr.views[camera_name] = obs[j]
            self._tracks.append(tr)
            self._next_id += 1
        self._merge(stamp)

    def _views_now(self, tr: Track, camera_name: str, stamp: int) -> int:
        """Cameras (this one included) whose sight of the track is within the skew."""
        skew = round(self.config.max_stamp_skew_s * 1e9)
        others = sum(1 for cam, v in tr.views.items()
                     if cam != camera_name and abs(stamp - v.stamp_ns) <= skew)  # fmt: skip
        return 1 + others

    def _at(self, tr: Track, stamp: int):
        """A track's state for a measurement at ``stamp``: (x, P, shift, extra_cov).

        A newer measurement is met by predicting the track; an older one (within the skew)
        is moved forward to the track's time by the track's velocity, its covariance grown.
        """
        dt = (stamp - tr.t_ns) * 1e-9
        if dt >= 0:
            x, P = kalman.predict(tr.x, tr.P, dt, self.config.motion)
            return x, P, np.zeros(3), np.zeros((3, 3))
        back = -dt
        extra = back**2 * tr.P[3:, 3:] + self.config.motion.noise(back)[:3, :3]
        return tr.x, tr.P, tr.x[3:] * back, extra

    def _merge(self, stamp: int) -> None:
        """Merge tracks that are one person (no camera saw both in one frame)."""
        cfg = self.config
        alive = sorted(self._tracks, key=lambda t: (t.state == TENTATIVE, t.track_id))
        gone: set[int] = set()
        for a_i, a in enumerate(alive):
            if a.track_id in gone:
                continue
            xa, Pa = kalman.predict(a.x, a.P, (stamp - a.t_ns) * 1e-9, cfg.motion)
            for b in alive[a_i + 1 :]:
                if b.track_id in gone or _seen_together(a, b):
                    continue
                xb, Pb = kalman.predict(b.x, b.P, (stamp - b.t_ns) * 1e-9, cfg.motion)
                y = xb[:3] - xa[:3]
                if float(np.linalg.norm(y)) > cfg.merge_max_distance_m:
                    continue
                if kalman.mahalanobis_sq(y, Pa[:3, :3] + Pb[:3, :3]) > CHI2_3DOF[0.99]:
                    continue
                xa, Pa = kalman.update(xa, Pa, xb[:3], Pb[:3, :3])
                a.x, a.P, a.t_ns = xa, Pa, max(stamp, a.t_ns)
                for cam, v in b.views.items():
                    if cam not in a.views or a.views[cam].stamp_ns < v.stamp_ns:
                        a.views[cam] = v
                a.hits += b.hits
                a.version += 1
                gone.add(b.track_id)
        if gone:
            self._tracks = [t for t in self._tracks if t.track_id not in gone]

    # ------------------------------------------------------------------ life cycle
    def _manage(self, now_ns: int) -> None:
        cfg = self.config
        keep = []
        for tr in self._tracks:
            age = (now_ns - _last_seen(tr)) * 1e-9
            if tr.state == TENTATIVE:
                if tr.hits >= cfg.confirm_hits:
                    tr.state = CONFIRMED
                elif age > cfg.tentative_timeout_s:
                    continue
            if tr.state == CONFIRMED and age > cfg.lost_after_s:
                tr.state = LOST
            if tr.state == LOST and age > cfg.delete_after_s:
                continue
            keep.append(tr)
        self._tracks = keep
        live = {t.track_id for t in keep}
        self._pose_cache = {k: v for k, v in self._pose_cache.items() if k in live}

    # ------------------------------------------------------------------ pose fusion
    def _fusion_views(self, tr: Track) -> list[Observation]:
        """The latest sight per camera within the skew of the track's newest sight."""
        newest = _last_seen(tr)
        skew = round(self.config.max_stamp_skew_s * 1e9)
        views = [v for v in tr.views.values() if newest - v.stamp_ns <= skew]
        return sorted(views, key=lambda v: v.camera_name)

    def _fused_relative_pose(self, tr: Track, views: list[Observation]) -> np.ndarray:
        """(K, J, 3) root-relative fused hypotheses, cached per track version."""
        cached = self._pose_cache.get(tr.track_id)
        if cached is not None and cached[0] == tr.version:
            return cached[1]
        if not views:
            rel = np.zeros((0, 17, 3))
        else:
            k = self.config.num_hypotheses or max(len(v.hypotheses_m) for v in views)
            roots = [tr.x[:3] + tr.x[3:] * (v.stamp_ns - tr.t_ns) * 1e-9 for v in views]
            key = f"{self.config.seed}:{tr.track_id}:{_last_seen(tr)}".encode()
            fused = fuse_hypotheses(views, roots, np.zeros(3), k, zlib.crc32(key),
                                    self.config.reprojection)  # fmt: skip
            rel = fused.hypotheses_m.astype(np.float64)
        self._pose_cache[tr.track_id] = (tr.version, rel)
        return rel


def _last_seen(tr: Track) -> int:
    return max((v.stamp_ns for v in tr.views.values()), default=tr.born_ns)


def _seen_together(a: Track, b: Track) -> bool:
    """Some camera's single frame held both tracks: two people, never merged."""
    return any(
        cam in b.views and b.views[cam].stamp_ns == v.stamp_ns for cam, v in a.views.items()
    )
