"""ONNX export of the temporal lifter's graph (issue 17).

``python -m hpe3d_ros.lifting.temporal_export WEIGHTS OUT.onnx``

The graph is :class:`~hpe3d_ros.lifting.temporal_runtime.TemporalGraph`: ``features``
(N, window, F + 1) per-frame encoder inputs of each track's window (numpy pre-processing:
:meth:`TemporalSampler.windows`), ``noise`` (N, K, L) the tracks' latent noise, ``rotation``
(N, 3, 3) camera -> the last frame's virtual camera; out ``poses`` (N, K, 17, 3). The strided
evaluation of the causal convolutions (only what the last frame needs) exports as plain
Conv nodes; batch norm folds into them. Opset and exporter as the single-frame lifter's
(:mod:`hpe3d_ros.backends.export`).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

OPSET = 17


def export_temporal(sampler, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``sampler`` (a :class:`TemporalSampler`, e.g. ``lifter.temporal``) as ONNX."""
    import onnx
    import torch

    from hpe3d_ros.lifting.graph import OUTPUT_NAME

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = sampler._graph.eval()
    names = ["features", "noise", "rotation"]
    axes = {
        "features": {0: "tracks"},
        "rotation": {0: "tracks"},
        "noise": {0: "tracks", 1: "hypotheses"},
        OUTPUT_NAME: {0: "tracks", 1: "hypotheses"},
    }
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            graph.example_inputs(),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    model = onnx.load(str(path))
    meta = {
        "hpe3d.arch": "temporal",
        "hpe3d.window": str(sampler.window),
        "hpe3d.rate_hz": repr(sampler.rate_hz),
        "hpe3d.latent_dim": str(sampler.latent_dim),
        "hpe3d.temperature": repr(sampler.temperature),
        "hpe3d.latent_dof": repr(sampler.latent_dof),
        "hpe3d.opset": str(opset),
    }
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def verify_temporal_onnx(sampler, path: str | Path, n: int = 3, k: int = 5) -> float:
    """Max |ONNX Runtime - torch| in metres on random windows."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    feats = rng.standard_normal((n, sampler.window, sampler.tcfg.frame_features))
    feats = feats.astype(np.float32)
    noise = rng.standard_normal((n, k, sampler.latent_dim)).astype(np.float32)
    rot = np.broadcast_to(np.eye(3, dtype=np.float32), (n, 3, 3)).copy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    a = sess.run(None, {"features": feats, "noise": noise, "rotation": rot})[0]
    b = sampler._run(feats, noise, rot)
    return float(np.abs(a - b).max())


def main(argv: list[str] | None = None) -> int:
    from hpe3d_ros.lifting import load_lifter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a temporal lifter checkpoint")
    parser.add_argument("out", help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=OPSET)
    args = parser.parse_args(argv)
    lifter = load_lifter(args.weights)
    if getattr(lifter, "temporal", None) is None:
        print(f"{args.weights} has no temporal model")
        return 1
    export_temporal(lifter.temporal, args.out, args.opset)
    err = verify_temporal_onnx(lifter.temporal, args.out)
    print(f"wrote {args.out}; max |onnxruntime - torch| = {err:.2e} m")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
