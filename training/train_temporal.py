"""Train the temporal lifter: ``python -m training.train_temporal --config <yaml>``.

Chunks of mocap sequences through static virtual cameras (:mod:`training.temporal_data`),
the supervised sequence loss (:func:`~hpe3d_ros.lifting.sequence_loss.sequence_losses`)
on the 3D subjects and, when ``selfsup`` is on, the self-supervised losses of
:mod:`training.selfsup` on chunks of the 2D-only subjects (their 3D is never read). The
best validation epoch (mean-of-M MPJPE on fixed validation chunks) is calibrated on the
validation subjects (:mod:`training.temporal_calibrate`) and written as ``temporal.pt``
(the checkpoint's ``"temporal"`` entry); with ``base`` (a single-frame lifter v2 checkpoint)
also ``lifter.pt``, the file :func:`hpe3d_ros.lifting.load_lifter` reads.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from hpe3d_ros.lifting.model import ModelConfig
from hpe3d_ros.lifting.runtime import float_state
from hpe3d_ros.lifting.sequence_loss import SequenceLossConfig, motion_errors
from hpe3d_ros.lifting.temporal import TemporalBodyVAE, TemporalConfig
from hpe3d_ros.lifting.temporal_checkpoint import bundle, make_temporal_entry
from training.bodies import body_templates
from training.data import AugmentConfig
from training.mocap import DEFAULT_DATA, ORIG_DATA, load_all_mocap, split_indices
from training.selfsup import SelfSupConfig, selfsup_losses
from training.temporal_calibrate import calibrate_model
from training.temporal_data import SequenceConfig, draw_chunks, make_chunks, sequence_runs
from training.temporal_init import init_from_base, init_from_entry
from training.train import git_commit


@dataclass
class TemporalTrainConfig:
    """One temporal run (YAML; stored in the checkpoint)."""

    out_dir: str = "runs/temporal"
    data: str = str(DEFAULT_DATA)
    data_orig: str = str(ORIG_DATA)
    split: str = "v2"
    subjects_3d: list = field(default_factory=list)  # [] = every training subject
    subjects_2d: list = field(default_factory=list)  # 2D-only subjects (self-supervised)
    base: str = (
        ""  # single-frame lifter v2 checkpoint: initialises the model, bundled in lifter.pt
    )
    init: str = ""  # a temporal.pt to start from (fine-tuning); "" = the base's weights
    freeze_frames: bool = False  # keep the per-frame 2D encoder as the base has it
    seed: int = 0
    threads: int = 1
    epochs: int = 40
    epoch_repeats: float = 1.0  # counted frames per training frame per epoch
    batch_chunks: int = 32
    lr: float = 1e-3
    lr_final_frac: float = 0.05
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    beta_warmup_epochs: int = 3
    conf_threshold: float = 0.2
    val_views: int = 2
    val_samples: int = 10
    calibration_k: int = 100
    # every validation subject's counted frames weigh the same in the calibration (as the
    # single frame's, training.condition_calibration.balanced_poses); False = per frame
    calibration_balanced: bool = False
    model: dict = field(default_factory=dict)  # ModelConfig fields
    temporal: dict = field(default_factory=dict)  # TemporalConfig fields
    loss: dict = field(default_factory=dict)  # SequenceLossConfig fields
    augment: dict = field(default_factory=dict)  # AugmentConfig fields
    sequence: dict = field(default_factory=dict)  # SequenceConfig fields
    selfsup: dict = field(default_factory=dict)  # SelfSupConfig fields; {} = off

    @classmethod
    def from_yaml(cls, path: str | Path) -> TemporalTrainConfig:
        return cls(**(yaml.safe_load(Path(path).read_text()) or {}))

    def to_dict(self) -> dict:
        return asdict(self)

    def parts(self):
        """The typed sub-configs: model, temporal, loss, augment, sequence, selfsup."""
        model = ModelConfig(**{"arch": "bodyvae", "noise_input": True, **self.model})
        tup = {k: tuple(v) if isinstance(v, list) else v for k, v in self.augment.items()}
        seq = {k: tuple(v) if isinstance(v, list) else v for k, v in self.sequence.items()}
        tc = {k: tuple(v) if isinstance(v, list) else v for k, v in self.temporal.items()}
        return (
            model,
            TemporalConfig(**tc),
            SequenceLossConfig(**self.loss),
            AugmentConfig(**tup),
            SequenceConfig(**seq),
            SelfSupConfig(**self.selfsup) if self.selfsup else None,
        )


class RunData:
    """Mocap rows, sequence runs and body templates of one run."""

    def __init__(self, cfg: TemporalTrainConfig) -> None:
        m = load_all_mocap(cfg.data, cfg.data_orig or None)
        self.poses = m["poses"]
        self.subject = subj = m["subject"]
        train = split_indices(subj, "train", cfg.split)
        val = split_indices(subj, "val", cfg.split)
        rows_3d = train[np.isin(subj[train], cfg.subjects_3d)] if cfg.subjects_3d else train
        rows_2d = train[np.isin(subj[train], cfg.subjects_2d)] if cfg.subjects_2d else train[:0]
        if cfg.subjects_3d and cfg.subjects_2d and set(cfg.subjects_3d) & set(cfg.subjects_2d):
            raise ValueError("subjects_3d and subjects_2d overlap")
        self.runs_3d = sequence_runs(m["sequence"], subj, rows_3d)
        self.runs_2d = sequence_runs(m["sequence"], subj, rows_2d)
        self.runs_val = sequence_runs(m["sequence"], subj, val)
        self.n_3d = len(rows_3d)
        self.n_2d = len(rows_2d)
        # body proportions only from the 3D subjects' real skeletons (and the rigs)
        self.templates = body_templates(self.poses[rows_3d], subj[rows_3d], m["body"][rows_3d])


def validation_chunks(cfg: TemporalTrainConfig, data: RunData, window: int):
    """Fixed (seeded) validation chunks covering every validation frame ``val_views`` times."""
    _, _, _, aug, seq, _ = cfg.parts()
    rng = np.random.default_rng(cfg.seed + 1)
    span = seq.chunk + window - 1
    rows = []
    for _ in range(cfg.val_views):
        for run in data.runs_val:
            for end in range(len(run) - 1, -1, -seq.chunk):
                pos = end - span + 1 + np.arange(span)
                rows.append(np.where(pos >= 0, run[np.clip(pos, 0, None)], -1))
    tcfg = cfg.parts()[1]
    rows = np.array(rows)
    batch = make_chunks(
        data.poses, rows, aug, seq, window, rng, None, False, cfg.conf_threshold, tcfg.max_gap_s
    )
    batch.subject = data.subject[rows.max(axis=1)]  # a chunk is one run: one subject
    return batch


def evaluate_chunks(model: TemporalBodyVAE, batch, k: int, seed: int = 0) -> dict:
    """Mean-of-k MPJPE and velocity error (mm per 30 Hz grid frame, between consecutive
    counted frames at any camera rate) of counted frames."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    ch = batch.tensors()
    with torch.no_grad():
        cond = model.encode_sequence(ch)
        b, n = ch.mask.shape
        eps = torch.randn(b, 1, k, model.cfg.latent_dim, generator=gen)
        eps = eps.expand(b, n, -1, -1).flatten(0, 1)
        mean = model.decode(cond, eps).mean(1).unflatten(0, (b, n)).unflatten(-1, (16, 3))
    y = ch.target.unflatten(-1, (16, 3))
    err = (mean - y).norm(dim=-1).mean(-1)[ch.mask]
    lengths = torch.zeros(b, n, 16)
    vel, _, _ = motion_errors(mean[:, :, None], y, lengths, ch.nxt)
    return {"mpjpe_mm": 1000 * float(err.mean()), "vel_mm": 1000 * float(vel)}


