"""Train a lifter's 2D noise estimator and add it to the checkpoint.

:mod:`hpe3d_ros.lifting.noise_estimate` says what it is for. The estimator learns from the
lifter's own training views (its checkpoint's ``train_config``: the same subjects, body
generator, cameras, detector-like noise, drops and confidences), drawn afresh every epoch:
input the plain 2D features, target the per-joint noise-level feature of the noise those
views were drawn with (L1 over the visible joints). Validation subjects' views, drawn the
same way, report the error; nothing is chosen on the test subjects::

    python -m training.noise_estimator --weights hpe3d_ros/weights/lifter_default.pt \\
        --out runs/noise_est/lifter.pt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hpe3d_ros.lifting.noise_estimate import NoiseEstimator
from hpe3d_ros.lifting.normalize import N_FEATURES, N_JOINTS, prepare_inputs
from training.data import generate
from training.mocap import split_indices
from training.run_config import TrainConfig, load_run_mocap, run_templates


def noise_views(cfg: TrainConfig, poses: np.ndarray, templates, rng: np.random.Generator):
    """Training-like views of ``poses`` -> plain features (N, F), per-joint noise-level
    targets (N, 17) and the visible-joint mask (N, 17)."""
    b = generate(poses, cfg.augment, rng, True, cfg.conf_threshold, None, 6, templates, True)
    feats, _ = prepare_inputs(b.kp_norm, b.conf, cfg.conf_threshold, b.noise_std, True)
    plain = feats[:, :N_FEATURES]
    level = feats[:, N_FEATURES : N_FEATURES + N_JOINTS]
    valid = feats[:, 2 * N_JOINTS : 3 * N_JOINTS] > 0.5
    return plain, level, valid


def train_estimator(
    cfg: TrainConfig,
    epochs: int = 30,
    width: int = 256,
    seed: int = 0,
    log=print,
) -> tuple[NoiseEstimator, dict]:
    """The estimator for the lifter trained with ``cfg`` and its validation errors."""
    mocap = load_run_mocap(cfg)
    templates = run_templates(cfg, mocap)
    rows = split_indices(mocap["subject"], "train", cfg.split)
    val_rows = split_indices(mocap["subject"], "val", cfg.split)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(N_FEATURES, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, N_JOINTS),
    )  # fmt: skip
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    val_rng = np.random.default_rng(seed + 1)
    val = noise_views(cfg, mocap["poses"][val_rows], templates, val_rng)
    vx, vy, vm = (torch.from_numpy(a) for a in val)
    t0 = time.time()
    for epoch in range(epochs):
        x, y, m = (
            torch.from_numpy(a) for a in noise_views(cfg, mocap["poses"][rows], templates, rng)
        )
        perm = torch.randperm(len(x))
        net.train()
        for i in range(0, len(x), 256):
            b = perm[i : i + 256]
            err = ((net(x[b]) - y[b]).abs() * m[b]).sum() / m[b].sum().clamp_min(1)
            opt.zero_grad()
            err.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            val_err = float(((net(vx) - vy).abs() * vm).sum() / vm.sum())
        log(f"epoch {epoch}: val |level error| {val_err:.3f} ({time.time() - t0:.0f} s)")
    layers = [t.detach().numpy() for layer in net if isinstance(layer, nn.Linear)
              for t in (layer.weight.T.contiguous(), layer.bias)]  # fmt: skip
    est = NoiseEstimator({"layers": layers})
    return est, {"val_level_mae": val_err, "epochs": epochs, "width": width}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="a noise-aware lifter checkpoint")
    ap.add_argument("--out", required=True, help="the checkpoint with the estimator added")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ck = torch.load(args.weights, map_location="cpu", weights_only=True)
    if not ck.get("model_config", {}).get("noise_input"):
        ap.error(f"{args.weights}: not a noise-aware lifter (model_config.noise_input)")
    cfg = TrainConfig.from_dict(ck["train_config"])
    est, info = train_estimator(cfg, args.epochs, args.width, args.seed)
    ck["noise_estimator"] = {**est.to_entry(), "info": info}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, args.out)
    print(f"wrote {args.out} (validation |level error| {info['val_level_mae']:.3f})")


if __name__ == "__main__":
    main()
