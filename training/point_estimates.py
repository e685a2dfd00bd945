"""Which one pose should a probabilistic lifter report? Point estimates from its K hypotheses.

``python -m training.point_estimates --split val`` (validation: the question is a design
choice) prints, per evaluation cell (:mod:`training.conditions`), the MPJPE of

* ``mean``: the mean of the K hypotheses (what the node publishes and the targets count);
* ``median``: the per-joint geometric median of the K hypotheses (MPJPE is a sum of
  distances, whose minimiser is a median, not a mean);
* ``prior mean``: one decode at the latent prior's mean (zero noise: the network's "mode");
* ``gaussian``: the mean of K decoded from Gaussian instead of Student-t latent noise;
* ``narrow``: the mean of K at half the calibrated latent spread,

each also divided by the deterministic baseline's MPJPE on the same views.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hpe3d_ros import metrics
from hpe3d_ros.lifting import load_lifter
from training.conditions import CELLS, evaluation_views
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices

ESTIMATES = ("mean", "median", "prior mean", "gaussian", "narrow")


def geometric_median(points: np.ndarray, iterations: int = 50, eps: float = 1e-9) -> np.ndarray:
    """(N, K, J, D) -> (N, J, D): per (person, joint) the point that minimises the summed
    distance to the K points (Weiszfeld's iteration, started at the mean)."""
    m = points.mean(axis=1)
    for _ in range(iterations):
        w = 1.0 / np.maximum(np.linalg.norm(points - m[:, None], axis=-1, keepdims=True), eps)
        m = (points * w).sum(axis=1) / w.sum(axis=1)
    return m


def cell_estimates(lifter, batch, k: int, seed: int, chunk: int = 256) -> dict[str, np.ndarray]:
    """Per-person MPJPE (m) of every :data:`ESTIMATES` on one cell's views (level given)."""
    out: dict[str, list] = {name: [] for name in ESTIMATES}
    for i in range(0, len(batch.feats), chunk):
        sl = slice(i, i + chunk)
        inputs = (batch.kp_norm[sl], batch.conf[sl])
        level = batch.noise_std[sl]
        gt = batch.pose_cam[sl].astype(np.float64)
        n = len(gt)
        noise = lifter.noise(n, k, seed + i)

        def run(eps: np.ndarray, inputs=inputs, level=level) -> np.ndarray:
            return lifter.sample_with_noise(*inputs, eps, level).astype(np.float64)

        hyps = run(noise)
        gauss = np.random.default_rng(seed + i).standard_normal(noise.shape).astype(np.float32)
        poses = {
            "mean": hyps.mean(axis=1),
            "median": geometric_median(hyps),
            "prior mean": run(np.zeros((n, 1, lifter.latent_dim), np.float32))[:, 0],
            "gaussian": run(gauss).mean(axis=1),
            "narrow": run(0.5 * noise).mean(axis=1),
        }
        for name, pose in poses.items():
            out[name].append(metrics.mpjpe(pose, gt))
    return {name: np.concatenate(v) for name, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="hpe3d_ros/weights/lifter_default.pt")
    parser.add_argument("--baseline", default="hpe3d_ros/weights/lifter_baseline.pt")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--stride", type=int, default=1, help="every n-th frame")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    mocap = load_all_mocap(str(DEFAULT_DATA), str(ORIG_DATA))
    idx = split_indices(mocap["subject"], args.split, "v2")[:: args.stride]
    lifter, baseline = load_lifter(args.weights), load_lifter(args.baseline)
    if not lifter.latent_dim:
        parser.error(f"{args.weights} is deterministic: nothing to choose between")
    print(f"| cell | baseline | {' | '.join(ESTIMATES)} |")
    print("|---|---|" + "---|" * len(ESTIMATES))
    views = evaluation_views(mocap["poses"][idx], args.seed)  # those of training.evaluate_cells
    for cell in CELLS:
        batch = views[cell.name]
        base = baseline.sample(batch.kp_norm, batch.conf, 1, args.seed, batch.noise_std)[:, 0]
        ref = float(metrics.mpjpe(base, batch.pose_cam).mean())
        est = cell_estimates(lifter, batch, args.k, args.seed)
        vals = [f"{1000 * v.mean():.1f} ({v.mean() / ref:.3f})" for v in est.values()]
        print(f"| {cell.name} | {1000 * ref:.1f} | " + " | ".join(vals) + " |", flush=True)


if __name__ == "__main__":
    main()
