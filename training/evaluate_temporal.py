"""Evaluate lifters on mocap *sequences* (issue 17 targets): accuracy, motion and flicker.

``python -m training.evaluate_temporal --weights runs/temporal_v1/lifter.pt --split val``

Views (:func:`training.sequence_views.sequence_views`): every sequence of the split's
subjects (``v2``) cut into 5 s segments (``--segment``), each one track seen by the
evaluation camera of :mod:`training.conditions` with ``--noise-px`` (5 px) of pixel noise,
``--views`` times; the camera at 30 Hz (every frame) or 10 Hz (every 3rd frame).

Modes: ``single`` = :meth:`Lifter.sample` frame by frame with a new seed each frame (the
pipeline's single-frame path); ``single_crn`` = the same with one seed per track (common
random numbers alone, a diagnostic); ``temporal`` = :meth:`TemporalLifter.sample_sequence`
(causal, the frames' stamps given). The noise level is given (the pipeline passes it).
``--flip-average`` (a diagnostic, not what the product runs) lifts every track a second time
mirrored (x negated, left and right swapped) and mirrors those hypotheses back: K/2 of each.

Figures over the observed frames (camera frame, root-relative, mm): MPJPE of the mean of K,
best-of-K, 90 % coverage (per joint, as :mod:`training.evaluate_cells`); MPJVE = mean joint
error of the mean pose's velocity (mm/s, consecutive observed frames), acceleration error
(mm/s^2, three consecutive observed frames); flicker = mean joint error of *each
hypothesis'* velocity (hypothesis k at t and t + 1 against the true motion, mm/s) and the
excess motion (mean speed of the hypotheses' joints minus the true speed, mm/s); bone
length change of the mean pose between frames (mm); the body: bone error = mean over the 16
bones of |the hypotheses' mean length - the true length| and size bias = the sum of those
differences (mm; negative: a body too small).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.skeleton import H36M_FLIP, mirror_h36m
from training.conditions import DISTANCES_M, EVAL_CAMERA
from training.evaluate_cells import covered_flags
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices
from training.sequence_views import sequence_views
from training.temporal_data import MOCAP_HZ, sequence_runs

RATES = {"30Hz": 1, "10Hz": 3}


class FlipAveraged:
    """A lifter that draws ``k - k // 2`` hypotheses from the input and ``k // 2`` from its
    mirror image, mirrored back (test-time flip augmentation, as VideoPose3D evaluates)."""

    def __init__(self, lifter) -> None:
        self.lifter = lifter
        if hasattr(lifter, "sample_sequence"):
            self.sample_sequence = self._sequence

    @staticmethod
    def _mirror(kp, conf, noise_std):
        ns = noise_std
        if ns is not None and np.ndim(ns) >= 1 and np.shape(ns)[-1] == 17:
            ns = np.asarray(ns)[..., H36M_FLIP]
        return mirror_h36m(kp), conf[:, H36M_FLIP], ns

    def _halves(self, draw, kp, conf, k, seed, noise_std):
        """``draw(kp, conf, k, seed, noise_std)`` on the input and on its mirror image."""
        m_kp, m_conf, m_noise = self._mirror(kp, conf, noise_std)
        a = draw(kp, conf, k - k // 2, seed, noise_std)
        b = draw(m_kp, m_conf, k // 2, None if seed is None else seed + 1, m_noise)
        return np.concatenate([a, mirror_h36m(b)], 1)

    def sample(self, kp, conf, k, seed=None, noise_std=None):
        return self._halves(self.lifter.sample, kp, conf, k, seed, noise_std)

    def _sequence(self, kp, conf, k, seed=None, stamps_s=None, noise_std=None):
        def draw(kp, conf, k, seed, ns):
            return self.lifter.sample_sequence(kp, conf, k, seed, stamps_s, ns)

        return self._halves(draw, kp, conf, k, seed, noise_std)


def run_track(lifter, mode, kp, conf, stamps, k, seed, noise_std):
    """(T, k, 17, 3) hypotheses of one observed track in ``mode``."""
    if mode == "temporal":
        return lifter.sample_sequence(kp, conf, k, seed, stamps, noise_std)
    out = np.zeros((len(kp), k, 17, 3), np.float32)
    ok = np.isfinite(kp).all(-1).sum(-1) >= 6
    for t in np.flatnonzero(ok):
        s = seed if mode == "single_crn" else seed + 7919 * t
        out[t] = lifter.sample(kp[t : t + 1], conf[t : t + 1], k, s, noise_std)[0]
    return out


def observe(lifter, mode, kp, conf, step, k, seed, noise_std):
    """A view's track seen every ``step``-th mocap frame (the newest kept) and lifted in
    ``mode``: the observed rows ``idx``, their (T, k, 17, 3) hypotheses, and ``ok`` (frames
    with at least 6 joints seen, the ones that count)."""
    idx = np.arange(len(kp) - 1, -1, -step)[::-1]
    hyps = run_track(lifter, mode, kp[idx], conf[idx], idx / MOCAP_HZ, k, seed, noise_std)
    return idx, hyps, np.isfinite(kp[idx]).all(-1).sum(-1) >= 6


def track_figures(hyps, gt, ok, dt):
    """Per-track sums of every figure over frames where ``ok`` (observed, lifted)."""
    mean = hyps.mean(1)
    err = np.linalg.norm(mean - gt, axis=-1)[:, 1:].mean(-1)
    best = np.linalg.norm(hyps - gt[:, None], axis=-1)[..., 1:].mean(-1).min(1)
    cov = covered_flags(hyps, gt)[:, 1:].mean(-1)
    pair = ok[1:] & ok[:-1]
    trip = ok[2:] & ok[1:-1] & ok[:-2]
    dv = np.linalg.norm(np.diff(mean, axis=0) - np.diff(gt, axis=0), axis=-1)[:, 1:].mean(-1)
    acc_p, acc_g = np.diff(mean, 2, axis=0), np.diff(gt, 2, axis=0)
    da = np.linalg.norm(acc_p - acc_g, axis=-1)[:, 1:].mean(-1)
    dh = np.diff(hyps, axis=0) - np.diff(gt, axis=0)[:, None]
    flick = np.linalg.norm(dh, axis=-1)[..., 1:].mean((-1, -2))
    speed_h = np.linalg.norm(np.diff(hyps, axis=0), axis=-1)[..., 1:].mean((-1, -2))
    speed_g = np.linalg.norm(np.diff(gt, axis=0), axis=-1)[:, 1:].mean(-1)
    from training.bodies import bone_lengths

    dlen = np.abs(np.diff(bone_lengths(mean), axis=0)).mean(-1)
    body = bone_lengths(hyps).mean(1) - bone_lengths(gt)  # (T, 16) the hypotheses' body
    return {
        "n": ok.sum(),
        "mpjpe": err[ok].sum(),
        "best": best[ok].sum(),
        "cov": cov[ok].sum(),
        "n_pair": pair.sum(),
        "mpjve": dv[pair].sum() / dt,
        "flicker": flick[pair].sum() / dt,
        "excess": (speed_h - speed_g)[pair].sum() / dt,
        "dlen": dlen[pair].sum(),
        "bone_err": np.abs(body).mean(-1)[ok].sum(),
        "size_bias": body.sum(-1)[ok].sum(),
        "n_trip": trip.sum(),
        "accel": da[trip].sum() / dt**2,
    }


def summarise(sums: dict) -> dict:
    """Sums over tracks -> means (mm, mm/s, mm/s^2, fractions)."""
    n, p, t = max(sums["n"], 1), max(sums["n_pair"], 1), max(sums["n_trip"], 1)
    return {
        "frames": int(sums["n"]),
        "MPJPE": 1000 * sums["mpjpe"] / n,
        "best-of-K": 1000 * sums["best"] / n,
        "cov90": sums["cov"] / n,
        "MPJVE": 1000 * sums["mpjve"] / p,
        "accel": 1000 * sums["accel"] / t,
        "flicker": 1000 * sums["flicker"] / p,
        "excess": 1000 * sums["excess"] / p,
        "bone change": 1000 * sums["dlen"] / p,
        "bone error": 1000 * sums["bone_err"] / n,
        "size bias": 1000 * sums["size_bias"] / n,
    }


def evaluate(
    weights,
    names,
    split="val",
    k=200,
    seed=2026,
    noise_px=5.0,
    segment=150,
    modes=("single", "temporal"),
    rates=("30Hz", "10Hz"),
    stride=1,
    log=print,
    flip_average=False,
    n_views=1,
    subjects=None,
):
    """All figures: ``[name][mode][rate][distance cell]`` summaries plus ``all`` cells."""
    m = load_all_mocap(str(DEFAULT_DATA), str(ORIG_DATA))
    rows = split_indices(m["subject"], split, "v2")
    if subjects:  # a part of the split (per-subject figures)
        rows = rows[np.isin(m["subject"][rows].astype(str), [str(x) for x in subjects])]
        if len(rows) == 0:
            raise ValueError(f"no {split} rows of subjects {subjects}")
    runs = sequence_runs(m["sequence"], m["subject"], rows)[::stride]
    noise_std = noise_px / EVAL_CAMERA.fx
    views = {
        f"{d[0]:g}-{d[1]:g}m": sequence_views(
            m["poses"], runs, d, noise_px, np.random.default_rng(seed + i), segment, n_views
        )
        for i, d in enumerate(DISTANCES_M)
    }
    report = {"split": split, "k": k, "noise_px": noise_px, "models": {}}
    if flip_average:
        report["flip_average"] = True
    if n_views > 1:
        report["views"] = n_views
    if subjects:
        report["subjects"] = [str(x) for x in subjects]
    for name, w in zip(names, weights, strict=True):
        lifter = FlipAveraged(load_lifter(w)) if flip_average else load_lifter(w)
        entry = report["models"].setdefault(name, {})
        for mode in modes:
            if mode == "temporal" and not hasattr(lifter, "sample_sequence"):
                continue
            for rate in rates:
                step = RATES[rate]
                total: dict = {}
                for cell, tracks in views.items():
                    sums: dict = {}
                    for ti, (kp, conf, gt) in enumerate(tracks):
                        idx, hyps, ok = observe(
                            lifter, mode, kp, conf, step, k, seed + 1000 * ti, noise_std
                        )
                        f = track_figures(hyps.astype(np.float64), gt[idx], ok, step / MOCAP_HZ)
                        for key, v in f.items():
                            sums[key] = sums.get(key, 0.0) + float(v)
                            total[key] = total.get(key, 0.0) + float(v)
                    entry.setdefault(mode, {}).setdefault(rate, {})[cell] = summarise(sums)
                    log(f"{name} {mode} {rate} {cell}: " + _short(entry[mode][rate][cell]))
                entry[mode][rate]["all"] = summarise(total)
                log(f"{name} {mode} {rate} all: " + _short(entry[mode][rate]["all"]))
    return report


def _short(r: dict) -> str:
    return (
        f"MPJPE {r['MPJPE']:.1f} best {r['best-of-K']:.1f} cov {r['cov90']:.3f} "
        f"MPJVE {r['MPJVE']:.0f} accel {r['accel']:.0f} flicker {r['flicker']:.0f} "
        f"excess {r['excess']:.0f} bone change {r['bone change']:.2f} "
        f"bone error {r['bone error']:.1f} size bias {r['size bias']:+.0f}"
    )


KEYS = (
    "MPJPE",
    "best-of-K",
    "cov90",
    "MPJVE",
    "accel",
    "flicker",
    "excess",
    "bone change",
    "bone error",
    "size bias",
)


def merge_reports(reports: list[dict]) -> dict:
    """One report of several ``--json`` runs of the same split, noise and K (models in order;
    a model's later modes are added to its entry)."""
    first = reports[0]

    def key(r):
        return r["split"], r["noise_px"], r["k"], r.get("views", 1), r.get("subjects")

    for r in reports[1:]:
        if key(r) != key(first):
            raise ValueError(
                "reports of different splits, noise levels, K, views or subjects cannot be merged"
            )
    models: dict = {}
    for r in reports:
        for name, entry in r["models"].items():
            models.setdefault(name, {}).update(entry)
    return {**first, "models": models}


def print_tables(
    report: dict,
    reference: str | None = None,
    only_cells: tuple[str, ...] | None = None,
    only_modes: tuple[str, ...] | None = None,
) -> None:
    """Markdown: one row per model, mode and rate (all cells); ratios to ``reference``
    (``name/mode``, default: the first model's ``single``) per cell (or only ``only_cells``,
    of ``only_modes``)."""
    models = report["models"]
    ref_name, ref_mode = (reference or f"{next(iter(models))}/single").split("/")
    ref = models.get(ref_name, {}).get(ref_mode)
    print(
        f"\n{report['split']}, {report['noise_px']:g} px noise, K={report['k']}, "
        "all distance cells\n"
    )
    print("| model | mode | rate | frames | " + " | ".join(KEYS) + " |")
    print("|---|---|---|---|" + "---|" * len(KEYS))
    for name, entry in models.items():
        for mode, by_rate in entry.items():
            for rate, cells in by_rate.items():
                r = cells["all"]
                vals = [  # older reports lack the body columns
                    f"{r[key]:.3f}" if key == "cov90" else f"{r.get(key, np.nan):.1f}"
                    for key in KEYS
                ]
                print(f"| {name} | {mode} | {rate} | {r['frames']} | " + " | ".join(vals) + " |")
    if ref is None:
        return
    print(f"\nRatios to {ref_name}/{ref_mode} (per rate; MPJPE, MPJVE, accel, flicker)\n")
    print("| model | mode | rate | cell | MPJPE | MPJVE | accel | flicker | cov90 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, entry in models.items():
        for mode, by_rate in entry.items():
            if (name, mode) == (ref_name, ref_mode) or (only_modes and mode not in only_modes):
                continue
            for rate, by_cell in by_rate.items():
                for cell, r in by_cell.items():
                    if only_cells and cell not in only_cells:
                        continue
                    b = ref[rate][cell]
                    q = [r[key] / b[key] for key in ("MPJPE", "MPJVE", "accel", "flicker")]
                    print(
                        f"| {name} | {mode} | {rate} | {cell} | "
                        + " | ".join(f"{v:.3f}" for v in q)
                        + f" | {r['cov90']:.3f} |"
                    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+")
    parser.add_argument("--names", nargs="+")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--noise-px", type=float, default=5.0)
    parser.add_argument("--segment", type=int, default=150)
    parser.add_argument("--stride", type=int, default=1, help="every n-th sequence")
    parser.add_argument("--modes", nargs="+", default=["single", "temporal"])
    parser.add_argument("--rates", nargs="+", default=["30Hz", "10Hz"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--views", type=int, default=1, help="views per segment and cell")
    parser.add_argument("--subjects", nargs="+", help="only these subjects of the split")
    parser.add_argument(
        "--flip-average", action="store_true", help="K/2 hypotheses from the mirrored input"
    )
    parser.add_argument("--json", help="write all figures here")
    parser.add_argument(
        "--from-json", nargs="+", help="print the tables of earlier --json runs (merged)"
    )
    parser.add_argument("--reference", help="name/mode the ratios divide by")
    parser.add_argument("--cells", nargs="+", help="ratio rows of these cells only (e.g. all)")
    args = parser.parse_args(argv)
    if args.json:  # its folder now, not after the evaluation
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        reports = [json.loads(Path(p).read_text()) for p in args.from_json]
        print_tables(merge_reports(reports), args.reference, args.cells, tuple(args.modes))
        return
    if not args.weights:
        parser.error("--weights is required (or --from-json)")
    torch.set_num_threads(args.threads)
    names = args.names or [Path(w).parent.name for w in args.weights]
    report = evaluate(
        args.weights,
        names,
        args.split,
        args.k,
        args.seed,
        args.noise_px,
        args.segment,
        tuple(args.modes),
        tuple(args.rates),
        args.stride,
        flip_average=args.flip_average,
        n_views=args.views,
        subjects=args.subjects,
    )
    print_tables(report, args.reference, args.cells)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
