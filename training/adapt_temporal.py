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

from hpe3d_ros.lifting.temporal import build_temporal
from hpe3d_ros.lifting.track_window import frame_features, grid_frames
from training.selfsup import SelfSupConfig, frame_2d, reprojection, selfsup_losses, with_root
from training.temporal_data import draw_chunks, make_chunks
from training.train_temporal import RunData, TemporalTrainConfig
from training.video_tracks import load_tracks


def track_chunks(tracks, span, window, rng, n, threshold, max_gap_s, rate_hz=30.0):
    """``n`` chunks (``span`` grid frames ending at a frame of a random track), the encoder
    inputs (n, span, F + 1) and the counted frames (n, span - window + 1): frames the
    camera delivered with at least 6 joints."""
    xs, masks = [], []
    weights = np.array([len(t.stamps_s) for t in tracks], dtype=np.float64)
    for ti in rng.choice(len(tracks), size=n, p=weights / weights.sum()):
        tr = tracks[ti]
        end = tr.stamps_s[rng.integers(0, len(tr.stamps_s))]
        times = end - (span - 1 - np.arange(span)) / rate_hz
        kp, cf, ns, seen = grid_frames(
            tr.stamps_s, tr.kp_norm, tr.conf, tr.noise_std, times, max_gap_s, threshold
        )
        feats, _ = frame_features(kp, cf, ns, seen, threshold)
        on_frame = np.abs(tr.stamps_s[None, :] - times[:, None]).min(1) < 1e-3
        n_vis = np.isfinite(kp).all(-1).sum(-1)
        xs.append(feats)
        masks.append((on_frame & seen & (n_vis >= 6))[window - 1 :])
    return np.stack(xs), np.stack(masks)


def track_reprojection(model, tracks, threshold, max_gap_s, fx, k=20, seed=0) -> dict:
    """Mean reprojection error of the mean of k hypotheses at every frame of ``tracks`` with
    at least 6 joints: in pixels (focal length ``fx``) and in units of the person's 2D
    spread (``spread``)."""
    w = model.window
    gen = torch.Generator().manual_seed(seed)
    errs, errs_s = [], []
    model.eval()
    for tr in tracks:
        t = tr.stamps_s
        times = (t[:, None] - (w - 1 - np.arange(w))[None] / model.tcfg.rate_hz).ravel()
        kp, cf, ns, seen = grid_frames(
            t, tr.kp_norm, tr.conf, tr.noise_std, times, max_gap_s, threshold
        )
        feats, _ = frame_features(kp, cf, ns, seen, threshold)
        x = torch.from_numpy(feats.reshape(len(t), w, -1))
        with torch.no_grad():
            c, mu, logvar, lengths, ts = model.encode(x)
            eps = torch.randn(len(t), k, mu.shape[-1], generator=gen)
            mean = with_root(model.decode((c, mu, logvar, lengths, ts), eps).mean(1))
            k2d, vis, spread = frame_2d(x[:, -1])
            err = reprojection(mean, k2d, vis, spread)
        ok = (vis.sum(-1) >= 6).numpy()
        per = (err.sum(-1) / vis.sum(-1).clamp_min(1)).numpy()
        errs_s.append(per[ok])
        errs.append((per * spread.numpy())[ok])
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
    model = build_temporal(entry["model_config"], entry["temporal_config"])
    model.load_state_dict({k: v.float() for k, v in entry["state_dict"].items()})
    cfg = TemporalTrainConfig(**entry["train_config"])
    _, tcfg, lcfg, aug, seq, _ = cfg.parts()
    ss = SelfSupConfig(**(selfsup or cfg.selfsup or {"weight": 5.0, "w_reproj": 2.0}))
    thr, gap = entry["conf_threshold"], tcfg.max_gap_s
    held = load_tracks(tracks_path, hold_out)
    fit = [
        t
        for rng_ in ((0, hold_out[0]), (hold_out[1], 10**9))
        for t in load_tracks(tracks_path, rng_)
    ]
    with np.load(tracks_path) as d:
        fx = float(d["K"][0, 0])
    before = track_reprojection(model, held, thr, gap, fx)
    before_fit = track_reprojection(model, fit, thr, gap, fx)
    log(f"before: held-out {before}, adaptation frames {before_fit}")
    data = RunData(cfg)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    span = seq.chunk + model.window - 1
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    lcfg.beta = 1.0
    for step in range(steps):
        model.train()
        rows = draw_chunks(data.runs_3d, cfg.batch_chunks, span, rng)
        b = make_chunks(
            data.poses, rows, aug, seq, model.window, rng, data.templates, True, thr, gap
        )
        sup = model.sequence_losses(
            torch.from_numpy(b.x), torch.from_numpy(b.target), torch.from_numpy(b.mask), lcfg
        )
        x2, m2 = track_chunks(fit, span, model.window, rng, cfg.batch_chunks, thr, gap)
        ssl = selfsup_losses(model, torch.from_numpy(x2), torch.from_numpy(m2), ss)
        loss = sup["loss"] + ss.weight * ssl["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(
                f"step {step}: supervised {sup['loss'].item():.2f}, reprojection "
                f"{ssl['reproj'].item():.4f}, cycle {1000 * ssl['cycle3d_m'].item():.1f} mm"
            )
    model.eval()
    after = track_reprojection(model, held, thr, gap, fx)
    after_fit = track_reprojection(model, fit, thr, gap, fx)
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
