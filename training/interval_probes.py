"""What a person's interval width could be keyed on, and how the latent draw's spread helps.

Two probes of a shipped (evidence, shift) lifter on the validation subjects, for issue 14's
per-subject coverage and best-of-K misses (``training/MODEL_CARD.md``, "Stop 42"):

``signals``: per person, how far off its 90 % intervals are (the median over joints of the
error over the interval radius; > 1 = not covered) against signals a run-time calibration
could read without the truth: the candidates' reprojection misfit (the best, the weighted
mean and the median chi-square per degree of freedom; the K hypotheses' median) and the
distance between the hypotheses' mean and the deterministic baseline's pose (in mm, and over
the hypotheses' own spread), and how unlike the training poses the mean of K is (mean
distance to its 5 nearest training poses, all root-relative, turned to face one way and scaled
to unit size), and how far the 2D moved the latent draw's centre (the evidence shift's
length, ``shift``). Prints the rank correlation over all people and within each condition cell,
the coverage per quintile of each signal, and each subject's medians.

``latents``: the same evidence setting with the latent noise drawn i.i.d. (as shipped), from
a scrambled Sobol sequence or a Latin hypercube (the same Student-t marginals, per person a
new randomisation): does a more even spread of the K draws help best-of-K at equal coverage?

``width``: one interval width for everybody, as a calibration sets it: the K hypotheses'
latent draw scaled by each ``--factors`` value (the evidence candidates unchanged), and per
factor the coverage range over the 9 cells (noise level given) and each subject's coverage.
If the subjects' coverages lie further apart than the band is wide (0.85-0.95), no global
calibration puts every subject in it (``training/MODEL_CARD.md``, "Stop 46"). ``--split
test`` is a diagnosis of the target where it is defined; it chooses nothing.

``hedge``: what one body per person costs, priced as issue 14 would have to decide it. Each
hypothesis is scaled about the root by its own size factor ``exp(s z)`` (``z`` standard
normal, antithetic pairs; ``s`` each ``--size-std`` value), so the K hypotheses hedge the
body's size instead of sharing it; per value the mean of K and best-of-K over the equal
baseline, the cells' coverage, the worst joint and the bone-length spread across K that the
hedge costs (the issue bounds it at 5 mm).

    python -m training.interval_probes signals --stride 1
    python -m training.interval_probes latents --stride 3
    python -m training.interval_probes width --stride 3 --factors 0.9 1 1.1 1.2
    python -m training.interval_probes hedge --stride 3 --size-std 0 0.02 0.045
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import warnings

import numpy as np
import torch
from scipy import stats
from scipy.spatial import cKDTree
from scipy.stats import qmc

import hpe3d_ros.lifting.runtime as runtime
from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.evidence import latent_shift, reprojection_chi2
from hpe3d_ros.lifting.normalize import N_JOINTS, noise_std_from_features
from training.conditions import evaluation_views
from training.evaluate_cells import run_cell, summarise
from training.fit_evidence import grid_figures, row_line
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices

BASELINE = "hpe3d_ros/weights/lifter_baseline.pt"
SIGNALS = (
    "best_chi2",
    "weighted_chi2",
    "median_chi2",
    "hyp_chi2",
    "baseline_mm",
    "baseline_rel",
    "train_knn",
    "shift",
)


def canonical_pose(poses: np.ndarray, camera: bool) -> np.ndarray:
    """(N, 17, 3) -> (N, 51): root-relative, Z up (``camera``: from x right, y down, z
    forward), turned about the vertical so the hips point along x, mean joint distance 1."""
    p = np.asarray(poses, dtype=np.float64) - poses[:, :1]
    if camera:
        p = np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)
    hips = p[:, 1] - p[:, 4]
    a = -np.arctan2(hips[:, 1], hips[:, 0])[:, None]
    x = np.cos(a) * p[..., 0] - np.sin(a) * p[..., 1]
    y = np.sin(a) * p[..., 0] + np.cos(a) * p[..., 1]
    q = np.stack([x, y, p[..., 2]], axis=-1)
    q /= np.maximum(np.linalg.norm(q, axis=-1).mean(-1), 1e-9)[:, None, None]
    return q.reshape(len(q), -1)


def person_signals(
    lifter, baseline, batch, k: int, seed: int, train_poses: cKDTree, chunk: int = 128
) -> dict:
    """Per person of one cell (noise level given): the interval fit ``ratio`` (median over
    the 16 non-root joints of error / 90 % radius), coverage, and :data:`SIGNALS`. The
    hypotheses are the ones ``lifter.sample`` returns (same seed, same draw); ``train_poses``:
    the training poses, :func:`canonical_pose`."""
    ev = lifter.evidence
    out: dict[str, list] = {}
    for i in range(0, len(batch.feats), chunk):
        sl, s = slice(i, i + chunk), seed + i
        kp, conf, ns = batch.kp_norm[sl], batch.conf[sl], batch.noise_std[sl]
        draw = lifter.evidence_draw(kp, conf, k, s, ns)  # what lifter.sample returns
        feats, chi2, weights = draw["features"], draw["chi2"], draw["weights"]
        kpn = np.asarray(kp, np.float64).reshape(len(feats), N_JOINTS, 2)
        hyps = draw["hypotheses"].astype(np.float64)
        valid = ev.scored(feats[:, 2 * N_JOINTS : 3 * N_JOINTS] > 0.5)
        dof = np.maximum(2 * valid.sum(1) - 3, 1)
        hyp_chi2 = reprojection_chi2(hyps, kpn, valid, noise_std_from_features(feats))
        gt = batch.pose_cam[sl].astype(np.float64)
        centre = hyps.mean(1)
        radius = np.quantile(np.linalg.norm(hyps - centre[:, None], axis=-1), 0.9, axis=1)
        err = np.linalg.norm(gt - centre, axis=-1)
        spread = np.linalg.norm(hyps - centre[:, None], axis=-1)[:, :, 1:].mean((1, 2))
        base = baseline.sample(kp, conf, 1, s, noise_std=ns)[:, 0].astype(np.float64)
        apart = np.linalg.norm(base - centre, axis=-1)[:, 1:].mean(1)
        finite = np.where(np.isfinite(chi2), chi2, np.nan)
        cols = {
            "ratio": np.median(err[:, 1:] / np.maximum(radius[:, 1:], 1e-9), axis=1),
            "covered": (err[:, 1:] <= radius[:, 1:]).mean(1),
            "best_chi2": np.nanmin(finite, 1) / dof,
            "weighted_chi2": np.nansum(np.nan_to_num(finite) * weights, 1) / dof,
            "median_chi2": np.nanmedian(finite, 1) / dof,
            "hyp_chi2": np.median(hyp_chi2, 1) / dof,
            "baseline_mm": 1000 * apart,
            "baseline_rel": apart / np.maximum(spread, 1e-9),
            "train_knn": train_poses.query(canonical_pose(centre, camera=True), k=5)[0].mean(1),
            "shift": np.linalg.norm(latent_shift(weights, draw["noise"]), axis=1),
        }
        for name, v in cols.items():
            out.setdefault(name, []).append(v)
    return {name: np.concatenate(v) for name, v in out.items()}


def signal_table(res: dict, cells: np.ndarray, subjects: np.ndarray) -> list[str]:
    """Markdown lines: per signal its rank correlation with the interval fit (all people,
    mean within cells), the coverage per quintile, and each subject's median."""
    subs = np.unique(subjects)
    lines = [
        "| signal | rho (all) | rho (within cells) | cov90 by quintile (low -> high) | "
        + " | ".join(f"subject {s} median" for s in subs)
        + " |",
        "|---|---|---|---|" + "---|" * len(subs),
    ]
    log_ratio = np.log(np.maximum(res["ratio"], 1e-9))
    for name in SIGNALS:
        x = res[name]
        rho = stats.spearmanr(x, log_ratio, nan_policy="omit")[0]
        within = np.mean(
            [
                stats.spearmanr(x[cells == c], log_ratio[cells == c], nan_policy="omit")[0]
                for c in np.unique(cells)
            ]
        )
        edges = np.nanquantile(x, np.linspace(0, 1, 6))
        q = np.clip(np.searchsorted(edges, x) - 1, 0, 4)
        cov = " / ".join(f"{res['covered'][q == i].mean():.3f}" for i in range(5))
        med = " | ".join(f"{np.nanmedian(x[subjects == s]):.2f}" for s in subs)
        lines.append(f"| {name} | {rho:+.3f} | {within:+.3f} | {cov} | {med} |")
    cov = " | ".join(f"{res['covered'][subjects == s].mean():.3f}" for s in subs)
    lines.append(f"| (coverage) | | | {res['covered'].mean():.3f} | {cov} |")
    return lines


