"""Train a lifter: ``python -m training.train --config training/config/cvae.yaml``.

Seeded; runs on the GPU when torch sees one (``device: auto``), else on the CPU. Every
epoch draws fresh bodies, cameras and detector noise from the training subjects
(:mod:`training.data`). Logs to ``<out_dir>/log.csv`` (and TensorBoard when installed),
keeps ``ckpt.pt`` (resumable: ``--resume``) and writes ``lifter.pt``, the slim checkpoint
:func:`hpe3d_ros.lifting.load_lifter` reads, from the best validation epoch. For the VAEs
the latent noise is then calibrated on the validation subjects (never the test subjects):
a temperature and a Student-t dof such that nominal 90 % intervals cover 90 % of the
validation joints (:func:`training.calibrate.fit_calibration`).
"""

from __future__ import annotations

import argparse
import csv
import math
import pickle
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hpe3d_ros import metrics
from hpe3d_ros.lifting.architectures import build_model
from hpe3d_ros.lifting.runtime import Lifter, make_checkpoint
from training.calibrate import fit_calibration, fit_size_std
from training.condition_calibration import calibration_views, fit_condition_calibration
from training.data import generate
from training.mocap import split_indices
from training.run_config import TrainConfig, load_run_mocap, run_templates, validation_set

__all__ = ["TrainConfig", "train", "validation_set"]

REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """HEAD commit, with ``-dirty`` when the lifter or training code has uncommitted edits."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "hpe3d_ros/lifting", "training"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return (head + ("-dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def resolve_device(name: str) -> torch.device:
    """``"auto"``: the first CUDA device when torch sees one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"device {name!r} requested but torch sees no CUDA device")
    return dev


def predict_normalised(model, feats: torch.Tensor, k: int, temperature: float = 1.0, gen=None):
    """(N, F) -> (N, k, D) normalised predictions in eval mode (k = 1 for the baseline).

    ``feats`` on the model's device; ``gen`` a CPU generator (same draw on any device).
    """
    model.eval()
    with torch.no_grad():
        cond = model.encode(feats)
        L = model.latent_dim
        eps = torch.randn(feats.shape[0], k if L else 1, L, generator=gen) if L else None
        if eps is not None:
            eps = eps.to(feats.device)
        return model.decode(cond, eps, temperature)


