"""Replay results as tidy tables, a JSON summary and the printed summary table (ROS-free).

``frames.csv`` has exactly one row per input frame (``status`` ok/failed with the reason);
``people.csv`` one row per person per processed frame. Both hold only values that are a
function of the bag, the parameters and the seed (no wall-clock values), with floats
written in a fixed format, so the same bag and seed give byte-identical files; so does
``summary.json``. Timings go to ``timings.json`` only.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from hpe3d_ros.replay.ground_truth import ERROR_COLUMNS, gt_tables
from hpe3d_ros.results import FrameResult

FRAME_COLUMNS = (
    "sequence", "camera", "topic", "index", "stamp_ns", "log_time_ns", "frame_id", "status",
    "reason", "detections", "people", "lifted", "gt_people", "gt_matched",
    *ERROR_COLUMNS,
)  # fmt: skip
PEOPLE_COLUMNS = (
    "sequence", "camera", "index", "stamp_ns", "track_id", "detection_score", "visible_joints",
    "lifted", "num_hypotheses", "root_x_m", "root_y_m", "root_z_m", "root_std_x_m",
    "root_std_y_m", "root_std_z_m", "joint_std_mean_m", "gt_index", *ERROR_COLUMNS,
)  # fmt: skip


def fmt(value: Any) -> str:
    """Deterministic text of a table cell: floats with 6 significant digits, NaN as empty."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if not np.isfinite(value) else f"{float(value):.6g}"
    return str(value)


class Tables:
    """``frames.csv`` and ``people.csv``, written row by row (a crash keeps what was done)."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.frames_path = out_dir / "frames.csv"
        self.people_path = out_dir / "people.csv"
        self._files = [open(p, "w", newline="", encoding="utf-8")
                       for p in (self.frames_path, self.people_path)]  # fmt: skip
        self._frames = csv.writer(self._files[0], lineterminator="\n")
        self._people = csv.writer(self._files[1], lineterminator="\n")
        self._frames.writerow(FRAME_COLUMNS)
        self._people.writerow(PEOPLE_COLUMNS)
        self.frame_rows: list[dict[str, Any]] = []
        self.people_rows: list[dict[str, Any]] = []

    def add(self, frame: dict[str, Any], people: list[dict[str, Any]]) -> None:
        self._frames.writerow([fmt(frame.get(c)) for c in FRAME_COLUMNS])
        for row in people:
            self._people.writerow([fmt(row.get(c)) for c in PEOPLE_COLUMNS])
        for f in self._files:  # a process killed outright still leaves every finished row
            f.flush()
        self.frame_rows.append(frame)
        self.people_rows.extend(people)

    def close(self) -> None:
        for f in self._files:
            f.close()


def people_rows(result: FrameResult, base: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per person of a processed frame (GT columns filled in later by the caller)."""
    rows = []
    for p in result.people:
        lifted = p.num_hypotheses > 0 and bool(np.isfinite(p.root_m).all())
        std = p.joint_std_m[1:] if lifted else np.full((16, 3), np.nan)
        rows.append(
            {
                **base,
                "track_id": p.track_id,
                "detection_score": float(p.detection_score),
                "visible_joints": int((np.asarray(p.keypoint_conf) > 0).sum()),
                "lifted": lifted,
                "num_hypotheses": p.num_hypotheses,
                **{f"root_{a}_m": float(v) for a, v in zip("xyz", p.root_m, strict=True)},
                **{f"root_std_{a}_m": float(v) for a, v in zip("xyz", p.root_std_m, strict=True)},
                "joint_std_mean_m": float(np.linalg.norm(std, axis=-1).mean()),
                "gt_index": "",
            }
        )
    return rows


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {}
    return {
        "mean": float(v.mean()),
        "p50": float(np.percentile(v, 50)),
        "p95": float(np.percentile(v, 95)),
    }


