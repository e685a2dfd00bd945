"""Full pipeline frames/s at 640x480: ``python benchmarks/bench_pipeline.py``.

Detector (MoveNet MultiPose, the shipped default: a 192 px whole-image pass + a fine pass for
64 px people; ``--min-person-px``, ``--coarse-size``, ``--tiles``, ``--input-size`` for
others) -> tracker -> lifter (K = 50 by default, the node's default) -> placement, on the
150-frame vtest clip (``demo/vtest_600_750.mp4``, about 7 pedestrians a frame) resized to
640x480, through :meth:`Pipeline.process`, one frame at a time (what the node does). Reports
frames/s and the per-stage median from ``FrameResult.timings_ms``; ``--json`` writes them too.

    .venv/bin/python benchmarks/bench_pipeline.py --lifter-backend auto --frames 60
    python benchmarks/bench_pipeline.py --lifter-backend tensorrt --detector-backend tensorrt
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_backends import machine  # noqa: E402
from hpe3d_ros.backends import load_backend_lifter  # noqa: E402
from hpe3d_ros.backends.detector import (  # noqa: E402
    DETECTOR_BACKENDS,
    active_backend,
    session_opener,
)
from hpe3d_ros.camera import CameraModel  # noqa: E402
from hpe3d_ros.detection import load_detector  # noqa: E402
from hpe3d_ros.detection.tracking import Tracker  # noqa: E402
from hpe3d_ros.pipeline import Pipeline, PipelineConfig  # noqa: E402


def read_frames(path: Path, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(cv2.resize(bgr, size), cv2.COLOR_BGR2RGB))
    if not frames:
        raise FileNotFoundError(f"no frames read from {path}")
    return frames


def run(args) -> dict:
    tiles = tuple(int(v) for v in args.tiles.split("x"))
    detector = load_detector(
        threads=args.threads,
        input_size=args.input_size,
        tiles=tiles,
        coarse_size=args.coarse_size,
        min_person_px=args.min_person_px,
        opener=session_opener(args.detector_backend, args.threads),
    )
    lifter = load_backend_lifter(
        backend=args.lifter_backend, device=args.device, threads=args.threads
    )
    pipeline = Pipeline(
        detector,
        lifter,
        PipelineConfig(num_hypotheses=args.k),
        tracker_factory=Tracker,
    )
    w, h = args.size
    frames = read_frames(args.video, args.frames, (w, h))
    camera = CameraModel.from_fov(w, h, 60.0)
    for i in range(min(3, len(frames))):  # warm-up (first calls allocate, engines load)
        pipeline.process(frames[i], camera, stamp_ns=i)
    pipeline.reset()
    stages: dict[str, list[float]] = {}
    people = []
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i, frame in enumerate(frames):
        result = pipeline.process(frame, camera, stamp_ns=i * 100_000_000)
        people.append(len(result.people))
        for key, ms in result.timings_ms.items():
            stages.setdefault(key, []).append(ms)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "machine": machine(),
        "lifter_backend": lifter.backend,
        "detector_backend": active_backend(detector),
        "detector_backend_asked": args.detector_backend,
        "tiling": f"{args.tiles} x {args.input_size} px, coarse {args.coarse_size}, "
        f"min person {args.min_person_px} px",
        "frames": len(frames),
        "size": f"{w}x{h}",
        "k": args.k,
        "people_per_frame": float(np.mean(people)),
        "frames_per_s": len(frames) / wall,
        "cpu_ms_per_frame": 1e3 * cpu / len(frames),
        "stage_median_ms": {k: statistics.median(v) for k, v in stages.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifter-backend", default="auto")
    parser.add_argument("--detector-backend", default="onnxruntime-cpu", choices=DETECTOR_BACKENDS)
    parser.add_argument("--device", default="cpu", help="lifter.device for torch/onnxruntime")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiles", default="0x0", help="fine tiles, cols x rows; 0x0 = planned")
    parser.add_argument("--coarse-size", type=int, default=192, help="coarse pass px; 0 = off")
    parser.add_argument("--min-person-px", type=float, default=64.0, help="smallest person px")
    parser.add_argument("--input-size", type=int, default=512, help="detector px per tile")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", type=lambda s: tuple(map(int, s.split("x"))), default=(640, 480))
    parser.add_argument("--video", type=Path, default=ROOT / "demo" / "vtest_600_750.mp4")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    r = run(args)
    st = r["stage_median_ms"]
    sys.stdout.write(
        f"{r['machine']}\n\n| lifter | detector | tiling | image | K | people/frame | frames/s "
        "| CPU ms/frame | detect ms | track ms | lift+place ms |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {r['lifter_backend']} | {r['detector_backend']} | {r['tiling']} | {r['size']} "
        f"| {r['k']} "
        f"| {r['people_per_frame']:.1f} | {r['frames_per_s']:.2f} | {r['cpu_ms_per_frame']:.0f} "
        f"| {st['detect']:.1f} | {st['track']:.2f} | {st['lift_and_place']:.1f} |\n"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
