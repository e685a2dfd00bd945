"""Run the 2D detector on another runtime: the session opener it is given.

A detector (:mod:`hpe3d_ros.detection`) calls only ``session.get_inputs()`` and
``session.run(None, feed)`` on the sessions it opens with the
:class:`~hpe3d_ros.detection.session.SessionOpener` it was built with;
:func:`session_opener` gives one that opens ONNX Runtime's CUDA or TensorRT execution
providers, or a TensorRT engine built from the same ONNX file
(:class:`~hpe3d_ros.backends.tensorrt_backend.TrtSession` offers the same two calls).

Backends: ``onnxruntime-cpu`` (what ``load_detector`` opens), ``onnxruntime-cuda``,
``onnxruntime-tensorrt`` and ``tensorrt`` (engine, cached like the lifter's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from hpe3d_ros.backends.base import BackendUnavailable

LOG = logging.getLogger(__name__)

DETECTOR_BACKENDS = ("onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt")
#: MultiPose inputs (W x H, padded to 32) of 2x1 tiles of 512 px on 640x480 and 1280x720
#: images, of a 512 px single pass, and of the 192 px coarse whole-image pass on 16:9 images
#: (the smallest input the shipped detector runs): the engine's optimisation profile.
DEFAULT_SIZES = ((416, 512), (512, 512), (512, 384), (192, 128))


def open_backend_session(
    onnx_path: str | Path,
    backend: str,
    threads: int = 2,
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES,
    precision: str = "fp16",
):
    """A session-like object running ``onnx_path`` on ``backend`` (see module)."""
    if backend == "tensorrt":
        import onnx

        from hpe3d_ros.backends.tensorrt_backend import TrtSession
        from hpe3d_ros.backends.tensorrt_engine import detector_profile, ensure_engine

        model = onnx.load(str(onnx_path), load_external_data=False)
        inp = model.graph.input[0]
        dims = [d.dim_value or -1 for d in inp.type.tensor_type.shape.dim]
        if -1 in dims:  # dynamic H, W (MultiPose)
            profile = detector_profile(list(sizes), inp.name)
        else:  # fixed crop (SinglePose)
            profile = {inp.name: (tuple(dims),) * 3}
        return TrtSession(ensure_engine(onnx_path, profile, precision))
    from hpe3d_ros.backends.onnxruntime_backend import open_ort_session

    if backend not in DETECTOR_BACKENDS:
        raise ValueError(f"unknown detector backend {backend!r}; one of {DETECTOR_BACKENDS}")
    return open_ort_session(onnx_path, backend.split("-", 1)[1], threads)


def session_opener(backend: str, threads: int = 2, **kw) -> Callable[..., object]:
    """The interface a detector is given: ``open(path, device, threads) -> session``.

    The session runs ``path`` on ``backend`` (``get_inputs()`` and ``run(None, feed)``, all a
    detector calls); when ``backend`` cannot run here the opener falls back to ONNX Runtime
    CPU with one warning naming the file and the reason. ``kw`` goes to
    :func:`open_backend_session` (``sizes``, ``precision``).
    """
    from hpe3d_ros.detection.session import open_session

    def open_on_backend(path: str | Path, device: str = "cpu", threads_: int = threads):
        if backend == "onnxruntime-cpu":
            return open_session(path, "cpu", threads_)
        try:
            return open_backend_session(path, backend, threads_, **kw)
        except (BackendUnavailable, RuntimeError) as exc:
            LOG.warning(
                "detector backend %s unavailable for %s (%s): onnxruntime-cpu", backend, path, exc
            )
            return open_session(path, "cpu", threads_)

    if backend not in DETECTOR_BACKENDS:
        raise ValueError(f"unknown detector backend {backend!r}; one of {DETECTOR_BACKENDS}")
    return open_on_backend


#: ONNX Runtime's first provider -> the backend name.
_PROVIDER_BACKENDS = {
    "TensorrtExecutionProvider": "onnxruntime-tensorrt",
    "CUDAExecutionProvider": "onnxruntime-cuda",
}


def session_backend(session) -> str:
    """The backend a detector session runs on: ``tensorrt`` for an engine, else from its
    ONNX Runtime providers."""
    from hpe3d_ros.backends.tensorrt_backend import TrtSession

    if isinstance(session, TrtSession):
        return "tensorrt"
    return _PROVIDER_BACKENDS.get(session.get_providers()[0], "onnxruntime-cpu")


def active_backend(detector) -> str:
    """The backend the detector's (MultiPose) session really runs on, after any fallback."""
    return session_backend(getattr(detector, "proposer", detector).session)
