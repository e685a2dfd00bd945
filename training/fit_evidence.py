"""Fit the evidence selection of a lifter on the validation subjects, and write it in.

:mod:`hpe3d_ros.lifting.evidence` keeps K of ``oversample x K`` candidates drawn from a latent
``spread`` times wider, by how well each reprojects onto the keypoints. The wider draw and the
selection are one calibration: too little spread and the kept set is over-confident, too much
and it is wide again. This runs every (oversample, spread) of a small grid on the evaluation
cells of :mod:`training.conditions` (validation subjects, exact / 2 px / 5 px x 3-25 m, the
noise level given and not given) and chooses, among the settings whose nominal 90 % coverage
lies in ``--band`` in every one of the 18 (cell, mode) pairs, the one with the lowest mean of
K relative to the deterministic baseline (averaged over the pairs). The test subjects are
never read. ``--shift`` fits the other mode (the calibrated draw moved to the candidates'
weighted mean latent, ``EvidenceConfig.shift``; ``--candidates``: a fixed count per person;
``--temporal-memory``: the bundled temporal model shifts too).

    python -m training.fit_evidence --weights hpe3d_ros/weights/lifter_default.pt \\
        --shift --candidates 256 --spread 1.45 --temporal-memory 0.3 --out runs/evidence/lifter.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path

import numpy as np
import torch

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.evidence import EvidenceConfig
from training.conditions import evaluation_views
from training.evaluate_cells import run_cell
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices

MODES = ("given", "unknown")


def grid_figures(
    lifter, baseline, views, settings, k: int, seed: int, quiet: bool = False
) -> list[dict]:
    """Per setting (None = off) the per-(cell, mode) mean-of-K ratio to the baseline, the
    best-of-K ratio and the 90 % coverage (each row printed as it is done unless ``quiet``)."""
    refs = [float(run_cell(baseline, b, 1, seed, True)["mpjpe"].mean()) for b in views]
    rows = []
    for setting in settings:
        lifter.evidence = setting
        ratio, best, cover = [], [], []
        for mode, (b, ref) in itertools.product(MODES, zip(views, refs, strict=True)):
            res = run_cell(lifter, b, k, seed, mode == "given")
            ratio.append(res["mpjpe"].mean() / ref)
            best.append(res["best"].mean() / ref)
            cover.append(res["covered"][:, 1:].mean())
        rows.append({"setting": setting, "ratio": ratio, "best": best, "coverage": cover})
        if not quiet:
            print(row_line(rows[-1]), flush=True)
    return rows


def row_line(row: dict) -> str:
    s = row["setting"]
    if s is None:
        name = "off"
    else:
        size = f"{s.candidates} candidates" if s.candidates else f"x{s.oversample}"
        name = f"{size} spread {s.spread:g}" + " shift" * s.shift
        if (s.ess_floor, s.tau0) != (EvidenceConfig.ess_floor, EvidenceConfig.tau0):
            name += f" ESS {s.ess_floor:g} tau0 {s.tau0:g}"
    r, b, c = (np.asarray(row[key]) for key in ("ratio", "best", "coverage"))
    return (
        f"| {name} | {r.mean():.3f} ({r.min():.3f}-{r.max():.3f}) | {b.mean():.3f} "
        f"({b.min():.3f}-{b.max():.3f}) | {c.min():.3f}-{c.max():.3f} |"
    )


def choose(rows: list[dict], band: tuple[float, float]) -> dict | None:
    """The in-band setting with the lowest mean ratio (None if no setting is in band)."""
    ok = [
        r
        for r in rows
        if r["setting"] is not None and all(band[0] <= c <= band[1] for c in r["coverage"])
    ]
    return min(ok, key=lambda r: float(np.mean(r["ratio"])), default=None)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="a noise-aware VAE lifter checkpoint")
    ap.add_argument("--baseline", default="hpe3d_ros/weights/lifter_baseline.pt")
    ap.add_argument("--out", help="write the checkpoint with the chosen setting here")
    ap.add_argument("--oversample", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--spread", type=float, nargs="+", default=[1.4, 1.5, 1.6])
    ap.add_argument(
        "--candidates",
        type=int,
        nargs="+",
        help="with --shift: these fixed candidate counts per person instead of --oversample",
    )
    ap.add_argument(
        "--ess-floor",
        type=float,
        nargs="+",
        default=[EvidenceConfig.ess_floor],
        help="the weights' effective sample size floor, a fraction of the candidates",
    )
    ap.add_argument(
        "--tau0",
        type=float,
        nargs="+",
        default=[EvidenceConfig.tau0],
        help="the chi-square's floor temperature",
    )
    ap.add_argument("--band", type=float, nargs=2, default=[0.85, 0.95])
    ap.add_argument(
        "--temporal-memory",
        type=float,
        metavar="SECONDS",
        help="with --shift: the checkpoint's temporal model gets the chosen setting too, each "
        "candidate's chi-square averaged over a track with this time constant (its figures: "
        "training.evaluate_temporal)",
    )
    ap.add_argument(
        "--shift", action="store_true", help="latent shift instead of keeping K candidates"
    )
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--stride", type=int, default=3, help="every n-th validation frame")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if (args.candidates or args.temporal_memory is not None) and not args.shift:
        ap.error("--candidates and --temporal-memory count only with --shift")
    torch.set_num_threads(args.threads)
    lifter, baseline = load_lifter(args.weights), load_lifter(args.baseline)
    if not (lifter.latent_dim and lifter.noise_aware):
        ap.error(f"{args.weights}: evidence selection needs a noise-aware VAE lifter")
    mocap = load_all_mocap(str(DEFAULT_DATA), str(ORIG_DATA))
    idx = split_indices(mocap["subject"], "val", "v2")[:: args.stride]
    views = list(evaluation_views(mocap["poses"][idx], args.seed).values())
    settings = [None] + [
        EvidenceConfig(o, s, ess_floor=e, tau0=t, shift=args.shift, candidates=c)
        for c, o, s, e, t in itertools.product(
            args.candidates or [0],
            [1] if args.candidates else args.oversample,
            args.spread,
            args.ess_floor,
            args.tau0,
        )
    ]
    print("| setting | mean of K / baseline | best-of-K / baseline | cov90 range |")
    print("|---|---|---|---|")
    rows = grid_figures(lifter, baseline, views, settings, args.k, args.seed)
    chosen = choose(rows, tuple(args.band))
    if chosen is None:
        raise SystemExit(f"no setting keeps every cell's coverage in {args.band}: none written")
    print(f"chosen: {row_line(chosen)}")
    if args.out:
        ck = torch.load(args.weights, map_location="cpu", weights_only=True)
        info = {
            "val_ratio_mean": float(np.mean(chosen["ratio"])),
            "val_coverage_range": [float(min(chosen["coverage"])), float(max(chosen["coverage"]))],
            "stride": args.stride,
            "band": list(args.band),
        }
        ck["evidence"] = {**chosen["setting"].to_entry(), "info": info}
        if args.temporal_memory is not None and "temporal" in ck:
            setting = dataclasses.replace(chosen["setting"], memory_s=args.temporal_memory)
            ck["temporal"] = {**ck["temporal"], "evidence": setting.to_entry()}
            print(f"the temporal model shifts too, chi-square memory {args.temporal_memory:g} s")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        torch.save(ck, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
