"""Evaluate lifters per condition cell, subject and joint (lifter v2 tables).

``python -m training.evaluate_cells --weights hpe3d_ros/weights/lifter_baseline.pt
hpe3d_ros/weights/lifter_default.pt --names baseline default``

Views: :mod:`training.conditions` (one 1280 x 720, 60 deg camera; {exact, 2 px, 5 px} x
{3-8, 8-15, 15-25 m}), split ``v2`` of :mod:`training.mocap` (``--split val`` for model
selection; the test subjects are only for the final tables). Every lifter goes through the
public API, ``sample(kp_norm, conf, k, seed[, noise_std])``; noise-aware lifters are run
twice: ``given`` (the pipeline passes the 2D noise std) and ``unknown`` (the plain call).

Figures per model, mode and cell: MPJPE and P-MPJPE of the mean of K, best-of-K MPJPE (mm),
coverage of nominal 90 % per-joint radial intervals (mean over the 16 non-root joints, the
worst joint, the worst subject), the spread of each bone's length across the K hypotheses
of a person (mm; median over people, the worst bone, and its 99th percentile), the longest
bone of any hypothesis (m), and two stature regressions over all people of the exact-2D
cells (slope of the least-squares line of predicted on true; per-subject medians too): the
bone-chain stature (ankle-knee-hip-pelvis-thorax-nose-head top, left/right averaged: the
body alone) and the standing height per frame (head top above the lower ankle: body and
pose, the shared data README's stature).

``--body true`` (an error budget, not a lifter): every hypothesis keeps its bone directions
and takes the true person's bone lengths (:func:`on_body`), so what is left is the error of
the pose alone; ``--body true-size`` keeps the estimated proportions and takes only the true
size (the sum of the bone lengths). Deterministic lifters are treated the same way, so the
ratios stay between equals. Shows how much of each figure the per-person body costs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hpe3d_ros import metrics
from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.body import ancestor_matrix
from hpe3d_ros.lifting.ensemble import load_ensemble
from hpe3d_ros.skeleton import H36M_PARENTS
from training.bodies import CHILD, bone_lengths
from training.cell_tables import merge_reports, one_line, print_ratios, print_tables
from training.conditions import CELLS, eval_camera, evaluation_views
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices

JOINTS = 17
BODIES = ("estimated", "true", "true-size")
_PARENT_OF_CHILD = np.array(H36M_PARENTS)[CHILD]


def on_body(hyps: np.ndarray, gt: np.ndarray, body: str) -> np.ndarray:
    """(N, K, 17, 3) hypotheses re-posed on the true person's body (module docstring).

    ``body``: "estimated" (unchanged), "true" (each bone the true length, direction kept) or
    "true-size" (the estimated lengths scaled so their sum is the true sum).
    """
    if body == "estimated":
        return hyps
    vec = hyps[..., CHILD, :] - hyps[..., _PARENT_OF_CHILD, :]  # (N, K, 16, 3)
    length = np.linalg.norm(vec, axis=-1)
    true = bone_lengths(gt)[:, None]  # (N, 1, 16)
    if body == "true":
        new = np.broadcast_to(true, length.shape)
    elif body == "true-size":
        new = length * (true.sum(-1, keepdims=True) / length.sum(-1, keepdims=True))
    else:
        raise ValueError(f"body {body!r} not in {BODIES}")
    vec = vec * (new / np.maximum(length, 1e-9))[..., None]
    out = hyps.copy()
    out[..., 1:, :] = hyps[..., :1, :] + np.einsum("jb,nkbd->nkjd", ancestor_matrix(), vec)
    return out


def stature(poses: np.ndarray) -> np.ndarray:
    """(..., 17, 3) -> (...) bone-chain stature: legs, hips (L/R mean), torso, neck, head."""
    b = bone_lengths(poses)
    legs = 0.5 * (b[..., [0, 1, 2]].sum(-1) + b[..., [3, 4, 5]].sum(-1))
    return legs + b[..., 6:10].sum(-1)


def standing_height(poses: np.ndarray) -> np.ndarray:
    """(..., 17, 3) camera frame -> (...) head top above the lower ankle along camera -y.

    The README's per-frame stature (pose-dependent: a crouch is shorter); the evaluation
    camera is level within 5 deg, so camera -y is the vertical to 0.4 %.
    """
    y = poses[..., 1]
    return np.maximum(y[..., 3], y[..., 6]) - y[..., 10]


def covered_flags(hyps: np.ndarray, gt: np.ndarray, level: float = 0.9) -> np.ndarray:
    """(N, K, J, 3), (N, J, 3) -> (N, J) bool, per person as :func:`metrics.coverage`."""
    centre = hyps.mean(axis=1)
    radius = np.quantile(np.linalg.norm(hyps - centre[:, None], axis=-1), level, axis=1)
    return np.linalg.norm(gt - centre, axis=-1) <= radius


def run_cell(
    lifter, batch, k: int, seed: int, noise_given: bool, chunk: int = 128, body: str = "estimated"
) -> dict:
    """Per-person figures of one lifter on one cell's views (see module docstring)."""
    out: dict[str, list] = {}
    k_eff = k if lifter.latent_dim else 1
    for i in range(0, len(batch.feats), chunk):
        sl = slice(i, i + chunk)
        ns = batch.noise_std[sl] if noise_given else None
        hyps = lifter.sample(batch.kp_norm[sl], batch.conf[sl], k_eff, seed + i, noise_std=ns)
        gt = batch.pose_cam[sl].astype(np.float64)
        hyps = on_body(hyps.astype(np.float64), gt, body)
        mean = hyps.mean(axis=1)
        bones = bone_lengths(hyps)  # (n, K, 16)
        cols = {
            "mpjpe": metrics.mpjpe(mean, gt),
            "p_mpjpe": metrics.p_mpjpe(mean, gt),
            "best": metrics.best_of_k_mpjpe(hyps, gt),
            "covered": covered_flags(hyps, gt),
            "bone_spread": bones.std(axis=1),
            "max_bone": bones.max(axis=(1, 2)),
            "stature": stature(hyps).mean(axis=1),
            "stature_true": stature(gt),
            "height": standing_height(hyps).mean(axis=1),
            "height_true": standing_height(gt),
        }
        for name, v in cols.items():
            out.setdefault(name, []).append(v)
    return {name: np.concatenate(v) for name, v in out.items()}


