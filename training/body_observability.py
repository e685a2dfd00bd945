"""How much of a body's proportions can one 2D view show at all? An upper bound for a lifter.

:mod:`training.body_reading` measures how far a lifter reads proportions (slope of predicted
on true ``log(group / size)`` over generator-drawn bodies, validation motions, one cell). This
trains a regressor that does nothing else (an MLP from the 2D features to the proportions and
the log size, squared error on standardised targets) and measures it the same way:

- ``--views cell``: trained on views of the training motions in the measured cell itself
  (one camera, one noise level, every joint seen): what the geometry allows there;
- ``--views lifter``: trained on the lifter's own training views (its checkpoint's
  ``train_config``: random cameras, detector-like noise with its pixel floor, drops), the
  level given as the lifter gets it: what a network trained for the whole range can read.

If the second is no better than the lifter, the lifter's weak reading is not its
architecture's fault::

    python -m training.body_observability --views cell lifter
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.normalize import prepare_inputs
from training.bodies import BONE_GROUPS, bone_lengths
from training.body_bias import cell_by_name
from training.body_reading import Reading, _reading, drawn_bodies, proportions
from training.conditions import condition_views
from training.data import generate
from training.mocap import split_indices
from training.run_config import TrainConfig, load_run_mocap, run_templates

KEYS = (*BONE_GROUPS, "size")


def _targets(lengths: np.ndarray) -> np.ndarray:
    p, size = proportions(lengths)
    return np.concatenate([p, np.log(size)[:, None]], 1).astype(np.float32)


def _given_level_features(views) -> np.ndarray:
    """A cell's views (:func:`condition_views`) -> features with their noise level given
    (``noise_std`` is 0 for exact 2D, so exact reads as a given exact level)."""
    return prepare_inputs(views.kp_norm, views.conf, 0.2, views.noise_std, True)[0]


def observability(
    views: str = "cell",
    cell: str = "exact@8-15m",
    weights: str | None = None,
    epochs: int = 40,
    seed: int = 0,
    log=print,
) -> dict[str, Reading]:
    """Group (and ``"size"``) -> :class:`Reading` of a dedicated regressor (module doc)."""
    if views not in ("cell", "lifter"):
        raise ValueError(f"views: 'cell' or 'lifter', not {views!r}")
    c = cell_by_name(cell)
    cfg = TrainConfig.from_dict(load_lifter(weights).checkpoint["train_config"])
    m = load_run_mocap(cfg)
    templates = run_templates(cfg, m)
    rows = split_indices(m["subject"], "train", cfg.split)
    rng = np.random.default_rng(seed)
    poses_v, lengths_v = drawn_bodies(m, "val", np.random.default_rng(seed + 1))
    x_val = _given_level_features(condition_views(poses_v, c, np.random.default_rng(seed + 2)))
    y_val = _targets(lengths_v)

    def draw() -> tuple[np.ndarray, np.ndarray]:
        if views == "lifter":
            b = generate(m["poses"][rows], cfg.augment, rng, True, cfg.conf_threshold,
                         None, 6, templates, True)  # fmt: skip
            return b.feats, _targets(bone_lengths(b.pose_cam.astype(np.float64)))
        poses, lengths = drawn_bodies(m, "train", rng)
        return _given_level_features(condition_views(poses, c, rng)), _targets(lengths)

    x0, y0 = draw()
    mu, sd = y0.mean(0), y0.std(0)
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(x0.shape[1], 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(),
        nn.Linear(512, 512), nn.GELU(), nn.Linear(512, y0.shape[1]),
    )  # fmt: skip
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    t0 = time.time()
    for epoch in range(epochs):
        x, y = (x0, y0) if epoch == 0 else draw()
        xt, yt = torch.from_numpy(x), torch.from_numpy((y - mu) / sd)
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 512):
            b = perm[i : i + 512]
            loss = (net(xt[b]) - yt[b]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        log(f"{views} epoch {epoch}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    with torch.no_grad():
        pred = net(torch.from_numpy(x_val)).numpy() * sd + mu
    return {k: _reading(y_val[:, i], pred[:, i]) for i, k in enumerate(KEYS)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--views", nargs="+", default=["cell", "lifter"])
    ap.add_argument("--cell", default="exact@8-15m")
    ap.add_argument("--weights", help="the lifter whose training views to use (default: shipped)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"| regressor trained on | {' | '.join(KEYS)} |\n|---|" + "---|" * len(KEYS))
    for views in args.views:
        try:
            res = observability(views, args.cell, args.weights, args.epochs, log=lambda *_: None)
        except (OSError, ValueError) as e:  # a missing file, an unknown cell: one line
            ap.error(str(e))
        cols = " | ".join(f"{res[k].slope:+.2f} ({res[k].r:.2f})" for k in KEYS)
        print(f"| {views} views | {cols} |", flush=True)


if __name__ == "__main__":
    main()
