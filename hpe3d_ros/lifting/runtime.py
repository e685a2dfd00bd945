"""The loaded lifter: checkpoint in, K root-relative 3D hypotheses per person out.

A checkpoint is a plain dict (loadable with ``torch.load(weights_only=True)``) holding
everything needed to rebuild and run the network, nanoGPT style: the architecture config,
the weights, the target normalisation statistics, the confidence threshold, the sampling
calibration fitted on validation data (``temperature`` and ``latent_dof``), the skeleton, the
training config and the git commit.

Latent noise (:func:`latent_noise`): hypotheses come in antithetic pairs ``(e, -e)``, so the
mean of K cancels the noise to first order, and each pair's ``e`` is a standard normal vector
times a scale ``sqrt(dof / chi2(dof))`` capped at :data:`MAX_LATENT_SCALE`, i.e.
multivariate Student-t with ``latent_dof`` degrees of freedom (``inf``: plain Gaussian),
truncated where the decoder would extrapolate to implausible bodies. Heavy tails let most
hypotheses stay close to the likely pose while a few reach far, which is what the errors of
a lifter look like (a rare unfamiliar body or pose is far off, most are close): calibrated
at the same coverage, they cover the truth with better best hypotheses than one inflated
Gaussian.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from hpe3d_ros.lifting.architectures import build_model
from hpe3d_ros.lifting.evidence import (
    CANDIDATE_STREAM,
    EvidenceConfig,
    evidence_weights,
    keep,
    latent_shift,
)
from hpe3d_ros.lifting.graph import LifterGraph
from hpe3d_ros.lifting.model import LifterBase, ModelConfig
from hpe3d_ros.lifting.noise_estimate import NoiseEstimator
from hpe3d_ros.lifting.normalize import (
    N_JOINTS,
    prepare_inputs,
)
from hpe3d_ros.skeleton import H36M_JOINT_NAMES, H36M_PARENTS

CHECKPOINT_FORMAT = "hpe3d_lifter/1"
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "lifter_default.pt"


#: Cap on the Student-t scale factor ``sqrt(dof / chi2)`` of one hypothesis: the decoder was
#: trained on Gaussian latents, and past a few standard deviations it extrapolates to bodies
#: with metre-long bones (measured: 0.14 % of dof-3 hypotheses had a bone over 1.2 m, the
#: longest 8.8 m, uncapped).
MAX_LATENT_SCALE = 2.5


def latent_noise(
    n: int, k: int, dim: int, seed: int | list[int] | None = None, dof: float = math.inf
) -> np.ndarray:
    """(n, k, dim) float32 latent noise: antithetic pairs, Student-t with ``dof`` (see module).

    Deterministic for a given ``seed`` (``numpy.random.default_rng``). Hypothesis ``2i + 1``
    is the mirror of hypothesis ``2i``; an odd ``k`` drops the last mirror.
    """
    rng = np.random.default_rng(seed)
    half = (k + 1) // 2
    e = rng.standard_normal((n, half, dim), dtype=np.float32)
    if math.isfinite(dof):
        if dof <= 0:
            raise ValueError(f"latent_dof must be > 0 or inf, got {dof}")
        scale = np.sqrt(dof / rng.chisquare(dof, size=(n, half, 1)))
        e *= np.minimum(scale, MAX_LATENT_SCALE).astype(np.float32)
    noise = np.empty((n, 2 * half, dim), dtype=np.float32)
    noise[:, 0::2] = e
    noise[:, 1::2] = -e
    return noise[:, :k]


def make_checkpoint(
    model: LifterBase,
    target_mean: np.ndarray,
    conf_threshold: float,
    temperature: float = 1.0,
    train_config: dict | None = None,
    git_commit: str = "unknown",
    metrics: dict | None = None,
    half: bool = False,
    latent_dof: float = math.inf,
) -> dict:
    """Everything :func:`load_lifter` needs, as a dict of tensors and plain Python values.

    ``half`` stores float weights as float16 (halves the file; loading casts back).
    ``latent_dof``: degrees of freedom of the latent noise (:func:`latent_noise`).
    """
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
        for k, v in model.state_dict().items()
    }
    return {
        "format": CHECKPOINT_FORMAT,
        "model_config": model.cfg.to_dict(),
        "state_dict": state,
        "target_mean": torch.as_tensor(np.asarray(target_mean, dtype=np.float32)),
        "conf_threshold": float(conf_threshold),
        "temperature": float(temperature),
        "latent_dof": float(latent_dof),
        "joint_names": list(H36M_JOINT_NAMES),
        "parents": list(H36M_PARENTS),
        "train_config": train_config or {},
        "git_commit": git_commit,
        "metrics": metrics or {},
    }


class Lifter:
    """A loaded lifter. Inputs are numpy; outputs are numpy float32 metres, camera frame.

    Attributes:
        joint_names: H36M-17 names, the output joint order.
        latent_dim: length of the noise vector per hypothesis (0 for the baseline).
        arch: ``"baseline"``, ``"cvae"``, ``"xvae"`` or ``"bodyvae"`` (one body per person).
        temperature: scale on the latent noise (fitted on validation data; 1 = as trained).
        latent_dof: Student-t degrees of freedom of the latent noise (``inf`` = Gaussian).
        noise_aware: the network takes the 2D noise level (``noise_std`` of :meth:`sample`).
        size_std: the person's overall size error that the hypotheses do not show, as a
            log-scale RMS fitted on validation bodies (checkpoint ``size_std``). A one-body
            lifter gives all K hypotheses the same bone lengths, so their spread says nothing
            about how far off the body's size is; placement adds this term to the root's
            uncertainty (a monocular distance is only as good as the size). 0 for lifters
            whose hypotheses vary the body themselves.
    """

    def __init__(self, checkpoint: dict, device: str = "cpu") -> None:
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a lifter checkpoint (format {checkpoint.get('format')!r})")
        self.checkpoint = checkpoint
        self.cfg = ModelConfig(**checkpoint["model_config"])
        self.device = torch.device(device)
        self.model = build_model(self.cfg)
        self.model.load_state_dict(float_state(checkpoint["state_dict"]))
        self.model.to(self.device).eval()
        self.target_mean = checkpoint["target_mean"].float().to(self.device)
        self.conf_threshold = float(checkpoint["conf_threshold"])
        self.temperature = float(checkpoint.get("temperature", 1.0))
        self.latent_dof = float(checkpoint.get("latent_dof", math.inf))
        self.joint_names: tuple[str, ...] = tuple(checkpoint["joint_names"])
        self.arch = self.cfg.arch
        self.latent_dim = self.model.latent_dim
        self.noise_aware = bool(self.cfg.noise_input)
        self.size_std = float(checkpoint.get("size_std", 0.0))
        entry = checkpoint.get("noise_estimator")
        self.noise_estimator = NoiseEstimator(entry) if entry and self.noise_aware else None
        evidence = checkpoint.get("evidence")
        use = evidence and self.latent_dim and self.noise_aware
        self.evidence = EvidenceConfig.from_entry(evidence) if use else None
        self._graph = LifterGraph(self)

    # ------------------------------------------------------------------ public API
    def sample(
        self,
        keypoints_norm: np.ndarray,
        confidence: np.ndarray,
        k: int,
        seed: int | None = None,
        noise_std: np.ndarray | float | None = None,
    ) -> np.ndarray:
        """K hypotheses per person: (N, 17, 2) normalised coords, (N, 17) -> (N, k, 17, 3).

        Root-relative metres in the camera frame (x right, y down, z forward), root at 0.
        ``seed`` makes the draw reproducible; the noise is :meth:`noise` ``(N, k, seed)``.
        ``noise_std`` (optional): the 2D keypoints' noise standard deviation in the units of
        ``keypoints_norm`` (pixels / focal length in pixels), a scalar, (N,) or (N, 17);
        noise-aware lifters widen their hypotheses with it; None (or a NaN row) = unknown:
        the lifter's noise estimator (:mod:`~hpe3d_ros.lifting.noise_estimate`, where the
        checkpoint has one) reads the level from the keypoints themselves, else the lifter
        judges from the keypoints and confidences alone. Others ignore it.

        A checkpoint with an ``"evidence"`` entry (the shipped default has one) first draws
        wider candidates and scores how well they reproject onto the keypoints
        (:mod:`~hpe3d_ros.lifting.evidence`): under ``shift`` the k hypotheses are the usual
        draw moved to the latent the candidates favour, otherwise k candidates are kept;
        ``seed`` then also fixes the candidates.
        """
        n = np.asarray(keypoints_norm).reshape(-1, N_JOINTS, 2).shape[0]
        if self.evidence is None or n == 0 or k <= 0:
            noise = self.noise(n, k, seed)
            return self.sample_with_noise(keypoints_norm, confidence, noise, noise_std)
        return self._sample_on_evidence(keypoints_norm, confidence, k, seed, noise_std)

    def noise(self, n: int, k: int, seed: int | list[int] | None = None) -> np.ndarray:
        """The latent noise :meth:`sample` feeds the network: (n, k, latent_dim) float32."""
        return latent_noise(n, k, self.latent_dim, seed, self.latent_dof)

    def sample_with_noise(
        self,
        keypoints_norm: np.ndarray,
        confidence: np.ndarray,
        noise: np.ndarray,
        noise_std: np.ndarray | float | None = None,
    ) -> np.ndarray:
        """As :meth:`sample` with explicit latent noise (N, k, latent_dim).

        The network scales the noise by the prior's standard deviation and ``temperature``;
        pass :meth:`noise` (or any draw of the same distribution) for calibrated hypotheses.
        """
        noise = np.asarray(noise, dtype=np.float32)
        if noise.ndim != 3 or noise.shape[2] != self.latent_dim:
            raise ValueError(f"noise must be (N, k, {self.latent_dim}), got {noise.shape}")
        feats, R = self.features(keypoints_norm, confidence, noise_std)
        if noise.shape[0] != len(feats):
            raise ValueError(f"noise is for {noise.shape[0]} people, keypoints for {len(feats)}")
        return self._decode(feats, R, noise)

    def _sample_on_evidence(self, keypoints_norm, confidence, k, seed, noise_std) -> np.ndarray:
        """K of ``oversample x K`` wider candidates, kept by how well they reproject onto the
        keypoints (:mod:`~hpe3d_ros.lifting.evidence`)."""
        return self.evidence_draw(keypoints_norm, confidence, k, seed, noise_std)["hypotheses"]

    def evidence_draw(self, keypoints_norm, confidence, k, seed=None, noise_std=None) -> dict:
        """:meth:`sample` of a lifter with evidence, step by step (for diagnostics): the
        ``features`` and ``rotation`` (:meth:`features`), the candidates' latent ``noise``
        (N, M, D), the ``candidates`` (N, M, 17, 3), their ``chi2`` and ``weights`` (N, M) and
        the ``hypotheses`` (N, k, 17, 3) :meth:`sample` returns for the same arguments."""
        ev = self.evidence
        feats, R = self.features(keypoints_norm, confidence, noise_std)
        n = len(feats)
        stream = None if seed is None else [int(seed), CANDIDATE_STREAM]
        # shift: the candidates get their own stream, the K hypotheses the plain draw's noise
        noise = self.noise(n, ev.count(k), stream if ev.shift else seed)
        noise *= np.float32(ev.spread)
        decode = self._decoder(feats, R)
        cands = decode(noise)
        kp = np.asarray(keypoints_norm, dtype=np.float64).reshape(n, N_JOINTS, 2)
        chi2 = ev.chi2(cands, kp, feats)
        weights = evidence_weights(chi2, ev.ess_floor, ev.tau0)
        if ev.shift:
            centre = latent_shift(weights, noise)
            hyps = decode(centre[:, None, :] + self.noise(n, k, seed))
        else:
            idx = keep(weights, k, np.random.default_rng(stream))
            hyps = np.take_along_axis(cands, idx[:, :, None, None], axis=1)
        return {"features": feats, "rotation": R, "noise": noise, "candidates": cands,
                "chi2": chi2, "weights": weights, "hypotheses": hyps}  # fmt: skip

    def _decoder(self, feats: np.ndarray, R: np.ndarray):
        """``noise -> hypotheses`` (as :meth:`_decode`) for these people, for more than one
        draw: the torch graph encodes them once (:meth:`LifterGraph.condition`). A lifter
        whose :meth:`_run` is replaced (the deployment backends) runs its graph per draw."""
        if type(self)._run is not Lifter._run or not self.latent_dim or len(feats) == 0:
            return lambda noise: self._decode(feats, R, noise)
        return self._graph.decoder(feats, R, self.device)

    def _decode(self, feats: np.ndarray, R: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Features, rotations (:meth:`features`) and latent noise -> (N, k, 17, 3) float32."""
        n, k = feats.shape[0], noise.shape[1]
        if n == 0 or k == 0:  # engines and some providers reject empty tensors
            return np.zeros((n, k, N_JOINTS, 3), dtype=np.float32)
        rot = R.astype(np.float32)
        if self.latent_dim:
            poses = self._run(feats, np.ascontiguousarray(noise), rot)
        else:  # the deterministic baseline: one pose, repeated
            poses = np.repeat(self._run(feats, None, rot), k, axis=1)
        return np.nan_to_num(poses, nan=0.0, posinf=0.0, neginf=0.0)

    def features(
        self,
        keypoints_norm: np.ndarray,
        confidence: np.ndarray,
        noise_std: np.ndarray | float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The graph's per-person inputs: ``features`` (N, F) float32, ``rotation`` (N, 3, 3).

        (N, 17, 2) normalised coordinates, (N, 17) confidences and the optional noise level,
        as :meth:`sample` takes them; see :func:`~hpe3d_ros.lifting.normalize.prepare_inputs`.
        """
        n = np.asarray(keypoints_norm).reshape(-1, N_JOINTS, 2).shape[0]
        if noise_std is not None:
            noise_std = np.broadcast_to(
                np.asarray(noise_std, dtype=np.float64).reshape(-1, 1)
                if np.ndim(noise_std) <= 1
                else np.asarray(noise_std, dtype=np.float64),
                (n, N_JOINTS),
            )
        feats, R = prepare_inputs(
            keypoints_norm, confidence, self.conf_threshold, noise_std, self.cfg.noise_input
        )
        if self.noise_estimator is not None:
            self.noise_estimator.fill_unknown(feats)
        return feats, R

    def _run(self, feats: np.ndarray, noise: np.ndarray | None, rot: np.ndarray) -> np.ndarray:
        """The network graph (:class:`LifterGraph`) in torch: -> (N, K, 17, 3) camera frame.

        Deployment backends (:mod:`hpe3d_ros.backends`) replace exactly this method.
        """
        args = [torch.from_numpy(feats)]
        if noise is not None:
            args.append(torch.from_numpy(noise))
        args.append(torch.from_numpy(rot))
        with torch.inference_mode():
            return self._graph(*(a.to(self.device) for a in args)).cpu().numpy()

    def predict_mean(
        self,
        keypoints_norm: np.ndarray,
        confidence: np.ndarray,
        k: int = 200,
        seed: int | None = 0,
    ) -> np.ndarray:
        """One pose per person (N, 17, 3): the baseline's output, or a VAE's mean of k samples."""
        k = 1 if self.latent_dim == 0 else k
        return self.sample(keypoints_norm, confidence, k, seed).mean(axis=1)

    predict = predict_mean


def float_state(state_dict: dict) -> dict:
    """A checkpoint's state dict with its floating tensors in float32 (weights ship in half
    precision; integer and boolean buffers as they are)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