def summarise(res: dict, subjects: np.ndarray) -> dict:
    """Scalars of one (model, mode, cell): mm, fractions, metres."""
    per_joint = res["covered"][:, 1:].mean(axis=0)
    per_subject = {
        int(s): float(res["covered"][subjects == s, 1:].mean()) for s in np.unique(subjects)
    }
    spread = res["bone_spread"]
    return {
        "MPJPE": 1000 * float(res["mpjpe"].mean()),
        "P-MPJPE": 1000 * float(res["p_mpjpe"].mean()),
        "best-of-K": 1000 * float(res["best"].mean()),
        "cov90": float(per_joint.mean()),
        "cov90 min joint": float(per_joint.min()),
        "cov90 per joint": per_joint.tolist(),
        "cov90 per subject": per_subject,
        "MPJPE per subject": {
            int(s): 1000 * float(res["mpjpe"][subjects == s].mean()) for s in np.unique(subjects)
        },
        "bone spread mm": 1000 * float(np.median(spread, axis=0).max()),
        "bone spread p99 mm": 1000 * float(np.quantile(spread, 0.99)),
        "max bone m": float(res["max_bone"].max()),
    }


def stature_fit(pred: np.ndarray, true: np.ndarray) -> dict:
    """Least-squares slope and intercept of predicted on true stature, and the RMSE (m)."""
    slope, intercept = np.polyfit(true, pred, 1)
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "rmse_m": float(np.sqrt(np.mean((pred - true) ** 2))),
    }


