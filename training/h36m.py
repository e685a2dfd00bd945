"""Human3.6M in the VideoPose3D ``.npz`` layout: loader and the standard evaluation protocol.

Files (made by VideoPose3D's ``data/prepare_data_h36m.py`` and friends; they cannot be
downloaded here, users who hold Human3.6M make them):

* ``data_3d_h36m.npz``: ``positions_3d`` = {subject: {action: (T, 32, 3) float32}}, world
  frame, **metres**, 50 Hz. Only 17 of the 32 joints are used (:data:`H36M32_TO_17`).
* ``data_2d_h36m_<detector>.npz``: ``positions_2d`` = {subject: {action: [4 x (T', 17, 2+)]}}
  distorted pixels per camera (``gt``: exact projections; ``cpn_ft_h36m_dbb``: CPN
  detections), ``metadata`` = {``layout_name``, ``num_joints``, ``keypoints_symmetry``}.
  Detections may have more frames than the mocap; they are cut to its length.

Both files store pickled Python dicts. They are read with a restricted unpickler
(:func:`training.npz_pickle.load_pickled_item`) that builds only numpy arrays, dicts, lists,
strings and numbers and refuses anything else, so a swapped file cannot run code.

Protocol (Martinez et al. 2017, Pavllo et al. 2019): train on S1, S5, S6, S7, S8; test on
S9 and S11, all frames, all four cameras. Poses are compared root-relative in the camera
frame; Protocol 1 is MPJPE, Protocol 2 P-MPJPE, both in mm, averaged over the frames of each
action (``"Walking 1"`` counts as ``"Walking"``), then over the 15 actions. For probabilistic
lifters the point estimate is the mean of K hypotheses and the oracle best-of-K errors and
the 90 % coverage are reported too.

Command::

    python -m training.h36m --data-dir DIR --detector cpn_ft_h36m_dbb --lifter PATH
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hpe3d_ros import metrics
from training.h36m_cameras import h36m_camera, pixels_to_normalized, world_to_camera
from training.npz_pickle import load_pickled_item

#: Indices of the 17 kept joints among the 32 of the raw files (VideoPose3D's
#: ``remove_joints``); their order is :data:`hpe3d_ros.skeleton.H36M_JOINT_NAMES`.
H36M32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
FPS = 50.0


@dataclasses.dataclass(frozen=True)
class Sequence:
    """One (subject, action, camera) clip ready for a lifter.

    Attributes:
        kp_norm: (T, 17, 2) undistorted normalised camera coordinates (x/z, y/z).
        confidence: (T, 17) detector scores (ones when the file has none).
        poses_cam_m: (T, 17, 3) ground truth, camera frame, metres, root-relative.
    """

    subject: str
    action: str
    camera: int
    kp_norm: np.ndarray
    confidence: np.ndarray
    poses_cam_m: np.ndarray


def _load_pickled(path: str | Path, key: str) -> Any:
    return load_pickled_item(path, key)


def load_positions_3d(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``data_3d_h36m.npz`` -> {subject: {action: (T, 17, 3) world metres}}."""
    data = _load_pickled(path, "positions_3d")
    out: dict[str, dict[str, np.ndarray]] = {}
    for subject, actions in data.items():
        out[subject] = {}
        for action, pos in actions.items():
            pos = np.asarray(pos, dtype=np.float64)
            if pos.ndim != 3 or pos.shape[1:] not in ((32, 3), (17, 3)):
                raise ValueError(f"{subject}/{action}: expected (T, 32, 3), got {pos.shape}")
            out[subject][action] = pos[:, H36M32_TO_17] if pos.shape[1] == 32 else pos
    return out


def load_keypoints_2d(path: str | Path) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict]:
    """``data_2d_h36m_<detector>.npz`` -> ({subject: {action: [per camera (T, 17, C)]}}, meta).

    Only the Human3.6M 17-joint layout is accepted (the ``gt`` and ``cpn_ft_h36m_dbb``
    files); C is 2 (pixels) or 3 (pixels + score).
    """
    positions = _load_pickled(path, "positions_2d")
    meta = _load_pickled(path, "metadata")
    layout = meta.get("layout_name", "h36m")  # the gt file has no layout_name
    if layout != "h36m" or int(meta.get("num_joints", 17)) != 17:
        raise ValueError(f"{path}: need the h36m 17-joint layout, got {layout!r}")
    return positions, meta


