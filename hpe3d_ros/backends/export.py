"""ONNX export of the lifter (and a check of the detector's ONNX files): ``hpe3d-export``.

The lifter graph is :class:`~hpe3d_ros.lifting.graph.LifterGraph`: features, noise and
rotations in, camera-frame poses out, with dynamic axes for people (N) and hypotheses (K). The
noise is an input, so every backend fed the same noise returns the same hypotheses.

Opset :data:`OPSET` = 17: the highest opset TensorRT 8.5/8.6 (JetPack 5) parses, and what the
MoveNet files use; TensorRT 10 and ONNX Runtime 1.32 read it too. The graph is traced with the
TorchScript exporter (``dynamo=False``): the torch.export-based one needs ``onnxscript``, which
is not in the project's environment, and gains nothing on a graph of linear layers.

The detector needs no export: it already runs the MoveNet ONNX files shipped in
``hpe3d_ros/weights``; ``--detector`` checks them and copies them beside the lifter.

Usage::

    python -m hpe3d_ros.backends.export                      # default lifter -> build/export/
    python -m hpe3d_ros.backends.export --weights hpe3d_ros/weights/lifter_baseline.pt --detector
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

from hpe3d_ros.backends.cache import file_sha256, find_cached, store
from hpe3d_ros.untrusted import error_line

LOG = logging.getLogger(__name__)

OPSET = 17
DEFAULT_OUT_DIR = Path("build/export")
DETECTOR_FILES = (
    "movenet_multipose_lightning.onnx",
    "movenet_singlepose_lightning.onnx",
    "movenet_singlepose_thunder.onnx",
)


def export_lifter(
    lifter,
    path: str | Path,
    opset: int = OPSET,
    weights_sha256: str = "",
    half: bool = False,
) -> Path:
    """Write ``lifter`` (a loaded :class:`~hpe3d_ros.lifting.runtime.Lifter`) as ONNX.

    ``half`` writes the float16 variant (float32 I/O) for strongly typed TensorRT builds.

    The file passes ``onnx.checker.check_model``; its metadata names the architecture,
    latent size, temperature, opset, joint order and the checkpoint's SHA-256.

    Returns the path written.
    """
    import onnx
    import torch

    from hpe3d_ros.lifting.graph import OUTPUT_NAME, LifterGraph

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = LifterGraph(lifter, half=half).eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer notes
        torch.onnx.export(
            graph,
            graph.example_inputs(),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=list(graph.input_names),
            output_names=[OUTPUT_NAME],
            dynamic_axes=graph.dynamic_axes(),
            do_constant_folding=True,
        )
    model = onnx.load(str(path))
    meta = {
        "hpe3d.arch": lifter.arch,
        "hpe3d.latent_dim": str(lifter.latent_dim),
        "hpe3d.temperature": repr(float(lifter.temperature)),
        # The graph takes the latent noise as an input: feed it hpe3d_ros.lifting.runtime.
        # latent_noise(..., dof=latent_dof) for calibrated hypotheses.
        "hpe3d.latent_dof": repr(float(lifter.latent_dof)),
        "hpe3d.opset": str(opset),
        "hpe3d.precision": "fp16" if half else "fp32",
        "hpe3d.joint_names": ",".join(lifter.joint_names),
        "hpe3d.weights_sha256": weights_sha256,
    }
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def lifter_onnx_prefix(
    weights: str | Path, sha256: str, opset: int = OPSET, half: bool = False
) -> str:
    """Cache name of an exported lifter, before its content hash and ``.onnx``: checkpoint
    stem, checkpoint hash prefix, opset, precision (see :mod:`hpe3d_ros.backends.cache`)."""
    return f"{Path(weights).stem}_{sha256[:12]}_op{opset}" + ("_fp16" if half else "")


def export_lifter_file(
    weights: str | Path | None, out_dir: str | Path, opset: int = OPSET, half: bool = False
) -> Path:
    """Load a checkpoint (None = shipped default) and export it into ``out_dir`` (a cache).

    An intact file for the same checkpoint hash, opset and precision is reused; a corrupt one
    is removed with a warning naming it and exported again. The file is written atomically
    (``<prefix>.<content hash>.onnx``), so an interrupted export leaves no cache entry.
    """
    from hpe3d_ros.lifting import DEFAULT_WEIGHTS, load_lifter

    weights = DEFAULT_WEIGHTS if weights is None else Path(weights)
    sha = file_sha256(weights)
    prefix = Path(out_dir) / lifter_onnx_prefix(weights, sha, opset, half)
    cached = find_cached(prefix, ".onnx", "cached ONNX")
    if cached is not None:
        return cached
    lifter = load_lifter(weights)
    return store(prefix, ".onnx", lambda tmp: export_lifter(lifter, tmp, opset, sha, half))


def check_detector_files(weights_dir: str | Path | None = None) -> list[Path]:
    """The shipped MoveNet ONNX files, each through ``onnx.checker`` (raises if one fails)."""
    import onnx

    from hpe3d_ros.detection.session import WEIGHTS_DIR

    folder = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    paths = [folder / name for name in DETECTOR_FILES]
    for p in paths:
        onnx.checker.check_model(str(p))
    return paths


def verify_lifter_onnx(lifter, path: str | Path, n: int = 3, k: int = 7) -> float:
    """Max |ONNX Runtime - torch| in metres on random inputs (a smoke check after export)."""
    from hpe3d_ros.backends.onnxruntime_backend import OnnxRuntimeCore
    from hpe3d_ros.backends.torch_backend import TorchCore

    rng = np.random.default_rng(0)
    feats = rng.standard_normal((n, lifter.model.cfg.n_in)).astype(np.float32)
    noise = rng.standard_normal((n, k, lifter.latent_dim)).astype(np.float32)
    noise = noise if lifter.latent_dim else None
    rot = np.broadcast_to(np.eye(3, dtype=np.float32), (n, 3, 3)).copy()
    a = OnnxRuntimeCore(path).run(feats, noise, rot)
    b = TorchCore(lifter).run(feats, noise, rot)
    return float(np.abs(a - b).max())


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``prog: error: ...``), exit status 2,
    and whose ``--help`` shows every default."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(**kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def opset_arg(text: str) -> int:
    """``--opset`` values the exporter and TensorRT both handle (13-20)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 13 <= value <= 20:
        raise argparse.ArgumentTypeError(f"opset {value} outside 13-20")
    return value


