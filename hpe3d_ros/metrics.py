"""3D pose metrics under their paper names (numpy, no torch).

Every pose argument is ``(..., J, 3)``: any leading batch axes, J joints, xyz. Units are
whatever the caller uses (metres in this package, millimetres in Human3.6M papers) and
outputs are in the same unit, except :func:`pck3d` / :func:`auc_pck3d`, whose default
thresholds assume metres. Each function checks shapes and raises ``ValueError`` on a
mismatch rather than broadcasting silently.

Conventions follow VideoPose3D's ``common/loss.py`` (Pavllo et al. 2019):

* MPJPE (Protocol 1): mean Euclidean joint distance, no alignment.
* P-MPJPE (Protocol 2): after the similarity transform (rotation, uniform scale,
  translation) that best aligns the prediction to the ground truth, reflections excluded.
* N-MPJPE: after the least-squares uniform scale only (Rhodin et al. 2018).
* MPJVE: mean error of the per-frame joint velocities of a sequence.

Probabilistic lifters return K hypotheses ``(..., K, J, 3)``: best-of-K (oracle) and
mean-of-K MPJPE, and :func:`coverage` measures whether the spread of the hypotheses is
calibrated.
"""

from __future__ import annotations

import numpy as np

#: Default AUC thresholds: 0 to 150 mm in 31 steps (5 mm apart), in metres.
AUC_THRESHOLDS_M: np.ndarray = np.linspace(0.0, 0.150, 31)


def _pair(pred: np.ndarray, gt: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected equal (..., J, 3) shapes, got {pred.shape}, {gt.shape}"
        )
    return pred, gt


def _hyps_gt(hyps: np.ndarray, gt: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    hyps = np.asarray(hyps, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if (
        hyps.ndim != gt.ndim + 1
        or gt.ndim < 2
        or gt.shape[-1] != 3
        or hyps.shape[:-3] != gt.shape[:-2]
        or hyps.shape[-2:] != gt.shape[-2:]
    ):
        raise ValueError(
            f"{name}: expected hyps (..., K, J, 3), gt (..., J, 3), got {hyps.shape}, {gt.shape}"
        )
    return hyps, gt


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean per-joint position error, (..., J, 3) x2 -> (...), no alignment (Protocol 1)."""
    pred, gt = _pair(pred, gt, "mpjpe")
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1)


def _procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity transform of ``pred`` onto ``gt`` (Umeyama 1991), (..., J, 3) -> (..., J, 3).

    Finds rotation R (det +1: a mirror image is *not* aligned away), scale s > 0 and
    translation t minimising ``sum_j |s R pred_j + t - gt_j|^2`` per pose.
    """
    pred, gt = _pair(pred, gt, "p_mpjpe")
    mu_p = pred.mean(axis=-2, keepdims=True)
    mu_g = gt.mean(axis=-2, keepdims=True)
    p0, g0 = pred - mu_p, gt - mu_g
    cov = np.swapaxes(g0, -1, -2) @ p0  # (..., 3, 3) = sum_j g_j p_j^T
    u, sig, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt))
    sign = np.where(sign == 0, 1.0, sign)
    d = np.ones(sig.shape)
    d[..., -1] = sign
    rot = (u * d[..., None, :]) @ vt  # U diag(d) V^T
    var_p = (p0**2).sum(axis=(-1, -2))
    scale = (sig * d).sum(axis=-1) / np.maximum(var_p, np.finfo(np.float64).tiny)
    return scale[..., None, None] * p0 @ np.swapaxes(rot, -1, -2) + mu_g


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE after Procrustes alignment (rotation + scale + translation), -> (...) (Protocol 2)."""
    pred, gt = _pair(pred, gt, "p_mpjpe")
    return mpjpe(_procrustes_align(pred, gt), gt)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE after the least-squares uniform scale of ``pred`` (no centring), -> (...).

    As in VideoPose3D, poses are expected root-relative already; the scale is
    ``<pred, gt> / <pred, pred>`` over all joints of each pose.
    """
    pred, gt = _pair(pred, gt, "n_mpjpe")
    num = (pred * gt).sum(axis=(-1, -2), keepdims=True)
    den = (pred * pred).sum(axis=(-1, -2), keepdims=True)
    scale = num / np.maximum(den, np.finfo(np.float64).tiny)
    return mpjpe(scale * pred, gt)