def action_group(action: str) -> str:
    """``"Walking 1"`` -> ``"Walking"`` (the protocol's 15 actions)."""
    return action.split(" ")[0]


def iter_sequences(
    positions_3d: dict[str, dict[str, np.ndarray]],
    keypoints_2d: dict[str, dict[str, list[np.ndarray]]],
    subjects: Iterable[str] = TEST_SUBJECTS,
    stride: int = 1,
) -> Iterator[Sequence]:
    """Clips of ``subjects`` in file order, every ``stride``-th frame, 2D and GT aligned."""
    for subject in subjects:
        if subject not in positions_3d or subject not in keypoints_2d:
            raise KeyError(f"subject {subject} missing from the 3D or the 2D file")
        for action, pos_world in positions_3d[subject].items():
            if action not in keypoints_2d[subject]:
                raise KeyError(f"{subject}/{action} missing from the 2D file")
            n = len(pos_world)
            for cam_idx, kp in enumerate(keypoints_2d[subject][action]):
                kp = np.asarray(kp, dtype=np.float64)
                if kp.ndim != 3 or kp.shape[1] != 17 or kp.shape[2] < 2 or len(kp) < n:
                    raise ValueError(
                        f"{subject}/{action}/cam {cam_idx}: 2D shape {kp.shape}, T={n}"
                    )
                kp = kp[:n:stride]
                cam = h36m_camera(subject, cam_idx)
                poses = world_to_camera(pos_world[::stride], cam)
                conf = kp[..., 2] if kp.shape[2] > 2 else np.ones(kp.shape[:2])
                yield Sequence(
                    subject=subject,
                    action=action,
                    camera=cam_idx,
                    kp_norm=pixels_to_normalized(kp[..., :2], cam),
                    confidence=conf,
                    poses_cam_m=poses - poses[:, :1],
                )


def _lift(lifter: Any, kp: np.ndarray, conf: np.ndarray, k: int, seed: int | None) -> np.ndarray:
    """(B, k, 17, 3) root-relative hypotheses; k = 1 for deterministic lifters."""
    if getattr(lifter, "latent_dim", 0) > 0:
        hyps = np.asarray(lifter.sample(kp, conf, k, seed), dtype=np.float64)
    elif hasattr(lifter, "predict"):
        hyps = np.asarray(lifter.predict(kp, conf), dtype=np.float64)[:, None]
    else:
        hyps = np.asarray(lifter.sample(kp, conf, 1, seed), dtype=np.float64)
    return hyps - hyps[..., :1, :]


