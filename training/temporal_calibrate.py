"""Calibrate the temporal lifter's latent noise on the validation subjects.

``python -m training.temporal_calibrate runs/temporal_v1/temporal.pt`` (re-fit in place, or
``--out`` elsewhere). The fits are lifter v2's, applied to validation *windows* (each
counted frame of the validation chunks with its history): the global temperature and
Student-t dof (:func:`training.calibrate.fit_calibration`), then the per-condition factors
on the current frame's noise level or size (:func:`training.condition_calibration.
fit_condition_calibration`, through :class:`PackedWindows`). Test subjects are never read.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from training.calibrate import fit_calibration
from training.condition_calibration import fit_condition_calibration


class PackedWindows:
    """The temporal model seen by the single-frame calibration code.

    One row per window: the current (last) frame's inputs first, then the whole window, so
    the columns the per-condition fit reads (noise level, log spread) are the current
    frame's; ``encode`` unpacks the window. Buffers are the model's own (fitted in place).
    """

    def __init__(self, model) -> None:
        self.model = model
        self.cfg = model.cfg
        self.latent_dim = model.latent_dim
        self.f = model.tcfg.frame_features
        for name in ("calib_knots", "calib_values", "size_knots", "calib_unknown"):
            setattr(self, name, getattr(model, name))

    @staticmethod
    def pack(windows: np.ndarray) -> np.ndarray:
        """(N, W, F + 1) -> (N, (W + 1) (F + 1))."""
        return np.concatenate([windows[:, -1], windows.reshape(len(windows), -1)], axis=1)

    def encode(self, packed: torch.Tensor):
        return self.model.encode(packed[:, self.f :].unflatten(1, (-1, self.f)))

    def decode(self, *args, **kwargs):
        return self.model.decode(*args, **kwargs)

    def noise_level(self, packed: torch.Tensor):
        return self.model.noise_level(packed[:, : self.f - 1])


def validation_windows(batch, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows (N, W, F + 1) ending at each counted frame of chunks, targets (N, 16, 3)."""
    bi, pi = np.nonzero(batch.mask)
    idx = pi[:, None] + np.arange(window)[None]
    return batch.x[bi[:, None], idx], batch.target[bi, pi].reshape(-1, 16, 3)


def calibrate_model(model, cfg, data, quiet: bool = True) -> dict:
    """Fit temperature, dof and per-condition factors of ``model`` (in place); the fit."""
    from training.train_temporal import validation_chunks

    model.eval()
    win, target = validation_windows(validation_chunks(cfg, data, model.window), model.window)
    with torch.no_grad():
        model.calib_values.fill_(1.0)
        model.calib_unknown.fill_(1.0)
    fit = fit_calibration(
        model, torch.from_numpy(win), target, np.zeros(48), np.ones(48), k=cfg.calibration_k
    )
    fit["conditions"] = fit_condition_calibration(
        PackedWindows(model),
        PackedWindows.pack(win),
        target,
        fit["temperature"],
        fit["latent_dof"],
        k=cfg.calibration_k,
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
    from training.train_temporal import RunData, TemporalTrainConfig

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
    fit = calibrate_model(model, cfg, RunData(cfg), quiet=False)
    entry["state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    entry["temperature"], entry["latent_dof"] = fit["temperature"], fit["latent_dof"]
    entry["metrics"] = {**entry.get("metrics", {}), **{f"val_{k}": v for k, v in fit.items()}}
    torch.save(entry, args.out or args.entry)


if __name__ == "__main__":
    main()
