"""Where a lifter's motion error comes from: delay or damped motion? (issue 17 diagnostic)

``python -m training.motion_probe --weights hpe3d_ros/weights/lifter_default.pt --rate 10Hz``

On the views of :mod:`training.evaluate_temporal` (one distance cell, every ``--stride``-th
sequence), the mean of K poses of each mode is compared with

- the truth ``L`` mocap frames (30 Hz) *earlier*: a lifter that follows the person late has
  its smallest MPJPE and MPJVE at some ``L`` > 0;
- ``a`` times the true motion (MPJVE against ``a`` x the true frame-to-frame motion): a
  lifter whose poses move less than the person (damped) has its smallest MPJVE at ``a`` < 1.

What remains at the best ``L`` and ``a`` is motion uncorrelated with the person's: jitter and
slowly wandering error.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hpe3d_ros.lifting import load_lifter
from training.conditions import DISTANCES_M, EVAL_CAMERA
from training.evaluate_temporal import RATES, observe
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices
from training.sequence_views import sequence_views
from training.temporal_data import MOCAP_HZ, sequence_runs

LAGS = tuple(range(7))  # mocap frames
GAINS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def delay_and_gain(mean, gt, idx, ok, dt_s, lags=LAGS, gains=GAINS) -> dict:
    """Sums over one track's observed frames ``idx`` (mocap rows, ascending) of the mean pose
    ``mean`` (T, 17, 3) against the mocap truth ``gt`` (N, 17, 3): MPJPE and MPJVE against
    the truth ``L`` rows earlier (frames with ``idx >= max(lags)`` and ``ok``), MPJVE against
    ``a`` x the true motion; metres and m/s, joints but the root."""
    ok = ok & (idx >= max(lags))
    pair = ok[1:] & ok[:-1]

    def joint_mean(d):
        return np.linalg.norm(d, axis=-1)[:, 1:].mean(-1)

    dm = np.diff(mean, axis=0)
    out = {"n": float(ok.sum()), "n_pair": float(pair.sum())}
    out["mpjpe"] = [joint_mean(mean - gt[idx - L])[ok].sum() for L in lags]
    out["mpjve"] = [joint_mean(dm - np.diff(gt[idx - L], axis=0))[pair].sum() / dt_s for L in lags]
    dg = np.diff(gt[idx], axis=0)
    out["mpjve_gain"] = [joint_mean(dm - a * dg)[pair].sum() / dt_s for a in gains]
    return out


def probe(lifter, split="val", cell=1, rate="10Hz", k=50, stride=3, seed=2026, noise_px=5.0):
    """Per mode, the means (mm, mm/s) of :func:`delay_and_gain` over the views."""
    m = load_all_mocap(str(DEFAULT_DATA), str(ORIG_DATA))
    runs = sequence_runs(m["sequence"], m["subject"], split_indices(m["subject"], split, "v2"))
    rng = np.random.default_rng(seed + cell)
    views = sequence_views(m["poses"], runs[::stride], DISTANCES_M[cell], noise_px, rng)
    step, noise_std = RATES[rate], noise_px / EVAL_CAMERA.fx
    report = {}
    for mode in ("single", "temporal"):
        if mode == "temporal" and not hasattr(lifter, "sample_sequence"):
            continue
        total: dict = {}
        for ti, (kp, conf, gt) in enumerate(views):
            idx, hyps, ok = observe(lifter, mode, kp, conf, step, k, seed + ti, noise_std)
            f = delay_and_gain(hyps.mean(1).astype(np.float64), gt, idx, ok, step / MOCAP_HZ)
            for key, v in f.items():
                total[key] = np.asarray(total.get(key, 0.0)) + np.asarray(v)
        n, p = max(total["n"], 1.0), max(total["n_pair"], 1.0)
        report[mode] = {
            "frames": int(total["n"]),
            "mpjpe_by_lag": (1000 * total["mpjpe"] / n).tolist(),
            "mpjve_by_lag": (1000 * total["mpjve"] / p).tolist(),
            "mpjve_by_gain": (1000 * total["mpjve_gain"] / p).tolist(),
        }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="lifter checkpoint (default: shipped)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--cell", type=int, default=1, help="index of DISTANCES_M (1: 8-15 m)")
    parser.add_argument("--rate", default="10Hz", choices=sorted(RATES))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--stride", type=int, default=3, help="every n-th sequence")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = probe(
        load_lifter(args.weights), args.split, args.cell, args.rate, args.k, args.stride
    )
    lo, hi = DISTANCES_M[args.cell]
    print(f"{args.split}, {lo:g}-{hi:g} m, {args.rate}, 5 px, K={args.k}")
    for mode, r in report.items():
        print(f"{mode} ({r['frames']} frames)")
        for name, keys, vals in (
            ("MPJPE (mm) vs truth L frames earlier", LAGS, r["mpjpe_by_lag"]),
            ("MPJVE (mm/s) vs truth L frames earlier", LAGS, r["mpjve_by_lag"]),
            ("MPJVE (mm/s) vs a x true motion", GAINS, r["mpjve_by_gain"]),
        ):
            print(
                f"  {name}: "
                + "  ".join(f"{kk}: {v:.1f}" for kk, v in zip(keys, vals, strict=True))
            )


if __name__ == "__main__":
    main()