def build_summary(
    tables: Tables,
    *,
    bags: list[dict[str, Any]],
    timings: dict[str, Any],
    params: dict[str, Any],
    model_id: str,
    outputs: dict[str, Any],
) -> dict[str, Any]:
    """Everything a reader of one replay needs, as plain JSON-able values."""
    cameras: dict[str, dict[str, Any]] = {}
    for r in tables.frame_rows:
        key = f"{r['sequence']}/{r['camera']}"
        c = cameras.setdefault(
            key, {"sequence": r["sequence"], "camera": r["camera"], "frames": 0, "ok": 0,
                  "failed": 0, "people": 0, "lifted": 0, "failures": {}}
        )  # fmt: skip
        c["frames"] += 1
        c[r["status"]] += 1
        c["people"] += int(r.get("people") or 0)
        c["lifted"] += int(r.get("lifted") or 0)
        if r["status"] == "failed":
            kind = str(r["reason"]).split(":")[0]
            c["failures"][kind] = c["failures"].get(kind, 0) + 1
    for key, c in cameras.items():
        ppl = [p for p in tables.people_rows if f"{p['sequence']}/{p['camera']}" == key]
        z = [p["root_z_m"] for p in ppl if p["lifted"]]
        sz = [p["root_std_z_m"] for p in ppl if p["lifted"]]
        c["root_distance_m"] = _stats(z)
        c["root_depth_std_m"] = _stats(sz)
    frames = len(tables.frame_rows)
    return {
        "complete": all(b["complete"] for b in bags),
        "bags": bags,
        "frames": frames,
        "frames_ok": sum(r["status"] == "ok" for r in tables.frame_rows),
        "frames_failed": sum(r["status"] == "failed" for r in tables.frame_rows),
        "cameras": list(cameras.values()),
        "ground_truth": gt_tables(tables.people_rows),
        "ground_truth_matching": _matching(tables.frame_rows),
        "model_id": model_id,
        "params": params,
        "timings": timings,
        "outputs": outputs,
    }


def _matching(frame_rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per camera: GT people, how many a prediction was matched to, and that fraction."""
    out: dict[str, dict[str, float]] = {}
    for r in frame_rows:
        if r.get("gt_people") in (None, ""):
            continue
        c = out.setdefault(r["camera"], {"gt_people": 0, "matched": 0})
        c["gt_people"] += int(r["gt_people"])
        c["matched"] += int(r["gt_matched"])
    for c in out.values():
        c["recall"] = c["matched"] / c["gt_people"] if c["gt_people"] else float("nan")
    return out


def write_summary(summary: dict[str, Any], out_dir: Path) -> None:
    """``summary.json`` (a function of the bags, parameters and seed: byte-identical when they
    are) and ``timings.json`` (this run's wall-clock figures)."""
    fixed = {k: v for k, v in summary.items() if k != "timings"}
    (out_dir / "summary.json").write_text(_json(fixed))
    (out_dir / "timings.json").write_text(_json(summary["timings"]))


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"


def format_summary(summary: dict[str, Any]) -> str:
    """The printed table: per camera counts, distances and speed; GT errors when present."""
    lines = []
    head = f"{'sequence/camera':<28}{'frames':>7}{'ok':>6}{'failed':>7}{'people':>8}"
    head += f"{'lifted':>8}{'dist m (p50)':>14}{'depth std m':>13}"
    lines.append(head)
    for c in summary["cameras"]:
        d = c["root_distance_m"].get("p50", float("nan"))
        s = c["root_depth_std_m"].get("p50", float("nan"))
        name = f"{c['sequence']}/{c['camera']}"
        lines.append(
            f"{name:<28}{c['frames']:>7}{c['ok']:>6}{c['failed']:>7}{c['people']:>8}"
            f"{c['lifted']:>8}{d:>14.2f}{s:>13.2f}"
        )
        for kind, n in sorted(c["failures"].items()):
            lines.append(f"    failed: {n} x {kind}")
    t = summary["timings"]
    if t.get("frames_per_s"):
        lines.append(
            f"speed: {t['frames_per_s']:.2f} frames/s ({summary['frames']} frames in "
            f"{t['frames_s']:.1f} s; {t['wall_s']:.1f} s with pictures)"
        )
    gt = summary.get("ground_truth") or {}
    for cam, m in (summary.get("ground_truth_matching") or {}).items():
        lines.append(f"GT people on {cam}: {m['gt_people']}, matched {m['matched']} "
                     f"({100 * m['recall']:.1f} %)")  # fmt: skip
    for key in ("sequence", "camera"):
        if key not in gt:
            continue
        lines.append("")
        lines.append(
            f"{'GT by ' + key:<28}{'n':>6}{'MPJPE mm':>10}{'P-MPJPE':>9}{'best-of-K':>11}"
            f"{'cov@90':>8}{'root err m':>12}"
        )
        groups = [row["group"] for row in gt[key]["mpjpe_mm"]]
        for i, g in enumerate(groups):
            vals = [gt[key][col][i]["mean"] for col in ERROR_COLUMNS]
            n = gt[key]["mpjpe_mm"][i]["count"]
            lines.append(
                f"{g!s:<28}{n:>6}{vals[0]:>10.1f}{vals[1]:>9.1f}{vals[2]:>11.1f}"
                f"{vals[3]:>8.2f}{vals[4]:>12.3f}"
            )
    if not summary["complete"]:
        lines.append("")
        lines.append("INCOMPLETE: " + "; ".join(b["error"] for b in summary["bags"] if b["error"]))
    return "\n".join(lines)
