"""Evaluate lifters on the unseen test subjects and print markdown tables.

``python -m training.evaluate --weights hpe3d_ros/weights/lifter_baseline.pt
hpe3d_ros/weights/lifter_default.pt``

The test views are generated once per condition with a fixed seed: test-subject mocap
(bodies as captured, random yaw) through the same random virtual vehicle cameras and the
same detector-like 2D noise as training. Conditions: ``drop 0`` (only joints outside the
image are missing) and ``drop 0.3`` (also exactly 5 of 17 joints dropped per person). Every
lifter is run through the public API (:func:`hpe3d_ros.lifting.load_lifter`, ``sample``),
and scored with :mod:`hpe3d_ros.metrics`: MPJPE and P-MPJPE of the mean prediction (the
baseline's output, a VAE's mean of K), best-of-K, PCK3D@150 mm, and the per-joint coverage
of nominal 90 % intervals (root excluded: it is 0 by construction).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hpe3d_ros import metrics
from hpe3d_ros.lifting import load_lifter
from training.data import DEFAULT_DATA, AugmentConfig, generate, load_mocap, split_indices


def evaluate_lifter(lifter, batch, k: int, seed: int, chunk: int = 256) -> dict[str, np.ndarray]:
    """Per-person errors (metres) and per-person-joint coverage flags for one test batch."""
    out: dict[str, list] = {"mpjpe": [], "p_mpjpe": [], "best_of_k": [], "covered": [], "mean": []}
    k_eff = k if lifter.latent_dim else 1
    for i in range(0, len(batch.feats), chunk):
        sl = slice(i, i + chunk)
        hyps = lifter.sample(batch.kp_norm[sl], batch.conf[sl], k_eff, seed + i)
        gt = batch.pose_cam[sl].astype(np.float64)
        mean = hyps.mean(axis=1).astype(np.float64)
        out["mean"].append(mean)
        out["mpjpe"].append(metrics.mpjpe(mean, gt))
        out["p_mpjpe"].append(metrics.p_mpjpe(mean, gt))
        out["best_of_k"].append(metrics.best_of_k_mpjpe(hyps, gt))
        if lifter.latent_dim:  # per-person (J,) 0/1 flags, so subjects can be tabled
            out["covered"].append(
                np.stack([metrics.coverage(h, g, 0.9) for h, g in zip(hyps, gt, strict=True)])
            )
    res = {key: np.concatenate(v) for key, v in out.items() if v}
    return res


def summarise(res: dict, gt: np.ndarray) -> dict[str, float]:
    """Scalar figures in millimetres / fractions."""
    row = {
        "MPJPE": 1000 * res["mpjpe"].mean(),
        "P-MPJPE": 1000 * res["p_mpjpe"].mean(),
        "best-of-K": 1000 * res["best_of_k"].mean(),
        "PCK3D@150": metrics.pck3d(res["mean"], gt),
    }
    if "covered" in res:
        per_joint = res["covered"][:, 1:].mean(axis=0)
        row["cov90"] = float(per_joint.mean())
        row["cov90 min joint"] = float(per_joint.min())
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", required=True, help="lifter checkpoints")
    parser.add_argument("--names", nargs="+", help="labels for the table (default: file stem)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--split", default="test", choices=["test", "val"])
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--drop", type=float, nargs="+", default=[0.0, 0.3])
    parser.add_argument("--max-frames", type=int, default=0, help=">0: every n-th frame")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write all figures here")
    args = parser.parse_args(argv)
    if args.json:  # its folder now, not after the evaluation
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    names = args.names or [Path(w).stem for w in args.weights]
    lifters = [load_lifter(w) for w in args.weights]
    mocap = load_mocap(args.data)
    idx = split_indices(mocap["subject"], args.split)
    if args.max_frames:
        idx = idx[:: max(1, len(idx) // args.max_frames)]
    subjects = mocap["subject"][idx]
    report: dict = {"k": args.k, "seed": args.seed, "frames": len(idx), "conditions": {}}
    for drop in args.drop:
        rng = np.random.default_rng(args.seed)
        batch = generate(
            mocap["poses"][idx], AugmentConfig(), rng, augment_body=False, drop_frac=drop
        )
        gt = batch.pose_cam.astype(np.float64)
        cond: dict = {"overall": {}, "per_subject": {}}
        print(
            f"\n### {args.split.capitalize()} split ({len(idx)} frames), "
            f"{drop:.0%} dropped joints, K={args.k}\n"
        )
        header = [
            "model",
            "MPJPE",
            "P-MPJPE",
            "best-of-K",
            "PCK3D@150",
            "cov90",
            "cov90 min joint",
        ]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        per_subject = {}
        for name, lifter in zip(names, lifters, strict=True):
            res = evaluate_lifter(lifter, batch, args.k, args.seed)
            row = summarise(res, gt)
            cond["overall"][name] = row
            cells = [
                f"{row[h]:.1f}"
                if h in ("MPJPE", "P-MPJPE", "best-of-K")
                else (f"{row[h]:.3f}" if h in row else "n/a")
                for h in header[1:]
            ]
            print("| " + " | ".join([name, *cells]) + " |")
            per_subject[name] = {}
            for s in np.unique(subjects):
                m = subjects == s
                sub = {key: v[m] for key, v in res.items()}
                per_subject[name][int(s)] = summarise(sub, gt[m])
        cond["per_subject"] = per_subject
        print(f"\nPer subject ({drop:.0%} dropped): MPJPE / best-of-K mm, cov90\n")
        subs = [int(s) for s in np.unique(subjects)]
        print("| model | " + " | ".join(f"S{s} ({(subjects == s).sum()})" for s in subs) + " |")
        print("|---|" + "---|" * len(subs))
        for name in names:
            cells = []
            for s in subs:
                r = per_subject[name][s]
                cov = f", {r['cov90']:.2f}" if "cov90" in r else ""
                cells.append(f"{r['MPJPE']:.0f} / {r['best-of-K']:.0f}{cov}")
            print(f"| {name} | " + " | ".join(cells) + " |")
        report["conditions"][f"drop{drop:g}"] = cond
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