def sobol_noise(n, k, dim, seed=None, dof=math.inf, kind: str = "sobol") -> np.ndarray:
    """As :func:`hpe3d_ros.lifting.runtime.latent_noise` (antithetic pairs, capped
    Student-t), each person's pairs from its own randomised quasi-random point set."""
    rng = np.random.default_rng(seed)
    half = (k + 1) // 2
    e = np.empty((n, half, dim), np.float32)
    for i in range(n):
        engine = qmc.Sobol if kind == "sobol" else qmc.LatinHypercube
        with warnings.catch_warnings():  # Sobol's balance warning for a non-power-of-2 count
            warnings.simplefilter("ignore")
            u = np.clip(engine(d=dim + 1, seed=rng).random(half), 1e-7, 1 - 1e-7)
        z = stats.norm.ppf(u[:, :dim])
        if math.isfinite(dof):
            scale = np.sqrt(dof / stats.chi2.ppf(u[:, dim:], dof))
            z *= np.minimum(scale, runtime.MAX_LATENT_SCALE)
        e[i] = z
    out = np.empty((n, 2 * half, dim), np.float32)
    out[:, 0::2], out[:, 1::2] = e, -e
    return out[:, :k]


@contextlib.contextmanager
def widened(lifter, factor: float):
    """``lifter.sample`` with its K hypotheses' latent draw scaled by ``factor`` (a shift
    evidence lifter: the candidates' draw, seeded with a ``[seed, stream]`` list, is left
    as it is, so the centre they choose does not move)."""
    plain = lifter.noise

    def noise(n, k, seed=None):
        out = plain(n, k, seed)
        return out if isinstance(seed, list) else out * np.float32(factor)

    lifter.noise = noise
    try:
        yield lifter
    finally:
        del lifter.noise  # back to the class's method


