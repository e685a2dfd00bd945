"""Is the root spread of a person missing their lower body honest, without a ground prior?

Two measurements, printed as Markdown for BENCHMARKS.md ("Placement"):

1. ``mocap``: real mocap of the unseen test subjects (../shared/data, subjects 8, 13, 16,
   131) in front of a virtual 1280x720 camera (60 deg HFOV, 1.5 m high, 5 deg down, as
   ``placement_accuracy.py``) at 3 and 8 m, detector-like keypoint noise (std 0.016 of the
   person's height in pixels, 1 px floor: the default detector's, ``lifting/noise.py``), no
   ground prior; the same people whole and with joints dropped as a border cuts them
   (ankles; knees and ankles = waist-up; hips and pelvis too = chest-up; head; one side).
   Per pattern: RMS error of the root (x, y, z; z = depth), median reported spread
   (``root_std_m``) and the share of errors inside the 90 % interval (+-1.645 std; honest
   = about 0.90).
2. ``real``: pedestrians of the vtest clip (``demo/vtest_600_750.mp4``, every ``--step``-th
   frame, 768x576) and basketball1's standing man, found whole (both ankles seen, feet
   above the lower border), then the same image cut by its lower border just below their
   hips: the depth change against the two spreads combined. Without truth this is a
   consistency check (both estimates share the upper body, so it is optimistic), but a cut
   that moved people by more than their spread would show here.

    .venv/bin/python benchmarks/bench_truncated_placement.py [--frames 300] [--step 10]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.placement_accuracy import DATA, TEST_SUBJECTS, scenes  # noqa: E402
from hpe3d_ros.camera import CameraModel  # noqa: E402
from hpe3d_ros.skeleton import H36M_JOINT_NAMES  # noqa: E402

Z90 = 1.645


def joints(*names: str) -> list[int]:
    return [H36M_JOINT_NAMES.index(n) for n in names]


LEGS = joints("left_knee", "left_ankle", "right_knee", "right_ankle")
PATTERNS: dict[str, list[int]] = {
    "whole": [],
    "no ankles": joints("left_ankle", "right_ankle"),
    "waist-up (no knees, ankles)": LEGS,
    "chest-up (no hips, pelvis, legs)": LEGS + joints("left_hip", "right_hip", "pelvis"),
    "head missing": joints("head_top", "neck_nose"),
    "one side (left arm and leg)": [
        i for i, n in enumerate(H36M_JOINT_NAMES) if n.startswith("left_")
    ],
}


def mocap_people(
    path: Path, frames: int, distance: float, noise_fraction: float = 0.016, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, CameraModel]:
    """(truth (N, 17, 3) m in the optical frame, noisy pixels (N, 17, 2), the camera) for
    ``frames`` test-split mocap people at ``distance`` m (see the module docstring)."""
    from training.mocap import load_all_mocap

    d = load_all_mocap(path, None)  # subjects 16 and 131 get their dropped thorax bone back
    test = np.isin(d["subject"], TEST_SUBJECTS)
    rng = np.random.default_rng(seed)
    poses = d["poses"][test][rng.choice(test.sum(), frames, replace=False)].astype(np.float64)
    cam = CameraModel.from_fov(1280, 720, 60.0)
    truth = scenes(poses, distance, 1.5, math.radians(5.0), rng)
    px = cam.project(truth)
    height_px = (px[..., 1].max(1) - px[..., 1].min(1))[:, None, None]
    px = px + rng.normal(size=px.shape) * np.hypot(noise_fraction * height_px, 1.0)
    return truth, px, cam


def bench_mocap(frames: int, noise_fraction: float) -> None:
    from hpe3d_ros.lifting import load_lifter
    from hpe3d_ros.pipeline import Pipeline, PipelineConfig

    pipe = Pipeline(None, load_lifter(), PipelineConfig(num_hypotheses=50))
    print(f"mocap: {frames} test-split frames, K=50, keypoint noise {noise_fraction} x height "
          "(1 px floor), no ground prior\n")  # fmt: skip
    print("| distance | joints seen | people | RMS error x / y / z (m) | median spread x / y / z "
          "(m) | inside the 90 % interval x / y / z |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for n, dist in enumerate((3.0, 8.0)):
        gt, px, cam = mocap_people(DATA, frames, dist, noise_fraction, seed=n)
        for name, missing in PATTERNS.items():
            conf = np.where(cam.in_image(px), 0.9, 0.0)
            conf[:, missing] = 0.0
            out = pipe.lift_keypoints(px, conf, cam, seed=1)
            ok = out.lifted
            err = out.root_m[ok] - gt[ok, 0]
            std = out.root_std_m[ok]
            rms = np.sqrt(np.mean(err**2, axis=0))
            inside = np.mean(np.abs(err) <= Z90 * std, axis=0)
            print(f"| {dist:.0f} m | {name} | {ok.sum()} | {_xyz(rms)} | "
                  f"{_xyz(np.median(std, axis=0), 3)} | {_xyz(inside)} |")  # fmt: skip


def bench_real(step: int) -> None:
    import cv2

    from hpe3d_ros.build import build_pipeline
    from hpe3d_ros.config import load_config
    from hpe3d_ros.detection.nms import box_overlap

    pipe = build_pipeline(load_config(None))  # shipped detector and lifter, no ground prior
    cap = cv2.VideoCapture(str(REPO / "demo" / "vtest_600_750.mp4"))
    images, i = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % step == 0:
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        i += 1
    basketball = cv2.imread(str(REPO / "test" / "data" / "eval" / "basketball1.jpg"))
    images.append(cv2.cvtColor(basketball, cv2.COLOR_BGR2RGB))
    shifts, spreads, legs_unseen = [], [], []
    for n, image in enumerate(images):
        h, w = image.shape[:2]
        k = CameraModel.from_fov(w, h, 60.0).K
        pipe.reset()
        for p in pipe.process(image, CameraModel(w, h, k), stamp_ns=n).people:
            kp, conf, box = p.keypoints_px, p.keypoint_conf, p.bbox_px
            if (conf[joints("left_ankle", "right_ankle")] <= 0.3).any() or box[3] > h - 5:
                continue  # feet not both seen, or the person already touches the border
            if box[3] - box[1] < 60 or not np.isfinite(p.root_m).all():
                continue
            hip = np.nanmean(kp[joints("left_hip", "right_hip"), 1])
            knee = np.nanmean(kp[joints("left_knee", "right_knee"), 1])
            rows = round(hip + 0.15 * (knee - hip))  # the border just below the hips
            pipe.reset()
            cut = pipe.process(
                np.ascontiguousarray(image[:rows]), CameraModel(w, rows, k), stamp_ns=n
            ).people
            top = (box[0], box[1], box[2], min(box[3], rows))
            q = max(cut, key=lambda c: box_overlap(tuple(c.bbox_px), top)[0], default=None)
            if q is None or box_overlap(tuple(q.bbox_px), top)[0] < 0.5:
                continue
            if not np.isfinite(q.root_m).all():
                continue
            shifts.append((q.root_m[2] - p.root_m[2]) / np.hypot(q.root_std_m[2], p.root_std_m[2]))
            spreads.append((p.root_std_m[2] / p.root_m[2], q.root_std_m[2] / q.root_m[2]))
            legs_unseen.append(int((q.keypoint_conf[LEGS] == 0).sum()))
    s, r = np.abs(np.array(shifts)), np.array(spreads)
    print(f"\nreal: {len(s)} people found whole and cut below the hips ({len(images)} frames)\n")
    print(
        "| depth spread / depth, whole | cut below the hips | depth change / combined spread: "
        "median | 90th pct | share > 1.645 | knees and ankles marked unseen after the cut |"
    )
    print("|---|---|---|---|---|---|")
    print(f"| {np.median(r[:, 0]):.3f} | {np.median(r[:, 1]):.3f} | {np.median(s):.2f} | "
          f"{np.percentile(s, 90):.2f} | {np.mean(s > Z90):.2f} | "
          f"{np.mean(np.array(legs_unseen) == 4):.2f} of people |")  # fmt: skip


def _xyz(v: np.ndarray, digits: int = 2) -> str:
    return " / ".join(f"{x:.{digits}f}" for x in v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=("mocap", "real"), default=None)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--noise", type=float, default=0.016, help="keypoint noise / height")
    ap.add_argument("--step", type=int, default=10, help="every n-th frame of the clip")
    args = ap.parse_args()
    if args.only in (None, "mocap"):
        if not DATA.exists():
            print(f"needs {DATA} (shared mocap, developers and CI only)")
            return 1
        bench_mocap(args.frames, args.noise)
    if args.only in (None, "real"):
        bench_real(args.step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
