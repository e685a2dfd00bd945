"""The measurements of the GPU run, one function per step (``benchmarks/gpu_run.py`` drives them).

Every function takes the run's context (:class:`Ctx`) and returns JSON-ready rows; a backend
that cannot run here becomes a row ``{"backend": ..., "skipped": reason}``, never an error.
In a dry run (``ctx.dry_run``) the same code runs on the CPU: the GPU backends are still
asked for (so their reasons are recorded) and the CPU stand-ins are measured instead
(``onnxruntime-cpu-fp16`` = the float16 graph a strongly typed TensorRT build uses).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_backends import make_lifter as bench_make_lifter  # noqa: E402
from benchmarks.bench_backends import time_calls  # noqa: E402
from hpe3d_ros.backends.base import BackendLifter, BackendUnavailable  # noqa: E402
from hpe3d_ros.lifting import load_lifter  # noqa: E402
from hpe3d_ros.lifting.runtime import WEIGHTS_DIR  # noqa: E402

GPU_LIFTERS = ("torch-cuda", "onnxruntime-cuda", "tensorrt-fp16", "tensorrt-fp32", "tensorrt-int8")
CPU_LIFTERS = ("onnxruntime-cpu", "onnxruntime-cpu-fp16", "torch-cpu")
GPU_DETECTORS = ("onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt")
#: Mean joint difference allowed against torch FP32 on the same noise (metres).
PARITY_LIMIT_M = {"fp16": 2e-3, "fp32": 1e-4}


@dataclass
class Ctx:
    """What every step needs; written to JSON for the step subprocesses."""

    dry_run: bool = False
    threads: int = 4
    repeats: int = 50
    sizes: list = field(default_factory=lambda: [[10, 200], [1, 1], [5, 50], [20, 200]])
    frames: int = 100
    cameras: list = field(default_factory=lambda: [1, 4])
    k: int = 50
    onnx_dir: str = str(ROOT / "build" / "cache" / "onnx")
    carry: str = str(ROOT / "build" / "gpu_carry")
    lifter_backends: list = field(default_factory=lambda: [*GPU_LIFTERS, *CPU_LIFTERS[:1]])
    detector_backends: list = field(default_factory=lambda: ["onnxruntime-cpu", *GPU_DETECTORS])

    @classmethod
    def dry(cls, **kw) -> Ctx:
        """The CPU rehearsal: every backend asked for, tiny sizes."""
        base = dict(dry_run=True, threads=1, repeats=2, sizes=[[2, 10]], frames=3, k=10)
        base["lifter_backends"] = [*GPU_LIFTERS, *CPU_LIFTERS]
        return cls(**{**base, **kw})

    def to_dict(self) -> dict:
        return asdict(self)


def lifter_weights() -> list[Path]:
    """Every shipped lifter checkpoint (the default first): what the lifter issues ship."""
    found = sorted(WEIGHTS_DIR.glob("lifter_*.pt"))
    default = WEIGHTS_DIR / "lifter_default.pt"
    return [default, *(w for w in found if w != default)]


def calibration_file(ctx: Ctx) -> Path | None:
    path = Path(ctx.carry) / "calibration.npz"
    return path if path.is_file() else None


def make_lifter(ctx: Ctx, backend: str, weights: Path) -> BackendLifter:
    """A lifter on ``backend``; BackendUnavailable (with the reason) where it cannot run."""
    if backend == "onnxruntime-cpu-fp16":
        from hpe3d_ros.backends.export import export_lifter_file
        from hpe3d_ros.backends.onnxruntime_backend import OnnxRuntimeCore

        path = export_lifter_file(weights, ctx.onnx_dir, half=True)
        core = OnnxRuntimeCore(path, "cpu", ctx.threads)
        core.name = backend
        return BackendLifter(load_lifter(weights).checkpoint, core)
    if backend.startswith("tensorrt-"):
        from hpe3d_ros.backends.tensorrt_backend import TensorRTCore, cuda_device_name
        from hpe3d_ros.backends.tensorrt_engine import lifter_engine

        precision = backend.split("-", 1)[1]
        cuda_device_name()  # cheap check first
        engine = lifter_engine(weights, precision, None, ctx.onnx_dir, calibration_file(ctx))
        return BackendLifter(load_lifter(weights).checkpoint, TensorRTCore(engine, precision))
    return bench_make_lifter(backend, weights, ctx.threads, Path(ctx.onnx_dir))


def _inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-0.3, 0.3, (n, 1, 2)) + rng.normal(0, 0.05, (n, 17, 2))
    return kp.astype(np.float32), rng.uniform(0.3, 1.0, (n, 17)).astype(np.float32)


def parity(ctx: Ctx) -> list[dict]:
    """Mean / max joint difference (mm) of every backend against torch FP32 on the same noise."""
    rows = []
    for weights in lifter_weights():
        ref = load_lifter(weights)
        for backend in ctx.lifter_backends:
            if backend == "tensorrt-int8":  # no parity limit: the int8 step measures its cost
                continue
            row = {"model": weights.name, "backend": backend}
            try:
                lifter = make_lifter(ctx, backend, weights)
            except BackendUnavailable as exc:
                rows.append({**row, "skipped": str(exc)})
                continue
            diffs = []
            for n, k in ctx.sizes:
                kp, conf = _inputs(n, n * 1000 + k)
                noise = ref.noise(n, k, seed=k)
                got = lifter.sample_with_noise(kp, conf, noise)
                diffs.append(np.linalg.norm(got - ref.sample_with_noise(kp, conf, noise), axis=-1))
            d = np.concatenate([x.ravel() for x in diffs])
            precision = "fp16" if "fp16" in backend else "fp32"
            limit = PARITY_LIMIT_M[precision]
            mean = float(d.mean())
            rows.append({**row, "precision": precision, "mean_mm": 1e3 * mean,
                         "max_mm": 1e3 * float(d.max()),
                         "limit_mm": 1e3 * limit, "ok": mean <= limit})  # fmt: skip
    return rows


def lifter_latency(ctx: Ctx, backends: list[str] | None = None) -> list[dict]:
    """``sample`` latency per backend, model and (people, K); the first size is the target."""
    rows = []
    models = [WEIGHTS_DIR / "lifter_default.pt", WEIGHTS_DIR / "lifter_baseline.pt"]
    for backend in backends or ctx.lifter_backends:
        for weights in models:
            if backend.endswith("int8") and weights != models[0]:
                continue  # one INT8 engine (each build calibrates for tens of seconds)
            try:
                lifter = make_lifter(ctx, backend, weights)
            except BackendUnavailable as exc:
                rows.append({"backend": backend, "model": weights.name, "skipped": str(exc)})
                continue
            for n, k in ctx.sizes:
                kp, conf = _inputs(n, 0)

                def call(i, lf=lifter, kp=kp, conf=conf, k=k):
                    return lf.sample(kp, conf, k, seed=i)

                stats = time_calls(call, ctx.repeats)
                rows.append({"backend": backend, "model": weights.name, "people": n, "k": k,
                             **stats})  # fmt: skip
    return rows


def lifter_compiled(ctx: Ctx) -> list[dict]:
    """torch.compile on CUDA (a separate step: its first calls compile for tens of seconds)."""
    return lifter_latency(ctx, ["torch-cuda-compiled"])


def detector_latency(ctx: Ctx) -> list[dict]:
    """MoveNet MultiPose (shipped 2x1 tiling) at 640x480 and 1280x720 per backend."""
    from benchmarks.bench_backends import bench_detectors

    return bench_detectors(ctx.detector_backends, ctx.threads, ctx.repeats)


def _best_detector_backend(ctx: Ctx, detector_rows: list[dict] | None) -> str:
    ran = {r["backend"] for r in detector_rows or [] if "skipped" not in r}
    return next((b for b in ("tensorrt", "onnxruntime-cuda") if b in ran), "onnxruntime-cpu")


def pipeline_fps(ctx: Ctx, detector_rows: list[dict] | None = None) -> list[dict]:
    """Frames/s of :meth:`Pipeline.process` at 640x480 for 1 and 4 cameras (the node's way:
    one worker, cameras in turn, a tracker each), lifter on ``auto`` and on torch CUDA."""
    from benchmarks.bench_pipeline import read_frames
    from hpe3d_ros.backends import load_backend_lifter
    from hpe3d_ros.backends.detector import active_backend, session_opener
    from hpe3d_ros.camera import CameraModel
    from hpe3d_ros.detection import load_detector
    from hpe3d_ros.detection.tracking import Tracker
    from hpe3d_ros.pipeline import Pipeline, PipelineConfig

    det_backend = _best_detector_backend(ctx, detector_rows)
    detector = load_detector(threads=ctx.threads, opener=session_opener(det_backend, ctx.threads))
    device = "cpu" if ctx.dry_run else "cuda"
    frames = read_frames(ROOT / "demo" / "vtest_600_750.mp4", ctx.frames + 37 * 3, (640, 480))
    camera = CameraModel.from_fov(640, 480, 60.0)
    rows = []
    for lifter_backend in ("auto", "torch"):
        try:
            lifter = load_backend_lifter(
                backend=lifter_backend, device=device, threads=ctx.threads
            )
        except BackendUnavailable as exc:
            rows.append({"lifter_asked": lifter_backend, "skipped": str(exc)})
            continue
        pipeline = Pipeline(detector, lifter, PipelineConfig(num_hypotheses=ctx.k),
                            tracker_factory=Tracker)  # fmt: skip
        for cams in ctx.cameras:
            for i in range(min(3, len(frames))):  # warm-up: first calls allocate, engines load
                pipeline.process(frames[i], camera, stamp_ns=i)
            pipeline.reset()
            stages: dict[str, list[float]] = {}
            people = []
            t0, c0 = time.perf_counter(), time.process_time()
            for t in range(ctx.frames):
                for c in range(cams):  # each camera sees the clip from its own offset
                    frame = frames[(t + 37 * c) % len(frames)]
                    res = pipeline.process(frame, camera, camera_name=f"cam{c}",
                                           stamp_ns=t * 100_000_000)  # fmt: skip
                    people.append(len(res.people))
                    for key, ms in res.timings_ms.items():
                        stages.setdefault(key, []).append(ms)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            done = ctx.frames * cams
            rows.append({
                "lifter_asked": lifter_backend, "lifter": lifter.backend,
                "detector": active_backend(detector), "cameras": cams, "frames": done,
                "k": ctx.k, "people_per_frame": float(np.mean(people)),
                "frames_per_s": done / wall, "per_camera_frames_per_s": done / wall / cams,
                "cpu_ms_per_frame": 1e3 * cpu / done,
                "stage_median_ms": {k: statistics.median(v) for k, v in stages.items()},
            })  # fmt: skip
    return rows


def int8_accuracy(ctx: Ctx) -> list[dict]:
    """MPJPE (mean of K) on the unseen test subjects per backend, and its cost against torch
    FP32: what INT8 (and FP16) give up for speed."""
    from hpe3d_ros import metrics

    path = Path(ctx.carry) / "test_subjects.npz"
    if not path.is_file():
        return [{"backend": "all", "skipped": f"{path} missing: run benchmarks/gpu_prepare.py"}]
    with np.load(path, allow_pickle=False) as data:
        kp, conf, gt = data["kp_norm"], data["conf"], data["pose_cam"].astype(np.float64)
    if ctx.dry_run:
        kp, conf, gt = kp[:64], conf[:64], gt[:64]
    weights = WEIGHTS_DIR / "lifter_default.pt"
    backends = ["torch-cpu"] + (
        ["onnxruntime-cpu-fp16"] if ctx.dry_run else ["tensorrt-fp16", "tensorrt-int8"]
    )
    if ctx.dry_run:
        backends.append("tensorrt-int8")  # asked for, so its reason is recorded
    rows, ref = [], None
    for backend in backends:
        try:
            lifter = make_lifter(ctx, backend, weights)
        except BackendUnavailable as exc:
            rows.append({"backend": backend, "skipped": str(exc)})
            continue
        errs = []
        for i in range(0, len(kp), 256):
            hyps = lifter.sample(kp[i : i + 256], conf[i : i + 256], ctx.k, seed=i)
            errs.append(metrics.mpjpe(hyps.mean(axis=1).astype(np.float64), gt[i : i + 256]))
        mpjpe = 1e3 * float(np.concatenate(errs).mean())
        ref = mpjpe if ref is None else ref
        rows.append({"backend": backend, "frames": len(kp), "k": ctx.k, "mpjpe_mm": mpjpe,
                     "cost_mm": mpjpe - ref})  # fmt: skip
    return rows


STEPS = {
    "parity": parity,
    "lifter": lifter_latency,
    "detector": detector_latency,
    "pipeline": pipeline_fps,
    "int8": int8_accuracy,
    "lifter_compiled": lifter_compiled,
}
