"""Pick the lifter backend by name, fall back automatically, and log the choice once.

``auto`` tries, in order: TensorRT, ONNX Runtime on CUDA, PyTorch on CUDA, then the faster
CPU backend on 2 cores (:data:`CPU_ORDER`, measured: BENCHMARKS.md, "Deployment backends").
A named backend that cannot run here falls back along the same order with a warning. The one
INFO line names the backend that runs and why each one before it was skipped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hpe3d_ros.backends.base import BackendLifter, BackendUnavailable, LifterCore

LOG = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
#: CPU backends, fastest first on 2 shared cores (BENCHMARKS.md: onnxruntime 1.3-2x torch).
CPU_ORDER = ("onnxruntime-cpu", "torch-cpu")
AUTO_ORDER = ("tensorrt", "onnxruntime-cuda", "torch-cuda", *CPU_ORDER)


def default_onnx_dir() -> Path:
    """``$HPE3D_ONNX_CACHE``, else ``~/.cache/hpe3d_ros/onnx`` (exports are cached by hash)."""
    env = os.environ.get("HPE3D_ONNX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hpe3d_ros" / "onnx"


def cpu_threads_for_torch(threads: int) -> int:
    """Torch intra-op threads: 1 unless ``OMP_WAIT_POLICY=PASSIVE`` was set before start.

    With OpenMP's default (spinning) wait policy, 2 torch threads on 2 cores shared with other
    processes took 167 ms for 10 people x K = 200 against 6.8 ms with 1 thread, or with 2
    threads and ``OMP_WAIT_POLICY=PASSIVE`` (BENCHMARKS.md, "Deployment backends").
    """
    passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    return max(1, int(threads)) if passive else 1


def candidates(backend: str, device: str = "cpu") -> tuple[str, ...]:
    """Concrete backends to try for a ``lifter.backend`` value and ``lifter.device``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown lifter backend {backend!r}; one of {BACKENDS}")
    if backend == "auto":
        return AUTO_ORDER
    cuda = device.startswith("cuda")
    first = {
        "tensorrt": "tensorrt",
        "onnxruntime": "onnxruntime-cuda" if cuda else "onnxruntime-cpu",
        "torch": "torch-cuda" if cuda else "torch-cpu",
    }[backend]
    return (first, *(c for c in AUTO_ORDER if c != first))


def make_core(
    name: str,
    lifter,
    weights: Path,
    threads: int = 2,
    precision: str = "fp16",
    onnx_dir: str | Path | None = None,
    engine_dir: str | Path | None = None,
) -> LifterCore:
    """One concrete backend (``candidates`` names); raises BackendUnavailable if it cannot run."""
    if name.startswith("torch-"):
        from hpe3d_ros.backends.torch_backend import TorchCore

        return TorchCore(lifter, "cuda" if name == "torch-cuda" else "cpu")
    if name.startswith("onnxruntime-"):
        from hpe3d_ros.backends.export import export_lifter_file
        from hpe3d_ros.backends.onnxruntime_backend import OnnxRuntimeCore

        device = name.split("-", 1)[1]
        try:  # cheap checks before the export (about a second)
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable("onnxruntime is not installed") from exc
        want = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
        if want not in ort.get_available_providers():
            raise BackendUnavailable(f"{want} not in this onnxruntime")
        cache = Path(onnx_dir or default_onnx_dir())
        try:
            path = export_lifter_file(weights, cache)
        except OSError as exc:  # read-only or full cache folder: the next backend runs
            raise BackendUnavailable(f"cannot write the ONNX cache in {cache}: {exc}") from exc
        try:
            return OnnxRuntimeCore(path, device, threads)
        except BackendUnavailable:
            raise
        except Exception as exc:  # onnxruntime raises private exception types
            raise BackendUnavailable(f"ONNX Runtime cannot open {path}: {exc}") from exc
    if name == "tensorrt":
        from hpe3d_ros.backends.tensorrt_backend import TensorRTCore, cuda_device_name
        from hpe3d_ros.backends.tensorrt_engine import lifter_engine

        cuda_device_name()  # cheap checks first: CUDA, then the import inside lifter_engine
        return TensorRTCore(lifter_engine(weights, precision, engine_dir, onnx_dir), precision)
    raise ValueError(f"unknown backend {name!r}")


def load_backend_lifter(
    weights: str | Path | None = None,
    backend: str = "auto",
    device: str = "cpu",
    threads: int = 2,
    precision: str = "fp16",
    onnx_dir: str | Path | None = None,
    engine_dir: str | Path | None = None,
) -> BackendLifter:
    """Load a lifter checkpoint and run it on the first backend of ``backend``'s list that works.

    Args:
        weights: checkpoint (None: the shipped default).
        backend: "auto", "torch", "onnxruntime" or "tensorrt" (``lifter.backend``).
        device: "cpu" or "cuda" (``lifter.device``): picks torch/onnxruntime's variant.
        threads: CPU threads (torch intra-op, ONNX Runtime intra-op).
        precision: TensorRT precision ("fp16", "fp32", "int8").

    Raises:
        BackendUnavailable: nothing on the list could run (the message lists every reason).
    """
    import torch

    from hpe3d_ros.lifting import DEFAULT_WEIGHTS, load_lifter

    weights = DEFAULT_WEIGHTS if weights is None else Path(weights)
    # the lifter's torch work on the CPU (the torch backend, and the temporal model on every
    # backend) runs on a set number of threads, not the process's default (the machine's
    # cores, or 1 in a Ray task): its figures then do not depend on where it runs
    torch.set_num_threads(cpu_threads_for_torch(threads))
    lifter = load_lifter(weights, device="cpu")
    skipped: list[str] = []
    for name in candidates(backend, device):
        try:
            core = make_core(name, lifter, weights, threads, precision, onnx_dir, engine_dir)
        except BackendUnavailable as exc:
            skipped.append(f"{name}: {exc}")
            continue
        why = "; ".join(skipped) if skipped else "first choice"
        level = logging.WARNING if backend != "auto" and skipped else logging.INFO
        LOG.log(level, "lifter backend %s (asked %s); skipped: %s", core.name, backend, why)
        return BackendLifter(lifter.checkpoint, core)
    raise BackendUnavailable("no lifter backend can run: " + "; ".join(skipped))
