"""Benchmark the 2D keypoint stage on real footage (OpenCV's vtest.avi, 768x576, 10 fps).

Measurements, printed as Markdown rows for BENCHMARKS.md ("2D detector"):

1. ``counts``: people found per configuration on the four test frames (test/data), next to
   the count by eye (6/7/4/8), and the median and minimum ms/frame over ``--repeats`` runs
   per frame (the minimum is the least disturbed by other jobs sharing the cores), and the
   median CPU time per frame (all threads of this process; steadier under contention).
2. ``tracking``: detector + Tracker over a clip; new ids started away from the image border
   after the first frame, per 100 frames. Without ground truth this is an upper bound on id
   switches (a person reappearing from behind the lamp post also starts an id).
3. ``flip``: keypoint self-consistency, a label-free proxy for keypoint precision: detect on
   each test frame and on its mirror image, mirror the second set back (x -> W - x, left <->
   right) and measure the distance between matching confident joints (score >= 0.3), in
   units of the person's box height.
4. One-Euro effect (part of ``tracking``) on tracked joints (score >= 0.3): jitter = mean
   |second difference| of a joint's position (px/frame^2), lag = mean |smoothed - raw| (px).
5. ``sizes``: detector work per frame from 640x480 to an 8000 x 8000 photo (the budget).
6. ``eval``: near and far, on the labelled set ``test/data/eval`` (people boxed by eye, from
   60 px pedestrians to people filling the frame and cut by its border): recall per person
   height bin and false people per frame per configuration (IoU >= 0.4, see
   :mod:`hpe3d_ros.detection.evaluation`), and detector frames/s on 640x480 frames.

Usage (2 cores; ~3 min for everything)::

    .venv/bin/python benchmarks/bench_detector.py --threads 2
    .venv/bin/python benchmarks/bench_detector.py --only tracking --video demo/vtest_600_750.mp4
    .venv/bin/python benchmarks/bench_detector.py --only eval
    .venv/bin/python benchmarks/bench_detector.py --only sizes
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from hpe3d_ros.detection import load_detector
from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.evaluation import BIN_NAMES, Score, load_labels, score_frame
from hpe3d_ros.detection.smoothing import KeypointSmoother
from hpe3d_ros.detection.tracking import Tracker
from hpe3d_ros.skeleton import COCO_FLIP

ROOT = Path(__file__).resolve().parents[1]
FRAMES = {
    "vtest_0040.jpg": 6,
    "vtest_0260.jpg": 7,
    "vtest_0480.jpg": 4,
    "vtest_0700.png": 8,
}
CONFIGS: dict[str, dict] = {
    "bottom_up 256 1x1": dict(mode="bottom_up", input_size=256, tiles=(1, 1), coarse_size=0),
    "bottom_up 512 1x1": dict(mode="bottom_up", input_size=512, tiles=(1, 1), coarse_size=0),
    "bottom_up 768 1x1": dict(mode="bottom_up", input_size=768, tiles=(1, 1), coarse_size=0),
    "bottom_up 1024 1x1": dict(mode="bottom_up", input_size=1024, tiles=(1, 1), coarse_size=0),
    "bottom_up 384 2x1": dict(mode="bottom_up", input_size=384, tiles=(2, 1), coarse_size=0),
    "bottom_up 512 2x1": dict(mode="bottom_up", tiles=(2, 1), coarse_size=0),
    "bottom_up shipped (coarse 192 + fine for 64 px)": dict(mode="bottom_up"),
    "bottom_up 512 2x2": dict(mode="bottom_up", input_size=512, tiles=(2, 2), coarse_size=0),
    "top_down thunder, 512 2x1": dict(
        mode="top_down", single_model="thunder", tiles=(2, 1), coarse_size=0
    ),
    "top_down lightning, 512 2x1": dict(
        mode="top_down", single_model="lightning", tiles=(2, 1), coarse_size=0
    ),
    "top_down thunder, 768 1x1": dict(
        mode="top_down", input_size=768, tiles=(1, 1), coarse_size=0
    ),
}


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def bench_counts(threads: int, repeats: int) -> None:
    images = {name: read_rgb(ROOT / "test" / "data" / name) for name in FRAMES}
    by_eye = "/".join(str(v) for v in FRAMES.values())
    sys.stdout.write(
        f"| configuration | people found (by eye {by_eye}) | wall ms / frame, median | min "
        "| CPU ms / frame, median |\n"
    )
    sys.stdout.write("|---|---|---|---|---|\n")
    for label, cfg in CONFIGS.items():
        det = load_detector(threads=threads, **cfg)
        counts, times, cpu = [], [], []
        for img in images.values():
            counts.append(len(det.detect(img)))  # also warms up
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                det.detect(img)
                times.append(1e3 * (time.perf_counter() - t0))
                cpu.append(1e3 * (time.process_time() - c0))
        row = (
            f"| {label} | {'/'.join(map(str, counts))} | {statistics.median(times):.0f} "
            f"| {min(times):.0f} | {statistics.median(cpu):.0f} |\n"
        )
        sys.stdout.write(row)
        sys.stdout.flush()


def centre(p: Person2D) -> np.ndarray:
    return np.array([(p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2])


def bench_flip(threads: int) -> None:
    images = [read_rgb(ROOT / "test" / "data" / name) for name in FRAMES]
    sys.stdout.write(
        "| configuration | flip disagreement / box height, median | mean | p90 | joints "
        "| people found in one orientation only |\n"
    )
    sys.stdout.write("|---|---|---|---|---|---|\n")
    for label in ("bottom_up shipped (coarse 192 + fine for 64 px)", "top_down thunder, 512 2x1",
                  "top_down lightning, 512 2x1"):  # fmt: skip
        det = load_detector(threads=threads, **CONFIGS[label])
        errs: list[float] = []
        unmatched = 0
        for img in images:
            w = img.shape[1]
            mirrored = det.detect(img[:, ::-1])
            if not mirrored:
                mirrored = [Person2D(np.zeros((17, 2)), np.zeros(17), (-1e9,) * 4, 0.0)]
            centres = np.array([[w - c[0], c[1]] for c in map(centre, mirrored)])
            for p in det.detect(img):
                gaps = np.linalg.norm(centres - centre(p), axis=1)
                height = p.box[3] - p.box[1]
                if gaps.min() > 0.5 * height:  # found in one orientation only
                    unmatched += 1
                    continue
                q = mirrored[int(np.argmin(gaps))]
                back = q.keypoints[COCO_FLIP].copy()
                back[:, 0] = w - back[:, 0]
                ok = (p.scores >= 0.3) & (q.scores[COCO_FLIP] >= 0.3)
                errs.extend(np.linalg.norm(back[ok] - p.keypoints[ok], axis=1) / height)
        sys.stdout.write(
            f"| {label} | {np.median(errs):.3f} | {np.mean(errs):.3f} "
            f"| {np.percentile(errs, 90):.3f} | {len(errs)} | {unmatched} |\n"
        )


def read_video(path: Path, start: int, stop: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while i < stop:
        ok, bgr = cap.read()
        if not ok:
            break
        if i >= start:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        i += 1
    return frames


def near_border(p: Person2D, w: int, h: int, margin: float = 30.0) -> bool:
    x0, y0, x1, y1 = p.box
    return x0 < margin or y0 < margin or x1 > w - margin or y1 > h - margin


def bench_tracking(video: Path, start: int, stop: int, threads: int, fps: float) -> None:
    frames = read_video(video, start, stop)
    h, w = frames[0].shape[:2]
    det, tracker, smoother = load_detector(threads=threads), Tracker(), KeypointSmoother()
    seen: set[int] = set()
    interior_births = 0
    raw_tracks: dict[int, dict[int, np.ndarray]] = {}
    smooth_tracks: dict[int, dict[int, np.ndarray]] = {}
    n_people = []
    t0 = time.perf_counter()
    for f, rgb in enumerate(frames):
        people = tracker.update(det.detect(rgb))
        smoothed = smoother.smooth(people, f / fps)
        n_people.append(len(people))
        for p, s in zip(people, smoothed, strict=True):
            if p.track_id not in seen:
                seen.add(p.track_id)
                interior_births += f > 0 and not near_border(p, w, h)
            kp_raw = np.where(p.scores[:, None] >= 0.3, p.keypoints, np.nan)
            kp_smooth = np.where(p.scores[:, None] >= 0.3, s.keypoints, np.nan)
            raw_tracks.setdefault(p.track_id, {})[f] = kp_raw
            smooth_tracks.setdefault(p.track_id, {})[f] = kp_smooth
    elapsed = time.perf_counter() - t0
    n = len(frames)
    sys.stdout.write(
        f"frames {start}-{start + n - 1} of {video.name}: {n} frames, "
        f"{1e3 * elapsed / n:.0f} ms/frame with tracking, people/frame mean "
        f"{np.mean(n_people):.2f}, ids {len(seen)}, new ids in the interior after frame 0: "
        f"{interior_births} ({100 * interior_births / n:.1f} per 100 frames)\n"
    )

    def jitter(tracks: dict[int, dict[int, np.ndarray]]) -> float:
        acc = []
        for frames_kp in tracks.values():
            for f in frames_kp:
                if f - 1 in frames_kp and f + 1 in frames_kp:
                    a = frames_kp[f + 1] - 2 * frames_kp[f] + frames_kp[f - 1]
                    acc.append(np.linalg.norm(a, axis=1))
        return float(np.nanmean(np.concatenate(acc)))

    lag = np.concatenate(
        [
            np.linalg.norm(smooth_tracks[t][f] - raw_tracks[t][f], axis=1)
            for t in raw_tracks
            for f in raw_tracks[t]
        ]
    )
    sys.stdout.write(
        f"One-Euro (min_cutoff 1 Hz, beta 0.05): jitter raw {jitter(raw_tracks):.2f} -> "
        f"smoothed {jitter(smooth_tracks):.2f} px/frame^2, lag mean {np.nanmean(lag):.2f} px\n"
    )


EVAL_CONFIGS: dict[str, dict] = {
    "**shipped: coarse 192 + fine for 64 px people**": dict(),
    "before: 2x1 tiles of 512, no coarse pass": dict(tiles=(2, 1), coarse_size=0),
    "whole image once, 512": dict(tiles=(1, 1), coarse_size=0),
    "coarse 256 + fine for 64 px": dict(coarse_size=256),
    "coarse 192 + fine for 48 px": dict(min_person_px=48),
    "coarse 192 + fine for 80 px": dict(min_person_px=80),
    "coarse 192 + fine for 100 px (fast)": dict(min_person_px=100),
    "top_down lightning, shipped scales": dict(mode="top_down", single_model="lightning"),
}
#: 640x480 frames for frames/s: the four vtest frames resized, and basketball1.
SPEED_FRAMES = [*FRAMES, "eval/basketball1.jpg"]


def bench_eval(threads: int, repeats: int) -> None:
    frames = load_labels(ROOT / "test" / "data" / "eval" / "labels.json")
    images = [read_rgb(f.path) for f in frames]
    speed = [cv2.resize(read_rgb(ROOT / "test" / "data" / n), (640, 480)) for n in SPEED_FRAMES]
    bins = " | ".join(f"recall {b}" for b in BIN_NAMES)
    sys.stdout.write(
        f"| configuration | {bins} | recall, less than half visible | false people / frame "
        "| 640x480 frames/s (wall, median) | CPU ms / frame |\n"
    )
    sys.stdout.write("|---" * (len(BIN_NAMES) + 5) + "|\n")
    for label, cfg in EVAL_CONFIGS.items():
        det = load_detector(threads=threads, **cfg)
        score = Score()
        for frame, img in zip(frames, images, strict=True):
            score_frame(score, det.detect(img), frame.people)
        times, cpu = [], []
        for img in speed:
            det.detect(img)
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                det.detect(img)
                times.append(time.perf_counter() - t0)
                cpu.append(1e3 * (time.process_time() - c0))
        cells = " | ".join(
            f"{score.recall(b):.2f} ({score.found[b]}/{score.total[b]})" for b in BIN_NAMES
        )
        sys.stdout.write(
            f"| {label} | {cells} | {score.partial_found}/{score.partial_total} "
            f"| {score.false_per_frame:.2f} ({score.false_people}/{score.frames}) "
            f"| {1 / statistics.median(times):.1f} | {statistics.median(cpu):.0f} |\n"
        )
        sys.stdout.flush()


#: Image sizes for ``sizes``: a camera's to a huge photo.
SIZES = [(640, 480), (1280, 720), (1920, 1080), (3840, 2160), (8000, 8000)]


def bench_sizes(threads: int) -> None:
    """Detector work per frame by image size: vtest frame 700 up-scaled, one frame after a
    warm-up; the plan, its budget units, the smallest person planned for, CPU s."""
    det = load_detector(threads=threads)
    img = read_rgb(ROOT / "test" / "data" / "vtest_0700.png")
    sys.stdout.write(
        "| image | plan (regions per pass) | units | smallest person planned | people "
        "| CPU s / frame | wall s |\n|---|---|---|---|---|---|---|\n"
    )
    for w, h in SIZES:
        frame = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        det.detect(frame)
        t0, c0 = time.perf_counter(), time.process_time()
        people = det.detect(frame)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        plan = ", ".join(f"{p.name} {len(p.regions)}" for p in det.plan(w, h))
        work = det.last_work
        sys.stdout.write(
            f"| {w}x{h} | {plan} | {work.used:.2f} | {work.smallest_person_px:.0f} px "
            f"| {len(people)} | {cpu:.2f} | {wall:.2f} |\n"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", choices=("counts", "flip", "tracking", "eval", "sizes"), default=None
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--video", type=Path, default=Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    )
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=10**9)
    parser.add_argument("--fps", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.only in (None, "counts"):
        bench_counts(args.threads, args.repeats)
    if args.only in (None, "flip"):
        bench_flip(args.threads)
    if args.only in (None, "tracking"):
        bench_tracking(args.video, args.start, args.stop, args.threads, args.fps)
    if args.only in (None, "eval"):
        bench_eval(args.threads, args.repeats)
    if args.only in (None, "sizes"):
        bench_sizes(args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
