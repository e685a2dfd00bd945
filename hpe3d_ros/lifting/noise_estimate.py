"""How noisy is this 2D pose? The level read from the keypoints when nobody passes it.

A noise-aware lifter (issue 14) widens its hypotheses with the 2D noise level of its input.
The pipeline passes that level (:mod:`hpe3d_ros.lifting.noise`, from the detector's
confidences and the person's size in pixels), but a caller of ``Lifter.sample`` without
``noise_std`` leaves it unknown, and then the lifter can only hedge by the person's size:
too wide on exact 2D, too narrow on noisy keypoints at the same size.

The keypoints carry their own evidence: noise bends bones, breaks left-right symmetry and
moves joints off any body the lifter knows, more so the smaller the person is. A small MLP
over the lifter's plain 2D features (:func:`~hpe3d_ros.lifting.normalize.prepare_inputs`,
no noise inputs) predicts the per-joint noise-level feature
(:func:`~hpe3d_ros.lifting.normalize.noise_level_features`), trained on the lifter's own
training views (``training/noise_estimator.py``); the lifter then sees that estimate as a
given level. It is numpy only, so every backend (torch, ONNX Runtime, TensorRT) shares it
without a change to the exported graph.

Checkpoint entry ``"noise_estimator"``: ``{"layers": [W0, b0, W1, b1, ...]}`` (torch
tensors, ``W`` (in, out)), ReLU between layers, output (N, 17) noise-level features.
"""

from __future__ import annotations

import numpy as np

from hpe3d_ros.lifting.normalize import (
    N_FEATURES,
    N_JOINTS,
    NOISE_LEVEL_RANGE,
    noise_level_from_features,
)


class NoiseEstimator:
    """Plain 2D features (N, :data:`N_FEATURES`) -> noise-level features (N, 18), given."""

    def __init__(self, entry: dict) -> None:
        layers = [np.asarray(t, dtype=np.float32) for t in entry["layers"]]
        if len(layers) < 2 or len(layers) % 2:
            raise ValueError("noise_estimator: layers must be weight, bias pairs")
        self.weights, self.biases = layers[0::2], layers[1::2]
        if self.weights[0].shape[0] != N_FEATURES or self.weights[-1].shape[1] != N_JOINTS:
            raise ValueError(
                f"noise_estimator: expects ({N_FEATURES} -> {N_JOINTS}), got "
                f"({self.weights[0].shape[0]} -> {self.weights[-1].shape[1]})"
            )

    def levels(self, plain: np.ndarray) -> np.ndarray:
        """(N, :data:`N_FEATURES`) -> (N, 17) estimated noise-level feature per joint."""
        h = np.asarray(plain, dtype=np.float32)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            # einsum, not ``@``: a matmul this size wakes OpenBLAS's thread pool, whose
            # spinning threads then take the cores from torch's: the lifter's whole call took
            # 31.6 ms (p90 119) against 13.3 with the level given at 10 x 200 on 2 cores;
            # einsum's own loop costs 0.1 ms here and wakes nothing (BENCHMARKS.md, "Lifter")
            h = np.einsum("nf,fh->nh", h, w) + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return np.clip(h, *NOISE_LEVEL_RANGE)

    def features(self, plain: np.ndarray) -> np.ndarray:
        """(N, :data:`N_FEATURES`) -> the (N, 18) noise inputs of a given level."""
        return noise_level_from_features(self.levels(plain), plain)

    def fill_unknown(self, feats: np.ndarray) -> np.ndarray:
        """Noise-aware features (N, F + 18), in place: the rows whose level is unknown (the
        "given" flag, the last column, 0) get this estimate as a given level; ``feats``."""
        unknown = feats[:, -1] < 0.5
        if unknown.any():
            feats[unknown, N_FEATURES:] = self.features(feats[unknown, :N_FEATURES])
        return feats

    def to_entry(self) -> dict:
        """The checkpoint entry (``torch.save``-able) of this estimator."""
        import torch

        layers = [t for pair in zip(self.weights, self.biases, strict=True) for t in pair]
        return {"layers": [torch.from_numpy(np.ascontiguousarray(t)) for t in layers]}
