"""Calibrate the temporal lifter's latent noise on the validation subjects.

``python -m training.temporal_calibrate runs/temporal_v1/temporal.pt`` (re-fit in place, or
``--out`` elsewhere). The fits are lifter v2's, applied to every counted frame of the
validation chunks with its history: the global temperature and Student-t dof
(:func:`training.calibrate.fit_calibration`), then the per-condition factors on the current
frame's noise level or size (:func:`training.condition_calibration.
fit_condition_calibration`). Test subjects are never read.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from training.calibrate import fit_calibration
from training.condition_calibration import fit_condition_calibration


def validation_rows(model, batch) -> tuple[np.ndarray, np.ndarray]:
    """The graph inputs of each counted position of ``batch`` (N, packed_size): the frame's
    features and its window's codes (:meth:`TemporalBodyVAE.encode`), targets (N, 16, 3)."""
    ch = batch.tensors()
    w = model.window
    with torch.no_grad():
        grid = model.grid(model.frame_codes(ch.frames), ch.i0, ch.i1, ch.w, ch.seen)
    bi, pi = np.nonzero(batch.mask)
    windows = grid[torch.from_numpy(bi)[:, None], torch.from_numpy(pi[:, None] + np.arange(w))]
    packed = np.concatenate([batch.frames[batch.cur[bi, pi]], windows.flatten(1).numpy()], 1)
    return packed.astype(np.float32), batch.target[bi, pi].reshape(-1, 16, 3)


def calibrate_model(model, cfg, val, quiet: bool = True) -> dict:
    """Fit temperature, dof and per-condition factors of ``model`` (in place); the fit.

    The rows put the current frame's features first, so the per-condition fit reads that
    frame's noise level and size (as :meth:`BodyCVAE.temperature_scale` does). ``val``: the
    run's validation chunks (:func:`training.train_temporal.validation_chunks`)."""
    model.eval()
    rows, target = validation_rows(model, val)
    with torch.no_grad():
        model.calib_values.fill_(1.0)
        model.calib_unknown.fill_(1.0)
    x = torch.from_numpy(rows)
    fit = fit_calibration(model, x, target, np.zeros(48), np.ones(48), k=cfg.calibration_k)
    fit["conditions"] = fit_condition_calibration(
        model, rows, target, fit["temperature"], fit["latent_dof"], k=cfg.calibration_k
    )
    if not quiet:
        for r in fit["candidates"]:
            print(
                f"dof {r['latent_dof']:g}: T {r['temperature']:.3f} coverage "
                f"{r['coverage']:.3f} best {r['best_of_k_mm']:.1f} mean "
                f"{r['mean_of_k_mm']:.1f}"
            )
        print(
            f"chosen dof {fit['latent_dof']:g}, T {fit['temperature']:.3f}; factors "
            f"{fit['conditions']['values']} unknown {fit['conditions']['unknown']}"
        )
    return fit


def main(argv: list[str] | None = None) -> None:
    from hpe3d_ros.lifting.temporal import build_temporal
    from training.train_temporal import RunData, TemporalTrainConfig, validation_chunks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entry", help="temporal.pt (a checkpoint's temporal entry)")
    parser.add_argument("--out", help="write here (default: in place)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    entry = torch.load(args.entry, map_location="cpu", weights_only=True)
    model = build_temporal(entry["model_config"], entry["temporal_config"])
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in entry["state_dict"].items()}
    )
    cfg = TemporalTrainConfig(**entry["train_config"])
    fit = calibrate_model(model, cfg, validation_chunks(cfg, RunData(cfg), model.window), False)
    entry["state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    entry["temperature"], entry["latent_dof"] = fit["temperature"], fit["latent_dof"]
    entry["metrics"] = {**entry.get("metrics", {}), **{f"val_{k}": v for k, v in fit.items()}}
    torch.save(entry, args.out or args.entry)


if __name__ == "__main__":
    main()
