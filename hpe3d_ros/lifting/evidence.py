"""Hypotheses that explain the 2D evidence: oversample, weigh by reprojection, keep K.

A conditional VAE's decoder is amortised: one network maps (2D pose, noise) to a 3D pose for
every input, and its samples do not all reproject onto the keypoints they were drawn for
(some bend a limb sideways in the image, not only in depth). The keypoints can check that
at run time. :class:`~hpe3d_ros.lifting.runtime.Lifter` draws ``oversample x K`` candidates
from a slightly wider latent (``spread``), and for each candidate

1. fits the root translation that best reprojects it (linear least squares in the
   normalised camera: ``x (Z + tz) = X + tx``; the candidate's own size sets its distance,
   so a large and a small body that both fit the image are equally good),
2. scores the visible joints' reprojection error (not the hips' and shoulders', which the
   body's widths place: :data:`WIDTH_JOINTS`) against the 2D noise level the lifter
   already uses (given by the caller or read by its noise estimator): ``chi2 = sum r^2 / s^2``,
3. weighs it by ``exp(-chi2 / (2 tau))`` with ``tau >= tau0`` and, per person, ``tau`` raised
   until the weights' effective sample size is at least ``ess_floor`` of the candidates
   (exact 2D would otherwise trust one candidate: the decoder's own error is not 2D noise),
4. and keeps K candidates drawn without replacement with probability following the weights
   (Gumbel top-k), so the K hypotheses stay distinct and each is still one body; or, with
   ``shift``, moves the centre of the usual calibrated latent draw to the candidates'
   weighted mean latent and decodes the K hypotheses there (:func:`latent_shift`).

The wider latent and the selection are one calibration, fitted on validation views
(``training/MODEL_CARD.md``, "Hypotheses that explain the 2D"): the kept set covers the
truth at its nominal rate while its mean moves toward the evidence. Checkpoint entry
``"evidence"``: :meth:`EvidenceConfig.to_entry`; absent = off (every older lifter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hpe3d_ros.lifting.normalize import N_JOINTS, noise_std_from_features
from hpe3d_ros.lifting.track_window import STAMP_TOL_S

_LOG2_TAU_MAX = 16.0  # the bisection's upper end
_TAU_STEPS = 24


#: The candidates' random stream: a seeded call draws them with ``[seed, CANDIDATE_STREAM]``,
#: apart from the plain draw's ``seed`` (the hypotheses' own noise under ``shift``).
CANDIDATE_STREAM = 0x2D


#: Joints whose image position the body's widths set (right and left hip, left and right
#: shoulder, H36M-17 order). One body per person gives all K hypotheses the same widths, so
#: scoring these joints picks the torso turn that makes a wrong width fit the image: on the
#: validation subjects the worst joint's coverage is 0.72 with them scored, 0.75 without
#: (the same lifter without selection: 0.82; ``training/MODEL_CARD.md``, "evidence selection").
WIDTH_JOINTS = (1, 4, 11, 14)


@dataclass(frozen=True)
class EvidenceConfig:
    """How many candidates, how much wider, how the 2D weighs them (module docstring);
    ``skip_joints``: joints left out of the chi-square (default :data:`WIDTH_JOINTS`);
    ``shift``: instead of keeping K candidates, move the latent draw's centre to the
    candidates' weighted mean latent and decode the K calibrated hypotheses around it
    (:func:`latent_shift`); ``memory_s``: the temporal model's candidates are the same
    latents at every frame of a track, so their evidence accumulates: each candidate's
    chi-square is averaged over the track with this time constant (0: the last frame only;
    the single-frame lifter has no track and ignores it); ``candidates``: under ``shift``,
    this many candidates per person whatever K (0: ``oversample x K``): the centre is one
    latent, and its estimate need not cost more as K grows."""

    oversample: int = 4
    spread: float = 1.5
    ess_floor: float = 0.1
    tau0: float = 4.0
    skip_joints: tuple[int, ...] = WIDTH_JOINTS
    shift: bool = False
    memory_s: float = 0.0
    candidates: int = 0

    def __post_init__(self) -> None:
        if int(self.oversample) < 1:
            raise ValueError(f"evidence: oversample must be >= 1, got {self.oversample}")
        if not (
            self.spread > 0 and 0 < self.ess_floor <= 1 and self.tau0 > 0 and self.memory_s >= 0
        ):
            raise ValueError(
                f"evidence: spread, tau0 > 0, memory_s >= 0 and ess_floor in (0, 1]: {self}"
            )
        if int(self.candidates) < 0 or (self.candidates and not self.shift):
            raise ValueError(f"evidence: candidates (>= 0) counts only under shift: {self}")
        object.__setattr__(self, "candidates", int(self.candidates))
        object.__setattr__(self, "skip_joints", tuple(int(j) for j in self.skip_joints))
        if any(not 0 <= j < 17 for j in self.skip_joints):
            raise ValueError(f"evidence: skip_joints must be joint indices 0-16: {self}")

    @classmethod
    def from_entry(cls, entry: dict | None) -> EvidenceConfig | None:
        if not entry:
            return None
        return cls(**{k: entry[k] for k in _FIELDS if k in entry})

    def to_entry(self) -> dict:
        return {
            "oversample": int(self.oversample),
            "spread": float(self.spread),
            "ess_floor": float(self.ess_floor),
            "tau0": float(self.tau0),
            "skip_joints": list(self.skip_joints),
            "shift": bool(self.shift),
            "memory_s": float(self.memory_s),
            "candidates": int(self.candidates),
        }

    def count(self, k: int) -> int:
        """Candidates per person for K hypotheses."""
        return self.candidates or int(self.oversample) * int(k)

    def scored(self, valid: np.ndarray) -> np.ndarray:
        """(N, 17) usable joints -> those the chi-square scores (``skip_joints`` removed)."""
        out = np.array(valid, dtype=bool, copy=True)
        out[:, list(self.skip_joints)] = False
        return out

    def chi2(self, candidates: np.ndarray, kp_norm: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """(N, M, 17, 3) candidates, (N, 17, 2) their people's keypoints and (N, F) lifter
        features with a noise level (its mask says which joints are usable) -> (N, M)
        chi-square (steps 1-2 of the module docstring)."""
        valid = self.scored(feats[:, 2 * N_JOINTS : 3 * N_JOINTS] > 0.5)
        return reprojection_chi2(candidates, kp_norm, valid, noise_std_from_features(feats))


_FIELDS = (
    "oversample",
    "spread",
    "ess_floor",
    "tau0",
    "skip_joints",
    "shift",
    "memory_s",
    "candidates",
)


def reprojection_chi2(
    hyps: np.ndarray, kp_norm: np.ndarray, valid: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """(N, M, J, 3) root-relative camera-frame hypotheses, (N, J, 2) normalised keypoints,
    (N, J) bool usable joints, (N, J) 2D noise std (normalised units) -> (N, M) chi-square of
    each hypothesis' reprojection at its own best root translation; inf where it cannot be
    placed in front of the camera.

    The translation is the linear step of :func:`hpe3d_ros.placement.solve_root_translation`
    (unit weights, no ground, no Gauss-Newton refinement, no depth floor), solved here in
    closed form because all M candidates of a person share its keypoints and so one normal
    matrix, inverted once per person: 5 against 10 ms for 10 people x 256 candidates
    (the batched solve per candidate before), 28 against 67 ms for
    ``solve_root_translation`` at 10 x 800, measured."""
    h = np.asarray(hyps, dtype=np.float64)
    x = np.where(valid[..., None], np.nan_to_num(np.asarray(kp_norm, np.float64)), 0.0)
    # Per joint: tx - x tz = x Z - X, ty - y tz = y Z - Y. Normal equations, closed form; the
    # normal matrix depends on the keypoints only, the right-hand side on the candidate.
    w = valid.astype(np.float64)  # (N, J)
    n_vis = w.sum(axis=1)
    sx = (x * w[..., None]).sum(axis=1)  # (N, 2)
    sxx = ((x**2) * w[..., None]).sum(axis=(1, 2))
    ata = np.zeros((len(h), 3, 3))
    ata[:, 0, 0] = ata[:, 1, 1] = n_vis
    ata[:, 0, 2] = ata[:, 2, 0] = -sx[:, 0]
    ata[:, 1, 2] = ata[:, 2, 1] = -sx[:, 1]
    ata[:, 2, 2] = sxx
    inv = np.linalg.inv(ata + 1e-12 * np.eye(3))  # (N, 3, 3): one per person, not candidate
    xu, xv = x[:, None, :, 0], x[:, None, :, 1]  # (N, 1, J)
    z = h[..., 2]
    wb = w[:, None]
    ru = (xu * z - h[..., 0]) * wb
    rv = (xv * z - h[..., 1]) * wb
    atb = np.stack([ru.sum(-1), rv.sum(-1), -(xu * ru + xv * rv).sum(-1)], axis=-1)  # (N, M, 3)
    t = np.einsum("nij,nmj->nmi", inv, atb)
    depth = z + t[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        du = (h[..., 0] + t[..., 0:1]) / depth - xu
        dv = (h[..., 1] + t[..., 1:2]) / depth - xv
        r2 = (du * du + dv * dv) / (np.maximum(sigma, 1e-12)[:, None] ** 2)
    behind = (valid[:, None] & ~(depth > 1e-3)).any(axis=-1)
    chi2 = np.where(valid[:, None], r2, 0.0).sum(-1)
    return np.where(behind | ~np.isfinite(chi2), np.inf, chi2)


#: A candidate's chi-square where it cannot stand in front of the camera (inf) is held at
#: this before it is averaged over a track, so a later frame can still redeem it.
CHI2_CAP = 1e6


def average_over_track(
    states: dict, key, stamp: float, chi2: np.ndarray, config: EvidenceConfig
) -> np.ndarray:
    """(M,) one track's candidates' chi-square at ``stamp`` (s) -> averaged over the track's
    frames, exponentially with time constant ``config.memory_s``; ``states`` (key -> the
    track's state) is the caller's memory, updated here. The same frame asked again is
    averaged from the same state as the first time (idempotent); a stamp before the last, or
    another candidate count, restarts. ``key`` None or ``memory_s`` 0: the frame alone."""
    chi2 = np.minimum(chi2, CHI2_CAP)  # a candidate that cannot stand there: very unlikely
    memory = config.memory_s
    if key is None or memory <= 0:
        return chi2
    state = states.pop(key, None)
    base = None
    if state is not None and state["avg"].shape == chi2.shape:
        if abs(stamp - state["stamp"]) <= STAMP_TOL_S:
            base = state["base"]  # this frame again
        elif stamp > state["stamp"]:
            base = (state["stamp"], state["avg"])
    avg = chi2
    if base is not None:
        a = math.exp(-(stamp - base[0]) / memory)
        avg = a * base[1] + (1.0 - a) * chi2
    states[key] = {"stamp": stamp, "avg": avg, "base": base}  # the newest last
    return avg


def evidence_weights(chi2: np.ndarray, ess_floor: float, tau0: float) -> np.ndarray:
    """(N, M) chi-square -> (N, M) normalised weights ``exp(-chi2 / 2 tau)``, ``tau >= tau0``
    and per row large enough that the effective sample size is >= ``ess_floor * M``.
    A row with no finite chi-square weighs its candidates equally."""
    chi2 = np.asarray(chi2, dtype=np.float64)
    m = chi2.shape[1]
    finite = np.isfinite(chi2)
    best = np.where(finite, chi2, np.inf).min(axis=1, keepdims=True)
    c = np.where(finite, chi2 - np.where(np.isfinite(best), best, 0.0), 0.0)

    def weigh(log2_tau: np.ndarray) -> np.ndarray:
        w = np.where(finite, np.exp(-0.5 * c / np.exp2(log2_tau)[:, None]), 0.0)
        total = w.sum(axis=1, keepdims=True)
        return np.where(total > 0, w / np.where(total > 0, total, 1.0), 1.0 / m)

    target = ess_floor * np.maximum(finite.sum(axis=1), 1)

    def enough(log2_tau: np.ndarray) -> np.ndarray:
        return 1.0 / (weigh(log2_tau) ** 2).sum(axis=1) >= target

    lo = np.full(len(c), np.log2(tau0))
    hi = np.full(len(c), max(_LOG2_TAU_MAX, float(np.log2(tau0))))
    at_floor = enough(lo)
    for _ in range(_TAU_STEPS):  # the smallest tau (sharpest weights) with enough ESS
        mid = 0.5 * (lo + hi)
        ok = enough(mid)
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return weigh(np.where(at_floor, np.log2(tau0), hi))


def keep(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(N, M) weights -> (N, k) indices drawn without replacement, probability following the
    weights (Gumbel top-k), in ascending order. Zero-weight candidates come last."""
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(divide="ignore"):
        keys = np.log(w) + rng.gumbel(size=w.shape)
    idx = np.argsort(-keys, axis=1, kind="stable")[:, :k]
    return np.sort(idx, axis=1)


def latent_shift(weights: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(N, M) weights, (N, M, D) the candidates' latent noise -> (N, D) their weighted mean:
    the centre the K hypotheses are then drawn around (``EvidenceConfig.shift``). The cloud
    keeps its calibrated shape and only moves toward what the keypoints favour, so coverage
    holds, and with one seed per track the hypotheses stay coherent over time."""
    return np.einsum("nm,nmd->nd", np.asarray(weights, np.float64), candidates).astype(np.float32)