def evaluate(
    weights: list[str],
    names: list[str],
    split: str = "test",
    k: int = 200,
    seed: int = 2026,
    stride: int = 1,
    modes: tuple[str, ...] = ("given", "unknown"),
    data: str = str(DEFAULT_DATA),
    data_orig: str = str(ORIG_DATA),
    log=print,
    ensemble_spread: float = 1.0,
    body: str = "estimated",
    camera: tuple[float, int, int, float, float] | None = None,
) -> dict:
    """All figures as a dict: ``[name][mode][cell name]`` summaries plus stature fits.
    ``camera``: (horizontal FOV deg, width, height, pitch from, pitch to) instead of the
    standard evaluation camera (60, 1280, 720, -5, 5)."""
    mocap = load_all_mocap(data, data_orig)
    idx = split_indices(mocap["subject"], split, "v2")[::stride]
    subjects = mocap["subject"][idx]
    lifters = [
        load_ensemble(w.split("+"), ensemble_spread) if "+" in w else load_lifter(w)
        for w in weights
    ]
    report: dict = {"split": split, "k": k, "seed": seed, "frames": len(idx), "models": {}}
    if body != "estimated":
        report["body"] = body
    if camera is None:
        views = evaluation_views(mocap["poses"][idx], seed)
    else:
        hfov, w, h, p0, p1 = camera
        report["camera"] = list(camera)
        views = evaluation_views(
            mocap["poses"][idx], seed, eval_camera(hfov, (int(w), int(h))), (p0, p1)
        )
    for name, lifter in zip(names, lifters, strict=True):
        noise_aware = bool(getattr(lifter.cfg, "noise_input", False))
        entry: dict = {}
        for mode in modes if noise_aware else ("unknown",):
            cells, exact = {}, []
            for cell in CELLS:
                res = run_cell(lifter, views[cell.name], k, seed, mode == "given", body=body)
                cells[cell.name] = summarise(res, subjects)
                if cell.noise_px == 0:
                    exact.append(res)
                log(f"{name} [{mode}] {cell.name}: " + one_line(cells[cell.name]))
            subj = np.concatenate([subjects] * len(exact))
            fit = {}
            for key in ("stature", "height"):
                pred = np.concatenate([r[key] for r in exact])
                true = np.concatenate([r[key + "_true"] for r in exact])
                fit[key] = stature_fit(pred, true)
                fit[key]["per subject"] = {
                    int(s): (float(np.median(true[subj == s])), float(np.median(pred[subj == s])))
                    for s in np.unique(subj)
                }
            fit = {**fit["stature"], "height": fit["height"]}
            entry[mode] = {"cells": cells, "stature": fit, "deterministic": not lifter.latent_dim}
        report["models"][name] = entry
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights", nargs="+", help="checkpoints; a.pt+b.pt = their one-body ensemble"
    )
    parser.add_argument(
        "--ensemble-spread",
        type=float,
        default=1.0,
        help="scale on the latent noise of every ensemble member (hpe3d_ros.lifting.ensemble)",
    )
    parser.add_argument("--names", nargs="+")
    parser.add_argument("--split", default="test", choices=["test", "val"])
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--stride", type=int, default=1, help="every n-th frame")
    parser.add_argument("--modes", nargs="+", default=["given", "unknown"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--body",
        default="estimated",
        choices=BODIES,
        help="re-pose every hypothesis on the true bone lengths or size (an error budget)",
    )
    parser.add_argument(
        "--camera",
        type=float,
        nargs=5,
        metavar=("HFOV_DEG", "WIDTH", "HEIGHT", "PITCH_FROM", "PITCH_TO"),
        help="another evaluation camera than 60 1280 720 -5 5 (the same people and cells)",
    )
    parser.add_argument("--json", help="write all figures here")
    parser.add_argument("--reference", help="name of the model the ratio tables divide by")
    parser.add_argument(
        "--from-json",
        nargs="+",
        help="print the tables of earlier --json runs (several: one report, same views)",
    )
    args = parser.parse_args(argv)
    if args.camera:
        hfov, width, height, pitch_from, pitch_to = args.camera
        if not (0 < hfov < 180 and width >= 1 and height >= 1 and pitch_from <= pitch_to):
            parser.error(f"--camera: 0 < HFOV_DEG < 180, a size >= 1 x 1 and PITCH_FROM <= "
                         f"PITCH_TO, got {' '.join(f'{v:g}' for v in args.camera)}")  # fmt: skip
    if args.json:  # its folder now, not after the evaluation
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        report = merge_reports([json.loads(Path(f).read_text()) for f in args.from_json])
        print_tables(report)
        if args.reference:
            print_ratios(report, args.reference)
        return
    if not args.weights:
        parser.error("--weights is required (or --from-json)")
    torch.set_num_threads(args.threads)
    names = args.names or [Path(w).stem for w in args.weights]
    report = evaluate(
        args.weights,
        names,
        args.split,
        args.k,
        args.seed,
        args.stride,
        tuple(args.modes),
        ensemble_spread=args.ensemble_spread,
        body=args.body,
        camera=tuple(args.camera) if args.camera else None,
    )
    print_tables(report)
    if args.reference:
        print_ratios(report, args.reference)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
