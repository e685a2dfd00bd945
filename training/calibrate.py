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

import numpy as np
import torch

from hpe3d_ros import metrics
from hpe3d_ros.lifting.runtime import Lifter, latent_noise
from training.condition_calibration import calibration_views, fit_condition_calibration
from training.run_config import TrainConfig, validation_set

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


def calibrate(
    src: str | Path,
    dst: str | Path,
    k: int = 200,
    data: str | None = None,
    keep_global: bool = False,
) -> dict:
    """Fit (temperature, latent_dof) for checkpoint ``src``, write it to ``dst``; the fit.

    Noise-aware body lifters also get their per-condition factors
    (:mod:`training.condition_calibration`). ``keep_global``: keep the checkpoint's
    temperature and dof, fit only those factors.
    """
    ck = torch.load(src, map_location="cpu", weights_only=True)
    lifter = Lifter(ck)
    if not lifter.latent_dim:
        raise SystemExit(f"{src} is a deterministic lifter: nothing to calibrate")
    cfg = TrainConfig.from_dict(ck["train_config"])
    if data:
        cfg.data = data
    model = lifter.model
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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    fit = calibrate(args.src, args.dst, args.k, args.data, args.keep_global)
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
