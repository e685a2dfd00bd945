"""Per-condition calibration of a noise-aware lifter on the validation subjects.

After the global fit (:func:`training.calibrate.fit_calibration`: one temperature and the
Student-t dof), the temperature gets a factor per 2D noise level: for each knot of
:data:`~hpe3d_ros.lifting.body_model.CALIB_KNOTS` (exact 2D, then steps of x2.1 in noise
relative to the person's size) the factor is bisected so that nominal 90 % per-joint
intervals cover 90 % of the validation joints whose input noise is nearest that knot, and
the knot values are the log-linear interpolation through these (mean noise level of the
group, factor) points (flat beyond the outermost); one more factor for inputs whose noise
level is not given, per knot of the person's log 2D size (``SIZE_KNOTS``: a detector's
pixel floor makes small, far people noisier). Groups with fewer than ``MIN_SAMPLES`` people
are skipped. The
factors are buffers of the model (``calib_values``, ``calib_unknown``), so they travel in
the checkpoint and the export.

Calibration views (:func:`calibration_views`): the validation subjects through the
training cameras and detector model (noise level given for ``noise_known_prob`` of them)
plus the evaluation cells of :mod:`training.conditions` (fixed camera, exact / 2 px / 5 px
at 3-25 m) with the level given and not given, every validation subject weighted equally
(:func:`balanced_poses`). The test subjects are never read.
"""

from __future__ import annotations

import numpy as np
import torch

from hpe3d_ros import metrics
from hpe3d_ros.lifting.normalize import N_NOISE_FEATURES, prepare_inputs, to_virtual
from hpe3d_ros.lifting.runtime import latent_noise
from training.conditions import CELLS, condition_views
from training.data import generate
from training.mocap import split_indices
from training.run_config import TrainConfig, load_run_mocap

MIN_SAMPLES = 60


def balanced_poses(
    poses: np.ndarray, subject: np.ndarray, per_subject: int, rng: np.random.Generator
) -> np.ndarray:
    """``per_subject`` poses of every subject (frames drawn without replacement while they
    last, then repeated): each validation subject weighs the same, however many frames it
    has (otherwise one rig subject with 1,212 frames would set the calibration of bodies
    never seen, which the small real-skeleton subjects represent)."""
    out = []
    for s in np.unique(subject):
        rows = np.flatnonzero(subject == s)
        reps = -(-per_subject // len(rows))
        pick = np.concatenate([rng.permutation(rows) for _ in range(reps)])[:per_subject]
        out.append(poses[pick])
    return np.concatenate(out)


def calibration_views(
    cfg: TrainConfig, mocap: dict | None = None, per_subject: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """Validation features (M, F) float32 and targets (M, 16, 3) metres (module docstring).

    Every validation subject contributes ``per_subject`` people to each kind of view (two
    training-camera views, and each evaluation cell with the noise level given and not).
    """
    mocap = load_run_mocap(cfg) if mocap is None else mocap
    rows = split_indices(mocap["subject"], "val", cfg.split)
    rng = np.random.default_rng(cfg.seed + 76)
    poses, subject = mocap["poses"][rows], mocap["subject"][rows]
    base = generate(
        balanced_poses(poses, subject, 2 * per_subject, rng), cfg.augment,
        np.random.default_rng(cfg.seed + 1), False, cfg.conf_threshold,
        noise_input=cfg.model.noise_input,
    )  # fmt: skip
    feats, targets = [base.feats], [base.target_v]
    for i, cell in enumerate(CELLS):
        views = balanced_poses(poses, subject, per_subject, rng)
        b = condition_views(views, cell, np.random.default_rng(cfg.seed + 77 + i))
        for given in (b.noise_std, None):
            f, R = prepare_inputs(b.kp_norm, b.conf, cfg.conf_threshold, given, True)
            feats.append(f)
            targets.append(to_virtual(b.pose_cam, R)[:, 1:].astype(np.float32))
    return np.concatenate(feats), np.concatenate(targets)


def _bisect(cover, lo: float = 0.2, hi: float = 6.0, level: float = 0.9) -> float:
    for _ in range(10):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cover(mid) < level else (lo, mid)
    return round(0.5 * (lo + hi), 3)


def fit_condition_calibration(
    model,
    feats: np.ndarray,
    target_m: np.ndarray,
    temperature: float,
    dof: float,
    k: int = 100,
    level: float = 0.9,
    seed: int = 4321,
) -> dict:
    """Fit ``model.calib_values`` / ``calib_unknown`` in place; returns the table per group."""
    x_all = torch.from_numpy(np.asarray(feats, dtype=np.float32))
    with torch.no_grad():
        model.calib_values.fill_(1.0)
        model.calib_unknown.fill_(1.0)
        c, mu, logvar, lengths, ones = model.encode(x_all)
        # which group each sample calibrates: nearest knot if the level is given, else -1
        knots = model.calib_knots
        level_feat, given = model.noise_level(x_all)
        group = torch.where(
            given > 0.5, (level_feat[:, None] - knots[None]).abs().argmin(1), torch.tensor(-1)
        ).numpy()
        eps = torch.from_numpy(latent_noise(len(x_all), k, model.latent_dim, seed, dof))

        def coverage(sel: np.ndarray, factor: float) -> float:
            s = torch.from_numpy(sel)
            cond = (c[s], mu[s], logvar[s], lengths[s], ones[s] * factor)
            h = model.decode(cond, eps[s], temperature).numpy().reshape(len(sel), k, 16, 3)
            return float(metrics.coverage(h, target_m[sel], level).mean())

        size_feat = x_all[:, model.cfg.n_in - N_NOISE_FEATURES - 1]
        size_group = (size_feat[:, None] - model.size_knots[None]).abs().argmin(1).numpy()
        rows = []
        for mode, buffer, knots_, feat in (
            ("given", model.calib_values, knots, level_feat),
            ("unknown", model.calib_unknown, model.size_knots, size_feat),
        ):
            fitted, at = {}, {}
            for g in range(len(knots_)):
                sel = np.flatnonzero((group == g) if mode == "given"
                                     else (group == -1) & (size_group == g))  # fmt: skip
                row = {"mode": mode, "knot": float(knots_[g]), "samples": len(sel)}
                rows.append(row)
                if len(sel) < MIN_SAMPLES:
                    continue
                fitted[g] = _bisect(lambda t, sel=sel: coverage(sel, t), level=level)
                at[g] = float(feat[sel].mean())  # where this factor holds
                row.update(mean_feature=at[g], factor=fitted[g],
                           coverage=coverage(sel, fitted[g]))  # fmt: skip
            if fitted:  # log-linear through (mean feature, factor) of each group, flat beyond
                xs = np.array([at[g] for g in sorted(fitted)])
                ys = [np.log(fitted[g]) for g in sorted(fitted)]
                buffer.copy_(torch.tensor(np.exp(np.interp(knots_.numpy(), xs, ys))))
    return {
        "knots": knots.tolist(),
        "values": model.calib_values.tolist(),
        "size_knots": model.size_knots.tolist(),
        "unknown": model.calib_unknown.tolist(),
        "groups": rows,
    }
