"""Adapt a temporal lifter to real footage from its 2D tracks alone (issue 17, experiment b).

``python -m training.adapt_temporal runs/temporal_v1/temporal.pt training/data/vtest_tracks.npz
--hold-out 600 750 --out runs/temporal_v1_vtest/temporal.pt``

The detector's tracks of the footage (:mod:`training.video_tracks`) outside the held-out
frames feed the self-supervised losses (:mod:`training.selfsup`: reprojection, rotation
cycle, smoothness, bone constancy); every step also takes one supervised batch of mocap
chunks of the checkpoint's own training run, so the 3D it learned is kept. Before and
after, the held-out tracks' reprojection error is measured (:func:`track_reprojection`:
the mean of K hypotheses of each frame, placed at the depth that fits the 2D best,
projected; mean pixel distance per visible joint). Mocap accuracy before and after:
``python -m training.evaluate_temporal`` on both files.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from hpe3d_ros.lifting.temporal_runtime import TemporalSampler, TrackInput
from training.selfsup import SelfSupConfig, frame_2d, reprojection, selfsup_losses, with_root
from training.temporal_data import assemble, draw_chunks, make_chunks
from training.train_temporal import RunData, TemporalTrainConfig
from training.video_tracks import load_tracks


def track_chunks(tracks, chunk, window, rng, n, threshold, max_gap_s, rate_hz=30.0):
    """``n`` chunks of the footage's tracks (each ends at a frame of a random track, weighted
    by length), read as the runtime reads them (:func:`training.temporal_data.assemble`)."""
    span = chunk + window - 1
    weights = np.array([len(t.stamps_s) for t in tracks], dtype=np.float64)
    obs = []
    for ti in rng.choice(len(tracks), size=n, p=weights / weights.sum()):
        tr = tracks[ti]
        last = rng.integers(0, len(tr.stamps_s))
        keep = slice(0, last + 1)
        times = tr.stamps_s[last] - (span - 1 - np.arange(span)) / rate_hz
        obs.append((tr.stamps_s[keep], tr.kp_norm[keep], tr.conf[keep], tr.noise_std[keep], times))
    return assemble(obs, window, chunk, threshold, max_gap_s, 6)


def track_reprojection(sampler, tracks, fx, k=20, seed=0) -> dict:
    """Mean reprojection error of the mean of k hypotheses at every frame of ``tracks`` with
    at least 6 joints, each frame lifted from its history as the runtime does: in pixels
    (focal length ``fx``) and in units of the person's 2D spread (``spread``)."""
    model = sampler.model.eval()
    f = model.cfg.n_in
    gen = torch.Generator().manual_seed(seed)
    errs, errs_s = [], []
    for tr in tracks:
        rows = [
            sampler.packed(
                [
                    TrackInput(
                        tr.stamps_s[: i + 1],
                        tr.kp_norm[: i + 1],
                        tr.conf[: i + 1],
                        tr.noise_std[: i + 1],
                        ("eval", id(tr)),
                    )
                ]
            )[0]
            for i in range(len(tr.stamps_s))
        ]
        x = torch.from_numpy(np.concatenate(rows))
        with torch.no_grad():
            cond = model.encode(x)
            eps = torch.randn(len(x), k, model.cfg.latent_dim, generator=gen)
            mean = with_root(model.decode(cond, eps).mean(1))
            k2d, vis, spread = frame_2d(x[:, :f])
            err = reprojection(mean, k2d, vis, spread)
        ok = (vis.sum(-1) >= 6).numpy()
        per = (err.sum(-1) / vis.sum(-1).clamp_min(1)).numpy()
        errs_s.append(per[ok])
        errs.append((per * spread.numpy())[ok])
    sampler.clear_cache()
    return {
        "frames": int(sum(len(e) for e in errs)),
        "px": fx * float(np.concatenate(errs).mean()),
        "spread": float(np.concatenate(errs_s).mean()),
    }


def adapt(
    entry_path,
    tracks_path,
    out,
    hold_out=(600, 750),
    steps=300,
    lr=1e-4,
    selfsup=None,
    seed=0,
    log=print,
) -> dict:
    """Fine-tune the temporal entry at ``entry_path`` on the footage's tracks; figures."""
    entry = torch.load(entry_path, map_location="cpu", weights_only=True)
    sampler = TemporalSampler(entry)
    model = sampler.model
    cfg = TemporalTrainConfig(**entry["train_config"])
    _, tcfg, lcfg, aug, seq, _ = cfg.parts()
    ss = SelfSupConfig(**(selfsup or cfg.selfsup or {"weight": 5.0, "w_reproj": 2.0}))
    thr, gap = sampler.conf_threshold, tcfg.max_gap_s
    held = load_tracks(tracks_path, hold_out)
    fit = [
        t
        for rng_ in ((0, hold_out[0]), (hold_out[1], 10**9))
        for t in load_tracks(tracks_path, rng_)
    ]
    with np.load(tracks_path) as d:
        fx = float(d["K"][0, 0])
    before = track_reprojection(sampler, held, fx)
    before_fit = track_reprojection(sampler, fit, fx)
    log(f"before: held-out {before}, adaptation frames {before_fit}")
    data = RunData(cfg)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    span = seq.chunk + model.window - 1
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.freeze_frames:
        for p in model.cond_net.parameters():
            p.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    lcfg.beta = 1.0
    for step in range(steps):
        model.train()
        if cfg.freeze_frames:
            model.cond_net.eval()
        rows = draw_chunks(data.runs_3d, cfg.batch_chunks, span, rng)
        b = make_chunks(
            data.poses, rows, aug, seq, model.window, rng, data.templates, True, thr, gap
        )
        sup = model.sequence_losses(b.tensors(), lcfg)
        b2 = track_chunks(fit, seq.chunk, model.window, rng, cfg.batch_chunks, thr, gap)
        ssl = selfsup_losses(model, b2.tensors(), ss)
        loss = sup["loss"] + ss.weight * ssl["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(
                f"step {step}: supervised {sup['loss'].item():.2f}, reprojection "
                f"{ssl['reproj'].item():.4f}, cycle {1000 * ssl['cycle3d_m'].item():.1f} mm"
            )
    model.eval()
    after = track_reprojection(sampler, held, fx)
    after_fit = track_reprojection(sampler, fit, fx)
    log(f"after: held-out {after}, adaptation frames {after_fit}")
    entry["state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    figures = {
        "held_out_before": before,
        "held_out_after": after,
        "fit_before": before_fit,
        "fit_after": after_fit,
        "steps": steps,
        "lr": lr,
        "hold_out": list(hold_out),
    }
    entry["metrics"] = {**entry.get("metrics", {}), "adaptation": figures}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(entry, out)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entry", help="temporal.pt to adapt")
    parser.add_argument("tracks", help="video_tracks .npz")
    parser.add_argument("--out", required=True)
    parser.add_argument("--hold-out", nargs=2, type=int, default=[600, 750])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not math.isfinite(args.lr) or args.lr <= 0:
        parser.error("--lr must be > 0")
    adapt(
        args.entry,
        args.tracks,
        args.out,
        tuple(args.hold_out),
        args.steps,
        args.lr,
        seed=args.seed,
    )


if __name__ == "__main__":
    main()
