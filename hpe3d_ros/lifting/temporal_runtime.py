"""The temporal lifter at run time: a track's 2D history in, K coherent 3D hypotheses out.

A temporal checkpoint is a single-frame lifter checkpoint (lifter v2) with one more entry,
``"temporal"``: the temporal network's config, weights and calibration (the format:
:mod:`hpe3d_ros.lifting.temporal_checkpoint`). :func:`~hpe3d_ros.lifting.load_lifter`
returns a :class:`TemporalLifter` for it: ``sample`` is the single-frame lifter, unchanged
(new tracks, untracked people), and :meth:`TemporalLifter.sample_sequence` /
``temporal.sample_tracks`` run the temporal model (:mod:`hpe3d_ros.lifting.temporal`). Code
that reads the file as a plain lifter still works: it ignores the extra entry.

Hypothesis coherence: one latent noise vector per hypothesis and track (common random
numbers, :meth:`TemporalSampler.track_noise`), the same at every frame of the track; the
seed is the caller's (the pipeline derives it from its seed, the camera and the track id, so
a replay reproduces it).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hpe3d_ros.lifting.evidence import (
    CANDIDATE_STREAM,
    EvidenceConfig,
    average_over_track,
    evidence_weights,
    latent_shift,
)
from hpe3d_ros.lifting.frame_cache import FrameCache, forget_oldest
from hpe3d_ros.lifting.graph import LifterGraph
from hpe3d_ros.lifting.normalize import (
    N_FEATURES,
    N_JOINTS,
    N_NOISE_FEATURES,
    prepare_inputs,
    visibility,
)
from hpe3d_ros.lifting.runtime import Lifter, float_state, latent_noise
from hpe3d_ros.lifting.temporal import build_temporal
from hpe3d_ros.lifting.temporal_checkpoint import complete_entry
from hpe3d_ros.lifting.track_window import STAMP_TOL_S, grid_weights, window_times


@dataclass
class TrackInput:
    """One track's 2D history (oldest first), normalised camera coordinates.

    ``stamps_s`` (T,) strictly increasing seconds; ``kp_norm`` (T, 17, 2); ``conf`` (T, 17);
    ``noise_std`` (T, 17) or None (unknown); ``key`` (optional, hashable, e.g. (camera,
    track id)): the sampler then remembers each frame's code and computes only new frames.
    """

    stamps_s: np.ndarray
    kp_norm: np.ndarray
    conf: np.ndarray
    noise_std: np.ndarray | None = None
    key: object = None


class TemporalGraph(LifterGraph):
    """:class:`LifterGraph` whose ``features`` are packed per track (N, packed_size): the
    current frame's features and the window's codes on the grid (``TemporalBodyVAE.encode``).
    """

    def example_inputs(self, n: int = 2, k: int = 3) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(0)
        feats = torch.randn(n, self.model.packed_size, generator=gen)
        rot = torch.eye(3).expand(n, 3, 3).contiguous()
        return feats, torch.randn(n, k, self.latent_dim, generator=gen), rot


class TemporalSampler:
    """The temporal network of a checkpoint's ``"temporal"`` entry, with its calibration."""

    def __init__(self, entry: dict, device: str = "cpu") -> None:
        self.entry = entry
        self.model = build_temporal(entry["model_config"], entry["temporal_config"])
        self.model.load_state_dict(float_state(entry["state_dict"]))
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.tcfg = self.model.tcfg
        self.window = self.tcfg.window
        self.rate_hz = float(self.tcfg.rate_hz)
        self.max_gap_s = float(self.tcfg.max_gap_s)
        self.conf_threshold = float(entry["conf_threshold"])
        self.temperature = float(entry.get("temperature", 1.0))
        self.latent_dof = float(entry.get("latent_dof", math.inf))
        self.latent_dim = int(self.model.cfg.latent_dim)
        self.target_mean = torch.zeros(3 * (N_JOINTS - 1), device=self.device)
        self.evidence = EvidenceConfig.from_entry(entry.get("evidence"))
        if self.evidence is not None and not self.evidence.shift:
            raise ValueError(
                "temporal evidence: only 'shift' keeps a track's hypotheses coherent; "
                "keeping candidates would change them from frame to frame"
            )
        #: reads an unknown 2D noise level for the evidence's chi-square (the single-frame
        #: lifter's estimator; :class:`TemporalLifter` sets it). The network's own input
        #: stays "unknown", as it was trained.
        self.noise_estimator = None
        self._graph = TemporalGraph(self)
        self._frames_cache = FrameCache()  # track key -> its frames' inputs and arrays
        self._noise: dict = {}  # (k, seed, stream, latent_dim, latent_dof) -> a track's noise
        self._evidence: dict = {}  # track key -> its candidates' averaged chi-square

    @property
    def horizon_s(self) -> float:
        """How far back a window can read: its span plus one interpolation gap."""
        return (self.window - 1) / self.rate_hz + self.max_gap_s

    def clear_cache(self) -> None:
        """Forget remembered codes and noise (e.g. when a bag restarts)."""
        self._frames_cache.clear()
        self._noise.clear()
        self._evidence.clear()

    def track_noise(self, k: int, seed: int | None, stream: int | None = None) -> np.ndarray:
        """(k, latent_dim) float32: one track's noise, reused at every frame (module doc).
        For a seed it is drawn once and remembered (read-only; the newest
        :data:`~hpe3d_ros.lifting.frame_cache.MAX_CACHED_TRACKS` seeds), since every frame
        of the track asks for it.
        ``stream``: a second, independent draw for the same seed (the evidence candidates)."""
        if seed is None:
            return latent_noise(1, k, self.latent_dim, None, self.latent_dof)[0]
        key = (int(k), int(seed), stream, self.latent_dim, self.latent_dof)
        noise = self._noise.get(key)
        if noise is None:
            rng_seed = int(seed) if stream is None else [int(seed), int(stream)]
            noise = latent_noise(1, k, self.latent_dim, rng_seed, self.latent_dof)[0]
            noise.flags.writeable = False
            self._noise[key] = noise
            forget_oldest(self._noise)
        return noise

    def frame_codes(self, feats: np.ndarray) -> np.ndarray:
        """(M, F) per-frame features -> (M, C) codes (``TemporalBodyVAE.frame_codes``)."""
        if len(feats) == 0:
            return np.zeros((0, self.model.code_channels), np.float32)
        with torch.inference_mode():
            x = torch.tensor(np.asarray(feats, dtype=np.float32), device=self.device)
            return self.model.frame_codes(x).cpu().numpy()

    def _frames(self, tracks: Sequence[TrackInput]):
        """Every recent frame of the tracks: features (M, F), rotations (M, 3, 3), usable
        (M,) (a joint seen), codes (M, C), and per track (first row, end row, stamps).

        A track with a ``key`` keeps its frames' features and codes
        (:class:`~hpe3d_ros.lifting.frame_cache.FrameCache`): a frame whose stamp and inputs
        (keypoints, confidences, noise) are the same as last time is not recomputed.
        """
        inputs, parts, lo = [], [], 0
        for tr in tracks:
            stamps = np.asarray(tr.stamps_s, dtype=np.float64).reshape(-1)
            recent = np.flatnonzero(stamps >= stamps[-1] - self.horizon_s - STAMP_TOL_S)
            kp = np.asarray(tr.kp_norm, dtype=np.float64).reshape(-1, N_JOINTS, 2)[recent]
            conf = np.asarray(tr.conf, dtype=np.float64).reshape(-1, N_JOINTS)[recent]
            noise = (
                np.full(conf.shape, np.nan)
                if tr.noise_std is None
                else np.asarray(tr.noise_std, dtype=np.float64).reshape(-1, N_JOINTS)[recent]
            )
            inputs.append((stamps[recent], kp, conf, noise))
            parts.append((lo, lo + len(recent), stamps[recent]))
            lo += len(recent)
        per_track = self._frames_cache.arrays([tr.key for tr in tracks], inputs, self._compute)
        feats, rot, usable, codes = (np.concatenate([a[i] for a in per_track]) for i in range(4))
        return feats, rot, usable, codes, parts

    def _compute(self, kp: np.ndarray, conf: np.ndarray, noise: np.ndarray):
        """New frames -> features, rotations, usable (a joint seen), codes."""
        feats, rot = prepare_inputs(kp, conf, self.conf_threshold, noise, True)
        usable = visibility(kp, conf, self.conf_threshold).any(-1)
        return feats, rot, usable, self.frame_codes(feats)

    def packed(self, tracks: Sequence[TrackInput], window: int | None = None):
        """Per track the graph input for its last frame: packed (N, packed_size) float32
        and the last frame's rotation camera -> virtual camera (N, 3, 3). ``window`` < the
        model's: only the newest ``window`` grid frames are used, older ones are unseen."""
        w = self.window
        use = w if window is None or window <= 0 else min(int(window), w)
        feats, rot, usable, codes, parts = self._frames(tracks)
        codes = torch.from_numpy(codes)
        idx = np.zeros((4, len(tracks), w))
        for n, (lo, hi, stamps) in enumerate(parts):
            rows = lo + np.flatnonzero(usable[lo:hi])  # frames with a joint seen
            if len(rows) == 0:
                continue  # nothing seen: an all-unseen window
            times = window_times(stamps[-1], w, self.rate_hz)
            i0, i1, wt, seen = grid_weights(stamps[rows - lo], times, self.max_gap_s)
            seen[: w - use] = False
            idx[:, n] = rows[i0], rows[i1], wt, seen
        grid = self.model.grid(
            codes,
            torch.from_numpy(idx[0].astype(np.int64)),
            torch.from_numpy(idx[1].astype(np.int64)),
            torch.from_numpy(idx[2].astype(np.float32)),
            torch.from_numpy(idx[3] > 0.5),
        )
        last = np.array([hi - 1 for _, hi, _ in parts])
        packed = np.concatenate([feats[last], grid.flatten(1).numpy()], axis=1)
        return packed.astype(np.float32), rot[last].astype(np.float32)

    def sample_tracks(
        self,
        tracks: Sequence[TrackInput],
        k: int,
        seeds: Sequence[int | None],
        window: int | None = None,
    ) -> np.ndarray:
        """K hypotheses for the last frame of each track: (N, k, 17, 3) root-relative metres,
        camera frame. ``seeds``: one per track (its common random numbers)."""
        n = len(tracks)
        if n == 0 or k == 0:
            return np.zeros((n, k, N_JOINTS, 3), dtype=np.float32)
        packed, rot = self.packed(tracks, window)
        last = np.stack(
            [
                np.asarray(tr.kp_norm, dtype=np.float64).reshape(-1, N_JOINTS, 2)[-1]
                for tr in tracks
            ]
        )
        ends = [(tr.key, float(np.asarray(tr.stamps_s).reshape(-1)[-1])) for tr in tracks]
        return self._hypotheses(packed, rot, last, k, seeds, ends)

    def _hypotheses(self, packed, rot, kp_last, k: int, seeds, ends) -> np.ndarray:
        """Per track its K hypotheses for the packed last frame: the track's own noise
        decoded, around the centre its evidence favours where the checkpoint has one.

        Evidence (``shift`` only): :meth:`EvidenceConfig.count` candidates, from the track's
        second noise stream (the same latents at every frame: candidate m is one way the
        track moves), widened by ``spread``, scored by how well they reproject onto the last
        frame's keypoints (:meth:`EvidenceConfig.chi2`); a track with a key averages each
        candidate's chi-square over its frames (``memory_s``), so the centre follows the
        evidence, not each frame's 2D noise. ``ends``: per track (key, last stamp)."""
        noise = np.stack([self.track_noise(k, s) for s in seeds])
        ev = self.evidence
        if ev is None:
            return self._run(packed, noise, rot)
        m = ev.count(k)
        cands = np.stack([self.track_noise(m, s, CANDIDATE_STREAM) for s in seeds])
        cands = cands * np.float32(ev.spread)
        # the last frames' features; an unknown noise level read by the estimator (a copy:
        # only the chi-square sees it, the network's input stays "unknown")
        feats = packed[:, : N_FEATURES + N_NOISE_FEATURES].copy()
        if self.noise_estimator is not None:
            self.noise_estimator.fill_unknown(feats)
        decode = self._graph.decoder(packed, rot, self.device)
        chi2 = ev.chi2(decode(cands), kp_last, feats)
        # a track without a seed draws new candidates every frame: nothing to average
        chi2 = np.stack(
            [
                average_over_track(self._evidence, key if s is not None else None, t, c, ev)
                for (key, t), s, c in zip(ends, seeds, chi2, strict=True)
            ]
        )
        forget_oldest(self._evidence)
        centre = latent_shift(evidence_weights(chi2, ev.ess_floor, ev.tau0), cands)
        return decode(centre[:, None, :] + noise)

    def sample_sequence(
        self,
        kp_norm: np.ndarray,
        conf: np.ndarray,
        k: int,
        seed: int | None = None,
        stamps_s: np.ndarray | None = None,
        noise_std: np.ndarray | None = None,
    ) -> np.ndarray:
        """(T, 17, 2), (T, 17) one track -> (T, k, 17, 3), causal (see TemporalLifter)."""
        kp = np.asarray(kp_norm, dtype=np.float64).reshape(-1, N_JOINTS, 2)
        cf = np.asarray(conf, dtype=np.float64).reshape(-1, N_JOINTS)
        t = len(kp)
        if len(cf) != t:
            raise ValueError(f"{t} frames of keypoints but {len(cf)} of confidences")
        stamps = (
            np.arange(t) / self.rate_hz
            if stamps_s is None
            else np.asarray(stamps_s, dtype=np.float64).reshape(-1)
        )
        if len(stamps) != t:
            raise ValueError(f"{t} frames but {len(stamps)} stamps")
        if not np.isfinite(stamps).all():
            raise ValueError("stamps_s must be finite")
        if t > 1 and not (np.diff(stamps) > 0).all():
            raise ValueError("stamps_s must be strictly increasing")
        ns = None
        if noise_std is not None:  # a scalar, (T,) or (T, 17)
            ns = np.asarray(noise_std, dtype=np.float64)
            ns = np.broadcast_to(ns.reshape(-1, 1) if ns.ndim <= 1 else ns, (t, N_JOINTS))
        if t == 0 or k == 0:
            return np.zeros((t, k, N_JOINTS, 3), dtype=np.float32)
        key = ("sequence", id(kp))  # codes of this call's frames, computed once
        tracks = [
            TrackInput(
                stamps[: i + 1], kp[: i + 1], cf[: i + 1], None if ns is None else ns[: i + 1], key
            )
            for i in range(t)
        ]
        out = np.empty((t, k, N_JOINTS, 3), dtype=np.float32)
        if seed is None:  # one draw for the whole track
            seed = int(np.random.default_rng().integers(2**63))
        for i, tr in enumerate(tracks):
            packed, rot = self.packed([tr])
            out[i] = self._hypotheses(packed, rot, kp[i : i + 1], k, [seed], [(key, stamps[i])])[0]
        self._frames_cache.forget(key)
        self._evidence.pop(key, None)
        return out

    def _run(self, packed: np.ndarray, noise: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """The temporal graph in torch: (N, packed_size), (N, k, L), (N, 3, 3) -> poses."""
        args = [
            torch.tensor(np.asarray(a, dtype=np.float32), device=self.device)
            for a in (packed, noise, rot)
        ]
        with torch.inference_mode():
            out = self._graph(*args).cpu().numpy()
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class TemporalLifter(Lifter):
    """A single-frame lifter (``sample``) with the temporal model of the same checkpoint.

    Attributes:
        temporal: the :class:`TemporalSampler` (``sample_tracks`` for many tracks at once).
        window: frames the temporal model sees, at ``rate_hz``.
    """

    def __init__(self, checkpoint: dict, device: str = "cpu") -> None:
        super().__init__(checkpoint, device)
        self.temporal = TemporalSampler(complete_entry(checkpoint), device)
        self.temporal.noise_estimator = self.noise_estimator
        self.window = self.temporal.window
        self.rate_hz = self.temporal.rate_hz

    def sample_sequence(
        self,
        kp_norm: np.ndarray,
        conf: np.ndarray,
        k: int,
        seed: int | None = None,
        stamps_s: np.ndarray | None = None,
        noise_std: np.ndarray | None = None,
    ) -> np.ndarray:
        """K hypotheses per frame of one track: (T, 17, 2), (T, 17) -> (T, k, 17, 3).

        Root-relative metres, camera frame, H36M-17. ``stamps_s`` (T,) strictly increasing
        frame times in seconds (None: the model's own rate); the frames are resampled to the
        model's rate. Causal: the output at frame t depends only on frames 0..t. Hypothesis
        k uses the same latent noise at every frame (``seed``), so it moves smoothly.
        ``noise_std`` as in :meth:`sample`, per frame (T, 17), (T,) or a scalar.
        """
        return self.temporal.sample_sequence(kp_norm, conf, k, seed, stamps_s, noise_std)


def temporal_part(lifter) -> TemporalSampler | None:
    """The temporal model that goes with ``lifter`` (any loaded lifter, backends included):
    its ``temporal`` attribute, else one built from its checkpoint's entry, else None."""
    part = getattr(lifter, "temporal", None)
    if isinstance(part, TemporalSampler):
        return part
    checkpoint = getattr(lifter, "checkpoint", None) or {}
    if "temporal" not in checkpoint:
        return None
    part = TemporalSampler(copy.copy(complete_entry(checkpoint)))
    part.noise_estimator = getattr(lifter, "noise_estimator", None)
    return part
