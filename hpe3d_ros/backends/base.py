"""What every lifter backend promises (:class:`LifterCore`) and the lifter built on one.

A backend runs only the graph of :mod:`hpe3d_ros.lifting.graph` (features, noise, rotations
-> camera-frame poses). :class:`BackendLifter` is a
:class:`~hpe3d_ros.lifting.runtime.Lifter` given a core at construction: the same numpy
pre-processing (:func:`~hpe3d_ros.lifting.normalize.prepare_inputs`), the same noise, the
same public API (``sample``, ``sample_with_noise``, ``predict_mean``, ``joint_names``,
``latent_dim``), so the pipeline cannot tell which backend runs underneath except by speed.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hpe3d_ros.lifting.runtime import Lifter


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


class SessionCore:
    """A :class:`LifterCore` over any session with ONNX Runtime's ``get_inputs``/``run`` API.

    Subclasses set ``session`` and ``name``; the feed follows the graph's own input names,
    so the baseline's graph (no ``noise`` input) needs nothing special.
    """

    session: object
    name: str

    def _bind(self, session) -> None:
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]

    def run(
        self, features: np.ndarray, noise: np.ndarray | None, rotation: np.ndarray
    ) -> np.ndarray:
        """See :class:`LifterCore`."""
        feed = {"features": features, "rotation": rotation}
        if noise is not None:
            feed["noise"] = noise
        return self.session.run(None, {k: feed[k] for k in self.input_names})[0]


class BackendLifter(Lifter):
    """A :class:`~hpe3d_ros.lifting.runtime.Lifter` built from a checkpoint and given the
    :class:`LifterCore` that runs its network.

    It is an ordinary Lifter (its own state, loaded from ``checkpoint`` by ``Lifter``'s
    constructor) and inherits the whole API (``sample``, ``sample_with_noise``,
    ``predict_mean``...); only :meth:`Lifter._run`, the hook the lifter documents for
    deployment backends, runs ``core`` instead of the torch graph. ``backend`` names the core
    (logs, benchmarks).

    Args:
        checkpoint: the dict :func:`~hpe3d_ros.lifting.load_lifter` read
            (``lifter.checkpoint``).
        core: the backend's runner of the lifter graph.
    """

    def __init__(self, checkpoint: dict, core: LifterCore) -> None:
        super().__init__(checkpoint, device="cpu")
        self.core = core
        self.backend: str = core.name

    def _run(self, feats: np.ndarray, noise: np.ndarray | None, rot: np.ndarray) -> np.ndarray:
        return self.core.run(feats, noise, rot)
