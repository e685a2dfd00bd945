"""Calibrate the temporal lifter's latent noise on the validation subjects.

Re-fit a written entry with ``python -m training.train_temporal --recalibrate
runs/temporal_v1/temporal.pt`` (in place, or ``--out`` elsewhere); this module never imports
the trainer. The fits are lifter v2's, applied to every counted frame of the
validation chunks with its history: the global temperature and Student-t dof
(:func:`training.calibrate.fit_calibration`), then the per-condition factors on the current
frame's noise level or size (:func:`training.condition_calibration.
fit_condition_calibration`). Test subjects are never read. With ``calibration_balanced``
(``--recalibrate ... --balanced``) every validation subject's frames weigh the same, as in
the single frame's calibration.
"""

from __future__ import annotations

import numpy as np
import torch

from training.calibrate import fit_calibration
from training.condition_calibration import balanced_poses, fit_condition_calibration


def validation_rows(model, batch, balanced: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The graph inputs of each counted position of ``batch`` (N, packed_size): the frame's
    features and its window's codes (:meth:`TemporalBodyVAE.encode`), targets (N, 16, 3).

    ``balanced``: as many rows of every subject (``batch.subject``), N / subjects each, drawn
    without replacement while they last, then repeated (:func:`training.condition_calibration.
    balanced_poses`), so that a subject with most of the frames does not set the calibration
    of bodies never seen."""
    ch = batch.tensors()
    w = model.window
    with torch.no_grad():
        grid = model.grid(model.frame_codes(ch.frames), ch.i0, ch.i1, ch.w, ch.seen)
    bi, pi = np.nonzero(batch.mask)
    if balanced:
        if batch.subject is None:
            raise ValueError("balanced calibration needs the chunks' subjects")
        subject = batch.subject[bi]
        per_subject = round(len(bi) / len(np.unique(subject)))
        pick = balanced_poses(np.arange(len(bi)), subject, per_subject, np.random.default_rng(5))
        bi, pi = bi[pick], pi[pick]
    windows = grid[torch.from_numpy(bi)[:, None], torch.from_numpy(pi[:, None] + np.arange(w))]
    packed = np.concatenate([batch.frames[batch.cur[bi, pi]], windows.flatten(1).numpy()], 1)
    return packed.astype(np.float32), batch.target[bi, pi].reshape(-1, 16, 3)


def calibrate_model(model, cfg, val, quiet: bool = True) -> dict:
    """Fit temperature, dof and per-condition factors of ``model`` (in place); the fit.

    The rows put the current frame's features first, so the per-condition fit reads that
    frame's noise level and size (as :meth:`BodyCVAE.temperature_scale` does). ``val``: the
    run's validation chunks (:func:`training.train_temporal.validation_chunks`)."""
    model.eval()
    rows, target = validation_rows(model, val, cfg.calibration_balanced)
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
