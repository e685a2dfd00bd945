#!/usr/bin/env bash
# Everything issue 8 measures on a GPU machine, in one command; results land in one folder.
#
#   benchmarks/run_gpu.sh [OUT_DIR]        # default: $OUT if set (device runner), else
#                                          # build/gpu_results
#
# Steps (each logs to OUT_DIR/<step>.log; a failing step does not stop the others):
#   1. machine: nvidia-smi, python, torch/CUDA, onnxruntime providers
#   2. TensorRT probe: install any wheels found in build/wheels (also reassembles split
#      wheels, NAME.whl.part-aa, -ab, ...) into build/trt_site with pip --no-deps --no-index,
#      then tries every TensorRT flavour (tensorrt, tensorrt_bindings, tensorrt_rtx,
#      tensorrt_rtx_bindings, tensorrt_lean): import, builder, engine build of the lifter,
#      one inference; exact errors in trt_probe.log
#   3. tests: export + backends + TensorRT parity (FP16 <= 2 mm vs torch)
#   4. bench_backends.py: lifter (torch CPU/CUDA, compiled, ORT, TensorRT) and detector
#   5. bench_pipeline.py at 640x480: auto backends; torch-cuda; tensorrt where it builds
# Needs: python3 with CUDA torch, numpy, onnx, onnxruntime, opencv, pytest (PYTHON=... to
# choose; REPEATS=50 and FRAMES=100 set the benchmark lengths).
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-build/gpu_results}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
SITE="$PWD/build/trt_site"
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export HPE3D_ENGINE_CACHE="$PWD/build/engines"
export HPE3D_ONNX_CACHE="$PWD/build/export"
step() {  # step NAME COMMAND...: run, log, keep going
  local name="$1"; shift
  echo "== $name: $*" | tee -a "$OUT_DIR/summary.txt"
  local t0=$SECONDS
  "$@" >"$OUT_DIR/$name.log" 2>&1
  local rc=$?
  echo "   rc=$rc, $((SECONDS - t0)) s" | tee -a "$OUT_DIR/summary.txt"
  tail -n 25 "$OUT_DIR/$name.log"
}

machine() {
  nvidia-smi || true
  "$PY" - <<'PY'
import platform, sys
import torch, numpy
print("python", sys.version.split()[0], platform.machine(), "numpy", numpy.__version__)
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
try:
    import onnxruntime as ort
    print("onnxruntime", ort.__version__, ort.get_available_providers())
except Exception as exc:
    print("onnxruntime: not importable:", exc)
for mod in ("onnx", "cv2"):
    try:
        print(mod, __import__(mod).__version__)
    except Exception as exc:
        print(mod, "not importable:", exc)
PY
}

install_wheels() {
  local dir=build/wheels tmp
  [ -d "$dir" ] || { echo "no $dir: nothing to install"; return 0; }
  tmp=$(mktemp -d)
  for first in "$dir"/*.whl.part-aa; do  # split wheels: NAME.whl.part-aa, -ab, ...
    [ -e "$first" ] || continue
    cat "${first%-aa}"-* >"$tmp/$(basename "${first%.part-aa}")"
  done
  cp "$dir"/*.whl "$tmp"/ 2>/dev/null || true
  ls -la "$tmp"
  mkdir -p "$SITE"
  for whl in "$tmp"/*.whl; do
    [ -e "$whl" ] || continue
    "$PY" -m pip install --no-deps --no-index --upgrade --target "$SITE" "$whl" \
      || echo "pip could not install $(basename "$whl")"
  done
  rm -rf "$tmp"
}

probe_tensorrt() {
  install_wheels
  "$PY" - <<'PY'
import importlib, logging, sys, traceback
logging.basicConfig(level=logging.INFO)
from hpe3d_ros.backends.tensorrt_backend import FLAVOURS
for name in FLAVOURS:
    print(f"--- {name}")
    try:
        trt = importlib.import_module(name)
        print("import ok:", getattr(trt, "__version__", "?"), trt.__file__)
    except Exception as exc:
        print("import failed:", type(exc).__name__, exc)
        continue
    if not hasattr(trt, "Builder"):
        print("no Builder in this flavour (runtime only)")
        continue
    try:
        from hpe3d_ros.backends.tensorrt_engine import (
            build_engine, has_precision_flags, lifter_profile)
        from hpe3d_ros.backends.tensorrt_backend import TrtSession
        from hpe3d_ros.export import export_lifter_file
        half = not has_precision_flags(trt)
        from hpe3d_ros.lifting import load_lifter
        latent = load_lifter().latent_dim
        onnx = export_lifter_file(None, "build/export", half=half)
        data = build_engine(onnx, lifter_profile(latent), "fp16", trt=trt)
        print("engine built:", len(data), "bytes from", onnx)
        import numpy as np
        sess = TrtSession(data, trt=trt)
        feed = {"features": np.zeros((2, 72), np.float32),
                "noise": np.zeros((2, 5, latent), np.float32),
                "rotation": np.tile(np.eye(3, dtype=np.float32), (2, 1, 1))}
        print("inference ok:", sess.run(None, feed)[0].shape)
    except Exception:
        traceback.print_exc(file=sys.stdout)
PY
}

step machine machine
step trt_probe probe_tensorrt
step tests "$PY" -m pytest -q -rs test/test_export.py test/test_backends.py \
  test/test_backends_tensorrt.py
step bench_backends "$PY" benchmarks/bench_backends.py --threads 2 --repeats "${REPEATS:-50}" \
  --json "$OUT_DIR/bench_backends.json"
step pipeline_auto "$PY" benchmarks/bench_pipeline.py --frames "${FRAMES:-100}" --lifter-backend auto \
  --json "$OUT_DIR/pipeline_auto.json"
step pipeline_torch_cuda "$PY" benchmarks/bench_pipeline.py --frames "${FRAMES:-100}" \
  --lifter-backend torch --device cuda --json "$OUT_DIR/pipeline_torch_cuda.json"
step pipeline_tensorrt "$PY" benchmarks/bench_pipeline.py --frames "${FRAMES:-100}" \
  --lifter-backend tensorrt --detector-backend tensorrt \
  --json "$OUT_DIR/pipeline_tensorrt.json"
step pipeline_tensorrt_1x1 "$PY" benchmarks/bench_pipeline.py --frames "${FRAMES:-100}" --tiles 1x1 \
  --lifter-backend tensorrt --detector-backend tensorrt \
  --json "$OUT_DIR/pipeline_tensorrt_1x1.json"
echo "results in $OUT_DIR"