def mpjve(pred_seq: np.ndarray, gt_seq: np.ndarray) -> float:
    """Mean per-joint velocity error of a sequence, (T, J, 3) x2 -> float (unit per frame).

    Velocities are first differences along time; needs T >= 2.
    """
    pred_seq, gt_seq = _pair(pred_seq, gt_seq, "mpjve")
    if pred_seq.ndim != 3 or pred_seq.shape[0] < 2:
        raise ValueError(f"mpjve: expected (T >= 2, J, 3) sequences, got {pred_seq.shape}")
    dv = np.diff(pred_seq, axis=0) - np.diff(gt_seq, axis=0)
    return float(np.linalg.norm(dv, axis=-1).mean())


def best_of_k_mpjpe(hyps: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Oracle MPJPE: the closest of K hypotheses, (..., K, J, 3) and (..., J, 3) -> (...)."""
    hyps, gt = _hyps_gt(hyps, gt, "best_of_k_mpjpe")
    err = np.linalg.norm(hyps - gt[..., None, :, :], axis=-1).mean(axis=-1)  # (..., K)
    return err.min(axis=-1)


def mean_of_k_mpjpe(hyps: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE of the mean hypothesis, (..., K, J, 3) and (..., J, 3) -> (...)."""
    hyps, gt = _hyps_gt(hyps, gt, "mean_of_k_mpjpe")
    return mpjpe(hyps.mean(axis=-3), gt)


def pck3d(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.150) -> float:
    """Fraction of all joints of all poses within ``threshold`` of the ground truth (same unit)."""
    pred, gt = _pair(pred, gt, "pck3d")
    return float((np.linalg.norm(pred - gt, axis=-1) <= threshold).mean())


def auc_pck3d(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray | None = None) -> float:
    """Area under the PCK3D curve: mean PCK3D over ``thresholds`` (default 0..150 mm, metres)."""
    pred, gt = _pair(pred, gt, "auc_pck3d")
    th = AUC_THRESHOLDS_M if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if th.ndim != 1 or th.size == 0:
        raise ValueError(f"auc_pck3d: thresholds must be a non-empty 1-D array, got {th.shape}")
    dist = np.linalg.norm(pred - gt, axis=-1).reshape(-1)
    return float((dist[None, :] <= th[:, None]).mean())


def coverage(hyps: np.ndarray, gt: np.ndarray, level: float = 0.9) -> np.ndarray:
    """Per-joint coverage of radial ``level`` intervals, (..., K, J, 3), (..., J, 3) -> (J,).

    For each pose and joint, the interval is the ball around the hypothesis mean whose
    radius is the ``level`` quantile of the K hypotheses' distances to that mean; the
    ground truth is covered if it lies inside. A calibrated lifter gives about ``level``
    for every joint; lower means over-confident, higher under-confident.
    """
    hyps, gt = _hyps_gt(hyps, gt, "coverage")
    if not 0.0 < level < 1.0:
        raise ValueError(f"coverage: level must be in (0, 1), got {level}")
    centre = hyps.mean(axis=-3)  # (..., J, 3)
    radius = np.quantile(np.linalg.norm(hyps - centre[..., None, :, :], axis=-1), level, axis=-2)
    covered = np.linalg.norm(gt - centre, axis=-1) <= radius  # (..., J)
    return covered.reshape(-1, gt.shape[-2]).mean(axis=0)


def per_group_table(values: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Mean of ``values`` (N,) per group label (N,), sorted by label, plus an ``"all"`` row.

    Returns ``[{"group": label, "count": n, "mean": m}, ..., {"group": "all", ...}]`` with
    labels as Python scalars (for printing or JSON).
    """
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    if values.ndim != 1 or values.shape != groups.shape:
        raise ValueError(
            f"per_group_table: expected (N,) and (N,), got {values.shape}, {groups.shape}"
        )
    rows = []
    for g in np.unique(groups):
        sel = values[groups == g]
        rows.append({"group": g.item(), "count": int(sel.size), "mean": float(sel.mean())})
    mean_all = float(values.mean()) if values.size else float("nan")
    rows.append({"group": "all", "count": int(values.size), "mean": mean_all})
    return rows
