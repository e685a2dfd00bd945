"""Re-fit a lifter's latent noise calibration on the validation subjects.

``python -m training.calibrate runs/cvae_v5/lifter.pt runs/cvae_v5/lifter_cal.pt``

Training ends with :func:`fit_calibration` (see :func:`training.train.train`); this
command applies it to an existing checkpoint, e.g. one trained before the Student-t
candidates existed. The validation views are rebuilt exactly as training built them (the
checkpoint's own training config and seed); the test subjects are never read. Only
``temperature``, ``latent_dof``, the per-condition factors of noise-aware body lifters
(``calib_values``, ``calib_unknown``; :mod:`training.condition_calibration`) and the
``val_*`` metrics change: the weights are copied bit for bit.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch

from hpe3d_ros import metrics
from hpe3d_ros.lifting.runtime import Lifter, latent_noise
from training.condition_calibration import (
    balanced_poses,
    calibration_views,
    fit_condition_calibration,
)
from training.conditions import CELLS, condition_views
from training.mocap import split_indices
from training.run_config import TrainConfig, load_run_mocap, validation_set

#: Floor of a one-body lifter's ``size_std`` (log scale): the spread of adult stature within
#: one sex, about 7 cm in 162-176 cm (4-4.5 %). A lifter whose size estimate does not follow
#: true size (stature slope near 0, ``training.evaluate_cells``) is wrong by at least that
#: much on the population, whatever three validation bodies say.
SIZE_STD_FLOOR = 0.045

#: Student-t degrees of freedom tried by :func:`fit_calibration` (inf = Gaussian).
CALIBRATION_DOFS = (math.inf, 8.0, 5.0, 4.0, 3.0, 2.5, 2.0)


def fit_calibration(
    model,
    feats,
    target_m,
    mean,
    std,
    k: int = 200,
    level: float = 0.9,
    dofs: tuple[float, ...] = CALIBRATION_DOFS,
    seed: int = 1234,
) -> dict:
    """Latent noise calibration on validation data: ``temperature`` and ``latent_dof``.

    For each candidate Student-t ``dof`` the temperature is bisected until nominal ``level``
    intervals (per joint, radial, K hypotheses) cover ``level`` of the validation joints;
    of these calibrated candidates the one with the lowest best-of-K MPJPE wins (ties go to
    the lighter tail). Returns the choice and a row per candidate (``candidates``).
    """
    rows = []
    with torch.no_grad():
        cond = model.encode(feats)

        def hyps(eps: torch.Tensor, t: float) -> np.ndarray:
            y = model.decode(cond, eps, float(t)).numpy() * std + mean
            return y.reshape(len(y), eps.shape[1], 16, 3)

        for dof in dofs:
            eps = torch.from_numpy(latent_noise(len(feats), k, model.latent_dim, seed, dof))
            lo, hi = 0.2, 6.0
            for _ in range(9):
                mid = 0.5 * (lo + hi)
                cov = float(metrics.coverage(hyps(eps, mid), target_m, level).mean())
                lo, hi = (mid, hi) if cov < level else (lo, mid)
            t = round(0.5 * (lo + hi), 3)
            h = hyps(eps, t)
            rows.append(
                {
                    "latent_dof": float(dof),
                    "temperature": t,
                    "coverage": float(metrics.coverage(h, target_m, level).mean()),
                    "best_of_k_mm": 1000 * float(metrics.best_of_k_mpjpe(h, target_m).mean()),
                    "mean_of_k_mm": 1000 * float(metrics.mean_of_k_mpjpe(h, target_m).mean()),
                }
            )
    best = min(rows, key=lambda r: round(r["best_of_k_mm"], 1))
    return {**best, "candidates": rows}


def fit_size_std(
    lifter: Lifter, cfg: TrainConfig, mocap: dict | None = None, per_subject: int = 150,
    k: int = 50, level: float = 0.9,
) -> dict:  # fmt: skip
    """The body-size error of a one-body lifter, fitted where it matters: the root's depth.

    A one-body lifter's K hypotheses share their bone lengths, so the spread of their roots
    misses how far off the person's size (and so a monocular distance) is. For every
    validation subject (``per_subject`` poses each: each body weighs the same) and every
    evaluation cell (noise level given and not), the people are placed without a ground
    prior as the pipeline places them (:func:`~hpe3d_ros.placement.solve_root_translation`
    on the mean of ``k`` hypotheses; the hypotheses' own roots give their spread), and
    ``fitted`` is the log-scale size error whose depth effect, added to that spread, makes
    the ``level`` intervals hold ``level`` of the true depths (bisection); ``size_std`` is
    that or :data:`SIZE_STD_FLOOR`, whichever is larger (three validation bodies are too few
    to measure the population's spread of sizes). Placement adds it
    the same way (``Lifter.size_std``, ``Pipeline._size_spread``). Also returned: the RMS
    log scale that best maps the mean pose onto the truth (``scale_rms``) and the coverage
    per cell at the chosen value.
    """
    from hpe3d_ros.placement import size_spread, solve_root_translation

    mocap = load_run_mocap(cfg) if mocap is None else mocap
    rows = split_indices(mocap["subject"], "val", cfg.split)
    poses, subject = mocap["poses"][rows], mocap["subject"][rows]
    rng = np.random.default_rng(cfg.seed + 91)
    step = 0.05
    err, spread, unit, cells, logs = [], [], [], [], []
    for i, cell in enumerate(CELLS):
        b = condition_views(
            balanced_poses(poses, subject, per_subject, rng), cell, np.random.default_rng(i)
        )
        w = b.conf
        for given in (b.noise_std, None):
            hyps = lifter.sample(b.kp_norm, b.conf, k, seed=i, noise_std=given)
            mean = hyps.mean(axis=1).astype(np.float64)
            t = solve_root_translation(mean, b.kp_norm, w)
            t_k = solve_root_translation(hyps, b.kp_norm[:, None], w[:, None])
            err.append(t[:, 2] - b.root_cam[:, 2])
            spread.append(np.nanstd(t_k[..., 2], axis=1))
            unit.append(size_spread(mean, b.kp_norm, w, step)[:, 2] / step)
            cells.append(np.full(len(t), i))
            gt = b.pose_cam.astype(np.float64)
            scale = (mean * gt).sum((-1, -2)) / np.maximum((mean * mean).sum((-1, -2)), 1e-9)
            logs.append(np.log(np.clip(scale, 0.2, 5.0)))
    err, spread, unit, cells = map(np.concatenate, (err, spread, unit, cells))
    ok = np.isfinite(err) & np.isfinite(spread) & np.isfinite(unit)
    err, spread, unit, cells = err[ok], spread[ok], unit[ok], cells[ok]
    z = NormalDist().inv_cdf(0.5 + 0.5 * level)  # two-sided: 1.645 for 90 %

    def covered(sigma: float) -> np.ndarray:
        return np.abs(err) <= z * np.hypot(spread, sigma * unit)

    lo, hi = 0.0, 0.5
    if covered(lo).mean() >= level:
        hi = lo
    for _ in range(30):
        if hi - lo < 1e-4:
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if covered(mid).mean() < level else (lo, mid)
    fitted = round(hi, 4)
    size_std = max(fitted, SIZE_STD_FLOOR)
    flags = covered(size_std)
    return {
        "size_std": size_std,
        "fitted": fitted,
        "coverage_without": float(covered(0.0).mean()),
        "coverage": float(flags.mean()),
        "per_cell": {c.name: float(flags[cells == i].mean()) for i, c in enumerate(CELLS)},
        "scale_rms": float(np.sqrt(np.mean(np.concatenate(logs) ** 2))),
    }


def calibrate(
    src: str | Path,
    dst: str | Path,
    k: int = 200,
    data: str | None = None,
    keep_global: bool = False,
    size_only: bool = False,
) -> dict:
    """Fit (temperature, latent_dof) for checkpoint ``src``, write it to ``dst``; the fit.

    Noise-aware body lifters also get their per-condition factors
    (:mod:`training.condition_calibration`) and their ``size_std`` (:func:`fit_size_std`).
    ``keep_global``: keep the checkpoint's temperature and dof, fit only those factors;
    ``size_only``: fit only ``size_std`` (everything else is kept).
    """
    ck = torch.load(src, map_location="cpu", weights_only=True)
    lifter = Lifter(ck)
    if not lifter.latent_dim:
        raise SystemExit(f"{src} is a deterministic lifter: nothing to calibrate")
    cfg = TrainConfig.from_dict(ck["train_config"])
    if data:
        cfg.data = data
    model = lifter.model
    if size_only:
        if lifter.arch != "bodyvae":
            raise SystemExit(f"{src}: only one-body lifters (bodyvae) have a size_std")
        fit = {"size": fit_size_std(lifter, cfg)}
        ck["size_std"] = fit["size"]["size_std"]
        ck["metrics"] = ck.get("metrics", {}) | {"val_size": fit["size"]}
        torch.save(ck, dst)
        return fit
    if keep_global:
        fit = {"temperature": lifter.temperature, "latent_dof": lifter.latent_dof}
    else:
        val = validation_set(cfg)
        fit = fit_calibration(
            model,
            torch.from_numpy(val.feats),
            val.target_v,
            lifter.target_mean.numpy(),
            model.target_std.numpy(),
            k=k,
        )
    if cfg.model.noise_input and hasattr(model, "calib_values"):
        fit["conditions"] = fit_condition_calibration(
            model, *calibration_views(cfg), fit["temperature"], fit["latent_dof"]
        )
        dtype = ck["state_dict"]["calib_values"].dtype
        for name in ("calib_knots", "calib_values", "size_knots", "calib_unknown"):
            ck["state_dict"][name] = getattr(model, name).detach().to(dtype).clone()
    ck["temperature"] = float(fit["temperature"])
    ck["latent_dof"] = float(fit["latent_dof"])
    if lifter.arch == "bodyvae":  # one body per person: its size error goes to placement
        lifter.temperature, lifter.latent_dof = ck["temperature"], ck["latent_dof"]
        fit["size"] = fit_size_std(lifter, cfg)
        ck["size_std"] = fit["size"]["size_std"]
    # the fit's keys are the same on every run: a previous calibration's are overwritten
    ck["metrics"] = ck.get("metrics", {}) | {f"val_{m}": v for m, v in fit.items()}
    torch.save(ck, dst)
    return fit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="lifter checkpoint (lifter.pt)")
    parser.add_argument("dst", help="where to write the re-calibrated copy (may equal src)")
    parser.add_argument("--k", type=int, default=200, help="hypotheses per person in the fit")
    parser.add_argument("--data", help="mocap .npz (default: the checkpoint's training data)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--keep-global", action="store_true", help="keep temperature and dof; fit only the "
        "per-condition factors of a noise-aware lifter"
    )  # fmt: skip
    parser.add_argument(
        "--size-only", action="store_true", help="keep everything, fit only the size_std of a "
        "one-body lifter"
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    fit = calibrate(args.src, args.dst, args.k, args.data, args.keep_global, args.size_only)
    if "size" in fit:
        size = fit["size"]
        cells = ", ".join(f"{c} {v:.3f}" for c, v in size["per_cell"].items())
        print(f"size_std {size['size_std']:.4f} (fitted {size['fitted']:.4f}, floor "
              f"{SIZE_STD_FLOOR}): validation depth coverage without a ground "
              f"prior {size['coverage_without']:.3f} -> {size['coverage']:.3f} (per cell: "
              f"{cells}); best-fit scale RMS {size['scale_rms']:.3f}")  # fmt: skip
    if "temperature" not in fit:  # --size-only
        print(f"wrote {args.dst}")
        return
    if "candidates" in fit:
        print("| latent dof | temperature | val coverage | val best-of-K mm | val mean-of-K mm |")
        print("|---|---|---|---|---|")
        for r in fit["candidates"]:
            print(
                f"| {r['latent_dof']:g} | {r['temperature']:.3f} | {r['coverage']:.3f} | "
                f"{r['best_of_k_mm']:.1f} | {r['mean_of_k_mm']:.1f} |"
            )
    print(f"chosen: latent_dof {fit['latent_dof']:g}, temperature {fit['temperature']:.3f}")
    if "conditions" in fit:
        print("| noise level | knot | samples | mean feature | factor | val coverage |")
        print("|---|---|---|---|---|---|")
        for r in fit["conditions"]["groups"]:
            if "factor" not in r:
                print(f"| {r['mode']} | {r['knot']:.2f} | {r['samples']} | | too few | |")
                continue
            cells = f"{r['mean_feature']:.2f} | {r['factor']:.3f} | {r['coverage']:.3f}"
            print(f"| {r['mode']} | {r['knot']:.2f} | {r['samples']} | {cells} |")
    print(f"wrote {args.dst}")


if __name__ == "__main__":
    main()
