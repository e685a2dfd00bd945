"""ONNX export of the temporal lifter's graph (issue 17).

``python -m hpe3d_ros.lifting.temporal_export WEIGHTS OUT.onnx``

Two graphs. ``<out>_frames.onnx``: the per-frame 2D encoder, ``features`` (M, F) -> ``codes``
(M, C) (run once per frame; the runtime remembers each track's codes). ``<out>.onnx``:
:class:`~hpe3d_ros.lifting.temporal_runtime.TemporalGraph`, ``features`` (N, packed_size)
= per track the current frame's features and its window's codes on the grid
(:meth:`TemporalSampler.packed`, numpy), ``noise`` (N, K, L) the tracks' latent noise,
``rotation`` (N, 3, 3) camera -> the current frame's virtual camera; out ``poses``
(N, K, 17, 3). The strided causal convolutions export as plain Conv nodes; batch norm folds
into them. Opset and exporter as the single-frame lifter's (:mod:`hpe3d_ros.backends.export`).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

OPSET = 17


def frames_path(path: str | Path) -> Path:
    """Where :func:`export_temporal` writes the per-frame encoder beside ``path``."""
    path = Path(path)
    return path.with_name(path.stem + "_frames.onnx")


def _export(module, inputs, path, names, out_name, axes, opset) -> None:
    import torch

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer notes
        torch.onnx.export(
            module,
            inputs,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=[out_name],
            dynamic_axes=axes,
            do_constant_folding=True,
        )


def export_temporal(sampler, path: str | Path, opset: int = OPSET) -> tuple[Path, Path]:
    """Write ``sampler`` (a :class:`TemporalSampler`, e.g. ``lifter.temporal``) as the two
    ONNX graphs of the module docstring; returns (temporal graph, frame encoder)."""
    import onnx
    import torch

    from hpe3d_ros.lifting.graph import OUTPUT_NAME

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = sampler._graph.eval()
    axes = {
        "features": {0: "tracks"},
        "rotation": {0: "tracks"},
        "noise": {0: "tracks", 1: "hypotheses"},
        OUTPUT_NAME: {0: "tracks", 1: "hypotheses"},
    }
    _export(
        graph,
        graph.example_inputs(),
        path,
        ["features", "noise", "rotation"],
        OUTPUT_NAME,
        axes,
        opset,
    )
    model = sampler.model.eval()

    class FrameCodes(torch.nn.Module):  # what the runtime caches per frame
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, feats):
            return self.model.frame_codes(feats)

    encoder = FrameCodes().eval()  # export restores this mode on the whole model
    example = torch.randn(3, model.cfg.n_in)
    _export(
        encoder,
        (example,),
        frames_path(path),
        ["features"],
        "codes",
        {"features": {0: "frames"}, "codes": {0: "frames"}},
        opset,
    )
    meta = {
        "hpe3d.arch": "temporal",
        "hpe3d.window": str(sampler.window),
        "hpe3d.grid_layout": ",".join(f"{k}:{n}" for k, n in model.grid_layout()),
        "hpe3d.rate_hz": repr(sampler.rate_hz),
        "hpe3d.latent_dim": str(sampler.latent_dim),
        "hpe3d.temperature": repr(sampler.temperature),
        "hpe3d.latent_dof": repr(sampler.latent_dof),
        "hpe3d.opset": str(opset),
    }
    for p in (path, frames_path(path)):
        model = onnx.load(str(p))
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(p))
    return path, frames_path(path)


def verify_temporal_onnx(sampler, path: str | Path, n: int = 3, k: int = 5) -> float:
    """Max |ONNX Runtime - torch| in metres on random inputs (both graphs, chained)."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1

    def session(p):
        return ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(0)
    m = sampler.model
    frames = rng.standard_normal((n * m.window, m.cfg.n_in)).astype(np.float32)
    codes_onnx = session(frames_path(path)).run(None, {"features": frames})[0]
    codes = sampler.frame_codes(frames)
    rows = torch.arange(n * m.window)  # every grid frame seen, at a random interpolation
    w = torch.from_numpy(rng.uniform(size=n * m.window).astype(np.float32))
    seen = torch.ones(n * m.window, dtype=torch.bool)
    grid = m.grid(torch.from_numpy(codes_onnx), rows, rows, w, seen).numpy().reshape(n, -1)
    packed = np.concatenate([frames[:n], grid], axis=1).astype(np.float32)
    noise = rng.standard_normal((n, k, sampler.latent_dim)).astype(np.float32)
    rot = np.broadcast_to(np.eye(3, dtype=np.float32), (n, 3, 3)).copy()
    a = session(path).run(None, {"features": packed, "noise": noise, "rotation": rot})[0]
    b = sampler._run(packed, noise, rot)
    return max(float(np.abs(a - b).max()), float(np.abs(codes_onnx - codes).max()))


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
    paths = export_temporal(lifter.temporal, args.out, args.opset)
    err = verify_temporal_onnx(lifter.temporal, args.out)
    print(f"wrote {paths[0]} and {paths[1]}; max |onnxruntime - torch| = {err:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
