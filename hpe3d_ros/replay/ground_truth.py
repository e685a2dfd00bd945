"""Ground truth for replay: where it comes from, who matches whom, and the per-person errors.

GT 3D joints travel either on a topic ``<camera namespace>/gt_poses`` of type
``hpe3d_ros/msg/PoseHypothesesArray`` (one person per entry, its ``mean_pose`` = the true
pose, absolute, camera optical frame, metres; ``hpe3d-make-bag --mocap`` writes these) or in
a side-car ``.npz`` with one row per person and frame:

* ``stamp_ns`` (N,) int64 image stamp; ``poses_m`` (N, 17, 3) H36M-17, optical frame, metres;
* optional ``camera`` (N,) str (camera name; absent = applies to every camera).

Predicted people are matched to GT people by the Hungarian algorithm on their mean 2D
distance (predicted keypoints vs the GT projected through the frame's CameraInfo), gated at
a quarter of the GT person's 2D size. Errors follow :mod:`hpe3d_ros.metrics`: MPJPE, P-MPJPE
and best-of-K on root-relative poses, coverage of the 90 % hypothesis balls (non-root
joints), and the root (pelvis) distance error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from hpe3d_ros import metrics
from hpe3d_ros.camera import CameraModel
from hpe3d_ros.results import Person3D

GT_TOPIC_NAME = "gt_poses"
GT_TYPE = "hpe3d_ros/msg/PoseHypothesesArray"
ERROR_COLUMNS = ("mpjpe_mm", "p_mpjpe_mm", "best_of_k_mm", "coverage90", "root_err_m")
COVERAGE_LEVEL = 0.9


def gt_from_msg(msg: Any) -> np.ndarray:
    """A deserialised GT ``PoseHypothesesArray`` -> (P, J, 3) poses, metres, float64."""
    j = len(msg.joint_names) or 17
    poses = [np.asarray(p.mean_pose, dtype=np.float64).reshape(j, 3) for p in msg.people]
    return np.stack(poses) if poses else np.zeros((0, j, 3))


class Sidecar:
    """GT poses from a side-car ``.npz`` looked up by (camera, stamp)."""

    def __init__(self, path: str | Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            missing = {"stamp_ns", "poses_m"} - set(z.files)
            if missing:
                raise ValueError(f"GT file {path} lacks {sorted(missing)}")
            stamps = z["stamp_ns"].astype(np.int64)
            poses = z["poses_m"].astype(np.float64)
            cams = z["camera"].astype(str) if "camera" in z.files else None
        if poses.ndim != 3 or poses.shape[1:] != (17, 3) or len(poses) != len(stamps):
            raise ValueError(f"GT file {path}: poses_m must be (N, 17, 3) beside stamp_ns (N,)")
        self._rows: dict[tuple[str | None, int], list[np.ndarray]] = {}
        for i, stamp in enumerate(stamps):
            key = (None if cams is None else str(cams[i]), int(stamp))
            self._rows.setdefault(key, []).append(poses[i])

    def lookup(self, camera: str, stamp_ns: int) -> np.ndarray | None:
        """(P, 17, 3) for this frame, or None when the file says nothing about it."""
        rows = self._rows.get((camera, stamp_ns)) or self._rows.get((None, stamp_ns))
        return None if rows is None else np.stack(rows)


def match_people(
    people: list[Person3D], gt_m: np.ndarray, camera: CameraModel
) -> list[tuple[int, int]]:
    """Pairs (prediction index, GT index) by 2D keypoint distance (see module docstring)."""
    if not people or len(gt_m) == 0:
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        gt_px = camera.project(gt_m)  # (P, 17, 2)
    cost = np.full((len(people), len(gt_m)), np.inf)
    for i, p in enumerate(people):
        ok_p = (np.asarray(p.keypoint_conf) > 0) & np.isfinite(p.keypoints_px).all(-1)
        for j in range(len(gt_m)):
            ok = ok_p & np.isfinite(gt_px[j]).all(-1)
            if ok.sum() >= 2:
                cost[i, j] = np.linalg.norm(p.keypoints_px[ok] - gt_px[j][ok], axis=-1).mean()
    finite = np.where(np.isfinite(cost), cost, 1e12)
    rows, cols = linear_sum_assignment(finite)
    pairs = []
    for i, j in zip(rows, cols, strict=True):
        pts = gt_px[j][np.isfinite(gt_px[j]).all(-1)]
        size = float(np.ptp(pts, axis=0).max()) if len(pts) else 0.0
        if cost[i, j] <= 0.25 * size + 5.0:
            pairs.append((int(i), int(j)))
    return pairs


def person_errors(person: Person3D, gt_pose_m: np.ndarray) -> dict[str, float]:
    """Errors of one lifted person against its GT pose (17, 3) metres (NaN if not lifted)."""
    if person.num_hypotheses == 0 or not np.isfinite(person.root_m).all():
        return {c: float("nan") for c in ERROR_COLUMNS}
    hyps = np.asarray(person.hypotheses_m, dtype=np.float64)  # (K, J, 3)
    gt = np.asarray(gt_pose_m, dtype=np.float64)
    hyps_rel = hyps - hyps[:, :1]
    gt_rel = gt - gt[:1]
    mean_rel = hyps_rel.mean(axis=0)
    cov = metrics.coverage(hyps_rel[None], gt_rel[None], COVERAGE_LEVEL)  # (J,)
    return {
        "mpjpe_mm": 1e3 * float(metrics.mpjpe(mean_rel, gt_rel)),
        "p_mpjpe_mm": 1e3 * float(metrics.p_mpjpe(mean_rel, gt_rel)),
        "best_of_k_mm": 1e3 * float(metrics.best_of_k_mpjpe(hyps_rel, gt_rel)),
        "coverage90": float(cov[1:].mean()),
        "root_err_m": float(np.linalg.norm(np.asarray(person.root_m) - gt[0])),
    }


def gt_tables(people_rows: list[dict[str, Any]]) -> dict[str, dict[str, list[dict]]]:
    """Per-camera and per-sequence means of every error over matched, lifted people."""
    rows = [r for r in people_rows if r.get("gt_index", "") != "" and r["lifted"]]
    out: dict[str, dict[str, list[dict]]] = {}
    if not rows:
        return out
    for key in ("camera", "sequence"):
        groups = np.array([r[key] for r in rows])
        out[key] = {
            col: metrics.per_group_table(np.array([float(r[col]) for r in rows]), groups)
            for col in ERROR_COLUMNS
        }
    return out
