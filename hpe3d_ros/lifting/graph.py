"""The lifter as one exportable graph: features, noise, rotations in; camera-frame poses out.

:class:`LifterGraph` wraps a loaded :class:`~hpe3d_ros.lifting.runtime.Lifter`'s network and
does in torch everything :meth:`Lifter.sample_with_noise` does after the numpy
pre-processing: the 2D encoder once per person, the light decoder once per hypothesis, the
de-normalisation (``target_std``, ``target_mean``), the root joint at 0 and the rotation from
each person's virtual camera back to the real camera. The sampling temperature is a constant
of the graph (read from the checkpoint). Pre-processing
(:func:`~hpe3d_ros.lifting.normalize.prepare_inputs`) stays in numpy: it branches on which
joints are visible and costs well under a millisecond for 20 people.

Inputs (float32): ``features`` (N, F), ``noise`` (N, K, L) standard normal, ``rotation``
(N, 3, 3) camera -> virtual camera. Output: ``poses`` (N, K, 17, 3) root-relative metres in
the camera frame. The Martinez baseline (L = 0) has no ``noise`` input and returns K = 1; the
caller repeats it K times.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from hpe3d_ros.lifting.normalize import N_JOINTS

INPUT_NAMES_VAE = ("features", "noise", "rotation")
INPUT_NAMES_BASELINE = ("features", "rotation")
OUTPUT_NAME = "poses"


class LifterGraph(nn.Module):
    """``lifter.model`` + de-normalisation + rotation back to the camera frame (see module)."""

    def __init__(self, lifter, half: bool = False) -> None:
        super().__init__()
        self.half = bool(half)
        self.model = copy.deepcopy(lifter.model).half() if half else lifter.model
        self.temperature = float(lifter.temperature)
        self.latent_dim = int(lifter.latent_dim)
        self.register_buffer("target_mean", lifter.target_mean.detach().clone())
        n_out = 3 * (N_JOINTS - 1)
        self.register_buffer(
            "insert_root", torch.cat([torch.zeros(n_out, 3), torch.eye(n_out)], 1)
        )

    @property
    def input_names(self) -> tuple[str, ...]:
        return INPUT_NAMES_VAE if self.latent_dim else INPUT_NAMES_BASELINE

    def forward(self, features: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        """(N, F), [(N, K, L)], (N, 3, 3) -> (N, K, 17, 3); K = 1 for the baseline."""
        if self.latent_dim:
            noise, rotation = rest
            return self.hypotheses(self.condition(features), noise, rotation)
        (rotation,) = rest
        return self.to_camera(self.condition(features)[:, None, :], rotation)

    def condition(self, features: torch.Tensor):
        """The per-person half: (N, F) features -> the encoder's output (a VAE's condition,
        the baseline's pose). Drawing twice for the same people (run-time evidence) encodes
        them once and calls :meth:`hypotheses` twice."""
        return self.model.encode(features.to(torch.float16 if self.half else features.dtype))

    def hypotheses(self, cond, noise: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
        """The per-hypothesis half of a VAE: condition, (N, K, L), (N, 3, 3) -> poses."""
        dtype = torch.float16 if self.half else noise.dtype
        return self.to_camera(self.model.decode(cond, noise.to(dtype), self.temperature), rotation)

    def decoder(self, features, rotation, device: torch.device):
        """numpy (N, F) features and (N, 3, 3) rotations -> ``noise -> poses``: the people
        encoded once, each call decodes (N, K, L) numpy noise into (N, K, 17, 3) float32
        camera-frame poses (non-finite values 0), as many times as the caller draws."""
        f = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
        r = torch.as_tensor(np.asarray(rotation, dtype=np.float32), device=device)
        with torch.inference_mode():
            cond = self.condition(f)

        def decode(noise) -> np.ndarray:
            if noise.shape[1] == 0:
                return np.zeros((len(f), 0, N_JOINTS, 3), dtype=np.float32)
            z = torch.as_tensor(np.ascontiguousarray(noise, dtype=np.float32), device=device)
            with torch.inference_mode():
                poses = self.hypotheses(cond, z, r).cpu().numpy()
            return np.nan_to_num(poses, nan=0.0, posinf=0.0, neginf=0.0)

        return decode

    def to_camera(self, y: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
        """The network's (N, K, 48) output, (N, 3, 3) -> (N, K, 17, 3) camera-frame metres."""
        # (N, K, 48) metres, virtual camera frame
        y = y.float() * self.model.target_std.float() + self.target_mean
        # Root at 0 by a constant (48, 51) [0 | I] product: one MatMul, static shapes.
        poses_v = (y @ self.insert_root).unflatten(-1, (N_JOINTS, 3))
        # Virtual camera -> camera: p_cam = R^T p_v, i.e. row vectors times R.
        return poses_v @ rotation[:, None]

    def example_inputs(self, n: int = 2, k: int = 3) -> tuple[torch.Tensor, ...]:
        """Random inputs of the right shapes and dtypes (tracing, tests)."""
        gen = torch.Generator().manual_seed(0)
        feats = torch.randn(n, self.model.cfg.n_in, generator=gen)
        rot = torch.eye(3).expand(n, 3, 3).contiguous()
        if not self.latent_dim:
            return feats, rot
        return feats, torch.randn(n, k, self.latent_dim, generator=gen), rot

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """ONNX dynamic axes: N people everywhere, K hypotheses on noise and poses."""
        axes = {"features": {0: "people"}, "rotation": {0: "people"}}
        axes[OUTPUT_NAME] = {0: "people", 1: "hypotheses"} if self.latent_dim else {0: "people"}
        if self.latent_dim:
            axes["noise"] = {0: "people", 1: "hypotheses"}
        return axes