def main(argv: list[str] | None = None) -> int:
    """``hpe3d-export``: 0 when every file was written and checked; 1 (one line) otherwise."""
    parser = OneLineParser(prog="hpe3d-export", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        nargs="+",
        type=Path,
        default=[None],
        help="lifter checkpoint(s) (default: the shipped lifter_default.pt)%(default).0s",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="output folder")
    parser.add_argument("--opset", type=opset_arg, default=OPSET, help="ONNX opset (13-20)")
    parser.add_argument("--fp16", action="store_true", help="float16 graph (strongly typed TRT)")
    parser.add_argument(
        "--detector", action="store_true", help="check and copy the MoveNet ONNX files too"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from hpe3d_ros.lifting import load_lifter

    missing = [str(w) for w in args.weights if w is not None and not w.is_file()]
    if missing:
        sys.stderr.write(f"hpe3d-export: lifter weights not found: {', '.join(missing)}\n")
        return 1
    for weights in args.weights:
        try:
            path = export_lifter_file(weights, args.out, args.opset, half=args.fp16)
            err = verify_lifter_onnx(load_lifter(weights), path)
        except Exception as exc:  # corrupt checkpoints and unwritable folders raise many types
            name = weights or "the default lifter"
            sys.stderr.write(f"hpe3d-export: cannot export {name}: {error_line(exc)}\n")
            return 1
        LOG.info("lifter -> %s (opset %d, max |ORT - torch| %.2g m)", path, args.opset, err)
    if args.detector:
        try:
            for src in check_detector_files():
                dst = args.out / src.name
                shutil.copyfile(src, dst)
                LOG.info("detector -> %s (onnx checker clean)", dst)
        except Exception as exc:
            sys.stderr.write(f"hpe3d-export: detector files: {error_line(exc)}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