def train(cfg: TemporalTrainConfig, quiet: bool = False) -> Path:
    """Run training; returns the path of ``temporal.pt`` (and ``lifter.pt`` with a base)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mcfg, tcfg, lcfg, aug, seq, ss = cfg.parts()
    data = RunData(cfg)
    if cfg.base:  # the base's architecture, the temporal config's residual
        mcfg = ModelConfig(**torch.load(cfg.base, weights_only=True)["model_config"])
    model = TemporalBodyVAE(mcfg, tcfg)
    if cfg.base:
        init_from_base(model, cfg.base)
    if cfg.init:
        init_from_entry(model, cfg.init)
    if cfg.freeze_frames:
        for p in model.cond_net.parameters():
            p.requires_grad_(False)
    window = model.window
    span = seq.chunk + window - 1
    val = validation_chunks(cfg, data, window)

    def chunks(runs):
        rows = draw_chunks(runs, cfg.batch_chunks, span, rng)
        return make_chunks(
            data.poses,
            rows,
            aug,
            seq,
            window,
            rng,
            data.templates,
            True,
            cfg.conf_threshold,
            tcfg.max_gap_s,
        )

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_chunks = max(cfg.batch_chunks, int(cfg.epoch_repeats * data.n_3d / seq.chunk))
    best, best_epoch = math.inf, -1
    log_path = out / "log.csv"
    with log_path.open("w", newline="") as fh:
        log = csv.writer(fh)
        log.writerow(
            [
                "epoch",
                "lr",
                "loss",
                "train_mpjpe_mm",
                "selfsup",
                "val_mpjpe_mm",
                "val_vel_mm",
                "seconds",
            ]
        )
        for epoch in range(cfg.epochs):
            t0 = time.time()
            frac = epoch / max(1, cfg.epochs - 1)
            lr = cfg.lr * (
                cfg.lr_final_frac + (1 - cfg.lr_final_frac) * 0.5 * (1 + math.cos(math.pi * frac))
            )
            for g in opt.param_groups:
                g["lr"] = lr
            lcfg.beta = min(1.0, (epoch + 1) / max(1, cfg.beta_warmup_epochs))
            model.train()
            if cfg.freeze_frames:  # batch-norm statistics and dropout as the base has them
                model.cond_net.eval()
            sums, steps = {}, 0
            for _ in range(n_chunks // cfg.batch_chunks):
                batch = chunks(data.runs_3d)
                parts = model.sequence_losses(batch.tensors(), lcfg)
                loss = parts["loss"]
                if ss is not None and data.runs_2d:  # 2D-only chunks: their 3D is not read
                    sparts = selfsup_losses(model, chunks(data.runs_2d).tensors(), ss)
                    loss = loss + ss.weight * sparts["loss"]
                    parts["selfsup"] = sparts["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                for key, v in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(v.detach())
                steps += 1
            avg = {key: v / max(1, steps) for key, v in sums.items()}
            res = evaluate_chunks(model, val, cfg.val_samples)
            log.writerow(
                [
                    epoch,
                    f"{lr:.3g}",
                    f"{avg['loss']:.4f}",
                    f"{1000 * avg['mpjpe_m']:.1f}",
                    f"{avg.get('selfsup', 0):.4f}",
                    f"{res['mpjpe_mm']:.1f}",
                    f"{res['vel_mm']:.2f}",
                    f"{time.time() - t0:.1f}",
                ]
            )
            fh.flush()
            if not quiet:
                print(
                    f"epoch {epoch}: loss {avg['loss']:.3f} val {res['mpjpe_mm']:.1f} mm, "
                    f"vel {res['vel_mm']:.2f} mm ({time.time() - t0:.0f} s)",
                    flush=True,
                )
            if res["mpjpe_mm"] < best:
                best, best_epoch = res["mpjpe_mm"], epoch
                torch.save({"model": model.state_dict(), "epoch": epoch}, out / "best.pt")
    if best_epoch < 0:
        raise SystemExit(f"{out}: no finite validation figure (training diverged)")
    state = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    model.eval()
    return finish(model, cfg, val, best_epoch, best, quiet)


def finish(model, cfg: TemporalTrainConfig, val, best_epoch: int, best: float, quiet=False):
    """Calibrate the best epoch's ``model`` on the validation chunks ``val`` and write
    ``temporal.pt`` (and ``lifter.pt`` with a base); returns the path of ``temporal.pt``."""
    out = Path(cfg.out_dir)
    fit = calibrate_model(model, cfg, val, quiet=quiet)
    entry = make_temporal_entry(
        model,
        cfg.conf_threshold,
        fit["temperature"],
        fit["latent_dof"],
        cfg.to_dict(),
        {
            "best_epoch": best_epoch,
            "val_mpjpe_mm": best,
            **{f"val_{k}": v for k, v in fit.items()},
        },
        git_commit(),
    )
    torch.save(entry, out / "temporal.pt")
    if cfg.base:
        bundle(cfg.base, out / "temporal.pt", out / "lifter.pt")
    return out / "temporal.pt"


def finish_run(cfg: TemporalTrainConfig) -> Path:
    """:func:`finish` for a run whose training ended without it (its ``best.pt``)."""
    torch.set_num_threads(cfg.threads)
    mcfg, tcfg, *_ = cfg.parts()
    if cfg.base:
        mcfg = ModelConfig(**torch.load(cfg.base, weights_only=True)["model_config"])
    model = TemporalBodyVAE(mcfg, tcfg)
    state = torch.load(Path(cfg.out_dir) / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    model.eval()
    log = (Path(cfg.out_dir) / "log.csv").read_text().splitlines()[1:]
    best = min(float(row.split(",")[5]) for row in log)
    val = validation_chunks(cfg, RunData(cfg), model.window)
    return finish(model, cfg, val, int(state["epoch"]), best)


def recalibrate(path: str, out: str | None = None, balanced: bool | None = None) -> str:
    """Re-fit temperature, dof and per-condition factors of the temporal entry at ``path`` on
    its run's validation chunks; written to ``out`` (default: in place). ``balanced``
    overrides the run's ``calibration_balanced`` (and is recorded in the entry's config)."""
    from hpe3d_ros.lifting.temporal import build_temporal

    entry = torch.load(path, map_location="cpu", weights_only=True)
    model = build_temporal(entry["model_config"], entry["temporal_config"])
    model.load_state_dict(float_state(entry["state_dict"]))
    if balanced is not None:
        entry["train_config"] = {**entry["train_config"], "calibration_balanced": balanced}
    cfg = TemporalTrainConfig(**entry["train_config"])
    fit = calibrate_model(model, cfg, validation_chunks(cfg, RunData(cfg), model.window), False)
    entry["state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    entry["temperature"], entry["latent_dof"] = fit["temperature"], fit["latent_dof"]
    entry["metrics"] = {**entry.get("metrics", {}), **{f"val_{k}": v for k, v in fit.items()}}
    torch.save(entry, out or path)
    return out or path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML file (training/config/temporal_*.yaml)")
    parser.add_argument("--epochs", type=int, help="override epochs")
    parser.add_argument("--out-dir", help="override out_dir")
    parser.add_argument(
        "--finish",
        action="store_true",
        help="only calibrate and write the best epoch of an interrupted run",
    )
    parser.add_argument(
        "--bundle",
        nargs=3,
        metavar=("BASE", "ENTRY", "DST"),
        help="only write DST = single-frame BASE + temporal ENTRY",
    )
    parser.add_argument(
        "--recalibrate",
        metavar="ENTRY",
        help="only re-fit the calibration of a written temporal.pt (in place or --out)",
    )
    parser.add_argument("--out", help="with --recalibrate: write here instead of in place")
    parser.add_argument(
        "--balanced",
        action="store_true",
        default=None,
        help="with --recalibrate: every validation subject weighs the same (calibration_balanced)",
    )
    parser.add_argument("--threads", type=int, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.recalibrate:
        if not Path(args.recalibrate).is_file():
            parser.error(f"--recalibrate: no such file: {args.recalibrate}")
        print(f"wrote {recalibrate(args.recalibrate, args.out, args.balanced)}")
        return
    if args.bundle:
        bundle(*args.bundle)
        return
    if not args.config:
        parser.error("--config is required")
    cfg = TemporalTrainConfig.from_yaml(args.config)
    if args.epochs:
        cfg.epochs = args.epochs
    if args.out_dir:
        cfg.out_dir = args.out_dir
    if args.finish:
        print(f"wrote {finish_run(cfg)}")
        return
    print(f"wrote {train(cfg)}")


if __name__ == "__main__":
    main()