def evaluate(
    lifter: Any,
    sequences: Iterable[Sequence],
    k: int = 200,
    seed: int | None = 0,
    max_poses: int = 50_000,
) -> dict[str, np.ndarray]:
    """Per-frame errors (mm) of ``lifter`` on ``sequences``.

    Returns arrays of length N (all frames): ``subject``, ``action`` (grouped name),
    ``mpjpe``, ``p_mpjpe`` and, for probabilistic lifters (``latent_dim > 0``),
    ``best_mpjpe``, ``best_p_mpjpe`` (oracle over k hypotheses, each selected on its own
    metric) and ``cov90`` (fraction of the 16 non-root joints inside their 90 % radial
    interval). Frames are lifted in batches of ``max_poses // k``.
    """
    probabilistic = getattr(lifter, "latent_dim", 0) > 0
    batch = max(1, max_poses // (k if probabilistic else 1))
    cols: dict[str, list[np.ndarray]] = {}
    n_batches = 0

    def add(name: str, values: np.ndarray) -> None:
        cols.setdefault(name, []).append(values)

    for seq in sequences:
        for start in range(0, len(seq.kp_norm), batch):
            sl = slice(start, start + batch)
            gt = seq.poses_cam_m[sl]
            b_seed = None if seed is None else seed + n_batches
            hyps = _lift(lifter, seq.kp_norm[sl], seq.confidence[sl], k, b_seed)
            n_batches += 1
            add("subject", np.full(len(gt), seq.subject))
            add("action", np.full(len(gt), action_group(seq.action)))
            pred = hyps.mean(axis=1)
            add("mpjpe", 1000 * metrics.mpjpe(pred, gt))
            add("p_mpjpe", 1000 * metrics.p_mpjpe(pred, gt))
            if probabilistic:
                gt_k = np.broadcast_to(gt[:, None], hyps.shape)
                add("best_mpjpe", 1000 * metrics.best_of_k_mpjpe(hyps, gt))
                add("best_p_mpjpe", 1000 * metrics.p_mpjpe(hyps, gt_k).min(axis=1))
                # Frames as "joints" of one sample: coverage per (frame, joint).
                b, kk, j, _ = hyps.shape
                flat = np.swapaxes(hyps, 0, 1).reshape(1, kk, b * j, 3)
                cov = metrics.coverage(flat, gt.reshape(1, b * j, 3), level=0.9).reshape(b, j)
                add("cov90", cov[:, 1:].mean(axis=1))
    if not cols:
        raise ValueError("no frames to evaluate")
    return {name: np.concatenate(v) for name, v in cols.items()}


def protocol_table(errors: dict[str, np.ndarray]) -> list[dict]:
    """Per-action means of every error column plus the action-wise ``"Average"`` row."""
    names = [c for c in errors if c not in ("subject", "action")]
    per_col = {c: metrics.per_group_table(errors[c], errors["action"]) for c in names}
    rows = []
    for i, row in enumerate(per_col[names[0]][:-1]):  # last row is "all"
        rows.append({"action": row["group"], "frames": row["count"]}
                    | {c: per_col[c][i]["mean"] for c in names})  # fmt: skip
    avg = {"action": "Average", "frames": len(errors["action"])}
    rows.append(avg | {c: float(np.mean([r[c] for r in rows])) for c in names})
    return rows


def format_table(rows: list[dict]) -> str:
    """Fixed-width text table of :func:`protocol_table` rows (errors in mm)."""
    cols = [c for c in rows[0] if c not in ("action", "frames")]
    head = f"{'action':<14}{'frames':>8}" + "".join(f"{c:>14}" for c in cols)
    lines = [head, "-" * len(head)]
    for r in rows:
        vals = "".join(f"{r[c]:>14.3f}" if c == "cov90" else f"{r[c]:>14.1f}" for c in cols)
        lines.append(f"{r['action']:<14}{r['frames']:>8}{vals}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, lifter: Any = None) -> int:
    """CLI; ``lifter`` may be passed in directly (tests) instead of ``--lifter``."""
    ap = argparse.ArgumentParser(description="Human3.6M Protocol 1/2 evaluation of a lifter.")
    ap.add_argument("--data-dir", required=True, help="folder with the VideoPose3D .npz files")
    ap.add_argument("--detector", default="cpn_ft_h36m_dbb", help="gt | cpn_ft_h36m_dbb | ...")
    ap.add_argument("--lifter", default=None, help="checkpoint (default: shipped weights)")
    ap.add_argument("--subjects", default=",".join(TEST_SUBJECTS))
    ap.add_argument("--k", type=int, default=200, help="hypotheses (probabilistic lifters)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stride", type=int, default=1, help="use every n-th frame (default all)")
    ap.add_argument("--by-subject", action="store_true", help="also one table per subject")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if lifter is None:
        from hpe3d_ros.lifting import load_lifter

        lifter = load_lifter(args.lifter, device=args.device)
    data_dir = Path(args.data_dir)
    try:
        pos3d = load_positions_3d(data_dir / "data_3d_h36m.npz")
        kp2d, _ = load_keypoints_2d(data_dir / f"data_2d_h36m_{args.detector}.npz")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        print(f"error: cannot read the Human3.6M files: {exc}", file=sys.stderr)
        return 2
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    seqs = iter_sequences(pos3d, kp2d, subjects, args.stride)
    errors = evaluate(lifter, seqs, k=args.k, seed=args.seed)
    probabilistic = "best_mpjpe" in errors
    print(f"Human3.6M, 2D: {args.detector}, subjects {','.join(subjects)}, stride {args.stride}"
          + (f", K={args.k} (errors of the mean hypothesis; best_* = oracle best of K)"
             if probabilistic else "") + "; errors in mm")  # fmt: skip
    print("mpjpe = Protocol 1, p_mpjpe = Protocol 2")
    print(format_table(protocol_table(errors)))
    if args.by_subject:
        for s in subjects:
            sel = errors["subject"] == s
            print(f"\n{s}")
            print(format_table(protocol_table({c: v[sel] for c, v in errors.items()})))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
