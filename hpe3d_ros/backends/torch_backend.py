"""PyTorch backend: the lifter graph in eager mode (CPU or CUDA), optionally compiled."""

from __future__ import annotations

import copy

import numpy as np
import torch

from hpe3d_ros.backends.base import BackendUnavailable
from hpe3d_ros.lifting.graph import LifterGraph


class TorchCore:
    """Runs :class:`~hpe3d_ros.lifting.graph.LifterGraph` with torch on ``device``.

    ``compile=True`` wraps the graph in ``torch.compile(dynamic=True)`` (worth it on CUDA,
    where eager launches dominate at these sizes; the first calls per shape class are slow).
    """

    def __init__(self, lifter, device: str = "cpu", compile: bool = False) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("torch has no CUDA device here")
        graph = LifterGraph(lifter)
        if self.device.type != "cpu":  # leave the wrapped lifter's own model where it is
            graph = copy.deepcopy(graph)
        self.graph = graph.to(self.device).eval()
        self._fn = torch.compile(self.graph, dynamic=True) if compile else self.graph
        self.name = f"torch-{self.device.type}" + ("-compiled" if compile else "")

    def run(
        self, features: np.ndarray, noise: np.ndarray | None, rotation: np.ndarray
    ) -> np.ndarray:
        """See :class:`~hpe3d_ros.backends.base.LifterCore`."""
        with torch.inference_mode():
            args = [torch.from_numpy(features)]
            if noise is not None:
                args.append(torch.from_numpy(noise))
            args.append(torch.from_numpy(rotation))
            out = self._fn(*(a.to(self.device, non_blocking=True) for a in args))
            return out.cpu().numpy()
