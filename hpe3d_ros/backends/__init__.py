"""Deployment backends for the lifter (and the detector's ONNX files) behind one interface.

* :func:`load_backend_lifter` (``lifter.backend`` = auto | torch | onnxruntime | tensorrt):
  a :class:`BackendLifter` with the API of :class:`~hpe3d_ros.lifting.runtime.Lifter`,
  its network running on PyTorch, ONNX Runtime or a TensorRT engine, with automatic fallback
  and one log line naming the backend that runs.
* :mod:`hpe3d_ros.lifting.graph`: the exported graph; :mod:`.export` writes it as ONNX.
* :mod:`.tensorrt_engine`: engine building and cache (``hpe3d-build-engine``);
  :mod:`.tensorrt_backend`: the engine runner.
* :mod:`.detector`: the MoveNet detector on ONNX Runtime CUDA/TensorRT EPs or an engine.

onnxruntime and tensorrt are imported only by the backend that uses them.
"""

from hpe3d_ros.backends.base import BackendLifter, BackendUnavailable, LifterCore
from hpe3d_ros.backends.select import BACKENDS, candidates, load_backend_lifter

__all__ = [
    "BACKENDS",
    "BackendLifter",
    "BackendUnavailable",
    "LifterCore",
    "candidates",
    "load_backend_lifter",
]
