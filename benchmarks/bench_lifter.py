"""Lifter latency: ``python benchmarks/bench_lifter.py [--weights PATH] [--threads 2]``.

Times the whole public call (``Lifter.sample``: input normalisation, 2D encoder once per
person, K hypotheses through the light decoder, back to the camera frame) for a few
(people, K) sizes, and for temporal checkpoints (issue 17) the temporal model on tracks
with a full window of history and prints a markdown table of the median and p90 over repeats.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.noise import detector_noise_std


def bench(lifter, n: int, k: int, repeats: int, noise: bool = False) -> tuple[float, float]:
    """Median and p90 ms of ``sample`` for n people x k hypotheses (``noise``: pass the
    2D noise level, as the pipeline does for noise-aware lifters)."""
    rng = np.random.default_rng(0)
    kp = rng.uniform(-0.3, 0.3, size=(n, 1, 2)) + rng.normal(0, 0.05, size=(n, 17, 2))
    conf = rng.uniform(0.3, 1.0, size=(n, 17))
    std = detector_noise_std(kp, conf, focal_px=1000.0) if noise else None
    for _ in range(3):
        lifter.sample(kp, conf, k, seed=0, noise_std=std)
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        lifter.sample(kp, conf, k, seed=i, noise_std=std)
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times)), float(np.percentile(times, 90))


def bench_temporal(lifter, n: int, k: int, repeats: int) -> tuple[float, float]:
    """Median and p90 ms of the temporal model (issue 17) for n tracks x k hypotheses per
    frame in the pipeline's steady state: every track has a full window of 30 Hz history
    with the noise level, one new frame arrives per call and the model remembers the codes
    of the frames it has seen (``temporal.sample_tracks`` with track keys: resampling,
    features, one encoder pass per track, the temporal convolutions, the decoder)."""
    from hpe3d_ros.lifting.temporal_runtime import TrackInput

    rng = np.random.default_rng(0)
    w = lifter.temporal.window
    total = w + repeats + 3
    frames = []
    for _ in range(n):
        kp = rng.uniform(-0.3, 0.3, size=(1, 1, 2)) + rng.normal(0, 0.05, size=(total, 17, 2))
        conf = rng.uniform(0.3, 1.0, size=(total, 17))
        frames.append((kp, conf, detector_noise_std(kp, conf, focal_px=1000.0)))
    seeds = list(range(n))
    times = []
    for i in range(3 + repeats):
        end = w + i
        tracks = [
            TrackInput(
                np.arange(end - w, end) / 30.0,
                kp[end - w : end],
                c[end - w : end],
                s[end - w : end],
                key=j,
            )
            for j, (kp, c, s) in enumerate(frames)
        ]
        t0 = time.perf_counter()
        lifter.temporal.sample_tracks(tracks, k, seeds)
        if i >= 3:  # the first calls fill the model's memory of codes
            times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times)), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", default=[None])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        "\n| weights | arch | noise level given | people | K | median ms | p90 ms |\n"
        "|---|---|---|---|---|---|---|"
    )
    for w in args.weights:
        lifter = load_lifter(w)
        name = "default" if w is None else str(w).rsplit("/", 1)[-1]
        for noise in (False, True) if getattr(lifter, "noise_aware", False) else (False,):
            for n, k in [(1, 200), (10, 200), (10, 50), (1, 1)]:
                med, p90 = bench(lifter, n, k, args.repeats, noise)
                given = "yes" if noise else "no"
                print(f"| {name} | {lifter.arch} | {given} | {n} | {k} | {med:.1f} | {p90:.1f} |")
        if getattr(lifter, "temporal", None) is not None:  # tracks through the temporal model
            for n, k in [(1, 200), (10, 200), (10, 50), (1, 1)]:
                med, p90 = bench_temporal(lifter, n, k, args.repeats)
                arch = f"temporal, {lifter.window} frames"
                print(f"| {name} | {arch} | yes | {n} | {k} | {med:.1f} | {p90:.1f} |")


if __name__ == "__main__":
    main()