def train(cfg: TrainConfig, resume: bool = False, quiet: bool = False) -> Path:
    """Run training; returns the path of the slim ``lifter.pt``."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mocap = load_run_mocap(cfg)
    templates = run_templates(cfg, mocap)
    train_idx = split_indices(mocap["subject"], "train", cfg.split)
    if cfg.max_train_frames:
        train_idx = rng.choice(train_idx, cfg.max_train_frames, replace=False)
    train_poses = mocap["poses"][train_idx]
    val = validation_set(cfg, mocap)
    noise_in = cfg.model.noise_input
    if getattr(build_model(cfg.model), "outputs_metres", False):
        mean, std = np.zeros(48), np.ones(48)  # the network's output is metres already
    else:
        rng_stats = np.random.default_rng(cfg.seed + 2)
        stats = generate(
            train_poses, cfg.augment, rng_stats, True, cfg.conf_threshold, None, 6, templates
        )
        y_stats = stats.target_v.reshape(len(stats.target_v), -1)
        mean, std = y_stats.mean(0), np.maximum(y_stats.std(0), 1e-3)

    device = resolve_device(cfg.device)
    model = build_model(cfg.model)
    model.target_std.copy_(torch.from_numpy(std))
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch, best_val = 0, math.inf
    ckpt_path = out / "ckpt.pt"
    if resume and ckpt_path.is_file():
        ck = load_resume_state(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, best_val = ck["epoch"] + 1, ck["best_val"]
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
    writer = _tensorboard(out)
    val_x = torch.from_numpy(val.feats)
    val_x_dev = val_x.to(device)
    val_t = val.target_v
    log_path = out / "log.csv"
    log_new = not (resume and log_path.is_file())
    with log_path.open("w" if log_new else "a", newline="") as log_file:
        log = csv.writer(log_file)
        if log_new:
            log.writerow(
                [
                    "epoch",
                    "lr",
                    "beta",
                    "train_loss",
                    "train_mpjpe_mm",
                    "val_mpjpe_mm",
                    "val_best_of_k_mm",
                    "seconds",
                ]
            )
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.time()
            frac = epoch / max(1, cfg.epochs - 1)
            lr = cfg.lr * (
                cfg.lr_final_frac + (1 - cfg.lr_final_frac) * 0.5 * (1 + math.cos(math.pi * frac))
            )
            for g in opt.param_groups:
                g["lr"] = lr
            beta = cfg.beta * min(1.0, (epoch + 1) / max(1, cfg.beta_warmup_epochs))
            poses = np.repeat(train_poses, cfg.epoch_repeats, axis=0)
            batch = generate(
                poses, cfg.augment, rng, True, cfg.conf_threshold, None, 6, templates, noise_in
            )
            x = torch.from_numpy(batch.feats).to(device)
            y = torch.from_numpy((batch.target_v.reshape(len(x), -1) - mean) / std).float()
            y = y.to(device)
            perm = torch.from_numpy(rng.permutation(len(x))).to(device)
            model.train()
            sums, n_b = {}, 0
            bar = tqdm(
                range(0, len(x) - cfg.batch_size + 1, cfg.batch_size),
                desc=f"epoch {epoch}",
                leave=False,
                disable=quiet,
            )
            for i in bar:
                idx = perm[i : i + cfg.batch_size]
                parts = model.losses(
                    x[idx],
                    y[idx],
                    beta=beta,
                    alpha=cfg.alpha,
                    sigma_m=cfg.sigma_m,
                    w2d=cfg.w2d,
                    w_align=cfg.w_align,
                    w_mean=cfg.w_mean,
                    n_mean=cfg.n_mean,
                    w_best=cfg.w_best,
                    w_bone=cfg.w_bone,
                    w_shape=cfg.w_shape,
                )
                opt.zero_grad(set_to_none=True)
                parts["loss"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                for k_, v in parts.items():
                    sums[k_] = sums.get(k_, 0.0) + float(v.detach())
                n_b += 1
                bar.set_postfix(
                    loss=f"{float(parts['loss'].detach()):.3f}",
                    mpjpe=f"{1000 * float(parts['mpjpe_m'].detach()):.1f}",
                )
            avg = {k_: v / max(1, n_b) for k_, v in sums.items()}
            val_mean, val_best = _validate(model, val_x_dev, val_t, mean, std, cfg.val_samples)
            row = [
                epoch,
                f"{lr:.3g}",
                f"{beta:.3g}",
                f"{avg.get('loss', 0):.4f}",
                f"{1000 * avg.get('mpjpe_m', 0):.1f}",
                f"{val_mean:.1f}",
                f"{val_best:.1f}",
                f"{time.time() - t0:.1f}",
            ]
            log.writerow(row)
            log_file.flush()
            if writer is not None:
                for k_, v in avg.items():
                    writer.add_scalar(f"train/{k_}", v, epoch)
                writer.add_scalar("val/mean_mpjpe_mm", val_mean, epoch)
                writer.add_scalar("val/best_of_k_mpjpe_mm", val_best, epoch)
            if not quiet:
                tqdm.write(
                    f"epoch {epoch}: loss {avg.get('loss', 0):.3f} "
                    f"train {1000 * avg.get('mpjpe_m', 0):.1f} mm, val mean {val_mean:.1f} mm, "
                    f"val best-of-{cfg.val_samples} {val_best:.1f} mm ({time.time() - t0:.0f} s)"
                )
            if val_mean < best_val:
                best_val = val_mean
                torch.save(
                    {"model": model.state_dict(), "epoch": epoch, "val_mean_mm": val_mean},
                    out / "best.pt",
                )
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch,
                    "best_val": best_val,
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                },
                ckpt_path,
            )
    if writer is not None:
        writer.close()
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    model.to("cpu")  # calibration and the checkpoint on the CPU: same figures on any machine
    model.load_state_dict(best["model"])
    model.eval()
    temperature, dof, fit = 1.0, math.inf, {}
    if model.latent_dim and cfg.fit_temperature:
        fit = fit_calibration(model, val_x, val_t, mean, std, k=cfg.calibration_k)
        temperature, dof = fit["temperature"], fit["latent_dof"]
        if not quiet:
            for r in fit["candidates"]:
                tqdm.write(
                    f"calibration dof {r['latent_dof']:g}: T {r['temperature']:.3f}, "
                    f"val coverage {r['coverage']:.3f}, best-of-K {r['best_of_k_mm']:.1f} mm, "
                    f"mean {r['mean_of_k_mm']:.1f} mm"
                )
            tqdm.write(f"chosen: dof {dof:g}, temperature {temperature:.3f}")
        if cfg.model.noise_input and hasattr(model, "calib_values"):
            views = calibration_views(cfg, mocap)
            fit["conditions"] = fit_condition_calibration(model, *views, temperature, dof)
            if not quiet:
                cond = fit["conditions"]
                tqdm.write(f"per-condition factors: given {cond['values']}, "
                           f"unknown {cond['unknown']}")  # fmt: skip
    ck = make_checkpoint(
        model,
        mean,
        cfg.conf_threshold,
        temperature,
        cfg.to_dict(),
        git_commit(),
        {
            "best_epoch": int(best["epoch"]),
            "val_mean_mpjpe_mm": float(best["val_mean_mm"]),
            **{f"val_{k_}": v for k_, v in fit.items()},
        },
        half=cfg.half_weights,
        latent_dof=dof,
    )
    if model.latent_dim and cfg.fit_temperature and cfg.model.arch == "bodyvae":
        size = fit_size_std(Lifter(ck), cfg, mocap)  # one body per person: size -> placement
        ck["size_std"] = size["size_std"]
        ck["metrics"]["val_size"] = size
        if not quiet:
            tqdm.write(f"size_std {size['size_std']:.4f} (fitted {size['fitted']:.4f})")
    torch.save(ck, out / "lifter.pt")
    return out / "lifter.pt"


def load_resume_state(path: Path) -> dict:
    """``ckpt.pt`` for ``--resume``: tensors and plain values only, never arbitrary pickles.

    Everything a resume needs (weights, optimiser state, epoch, numpy and torch RNG states)
    is tensors, dicts, lists, ints, floats and strings, so ``weights_only=True`` reads it; a
    file that asks for anything else (a planted ``__reduce__``) is refused with one clear
    error and nothing in it runs.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message starts with advice to load with weights_only=False: keep only why
        why = [ln for ln in str(exc).splitlines() if "GLOBAL" in ln or "Unsupported" in ln]
        first = why[0].strip() if why else "unsupported content"
        raise SystemExit(
            f"refusing to resume from {path}: not a plain checkpoint ({first})"
        ) from None


