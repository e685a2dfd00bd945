"""What every lifter backend promises (:class:`LifterCore`) and the lifter built on one.

A backend runs only the graph of :mod:`hpe3d_ros.backends.graph` (features, noise, rotations
-> camera-frame poses). :class:`BackendLifter` wraps a loaded
:class:`~hpe3d_ros.lifting.runtime.Lifter` by composition: the same numpy pre-processing
(:func:`~hpe3d_ros.lifting.normalize.prepare_inputs`), the same noise draw, the same public
API (``sample``, ``sample_with_noise``, ``predict_mean``, ``joint_names``, ``latent_dim``), so
the pipeline cannot tell which backend runs underneath except by speed.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hpe3d_ros.lifting.normalize import N_JOINTS, prepare_inputs


class BackendUnavailable(RuntimeError):
    """A backend cannot run here (package missing, no CUDA device, engine build failed)."""


class LifterCore(Protocol):
    """One backend's runner of the lifter graph."""

    name: str  # e.g. "onnxruntime-cpu", "torch-cuda", "tensorrt-fp16"

    def run(
        self, features: np.ndarray, noise: np.ndarray | None, rotation: np.ndarray
    ) -> np.ndarray:
        """(N, F), (N, K, L) or None (baseline), (N, 3, 3) float32 -> (N, K, 17, 3) float32."""
        ...


class BackendLifter:
    """A :class:`~hpe3d_ros.lifting.runtime.Lifter` whose network runs on ``core``.

    Attributes not defined here (``arch``, ``cfg``, ``checkpoint``, ...) come from the wrapped
    lifter. ``backend`` names the core that runs (for logs and benchmarks).
    """

    def __init__(self, lifter, core: LifterCore) -> None:
        self.lifter = lifter
        self.core = core
        self.backend: str = core.name
        self.joint_names: tuple[str, ...] = tuple(lifter.joint_names)
        self.latent_dim: int = int(lifter.latent_dim)
        self.conf_threshold: float = float(lifter.conf_threshold)

    def __getattr__(self, name: str):
        if name == "lifter":  # not set yet (during unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.lifter, name)

    def sample(
        self, keypoints_norm: np.ndarray, confidence: np.ndarray, k: int, seed: int | None = None
    ) -> np.ndarray:
        """As :meth:`Lifter.sample`: (N, 17, 2), (N, 17) -> (N, k, 17, 3) metres, same noise."""
        n = np.asarray(keypoints_norm).reshape(-1, N_JOINTS, 2).shape[0]
        noise = np.random.default_rng(seed).standard_normal(
            (n, k, self.latent_dim), dtype=np.float32
        )
        return self.sample_with_noise(keypoints_norm, confidence, noise)

    def sample_with_noise(
        self, keypoints_norm: np.ndarray, confidence: np.ndarray, noise: np.ndarray
    ) -> np.ndarray:
        """As :meth:`Lifter.sample_with_noise`: explicit noise (N, k, latent_dim)."""
        noise = np.asarray(noise, dtype=np.float32)
        if noise.ndim != 3 or noise.shape[2] != self.latent_dim:
            raise ValueError(f"noise must be (N, k, {self.latent_dim}), got {noise.shape}")
        feats, R = prepare_inputs(keypoints_norm, confidence, self.conf_threshold)
        n, k = feats.shape[0], noise.shape[1]
        if noise.shape[0] != n:
            raise ValueError(f"noise is for {noise.shape[0]} people, keypoints for {n}")
        if n == 0 or k == 0:  # engines and some providers reject empty tensors
            return np.zeros((n, k, N_JOINTS, 3), dtype=np.float32)
        rot = R.astype(np.float32)
        if self.latent_dim:
            poses = self.core.run(feats, np.ascontiguousarray(noise), rot)
        else:
            poses = np.repeat(self.core.run(feats, None, rot), k, axis=1)
        return np.nan_to_num(poses, nan=0.0, posinf=0.0, neginf=0.0)

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
