"""Build TensorRT engines from the ONNX files, with a cache: ``hpe3d-build-engine``.

An engine only runs on the GPU model and TensorRT version that built it, so the cache key is
(model SHA-256, GPU name, TensorRT flavour + version, precision, optimisation profile), and
the vehicle builds its engines ahead of time on the target (Jetson) with::

    hpe3d-build-engine                          # default lifter, FP16, 1-20 people x 1-200 K
    hpe3d-build-engine --precision int8 --calibration build/gpu_carry/calibration.npz
    hpe3d-build-engine --detector --sizes 512x384 512x512   # MoveNet MultiPose tiles (W x H)

Precision: with a TensorRT that still has precision flags (8.x-10.x) FP16 is a builder flag on
the float32 ONNX; strongly typed builders (TensorRT 11, TensorRT-RTX) get the float16 ONNX
instead (:func:`.export.export_lifter` with ``half=True``). INT8 uses the implicit
quantisation calibrator where it exists (TensorRT <= 10; removed in 11, which needs a Q/DQ
ONNX), fed the 2D keypoints of ``--calibration``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
from pathlib import Path

import numpy as np

from hpe3d_ros.backends.base import BackendUnavailable
from hpe3d_ros.backends.cache import file_sha256, find_cached, store, write_text_atomic
from hpe3d_ros.backends.tensorrt_backend import BUILDERS, cuda_device_name, import_tensorrt
from hpe3d_ros.lifting.normalize import N_FEATURES

LOG = logging.getLogger(__name__)

#: (min, opt, max) people and hypotheses of the lifter's optimisation profile.
PEOPLE = (1, 5, 20)
HYPOTHESES = (1, 50, 200)
PRECISIONS = ("fp32", "fp16", "int8")


def default_cache_dir() -> Path:
    """``$HPE3D_ENGINE_CACHE``, else ``~/.cache/hpe3d_ros/engines``."""
    env = os.environ.get("HPE3D_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hpe3d_ros" / "engines"


def lifter_profile(
    latent_dim: int, people=PEOPLE, hyps=HYPOTHESES, n_in: int = N_FEATURES
) -> dict[str, tuple]:
    """Input name -> (min, opt, max) shapes for the lifter graph (``n_in`` features)."""
    prof = {
        "features": tuple((n, n_in) for n in people),
        "rotation": tuple((n, 3, 3) for n in people),
    }
    if latent_dim:
        prof["noise"] = tuple((n, k, latent_dim) for n, k in zip(people, hyps, strict=True))
    return prof


def detector_profile(sizes_wh: list[tuple[int, int]], name: str = "input") -> dict[str, tuple]:
    """MoveNet MultiPose input (1, H, W, 3): min/max over ``sizes_wh``, opt the first size."""
    hs, ws = [h for _, h in sizes_wh], [w for w, _ in sizes_wh]
    return {
        name: (
            (1, min(hs), min(ws), 3),
            (1, sizes_wh[0][1], sizes_wh[0][0], 3),
            (1, max(hs), max(ws), 3),
        )
    }


def engine_key(onnx_path: str | Path, precision: str, profile: dict, trt=None) -> dict:
    """What an engine depends on; :func:`engine_path` hashes it into the file name."""
    trt = trt or import_tensorrt()
    return {
        "model": Path(onnx_path).name,
        "model_sha256": file_sha256(onnx_path),
        "gpu": cuda_device_name(),
        "tensorrt": f"{trt.__name__}-{trt.__version__}",
        "precision": precision,
        "profile": {k: [list(s) for s in v] for k, v in sorted(profile.items())},
    }


def engine_path(key: dict, cache_dir: str | Path | None = None) -> Path:
    """Cache prefix for ``key``: readable part + hash of the whole key, ``.engine`` suffix.

    The stored file is ``<stem>.<content hash>.engine`` (:mod:`hpe3d_ros.backends.cache`),
    its key beside it as ``<stem>.<content hash>.json``.
    """
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", key["gpu"]).strip("-")
    stem = Path(key["model"]).stem
    name = f"{stem}-{gpu}-{key['tensorrt']}-{key['precision']}-{digest}.engine"
    return Path(cache_dir or default_cache_dir()) / name


def _network_flags(trt, strongly_typed: bool) -> int:
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    if hasattr(creation, "EXPLICIT_BATCH"):  # required <= 9, deprecated no-op in 10
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    if strongly_typed and hasattr(creation, "STRONGLY_TYPED"):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    return flags


def has_precision_flags(trt) -> bool:
    """Whether this TensorRT still takes FP16/INT8 builder flags (weakly typed networks)."""
    return hasattr(trt.BuilderFlag, "FP16") and "rtx" not in trt.__name__


def build_engine(
    onnx_path: str | Path,
    profile: dict[str, tuple],
    precision: str = "fp16",
    calibration: np.ndarray | dict | None = None,
    workspace_mib: int = 1024,
    trt=None,
) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine for ``profile``.

    Args:
        profile: input name -> (min, opt, max) shapes.
        precision: "fp32", "fp16" (flag; or a float16 ONNX when strongly typed), "int8".
        calibration: int8 only, input name -> array of calibration inputs (batch = axis 0).

    Raises:
        BackendUnavailable: no builder in this TensorRT, the parse or the build failed (the
            message carries TensorRT's own errors).
    """
    trt = trt or import_tensorrt(BUILDERS)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    weak = has_precision_flags(trt)
    if precision == "int8" and not (weak and hasattr(trt, "IInt8EntropyCalibrator2")):
        raise BackendUnavailable(
            f"{trt.__name__} {trt.__version__} has no INT8 calibrator API: "
            "INT8 needs a Q/DQ ONNX (e.g. NVIDIA ModelOpt) with this version"
        )
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, strongly_typed=not weak))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailable(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    opt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    if precision == "fp16" and weak:
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        from hpe3d_ros.backends.int8_calibration import make_calibrator

        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers INT8 cannot take fall back to FP16
        config.int8_calibrator = make_calibrator(trt, calibration)
        config.set_calibration_profile(opt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable(f"TensorRT failed to build an engine from {onnx_path}")
    return bytes(serialized)


def ensure_engine(
    onnx_path: str | Path,
    profile: dict[str, tuple],
    precision: str = "fp16",
    cache_dir: str | Path | None = None,
    calibration=None,
) -> Path:
    """The cached engine for (model, GPU, TensorRT, precision, profile), built if missing."""
    trt = import_tensorrt(BUILDERS)
    # A strongly typed builder takes the precision from the ONNX file's types (and the file's
    # hash is in the key), so the name says so rather than claim a precision it ignored.
    label = precision if has_precision_flags(trt) or precision == "int8" else "typed"
    key = engine_key(onnx_path, label, profile, trt)
    prefix = engine_path(key, cache_dir).with_suffix("")
    path = find_cached(prefix, ".engine", "cached TensorRT engine", sidecars=(".json",))
    if path is not None:
        LOG.info("TensorRT engine from cache: %s", path)
        return path
    LOG.info("building TensorRT engine %s (%s): takes a minute", prefix.name, precision)
    data = build_engine(onnx_path, profile, precision, calibration, trt=trt)
    path = store(prefix, ".engine", lambda tmp: tmp.write_bytes(data))
    write_text_atomic(path.with_suffix(".json"), json.dumps(key, indent=1, sort_keys=True))
    return path


def lifter_engine(
    weights: str | Path | None = None,
    precision: str = "fp16",
    cache_dir: str | Path | None = None,
    onnx_dir: str | Path | None = None,
    calibration: str | Path | None = None,
) -> Path:
    """Export (if needed) the lifter checkpoint and build (if needed) its engine.

    ``calibration``: int8 only, an ``.npz`` of 2D keypoints
    (:mod:`hpe3d_ros.backends.int8_calibration`); None = synthetic keypoints.
    """
    from hpe3d_ros.backends.export import export_lifter_file
    from hpe3d_ros.lifting import load_lifter

    cache = Path(cache_dir or default_cache_dir())
    trt = import_tensorrt(BUILDERS)
    half = precision == "fp16" and not has_precision_flags(trt)
    onnx_path = export_lifter_file(weights, onnx_dir or cache / "onnx", half=half)
    lifter = load_lifter(weights)
    inputs = None
    if precision == "int8":
        from hpe3d_ros.backends.int8_calibration import lifter_calibration_inputs

        inputs = lifter_calibration_inputs(lifter, calibration)
    profile = lifter_profile(lifter.latent_dim, n_in=lifter.model.cfg.n_in)
    return ensure_engine(onnx_path, profile, precision, cache, inputs)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not WxH: {text!r} (e.g. 512x384)") from None
    if not (32 <= w <= 4096 and 32 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"size {text} outside 32-4096 px")
    return w, h


def main(argv: list[str] | None = None) -> int:
    """``hpe3d-build-engine``: 0 with the engine's path logged; 1 (one line) when none."""
    from hpe3d_ros.backends.export import OneLineParser
    from hpe3d_ros.untrusted import error_line

    parser = OneLineParser(prog="hpe3d-build-engine", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="lifter checkpoint (default: the shipped lifter_default.pt)%(default).0s",
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="engine cache (default: $HPE3D_ENGINE_CACHE or ~/.cache/hpe3d_ros/engines)"
        "%(default).0s",
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="int8: .npz of 2D keypoints, kp_norm (M,17,2) + conf (M,17) "
        "(default: synthetic keypoints)%(default).0s",
    )
    parser.add_argument("--detector", action="store_true", help="MoveNet MultiPose instead")
    parser.add_argument(
        "--sizes", type=_size, nargs="+", default=[(512, 384)], help="detector inputs, WxH"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.weights is not None and not args.weights.is_file():
        sys.stderr.write(f"hpe3d-build-engine: lifter weights not found: {args.weights}\n")
        return 1
    if args.calibration is not None and not args.calibration.is_file():
        sys.stderr.write(f"hpe3d-build-engine: calibration file not found: {args.calibration}\n")
        return 1
    if args.cache_dir is not None and args.cache_dir.exists() and not args.cache_dir.is_dir():
        sys.stderr.write(f"hpe3d-build-engine: --cache-dir is not a folder: {args.cache_dir}\n")
        return 1
    try:
        if args.detector:
            from hpe3d_ros.detection.movenet_multipose import MULTIPOSE_ONNX

            prof = detector_profile(args.sizes)
            path = ensure_engine(MULTIPOSE_ONNX, prof, args.precision, args.cache_dir)
        else:
            path = lifter_engine(
                args.weights, args.precision, args.cache_dir, calibration=args.calibration
            )
    except BackendUnavailable as exc:
        sys.stderr.write(f"hpe3d-build-engine: no engine: {error_line(exc, 1000)}\n")
        return 1
    except Exception as exc:  # corrupt checkpoints, unwritable caches raise many types
        sys.stderr.write(f"hpe3d-build-engine: {error_line(exc)}\n")
        return 1
    LOG.info("engine: %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
