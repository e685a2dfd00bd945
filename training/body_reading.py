"""Does a lifter read a body's proportions from 2D, or return the training prior?

:mod:`training.body_bias` says how far a lifter's body is from each held-out subject's; this
says *why* on bodies it has never seen: the split's motions (default validation; rig-convention
motions first moved into the CMU convention, as training does) are retargeted onto bone lengths
drawn by the training generator (:func:`training.bodies.sample_lengths`, real-skeleton
templates of the training rows, the given spreads), viewed in one evaluation cell, lifted with
one hypothesis (all K share the body), and per bone group the predicted proportion
``log(group length / size)`` is regressed on the true one (``size`` = thighs + shins + the two
spine bones). Slope 1: the lifter reads that proportion; slope 0: it returns its prior
whatever the body. ``size`` itself (absolute, metres) is reported the same way: a scale-free
2D pose shows it only through the head, which CMU skeletons do not vary.

It also prints the generator's 2-98 % range per group beside every real skeleton of the
validation and test subjects, to tell "never drawn in training" from "drawn, not read"::

    python -m training.body_reading --weights hpe3d_ros/weights/lifter_default.pt
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.bodies import (
    BONE_GROUPS,
    body_templates,
    bone_lengths,
    group_means,
    retarget,
    sample_lengths,
)
from training.body_bias import cell_by_name, cell_parser, lift_in_cell
from training.conventions import is_cmu_convention, to_cmu_convention
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices

#: Bones whose summed length stands for a skeleton's size: thighs, shins, both spine bones.
SIZE_BONES = np.array([1, 2, 6, 7])


@dataclass(frozen=True)
class Reading:
    """Predicted against true values over the drawn bodies: ``slope`` of the least-squares
    line (pred on true), correlation ``r``, the true and predicted standard deviations, and
    the RMS error after removing the mean offset."""

    slope: float
    r: float
    true_sd: float
    pred_sd: float
    rmse: float


def _reading(true: np.ndarray, pred: np.ndarray) -> Reading:
    slope = float(np.polyfit(true, pred, 1)[0])
    r = float(np.corrcoef(true, pred)[0, 1])
    d = pred - true
    return Reading(slope, r, float(true.std()), float(pred.std()), float((d - d.mean()).std()))


def proportions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 16) bone lengths -> (N, groups) log(group mean length / size), (N,) size (m)."""
    size = lengths[:, SIZE_BONES].sum(1)
    return np.log(group_means(lengths) / size[:, None]), size


def training_templates(mocap: dict) -> dict[str, np.ndarray]:
    """The real-skeleton templates of the v2 training rows (what the generator draws around)."""
    rows = split_indices(mocap["subject"], "train", "v2")
    temps = body_templates(mocap["poses"][rows], mocap["subject"][rows], mocap["body"][rows])
    return {k: v for k, v in temps.items() if k.startswith("real_")}


def drawn_bodies(
    mocap: dict, split: str, rng: np.random.Generator, stride: int = 1, **spreads: float
) -> tuple[np.ndarray, np.ndarray]:
    """The split's motions on freshly drawn real-template bodies: (N, 17, 3) world poses
    and (N, 16) their bone lengths (spine bones equal, as :func:`retarget` makes them)."""
    rows = split_indices(mocap["subject"], split, "v2")[::stride]
    poses = mocap["poses"][rows].astype(np.float64)
    move = ~is_cmu_convention(poses)
    if move.any():
        poses[move] = to_cmu_convention(poses[move], rng)
    lengths = sample_lengths(training_templates(mocap), len(poses), rng, 1.0, **spreads)
    new = retarget(poses, lengths)
    return new, bone_lengths(new)


def body_reading(
    weights: str,
    split: str = "val",
    cell: str = "exact@8-15m",
    stride: int = 1,
    seed: int = 0,
    mocap: dict | None = None,
) -> dict[str, Reading]:
    """Group name (and ``"size"``) -> :class:`Reading` of ``weights`` (module doc)."""
    c = cell_by_name(cell)
    m = mocap if mocap is not None else load_all_mocap(DEFAULT_DATA, ORIG_DATA)
    rng = np.random.default_rng(seed)
    poses, _ = drawn_bodies(m, split, rng, stride)
    pred, true = lift_in_cell(weights, poses, c, rng, seed)
    pred_p, pred_size = proportions(pred)
    true_p, true_size = proportions(true)
    out = {g: _reading(true_p[:, i], pred_p[:, i]) for i, g in enumerate(BONE_GROUPS)}
    out["size"] = _reading(true_size, pred_size)
    return out


def generator_ranges(
    mocap: dict, n: int = 20000, seed: int = 0, pct: tuple[float, float] = (2.0, 98.0)
) -> dict[str, tuple[float, float]]:
    """Group -> the training generator's ``pct`` range of the group's mean length (m), over
    real-template draws with the default spreads."""
    lengths = sample_lengths(training_templates(mocap), n, np.random.default_rng(seed), 1.0)
    lo, hi = np.percentile(group_means(lengths), pct, axis=0)
    return {g: (float(lo[i]), float(hi[i])) for i, g in enumerate(BONE_GROUPS)}


def main(argv: list[str] | None = None) -> None:
    ap = cell_parser(__doc__.split("\n")[0])
    args = ap.parse_args(argv)
    names = args.names or args.weights
    if len(names) != len(args.weights):
        ap.error("--names: one per --weights")
    m = load_all_mocap(DEFAULT_DATA, ORIG_DATA)
    ranges = generator_ranges(m)
    held = {}
    for split in ("val", "test"):
        rows = split_indices(m["subject"], split, "v2")
        temps = body_templates(m["poses"][rows], m["subject"][rows], m["body"][rows])
        held.update({k: v for k, v in temps.items() if k.startswith("real_")})
    print("Generator 2-98 % range (mm) against the held-out real skeletons\n")
    print("| group | generator | " + " | ".join(sorted(held)) + " |")
    print("|---|---|" + "---|" * len(held))
    held_groups = {k: group_means(v) for k, v in held.items()}
    for g_i, g in enumerate(BONE_GROUPS):
        lo, hi = ranges[g]
        vals = [1000 * held_groups[k][g_i] for k in sorted(held)]
        cols = " | ".join(
            f"{v:.0f}{'' if 1000 * lo <= v <= 1000 * hi else ' (out)'}" for v in vals
        )
        print(f"| {g} | {1000 * lo:.0f}-{1000 * hi:.0f} | {cols} |")
    print(f"\nReading proportions, {args.split} motions on drawn bodies, {args.cell}: slope (r)\n")
    keys = [*BONE_GROUPS, "size"]
    print("| model | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, w in zip(names, args.weights, strict=True):
        try:
            res = body_reading(w, args.split, args.cell, args.stride, mocap=m)
        except (OSError, ValueError) as e:  # a missing file, an unknown cell: one line
            ap.error(str(e))
        print(
            f"| {name} | "
            + " | ".join(f"{res[k].slope:+.2f} ({res[k].r:.2f})" for k in keys)
            + " |"
        )


if __name__ == "__main__":
    main()
