"""How well the pipeline places people (root translation) at 5 / 10 / 20 m.

Real mocap of the unseen test subjects (../shared/data, subjects 8, 13, 16, 131) is put in
front of a virtual vehicle camera (1280x720, 60 deg HFOV, 1.5 m high, pitched 5 deg down),
random heading, lateral offset within +-2 m, feet on the ground. H36M-17 joints are projected,
detector-like noise is added (Gaussian, sigma px), and the pipeline's 2D->3D half
(`Pipeline.lift_keypoints`: the shipped lifter + least-squares placement) places each person,
without the ground prior, with the prior as it was until commit 2683ee5 (the lower ankle
joint pinned to the ground plane), as it is (the ankle ``placement.ankle_height_m``,
0.10 m, above it), and with the ground sizing the body (``placement.size_log_std``).
The ground is the capture's own floor, so a standing ankle is where it really is.

    .venv/bin/python benchmarks/placement_accuracy.py [--frames 300] [--noise-px 2] \
        [--subjects 8 13 16 131] [--ground-weight 10] [--pitch-error-deg 0.5] [--body-scale 0.7] \
        [--size-log-std 0.1 0.2]

``--track-seconds T``: each scene is a track instead, T seconds of one mocap sequence at
10 Hz walking from the scene's spot (one heading per track), lifted with its track id (so the
temporal lifter and the per-track body size take part); the figures are the tracks' last
frames.

Besides the root: the median error of the absolute mean pose's joints (camera frame), the
slope of the predicted bone-chain stature (mean of K) regressed on the true one, and the RMS
of log(predicted / true stature).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hpe3d_ros.camera import CameraModel  # noqa: E402
from hpe3d_ros.lifting import load_lifter  # noqa: E402
from hpe3d_ros.pipeline import Pipeline, PipelineConfig  # noqa: E402
from hpe3d_ros.placement import ANKLE_HEIGHT_M  # noqa: E402
from training.evaluate_cells import stature  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "cmu_h36m17_30fps.npz"
TEST_SUBJECTS = (8, 13, 16, 131)


def to_optical(p_level: np.ndarray, pitch: float) -> np.ndarray:
    """Level camera frame (x fwd, y left, z up, origin at the camera) -> pitched optical."""
    f = np.array([math.cos(pitch), 0.0, -math.sin(pitch)])
    u = np.array([math.sin(pitch), 0.0, math.cos(pitch)])
    x, y, z = p_level @ f, p_level[..., 1], p_level @ u
    return np.stack([-y, -z, x], axis=-1)


def headings(n: int, rng) -> np.ndarray:
    """(n, 3, 3) rotations about the vertical by random headings."""
    yaw = rng.uniform(0, 2 * math.pi, n)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1
    return rot


def scenes(poses: np.ndarray, distance: float, height: float, pitch: float, rng) -> np.ndarray:
    """(N, 17, 3) world poses (Z up) -> optical-frame poses at ``distance`` m, feet on ground."""
    n = len(poses)
    rel = poses - poses[:, :1]
    rot = headings(n, rng)
    rel = np.einsum("nij,nkj->nki", rot, rel)
    # the capture's floor (z = 0) is the ground: feet on it, so a standing ankle is ~0.1 m up
    root = np.stack([np.full(n, distance), rng.uniform(-2, 2, n), poses[:, 0, 2] - height], -1)
    return to_optical(rel + root[:, None], pitch)


def track_scenes(seqs: np.ndarray, distance: float, height: float, pitch: float, rng):
    """(N, T, 17, 3) world sequences (Z up) -> (T, N, 17, 3) optical-frame poses: each
    track starts ``distance`` m ahead and walks on from there (one heading per track)."""
    n = len(seqs)
    start = seqs[:, :1, :1].copy()
    start[..., 2] = 0.0  # keep heights: the floor stays the ground
    rel = seqs - start
    rot = headings(n, rng)
    rel = np.einsum("nij,ntkj->ntki", rot, rel)
    where = np.stack([np.full(n, distance), rng.uniform(-2, 2, n), np.full(n, -height)], -1)
    return to_optical(rel + where[:, None, None], pitch).transpose(1, 0, 2, 3)


def pick_tracks(d: dict, chosen: np.ndarray, n: int, frames: int, step: int, rng) -> np.ndarray:
    """(n, frames, 17, 3): ``frames`` poses every ``step`` mocap frames of one sequence each."""
    span = (frames - 1) * step
    seq = d["sequence"][chosen]
    ok = [i for i in range(len(chosen) - span) if seq[i] == seq[i + span]
          and chosen[i + span] - chosen[i] == span]  # fmt: skip
    starts = rng.choice(ok, n, replace=False)
    return np.stack([d["poses"][chosen[i : i + span + 1 : step]] for i in starts]).astype(float)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--noise-px", type=float, default=2.0)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument(
        "--subjects",
        type=int,
        nargs="+",
        default=list(TEST_SUBJECTS),
        help="mocap subjects (default: the unseen test subjects)",
    )
    ap.add_argument("--ground-weight", type=float, default=PipelineConfig.ground_weight)
    ap.add_argument(
        "--pitch-error-deg",
        type=float,
        default=0.0,
        help="the prior's camera pitch minus the true one (a vehicle pitching)",
    )
    ap.add_argument(
        "--body-scale",
        type=float,
        default=1.0,
        help="scale the mocap bodies about their floor (0.7: children of about 1.15 m)",
    )
    ap.add_argument(
        "--size-log-std",
        type=float,
        nargs="*",
        default=[PipelineConfig.size_log_std or 0.15],
        help="rows with the ground sizing the body, one per prior log-std",
    )
    ap.add_argument(
        "--track-seconds",
        type=float,
        default=0.0,
        help="scenes are tracks of this many seconds at 10 Hz (0: single frames)",
    )
    args = ap.parse_args()
    if not DATA.exists():
        print(f"needs {DATA} (shared mocap, developers and CI only)")
        return 1
    from training.mocap import load_all_mocap

    d = load_all_mocap(DATA, None)  # subjects 16 and 131 get their dropped thorax bone back
    test = np.isin(d["subject"], args.subjects)
    rng = np.random.default_rng(0)
    if args.track_seconds > 0:
        steps = max(2, round(args.track_seconds * 10) + 1)
        poses = pick_tracks(d, np.flatnonzero(test), args.frames, steps, 3, rng)
    else:
        poses = d["poses"][test][rng.choice(test.sum(), args.frames, replace=False)]
        poses = poses.astype(np.float64)
    poses *= args.body_scale  # about the capture's floor: feet stay on it
    cam = CameraModel.from_fov(1280, 720, 60.0, D=[-0.2, 0.05, 0, 0, 0])
    height, pitch_deg = 1.5, 5.0
    lifter = load_lifter()
    print(f"{args.frames} frames of subjects {args.subjects}, K={args.k}, 2D noise "
          f"{args.noise_px} px, ground weight {args.ground_weight:g}, camera "
          f"1280x720 60 deg HFOV, {height} m high, pitched {pitch_deg} deg down (the prior "
          f"told {pitch_deg + args.pitch_error_deg:g})\n")  # fmt: skip
    print(
        "| distance | ground prior | median root error | median depth error | 90th pct | "
        "depth inside its 90 % interval | joint error (absolute) | stature slope | "
        "size error (log RMS) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    w = args.ground_weight
    priors = [  # (name, ankle height, weight, size log-std): off, until 2683ee5, as it is
        ("off", None, 0.0, 0.0),
        ("ankle on the ground, weight 20 (before)", 0.0, 20.0, 0.0),
        (f"ankle {ANKLE_HEIGHT_M:.2f} m up, weight {w:g}", ANKLE_HEIGHT_M, w, 0.0),
    ] + [
        (f"ground sizes the body, size log-std {sd:g}", ANKLE_HEIGHT_M, w, sd)
        for sd in args.size_log_std
    ]
    for dist in (5.0, 10.0, 20.0):
        if args.track_seconds > 0:
            frames = track_scenes(poses, dist, height, math.radians(pitch_deg), rng)
        else:
            frames = scenes(poses, dist, height, math.radians(pitch_deg), rng)[None]
        px_all = [cam.project(f) + rng.normal(0, args.noise_px, (*f.shape[:2], 2)) for f in frames]
        gt = frames[-1]
        for name, ankle, weight, size_sd in priors:
            cfg = PipelineConfig(
                num_hypotheses=args.k,
                camera_height_m=height if ankle is not None else None,
                camera_pitch_deg=pitch_deg + args.pitch_error_deg,
                ankle_height_m=ankle or 0.0,
                ground_weight=weight,
                size_log_std=size_sd,
            )
            pipe = Pipeline(None, lifter, cfg)
            tracks = list(range(len(gt))) if args.track_seconds > 0 else None
            for i, px in enumerate(px_all):
                conf = np.where(cam.in_image(px), 0.9, 0.0)
                out = pipe.lift_keypoints(
                    px,
                    conf,
                    cam,
                    seed=1 + i,
                    tracks=tracks,
                    camera_name="cam",
                    stamp_ns=i * 100_000_000,
                )
            ok = out.lifted
            err = np.linalg.norm(out.root_m[ok] - gt[ok, 0], axis=-1)
            dz = np.abs(out.root_m[ok, 2] - gt[ok, 0, 2])
            inside = np.mean(dz <= 1.645 * out.root_std_m[ok, 2])
            mean = out.hypotheses_m[ok].mean(axis=1)
            joint = np.linalg.norm(mean - gt[ok], axis=-1).mean(-1)
            pred_h, true_h = stature(mean - mean[:, :1]), stature(gt[ok])
            slope = np.polyfit(true_h, pred_h, 1)[0]
            size_rms = np.sqrt(np.mean(np.log(pred_h / true_h) ** 2))
            print(f"| {dist:.0f} m | {name} | {np.median(err):.2f} m "
                  f"({100 * np.median(err) / dist:.1f} %) | {np.median(dz):.2f} m | "
                  f"{np.percentile(err, 90):.2f} m | {100 * inside:.0f} % | "
                  f"{1000 * np.median(joint):.0f} mm | {slope:.2f} | "
                  f"{size_rms:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