def width_row(factor: float, cell_cov: list[float], covered: np.ndarray, subjects) -> str:
    """Markdown row: factor, the cells' coverage range, each subject's coverage (``covered``:
    per person of every cell, its fraction of joints inside the interval) and their spread."""
    per = {int(s): float(covered[subjects == s].mean()) for s in np.unique(subjects)}
    subs = " | ".join(f"{v:.3f}" for v in per.values())
    spread = max(per.values()) - min(per.values())
    return f"| {factor:g} | {min(cell_cov):.3f}-{max(cell_cov):.3f} | {subs} | {spread:.3f} |"


def width_table(
    lifter, views: dict, subjects, factors, k: int, seed: int, echo: bool = False
) -> list[str]:
    """Markdown lines: :func:`width_row` per factor (the hypotheses as ``run_cell`` scores
    them); ``echo``: each line printed as it is done."""
    subs = np.unique(subjects)
    lines = [
        "| width factor | cov90 per cell | " + " | ".join(f"subject {s}" for s in subs)
        + " | subject spread |",
        "|---|---|" + "---|" * len(subs) + "---|",
    ]  # fmt: skip
    if echo:
        print("\n".join(lines), flush=True)
    for f in factors:
        cell_cov, people = [], []
        with widened(lifter, f):
            for b in views.values():
                flags = run_cell(lifter, b, k, seed, True)["covered"][:, 1:]
                cell_cov.append(float(flags.mean()))
                people.append(flags.mean(1))
        lines.append(width_row(f, cell_cov, np.concatenate(people), np.tile(subjects, len(views))))
        if echo:
            print(lines[-1], flush=True)
    return lines


