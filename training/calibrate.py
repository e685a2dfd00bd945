"""Re-fit a lifter's latent noise calibration on the validation subjects.

``python -m training.calibrate runs/cvae_v5/lifter.pt runs/cvae_v5/lifter_cal.pt``

Training already does this as its last step (:func:`training.train.fit_calibration`); this
command applies it to an existing checkpoint, e.g. one trained before the Student-t
candidates existed. The validation views are rebuilt exactly as training built them (the
checkpoint's own training config and seed); the test subjects are never read. Only
``temperature``, ``latent_dof`` and the ``val_*`` metrics change: the weights are copied
bit for bit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hpe3d_ros.lifting.runtime import Lifter
from training.data import DEFAULT_DATA
from training.train import CALIBRATION_DOFS, TrainConfig, fit_calibration, validation_set

#: Checkpoint metrics a previous calibration wrote (replaced, not merged).
_CALIBRATION_KEYS = {
    "val_temperature",
    "val_coverage",
    "val_latent_dof",
    "val_best_of_k_mm",
    "val_mean_of_k_mm",
    "val_candidates",
}


def calibrate(src: str | Path, dst: str | Path, k: int = 200, data: str | None = None) -> dict:
    """Fit (temperature, latent_dof) for checkpoint ``src``, write it to ``dst``; the fit."""
    ck = torch.load(src, map_location="cpu", weights_only=True)
    lifter = Lifter(ck)
    if not lifter.latent_dim:
        raise SystemExit(f"{src} is a deterministic lifter: nothing to calibrate")
    cfg = TrainConfig.from_dict(ck["train_config"])
    if data:
        cfg.data = data
    elif not Path(cfg.data).is_file():  # trained on another machine
        cfg.data = str(DEFAULT_DATA)
    val = validation_set(cfg)
    model = lifter.model
    fit = fit_calibration(
        model,
        torch.from_numpy(val.feats),
        val.target_v,
        lifter.target_mean.numpy(),
        model.target_std.numpy(),
        k=k,
        dofs=CALIBRATION_DOFS,
    )
    ck["temperature"] = float(fit["temperature"])
    ck["latent_dof"] = float(fit["latent_dof"])
    old = ck.get("metrics", {})
    ck["metrics"] = {m: v for m, v in old.items() if m not in _CALIBRATION_KEYS} | {
        f"val_{m}": v for m, v in fit.items()
    }
    torch.save(ck, dst)
    return fit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="lifter checkpoint (lifter.pt)")
    parser.add_argument("dst", help="where to write the re-calibrated copy (may equal src)")
    parser.add_argument("--k", type=int, default=200, help="hypotheses per person in the fit")
    parser.add_argument("--data", help="mocap .npz (default: the checkpoint's training data)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    fit = calibrate(args.src, args.dst, args.k, args.data)
    print("| latent dof | temperature | val coverage | val best-of-K mm | val mean-of-K mm |")
    print("|---|---|---|---|---|")
    for r in fit["candidates"]:
        print(
            f"| {r['latent_dof']:g} | {r['temperature']:.3f} | {r['coverage']:.3f} | "
            f"{r['best_of_k_mm']:.1f} | {r['mean_of_k_mm']:.1f} |"
        )
    print(f"chosen: latent_dof {fit['latent_dof']:g}, temperature {fit['temperature']:.3f}")
    print(f"wrote {args.dst}")


if __name__ == "__main__":
    main()
