"""TensorRT runtime: run a serialized engine with an ONNX-Runtime-like ``run`` (no pycuda).

:class:`TrtSession` mimics the two calls the project makes on an ``InferenceSession``
(``get_inputs()[i].name`` and ``run(None, feed)``), so a detector or the lifter can swap one
for the other. Device memory and the stream come from CUDA PyTorch, already a dependency,
rather than pycuda or cuda-python. Needs TensorRT >= 8.5 (``execute_async_v3``, named I/O).

:func:`import_tensorrt` finds the Python module of whichever flavour is installed: the full
TensorRT (``tensorrt``), TensorRT-RTX (``tensorrt_rtx``) or the lean runtime
(``tensorrt_lean``, runs version-compatible engines only, cannot build), also under the
module names of the split PyPI wheels (:data:`BUILDERS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from hpe3d_ros.backends.base import BackendUnavailable, SessionCore

#: Module names: the meta packages, then the split PyPI wheels' own modules
#: (``tensorrt-cu13-bindings`` installs ``tensorrt_bindings``, which loads ``tensorrt_libs``).
BUILDERS = ("tensorrt", "tensorrt_bindings", "tensorrt_rtx", "tensorrt_rtx_bindings")
FLAVOURS = (*BUILDERS, "tensorrt_lean")


def import_tensorrt(flavours: tuple[str, ...] = FLAVOURS) -> ModuleType:
    """The first importable TensorRT module of ``flavours``.

    Raises:
        BackendUnavailable: none importable (the message lists each import error).
    """
    import importlib

    errors = []
    for name in flavours:
        try:
            return importlib.import_module(name)
        except Exception as exc:  # ImportError, or OSError from a missing libnvinfer
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    raise BackendUnavailable("TensorRT not importable (" + "; ".join(errors) + ")")


def cuda_device_name() -> str:
    """Name of CUDA device 0 as torch sees it.

    Raises:
        BackendUnavailable: torch has no CUDA device here.
    """
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable("no CUDA device (torch.cuda.is_available() is False)")
    return torch.cuda.get_device_name(0)


def _builder_of(engine: str | Path | bytes) -> tuple[str, ...]:
    """The module that built a cached engine (its ``.json`` key), else every flavour."""
    if isinstance(engine, bytes):
        return FLAVOURS
    key = Path(engine).with_suffix(".json")
    try:
        name = json.loads(key.read_text())["tensorrt"].rsplit("-", 1)[0]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return FLAVOURS  # no key beside it, or a damaged one: any flavour may load it
    return (name, *(f for f in FLAVOURS if f != name))


@dataclass(frozen=True)
class _IO:
    name: str
    shape: tuple
    type: str


_TORCH_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT32": "int32",
    "INT64": "int64",
    "INT8": "int8",
    "UINT8": "uint8",
    "BOOL": "bool",
}


class TrtSession:
    """A deserialized engine with an ``InferenceSession``-like API (one CUDA stream)."""

    def __init__(self, engine: str | Path | bytes, trt: ModuleType | None = None) -> None:
        import torch

        cuda_device_name()
        self.trt = trt or import_tensorrt(_builder_of(engine))
        data = Path(engine).read_bytes() if isinstance(engine, str | Path) else engine
        self._logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(self._logger)
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise BackendUnavailable(
                "TensorRT could not deserialize the engine (built by another TensorRT version "
                "or for another GPU? rebuild it with hpe3d-build-engine)"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = self.trt.TensorIOMode.INPUT
        self._inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self._outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]
        self._dtype = {
            n: getattr(torch, _TORCH_DTYPES[self.engine.get_tensor_dtype(n).name]) for n in names
        }
        self.stream = torch.cuda.Stream()

    def get_inputs(self) -> list[_IO]:
        return [_IO(n, tuple(self.engine.get_tensor_shape(n)), "") for n in self._inputs]

    def get_outputs(self) -> list[_IO]:
        return [_IO(n, tuple(self.engine.get_tensor_shape(n)), "") for n in self._outputs]

    def run_torch(self, feed: dict) -> list:
        """Inputs as numpy arrays or CUDA tensors -> outputs as CUDA tensors (no host copy)."""
        import torch

        keep = []
        with torch.cuda.stream(self.stream):
            for name in self._inputs:
                t = torch.as_tensor(feed[name]).to("cuda", self._dtype[name], non_blocking=True)
                t = t.contiguous()
                keep.append(t)
                self.context.set_input_shape(name, tuple(t.shape))
                self.context.set_tensor_address(name, t.data_ptr())
            outs = []
            for name in self._outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                out = torch.empty(shape, dtype=self._dtype[name], device="cuda")
                self.context.set_tensor_address(name, out.data_ptr())
                outs.append(out)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
        self.stream.synchronize()
        return outs

    def run(self, output_names, feed: dict) -> list[np.ndarray]:
        """As ``InferenceSession.run``: numpy in, numpy out (all outputs, in engine order)."""
        outs = self.run_torch(feed)
        return [(o.float() if o.is_floating_point() else o).cpu().numpy() for o in outs]


class TensorRTCore(SessionCore):
    """Runs a lifter engine built by :mod:`hpe3d_ros.backends.tensorrt_engine`."""

    def __init__(self, engine_path: str | Path, precision: str = "fp16") -> None:
        self._bind(TrtSession(engine_path))
        self.name = f"tensorrt-{precision}"
