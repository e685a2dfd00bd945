"""How far a lifter's body is from each subject's: bone lengths minus the truth, per group.

One evaluation cell of :mod:`training.conditions` (default exact 2D at 8-15 m), every
``stride``-th frame of the split's subjects, one hypothesis per person (all K share the
body); per subject and per capture kind (a real CMU skeleton or a rig), the mean over frames
of the predicted minus the true length of each bone group (both sides together), in mm.
This is the table that found the joint-convention bias (training/conventions.py)::

    python -m training.body_bias --weights hpe3d_ros/weights/lifter_default.pt --split val
"""

from __future__ import annotations

import argparse

import numpy as np

from training.bodies import BONE_GROUPS, bone_lengths, group_means
from training.conditions import CELLS, Cell, condition_views
from training.mocap import DEFAULT_DATA, ORIG_DATA, body_kind, load_all_mocap, split_indices


def cell_by_name(name: str) -> Cell:
    """The evaluation cell called ``name`` (an unknown name: ValueError listing them)."""
    by_name = {c.name: c for c in CELLS}
    if name not in by_name:
        raise ValueError(f"unknown cell {name!r}: one of {', '.join(by_name)}")
    return by_name[name]


def lift_in_cell(
    weights: str, poses_world: np.ndarray, cell: Cell, rng: np.random.Generator, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One view of each pose in ``cell``, lifted with one hypothesis (all K share the body):
    (N, 16) the lifter's bone lengths and (N, 16) the true ones."""
    from hpe3d_ros.lifting import load_lifter

    views = condition_views(poses_world, cell, rng)
    noise = views.noise_std if cell.noise_px else None
    hyp = load_lifter(weights).sample(
        views.kp_norm.astype(np.float32), views.conf.astype(np.float32), 1, seed, noise_std=noise
    )
    return bone_lengths(hyp[:, 0].astype(np.float64)), bone_lengths(views.pose_cam)


def body_bias(
    weights: str, split: str = "val", cell: str = "exact@8-15m", stride: int = 1, seed: int = 0
) -> dict[tuple[int, str], np.ndarray]:
    """(subject, kind) -> (groups,) mean predicted minus true bone length per bone group (m)."""
    c = cell_by_name(cell)
    m = load_all_mocap(DEFAULT_DATA, ORIG_DATA)
    rows = split_indices(m["subject"], split, "v2")[::stride]
    pred, true = lift_in_cell(weights, m["poses"][rows], c, np.random.default_rng(seed), seed)
    error = group_means(pred - true)
    kinds = body_kind(m["source"][rows])
    out = {}
    for key in sorted(set(zip(m["subject"][rows].tolist(), kinds.tolist(), strict=True))):
        sel = (m["subject"][rows] == key[0]) & (kinds == key[1])
        out[key] = error[sel].mean(0)
    return out


def cell_parser(description: str) -> argparse.ArgumentParser:
    """The arguments the per-cell body tools share: weights, names, split, cell, stride."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--weights", nargs="+", required=True)
    ap.add_argument("--names", nargs="+")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--cell", default="exact@8-15m")
    ap.add_argument("--stride", type=int, default=1)
    return ap


def main(argv: list[str] | None = None) -> None:
    ap = cell_parser(__doc__.split("\n")[0])
    args = ap.parse_args(argv)
    names = args.names or args.weights
    print(f"bone length minus the truth, mm, {args.split} subjects, {args.cell}\n")
    print("| model | subject | body | " + " | ".join(BONE_GROUPS) + " |")
    print("|---|---|---|" + "---|" * len(BONE_GROUPS))
    for name, w in zip(names, args.weights, strict=True):
        try:
            table = body_bias(w, args.split, args.cell, args.stride)
        except (OSError, ValueError) as e:  # a missing file, an unknown cell: one line
            ap.error(str(e))
        for (s, kind), bias in table.items():
            cols = " | ".join(f"{1000 * b:+.0f}" for b in bias)
            print(f"| {name} | {s} | {kind} | {cols} |")


if __name__ == "__main__":
    main()
