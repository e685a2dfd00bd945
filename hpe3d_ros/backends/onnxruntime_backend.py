"""ONNX Runtime backend: an exported lifter graph on the CPU, CUDA or TensorRT providers."""

from __future__ import annotations

from pathlib import Path

from hpe3d_ros.backends.base import BackendUnavailable, SessionCore

#: Execution providers per ``device`` (the first must be available, CPU is the fallback).
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def open_ort_session(path: str | Path, device: str = "cpu", threads: int = 2):
    """An ``InferenceSession`` on ``device`` ("cpu", "cuda", "tensorrt").

    Same threading as the detector's sessions (:mod:`hpe3d_ros.detection.session`): fixed
    intra-op threads, no spinning (spinning doubles wall time on shared cores).

    Raises:
        BackendUnavailable: onnxruntime is missing or lacks the device's provider.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailable("onnxruntime is not installed") from exc
    providers = PROVIDERS[device]
    if providers[0] not in ort.get_available_providers():
        raise BackendUnavailable(
            f"{providers[0]} not in this onnxruntime ({', '.join(ort.get_available_providers())})"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=providers)


class OnnxRuntimeCore(SessionCore):
    """Runs an exported lifter graph (:func:`hpe3d_ros.backends.export.export_lifter`)."""

    def __init__(self, onnx_path: str | Path, device: str = "cpu", threads: int = 2) -> None:
        self._bind(open_ort_session(onnx_path, device, threads))
        self.name = f"onnxruntime-{device}"