@contextlib.contextmanager
def size_hedged(lifter, size_std: float):
    """``lifter.sample`` with each of the K hypotheses scaled about the root by its own
    factor ``exp(size_std z)`` (antithetic standard normal ``z``, drawn from the call's seed):
    the hypotheses no longer share one body's size."""
    plain = lifter.sample

    def sample(kp, conf, k, seed=None, noise_std=None):
        hyps = plain(kp, conf, k, seed, noise_std=noise_std)
        z = np.random.default_rng(None if seed is None else [int(seed), 0x5A]).standard_normal(
            (len(hyps), (k + 1) // 2)
        )
        z = np.stack([z, -z], axis=2).reshape(len(hyps), -1)[:, :k]
        scale = np.exp(size_std * z).astype(hyps.dtype)[..., None, None]
        return hyps[:, :, :1] + scale * (hyps - hyps[:, :, :1])

    lifter.sample = sample
    try:
        yield lifter
    finally:
        del lifter.sample


def hedge_table(
    lifter, baseline, views: dict, subjects, stds, k: int, seed: int, echo: bool = False
) -> list[str]:
    """Markdown lines, one per size std (:func:`size_hedged`), each cell's figures as
    ``training.evaluate_cells`` summarises them; ``echo``: each line printed as it is done."""
    lines = [
        "| size std | mean of K / baseline | best-of-K / baseline | cov90 per cell | worst "
        "joint (cells' min) | bone spread across K, mm (median, worst bone) |",
        "|---|---|---|---|---|---|",
    ]
    if echo:
        print("\n".join(lines), flush=True)
    refs = [summarise(run_cell(baseline, b, 1, seed, True), subjects) for b in views.values()]
    for std in stds:
        with size_hedged(lifter, std):
            cells = [
                summarise(run_cell(lifter, b, k, seed, True), subjects) for b in views.values()
            ]
        ratio = [c["MPJPE"] / r["MPJPE"] for c, r in zip(cells, refs, strict=True)]
        best = [c["best-of-K"] / r["MPJPE"] for c, r in zip(cells, refs, strict=True)]
        cov = [c["cov90"] for c in cells]
        worst = min(c["cov90 min joint"] for c in cells)
        spread = max(c["bone spread mm"] for c in cells)
        lines.append(
            f"| {std:g} | {np.mean(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f}) | "
            f"{np.mean(best):.3f} ({min(best):.3f}-{max(best):.3f}) | "
            f"{min(cov):.3f}-{max(cov):.3f} | {worst:.2f} | {spread:.1f} |"
        )
        if echo:
            print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["signals", "latents", "width", "hedge"])
    ap.add_argument("--weights", help="an evidence (shift) lifter (default: shipped)")
    ap.add_argument("--stride", type=int, default=1, help="every n-th frame")
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--split", choices=["val", "test"], default="val", help="width and hedge")
    ap.add_argument("--factors", type=float, nargs="+", default=[0.9, 1.0, 1.1, 1.2])
    ap.add_argument("--size-std", type=float, nargs="+", default=[0.0, 0.02, 0.045])
    args = ap.parse_args(argv)
    if args.split != "val" and args.probe not in ("width", "hedge"):
        ap.error("only width and hedge read the test subjects (diagnoses; they choose nothing)")
    torch.set_num_threads(args.threads)
    try:
        lifter, baseline = load_lifter(args.weights), load_lifter(BASELINE)
    except FileNotFoundError as e:
        ap.error(str(e))
    if lifter.evidence is None or not lifter.evidence.shift:
        ap.error("needs a lifter with a shift evidence entry (the shipped one has one)")
    mocap = load_all_mocap(str(DEFAULT_DATA), str(ORIG_DATA))
    idx = split_indices(mocap["subject"], args.split, "v2")[:: args.stride]
    views = evaluation_views(mocap["poses"][idx], args.seed)
    if args.probe in ("width", "hedge"):
        print(f"{args.split}, noise level given, K={args.k}, frame stride {args.stride}")
        subjects = mocap["subject"][idx]
        if args.probe == "width":
            width_table(lifter, views, subjects, args.factors, args.k, args.seed, True)
        else:
            hedge_table(lifter, baseline, views, subjects, args.size_std, args.k, args.seed, True)
        return
    if args.probe == "signals":
        train = split_indices(mocap["subject"], "train", "v2")
        bank = cKDTree(canonical_pose(mocap["poses"][train], camera=False))
        parts = [
            person_signals(lifter, baseline, b, args.k, args.seed, bank) for b in views.values()
        ]
        res = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        cells = np.repeat(np.arange(len(parts)), [len(p["ratio"]) for p in parts])
        subjects = np.tile(mocap["subject"][idx], len(parts))
        print(f"validation, noise level given, {len(cells)} people, K={args.k}")
        print("\n".join(signal_table(res, cells, subjects)))
        return
    iid = runtime.latent_noise
    print("| latents | mean of K / baseline | best-of-K / baseline | cov90 range |")
    print("|---|---|---|---|")
    for kind in ("iid", "sobol", "lhs"):
        runtime.latent_noise = iid if kind == "iid" else functools.partial(sobol_noise, kind=kind)
        try:
            (row,) = grid_figures(lifter, baseline, list(views.values()), [lifter.evidence],
                                  args.k, args.seed, quiet=True)  # fmt: skip
        finally:
            runtime.latent_noise = iid
        print(f"| {kind} |" + row_line(row).split("|", 2)[2])


if __name__ == "__main__":
    main()
