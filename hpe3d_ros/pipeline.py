"""The whole job for one camera image, ROS-free: image + camera model in, people out.

Read top-down: :meth:`Pipeline.process` detects people in 2D, tracks them per camera,
converts their COCO keypoints to the lifter's H36M-17 joints, undistorts and normalises them
with the camera model, samples K 3D hypotheses per person in one batched lifter call, and
places each person in the camera frame by least-squares reprojection (optionally with a
ground-plane prior). The ROS node, bag replay and the benchmarks all call this class.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hpe3d_ros.body_size import TrackSizes, ground_size, size_posterior
from hpe3d_ros.camera import CameraModel
from hpe3d_ros.interfaces import Detector, Lifter, Person2DLike, Smoother, Tracker
from hpe3d_ros.lifting.noise import detector_noise_std
from hpe3d_ros.pipeline_config import PipelineConfig
from hpe3d_ros.placement import (
    GroundPrior,
    ground_scale,
    ground_spread,
    size_spread,
    solve_root_translation,
)
from hpe3d_ros.results import Detection2D, FrameResult, Person3D
from hpe3d_ros.skeleton import COCO_JOINT_NAMES, H36M_JOINT_NAMES


class PipelineInputError(ValueError):
    """An image or camera that the pipeline cannot process (the frame is skipped)."""


@dataclass
class LiftedPeople:
    """Output of :meth:`Pipeline.lift_keypoints` for N people."""

    hypotheses_m: np.ndarray  # (N, K, 17, 3) absolute (zeros where not lifted)
    root_m: np.ndarray  # (N, 3), NaN where not lifted
    root_std_m: np.ndarray  # (N, 3)
    lifted: np.ndarray  # (N,) bool: enough visible joints
    confidence: np.ndarray  # (N, 17) confidences used (0 = treated as missing)


class Pipeline:
    """Detector + per-camera tracker + lifter + placement."""

    def __init__(
        self,
        detector: Detector,
        lifter: Lifter,
        config: PipelineConfig | None = None,
        tracker_factory: Callable[[], Tracker] | None = None,
        model_id: str = "",
        smoother_factory: Callable[[], Smoother] | None = None,
    ) -> None:
        self.detector = detector
        self.lifter = lifter
        self.config = config or PipelineConfig()
        self._tracker_factory = tracker_factory
        self._trackers: dict[str, Tracker] = {}
        self._smoother_factory = smoother_factory
        self._smoothers: dict[str, Smoother] = {}
        self._ground = self.config.ground
        self._grounds: dict[str, GroundPrior | None] = {}  # per-camera overrides
        self.model_id = model_id
        # issue 17: tracked people with enough history go through the temporal model
        self._temporal = _temporal_tracks(lifter, self.config) if self.config.temporal else None
        self._sizes = TrackSizes()  # per-track body size from the ground (size_log_std > 0)

    @property
    def lifting(self) -> str:
        """How people are lifted, in words (the replay's track pictures carry it)."""
        if self._temporal is None:
            return "single-frame lifter"
        sampler = self._temporal.sampler
        window = self._temporal.window or sampler.window
        return (
            f"temporal lifter ({window} frames at {sampler.rate_hz:g} Hz) from a track's "
            f"frame {self._temporal.min_frames}, single-frame before"
        )

    def set_ground(self, camera_name: str, ground: GroundPrior | None) -> None:
        """The ground plane of one camera (e.g. from its extrinsics, in its optical frame),
        replacing ``config.ground`` for that camera's people; None turns the prior off there."""
        self._grounds[camera_name] = ground

    def ground_for(self, camera_name: str) -> GroundPrior | None:
        """The camera's ground plane: its :meth:`set_ground` override, else ``config.ground``."""
        return self._grounds.get(camera_name, self._ground)

    def reset(self) -> None:
        """Forget all tracks and filters, and per-camera ground planes (a bag restarts)."""
        self._trackers.clear()
        self._smoothers.clear()
        if self._temporal is not None:
            self._temporal.clear()
        self._sizes = TrackSizes()
        self._grounds.clear()

    # ------------------------------------------------------------------ the job
    def process(
        self,
        image_rgb: np.ndarray,
        camera: CameraModel,
        *,
        camera_name: str = "camera",
        frame_id: str = "",
        stamp_ns: int = 0,
    ) -> FrameResult:
        t0 = time.perf_counter()
        _check_image(image_rgb, camera)
        result = FrameResult(
            camera_name=camera_name,
            frame_id=frame_id,
            stamp_ns=int(stamp_ns),
            detection_joint_names=COCO_JOINT_NAMES,
            joint_names=tuple(H36M_JOINT_NAMES),
            model_id=self.model_id,
        )
        people = self.detector.detect(image_rgb)
        t1 = time.perf_counter()
        tracker = _per_camera(self._trackers, self._tracker_factory, camera_name)
        if tracker is not None:
            people = tracker.update(people)
            # One-Euro smoothing needs ids: it filters each track's keypoints over time
            smoother = _per_camera(self._smoothers, self._smoother_factory, camera_name)
            if smoother is not None:
                people = smoother.smooth(people, stamp_ns * 1e-9)
        t2 = time.perf_counter()
        result.detections = [_detection(p) for p in people]
        if people:
            result.people = self._lift(people, camera, camera_name, stamp_ns)
        t3 = time.perf_counter()
        result.timings_ms = {
            "detect": 1e3 * (t1 - t0),
            "track": 1e3 * (t2 - t1),
            "lift_and_place": 1e3 * (t3 - t2),
            "total": 1e3 * (t3 - t0),
        }
        return result

    def lift_keypoints(
        self,
        kp_h36m_px: np.ndarray,
        conf: np.ndarray,
        camera: CameraModel,
        seed: int,
        ground: GroundPrior | str | None = "config",
        *,
        tracks: Sequence[int] | None = None,
        camera_name: str = "",
        stamp_ns: int = 0,
    ) -> LiftedPeople:
        """Lift and place N people given H36M-17 pixel keypoints (the 2D-to-3D half).

        ``tracks`` (N,) the people's track ids (negative: untracked) with the camera's name
        and the frame's stamp: tracked people enter their track's 2D history, and those with
        ``temporal_min_frames`` frames of it are lifted by the temporal model (issue 17).

        Args:
            kp_h36m_px: (N, 17, 2) raw-image pixels (NaN where missing).
            conf: (N, 17) confidences.
            ground: the ground plane in the camera's optical frame ("config": ``config.ground``).
        """
        cfg = self.config
        ground = self._ground if isinstance(ground, str) else ground
        kp_norm = camera.pixel_to_normalized(np.asarray(kp_h36m_px, dtype=np.float64))
        conf = np.asarray(conf, dtype=np.float64).copy()
        visible = (
            np.isfinite(kp_norm).all(-1)
            & np.isfinite(conf)
            & (conf >= cfg.min_keypoint_confidence)
        )
        conf[~visible] = 0.0
        kp_norm[~visible] = 0.0
        lifted = visible.sum(-1) >= cfg.min_visible_joints
        n, k = len(kp_norm), cfg.num_hypotheses
        hyps = np.zeros((n, k, 17, 3), dtype=np.float32)
        root = np.full((n, 3), np.nan)
        root_std = np.full((n, 3), np.nan)
        noise = None  # the detector's keypoint noise: for noise-aware lifters
        if getattr(self.lifter, "noise_aware", False) or self._temporal is not None:
            noise = detector_noise_std(kp_norm, conf, camera.fx)
        temporal = np.zeros(n, dtype=bool)  # people the temporal model lifts
        if self._temporal is not None and tracks is not None:
            temporal = self._temporal.update(camera_name, stamp_ns, tracks, kp_norm, conf, noise)
        if lifted.any():
            rel = self._hypotheses(
                kp_norm, conf, noise, lifted, temporal, k, seed, tracks, camera_name
            )
            w, kp_l = conf[lifted], kp_norm[lifted]
            # the ground prior pins an ankle: only for people whose ankle is seen
            g = ground_scale(w, cfg.min_keypoint_confidence, kp_h36m_px[lifted], camera.height)
            # with size_log_std > 0 the ground sizes the person too, over the track's frames
            # where tracked (one factor for all K hypotheses: they keep one body); the prior
            # then pins the scaled pose where a foot is seen
            mean = rel.mean(axis=1)
            factor, size_std = self._body_size(
                mean, kp_l, w, ground, g, tracks, lifted, camera_name, stamp_ns
            )
            if (factor != 1.0).any():
                rel = (rel * factor[:, None, None, None]).astype(rel.dtype)
                mean = rel.mean(axis=1)
            t = solve_root_translation(mean, kp_l, w, ground, ground_scale=g)
            # per-hypothesis roots measure how much body-size/pose ambiguity moves the person
            t_k = solve_root_translation(
                rel, kp_l[:, None], w[:, None], ground, ground_scale=g[:, None]
            )
            root[lifted] = t
            # the body-size error the shared-body hypotheses cannot show (0 for other lifters)
            size_sd = size_spread(mean, kp_l, w, size_std, ground, g) if size_std.any() else 0.0
            root_std[lifted] = np.sqrt(
                np.nanvar(t_k, axis=1) + size_sd**2 + ground_spread(mean, kp_l, w, ground, g) ** 2
            )
            hyps[lifted] = rel + t[:, None, None, :].astype(np.float32)
        return LiftedPeople(hyps, root, root_std, lifted, conf)

    # ------------------------------------------------------------------ helpers
    def _body_size(self, mean, kp_l, w, ground, g, tracks, lifted, camera_name, stamp_ns):
        """(n,) size factor and (n,) log-std of the body size: from the ground
        (``size_log_std`` > 0; over the track's frames for tracked people; the std no less
        than the lifter's), else 1 and the lifter's ``size_std`` (a one-body lifter's K
        hypotheses share one size)."""
        lifter_std = float(getattr(self.lifter, "size_std", 0.0))
        factor, size_std = np.ones(len(mean)), np.full(len(mean), lifter_std)
        prior = self.config.size_log_std
        if prior <= 0:
            return factor, size_std
        measured = ground_size(mean, kp_l, w, ground, g)
        if tracks is None:
            log_sum, info = measured.info * measured.log_factor, measured.info
        else:
            ids = np.asarray(tracks, dtype=np.int64)[lifted]
            log_sum, info = self._sizes.update(camera_name, stamp_ns, ids, measured)
        sized = info > 0
        f, s = size_posterior(log_sum, info, prior)
        # the ground prior pins the sized pose with the same ground again: a spread narrowed
        # by the ground's size as well would count it twice (measured: a 4-camera rig bag's
        # fuser split one person into two tracks), so the size never claims more than the
        # lifter's own; a child's reading widens it
        s = np.maximum(s, lifter_std)
        return np.where(sized, f, factor), np.where(sized, s, size_std)

    def lift_people(
        self,
        kp_h36m_px: np.ndarray,
        conf: np.ndarray,
        camera: CameraModel,
        camera_name: str,
        stamp_ns: int,
        who: Sequence[tuple[int, float, Sequence[float]]],
    ) -> list[Person3D]:
        """:meth:`lift_keypoints` with the frame's seed, packed as :class:`Person3D`.

        Args:
            kp_h36m_px: (N, 17, 2) pixels; conf: (N, 17).
            who: per person (track_id, detection score, bbox [x0, y0, x1, y1]).
        """
        kp = np.asarray(kp_h36m_px, dtype=np.float64)
        lifted = self.lift_keypoints(
            kp,
            conf,
            camera,
            self.seed_for(camera_name, stamp_ns),
            self.ground_for(camera_name),
            tracks=[int(track_id) for track_id, _, _ in who],
            camera_name=camera_name,
            stamp_ns=stamp_ns,
        )
        no_hyps = np.zeros((0, 17, 3), np.float32)
        return [
            Person3D(
                track_id=int(track_id),
                detection_score=float(score),
                bbox_px=np.asarray(bbox, dtype=np.float32),
                # a joint treated as missing has NaN coordinates (the message's contract)
                keypoints_px=np.where(lifted.confidence[i][:, None] > 0, kp[i], np.nan).astype(
                    np.float32
                ),
                keypoint_conf=lifted.confidence[i].astype(np.float32),
                root_m=lifted.root_m[i],
                root_std_m=lifted.root_std_m[i].astype(np.float32),
                hypotheses_m=lifted.hypotheses_m[i] if lifted.lifted[i] else no_hyps,
            )
            for i, (track_id, score, bbox) in enumerate(who)
        ]

    def _lift(
        self, people: list[Person2DLike], camera: CameraModel, camera_name: str, stamp_ns: int
    ) -> list[Person3D]:
        pairs = [p.to_h36m() for p in people]
        kp = np.stack([np.asarray(kp, dtype=np.float64) for kp, _ in pairs])
        conf = np.stack([np.asarray(c, dtype=np.float64) for _, c in pairs])
        who = [(p.track_id, p.score, p.box) for p in people]
        return self.lift_people(kp, conf, camera, camera_name, stamp_ns, who)

    def _hypotheses(self, kp_norm, conf, noise, lifted, temporal, k, seed, tracks, camera):
        """(M, k, 17, 3) root-relative hypotheses of the M lifted people: the temporal model
        for tracks with history (each with its track's seed), the single-frame lifter for
        the others (the frame's seed)."""
        idx = np.flatnonzero(lifted)
        use = temporal[idx]
        rel = np.zeros((len(idx), k, 17, 3), dtype=np.float32)
        if use.any():
            rel[use] = self._temporal.sample(camera, np.asarray(tracks)[idx[use]], k)
        if not use.all():
            sel = idx[~use]
            extra = {}  # noise-aware lifters are told how noisy the keypoints are
            if getattr(self.lifter, "noise_aware", False):
                extra["noise_std"] = noise[sel]
            kp_in, conf_in = kp_norm[sel].astype(np.float32), conf[sel].astype(np.float32)
            rel[~use] = self.lifter.sample(kp_in, conf_in, k, seed, **extra)
        return rel

    def seed_for(self, camera_name: str, stamp_ns: int) -> int:
        """Deterministic per (seed, camera, stamp): replaying a bag gives identical results."""
        mix = zlib.crc32(f"{self.config.seed}:{camera_name}:{int(stamp_ns)}".encode())
        return int(mix)


def _temporal_tracks(lifter, cfg: PipelineConfig):
    """The temporal path of a lifter with a temporal model (issue 17); None otherwise."""
    entry = (getattr(lifter, "checkpoint", None) or {}).get("temporal")
    if getattr(lifter, "temporal", None) is None and not entry:
        return None
    from hpe3d_ros.lifting.temporal_runtime import temporal_part  # torch: only when needed
    from hpe3d_ros.lifting.track_history import TemporalTracks

    part = temporal_part(lifter)
    return TemporalTracks(part, cfg.temporal_min_frames, cfg.temporal_window, cfg.seed)


def _per_camera(store: dict, factory: Callable | None, camera_name: str):
    """The camera's own tracker/smoother, made on first use (None without a factory)."""
    if factory is None:
        return None
    if camera_name not in store:
        store[camera_name] = factory()
    return store[camera_name]


def _detection(p: Person2DLike) -> Detection2D:
    return Detection2D(
        track_id=int(p.track_id),
        score=float(p.score),
        bbox_px=np.asarray(p.box, dtype=np.float32),
        # joints the detector marked unseen (score 0: cut off by the border) have NaN coordinates
        keypoints_px=np.where(
            np.asarray(p.scores)[:, None] > 0, np.asarray(p.keypoints), np.nan
        ).astype(np.float32),
        confidence=np.asarray(p.scores, dtype=np.float32),
    )


def _check_image(image: np.ndarray, camera: CameraModel) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise PipelineInputError(f"expected an (H, W, 3) RGB image, got shape {shape}")
    if image.dtype != np.uint8:
        raise PipelineInputError(f"expected uint8 pixels, got {image.dtype}")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise PipelineInputError("empty image (0 pixels)")
    if (w, h) != (camera.width, camera.height):
        raise PipelineInputError(
            f"image is {w}x{h} but its CameraInfo says {camera.width}x{camera.height}"
        )
