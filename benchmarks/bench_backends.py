"""Lifter and detector latency per deployment backend: ``python benchmarks/bench_backends.py``.

Lifter: the whole public call (``sample``: numpy pre-processing, encoder once per person,
K hypotheses, back to the camera frame) for K in {1, 10, 50, 200} x people in {1, 5, 20} and
the target point 10 people x K = 200, for the CVAE and the Martinez baseline in the same run
(ratio = CVAE / baseline on the same backend), and beside them the naive design the issue
warns about: the Martinez-size network run once per hypothesis (N*K rows). Detector: MoveNet
MultiPose, default tiling (2x1 tiles of 512 px), on a real frame resized to 640x480 and
1280x720.

Backends tried: torch-cpu (1 intra-op thread: see ``select.cpu_threads_for_torch``),
torch-cpu-2threads (torch's default on 2 cores), onnxruntime-cpu, and where present
torch-cuda (eager and ``torch.compile``), onnxruntime-cuda, tensorrt (FP16, FP32). One that
cannot run is listed with the reason. Prints Markdown tables; ``--json PATH`` also writes
every figure.

    .venv/bin/python benchmarks/bench_backends.py --threads 2            # ~1 min on 2 cores
    python benchmarks/bench_backends.py --json results.json --repeats 50  # GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpe3d_ros.backends.base import BackendLifter, BackendUnavailable  # noqa: E402
from hpe3d_ros.lifting import load_lifter  # noqa: E402
from hpe3d_ros.lifting.runtime import WEIGHTS_DIR  # noqa: E402

SIZES = [(n, k) for n in (1, 5, 20) for k in (1, 10, 50, 200)] + [(10, 200)]
WEIGHTS = {
    "cvae": WEIGHTS_DIR / "lifter_default.pt",
    "baseline": WEIGHTS_DIR / "lifter_baseline.pt",
}
LIFTER_BACKENDS = (
    "torch-cpu",
    "torch-cpu-2threads",
    "onnxruntime-cpu",
    "torch-cuda",
    "torch-cuda-compiled",
    "onnxruntime-cuda",
    "tensorrt-fp16",
    "tensorrt-fp32",
)
DETECTOR_BACKENDS = ("onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt")


def machine() -> str:
    """CPU, cores, load average, GPU: printed above every table."""
    import torch

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores visible, load average {load}, {gpu}"


def make_lifter(
    backend: str, weights: Path, threads: int, onnx_dir: Path, precision: str = "fp16"
) -> BackendLifter:
    """One lifter on one concrete backend (:data:`LIFTER_BACKENDS`); BackendUnavailable if not."""
    import torch

    from hpe3d_ros.backends.select import make_core
    from hpe3d_ros.backends.torch_backend import TorchCore

    lifter = load_lifter(weights)
    if backend == "torch-cpu-2threads":  # what a plain Lifter does on 2 cores
        torch.set_num_threads(2)
        return BackendLifter(lifter.checkpoint, TorchCore(lifter, "cpu"))
    if backend == "torch-cuda-compiled":
        return BackendLifter(lifter.checkpoint, TorchCore(lifter, "cuda", compile=True))
    if backend.startswith("tensorrt-"):
        precision = backend.split("-")[1]
        core = make_core("tensorrt", lifter, weights, threads, precision, onnx_dir)
    else:
        core = make_core(backend, lifter, weights, threads, onnx_dir=onnx_dir)
    return BackendLifter(lifter.checkpoint, core)


def time_calls(fn, repeats: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn(0)
    wall, cpu = [], []
    for i in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i)
        wall.append(1e3 * (time.perf_counter() - t0))
        cpu.append(1e3 * (time.process_time() - c0))
    return {
        "median_ms": statistics.median(wall),
        "p90_ms": float(np.percentile(wall, 90)),
        "min_ms": min(wall),
        "cpu_ms": statistics.median(cpu),
    }


def bench_lifters(backends, threads: int, repeats: int, onnx_dir: Path) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    inputs = {}
    for n in {n for n, _ in SIZES}:
        kp = rng.uniform(-0.3, 0.3, (n, 1, 2)) + rng.normal(0, 0.05, (n, 17, 2))
        inputs[n] = (kp.astype(np.float32), rng.uniform(0.3, 1.0, (n, 17)).astype(np.float32))
    for backend in backends:
        try:
            lifters = {a: make_lifter(backend, w, threads, onnx_dir) for a, w in WEIGHTS.items()}
        except BackendUnavailable as exc:
            rows.append({"backend": backend, "skipped": str(exc)})
            continue
        for n, k in SIZES:
            row = {"backend": backend, "people": n, "k": k}
            for arch, lifter in lifters.items():
                kp, conf = inputs[n]
                reps = max(5, repeats // 4) if n * k >= 1000 else repeats

                def call(i, lf=lifter, kp=kp, conf=conf, k=k):
                    return lf.sample(kp, conf, k, seed=i)

                row[arch] = time_calls(call, reps)
            # The naive design: the Martinez-size network once per hypothesis (N*K rows).
            kp_nk, conf_nk = (np.repeat(x, k, axis=0) for x in inputs[n])

            def naive(i, lf=lifters["baseline"], kp=kp_nk, conf=conf_nk):
                return lf.sample(kp, conf, 1, seed=i)

            row["baseline_per_hypothesis"] = time_calls(naive, max(3, repeats // 4))
            row["ratio"] = row["cvae"]["median_ms"] / row["baseline"]["median_ms"]
            rows.append(row)
            sys.stderr.write(f"{backend} {n}x{k}: {row['cvae']['median_ms']:.2f} ms\n")
    return rows


def lifter_table(rows: list[dict]) -> str:
    out = [
        "| backend | people | K | CVAE median ms (p90) | CVAE CPU ms | baseline median ms "
        "| ratio | Martinez x N*K ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['backend']} | - | - | not run: {r['skipped']} | | | | |")
            continue
        c, b = r["cvae"], r["baseline"]
        out.append(
            f"| {r['backend']} | {r['people']} | {r['k']} | {c['median_ms']:.2f} "
            f"({c['p90_ms']:.2f}) | {c['cpu_ms']:.1f} | {b['median_ms']:.2f} | {r['ratio']:.2f} "
            f"| {r['baseline_per_hypothesis']['median_ms']:.1f} |"
        )
    return "\n".join(out)


def test_image(width: int, height: int) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(ROOT / "test" / "data" / "vtest_0040.jpg"))
    return cv2.cvtColor(cv2.resize(bgr, (width, height)), cv2.COLOR_BGR2RGB)


def bench_detectors(backends, threads: int, repeats: int) -> list[dict]:
    from hpe3d_ros.backends.detector import open_backend_session, session_opener
    from hpe3d_ros.detection import load_detector
    from hpe3d_ros.detection.movenet_multipose import MULTIPOSE_ONNX

    rows = []
    for backend in backends:
        if backend != "onnxruntime-cpu":
            try:  # what session_opener opens, without its CPU fallback
                open_backend_session(MULTIPOSE_ONNX, backend, threads)
            except (BackendUnavailable, RuntimeError) as exc:
                rows.append({"backend": backend, "skipped": str(exc)})
                continue
        det = load_detector(threads=threads, opener=session_opener(backend, threads))
        for w, h in [(640, 480), (1280, 720)]:
            image = test_image(w, h)
            people = len(det.detect(image))
            stats = time_calls(lambda i, d=det, im=image: d.detect(im), repeats)
            rows.append({"backend": backend, "size": f"{w}x{h}", "people": people, **stats})
            sys.stderr.write(f"detector {backend} {w}x{h}: {stats['median_ms']:.1f} ms\n")
    return rows


def detector_table(rows: list[dict]) -> str:
    out = [
        "| backend | image | people | median ms (p90) | min ms | CPU ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['backend']} | - | - | not run: {r['skipped']} | | |")
            continue
        out.append(
            f"| {r['backend']} | {r['size']} | {r['people']} | {r['median_ms']:.1f} "
            f"({r['p90_ms']:.1f}) | {r['min_ms']:.1f} | {r['cpu_ms']:.0f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", choices=("lifter", "detector"), default=None)
    parser.add_argument("--lifter-backends", nargs="+", default=list(LIFTER_BACKENDS))
    parser.add_argument("--detector-backends", nargs="+", default=list(DETECTOR_BACKENDS))
    parser.add_argument("--onnx-dir", type=Path, default=ROOT / "build" / "export")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from hpe3d_ros.build import model_id

    weights = ", ".join(f"{a}: {model_id(w)}" for a, w in WEIGHTS.items())
    result = {"machine": machine(), "threads": args.threads, "weights": weights}
    sys.stdout.write(f"{result['machine']}; {args.threads} threads; {weights}\n\n")
    if args.only in (None, "lifter"):
        result["lifter"] = bench_lifters(
            args.lifter_backends, args.threads, args.repeats, args.onnx_dir
        )
        sys.stdout.write(lifter_table(result["lifter"]) + "\n\n")
    if args.only in (None, "detector"):
        result["detector"] = bench_detectors(args.detector_backends, args.threads, args.repeats)
        sys.stdout.write(detector_table(result["detector"]) + "\n")
    result["machine_after"] = machine()
    sys.stdout.write(f"\nafter: {result['machine_after']}\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