def _validate(model, val_x, val_t, mean, std, k: int) -> tuple[float, float]:
    """Validation MPJPE (mm) of the mean prediction and best-of-k, in the virtual frame."""
    gen = torch.Generator().manual_seed(0)
    y = predict_normalised(model, val_x, k, 1.0, gen).cpu().numpy() * std + mean
    hyps = y.reshape(len(y), -1, 16, 3)
    mean_err = float(metrics.mean_of_k_mpjpe(hyps, val_t).mean()) * 1000
    best_err = float(metrics.best_of_k_mpjpe(hyps, val_t).mean()) * 1000
    return mean_err, best_err


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional
        return None
    return SummaryWriter(str(out / "tb"))


def halve_checkpoint(src: str | Path, dst: str | Path) -> None:
    """Copy a slim lifter checkpoint with float16 weights (half the size; loads as float32)."""
    ck = torch.load(src, map_location="cpu", weights_only=True)
    ck["state_dict"] = {
        k: v.half() if v.is_floating_point() else v for k, v in ck["state_dict"].items()
    }
    torch.save(ck, dst)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML file (training/config/*.yaml)")
    parser.add_argument(
        "--halve", nargs=2, metavar=("SRC", "DST"), help="only write a float16 copy of SRC"
    )
    parser.add_argument("--resume", action="store_true", help="continue from <out_dir>/ckpt.pt")
    parser.add_argument("--out-dir", help="override out_dir")
    parser.add_argument("--epochs", type=int, help="override epochs")
    parser.add_argument("--device", help="override device (auto, cpu, cuda, cuda:N)")
    args = parser.parse_args(argv)
    if args.halve:
        halve_checkpoint(*args.halve)
        return
    if not args.config:
        parser.error("--config is required")
    cfg = TrainConfig.from_yaml(args.config)
    if args.out_dir:
        cfg.out_dir = args.out_dir
    if args.epochs:
        cfg.epochs = args.epochs
    if args.device:
        cfg.device = args.device
    path = train(cfg, resume=args.resume)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
