"""A bag's results in a few hundred numbers, so a fleet's tables never re-read its tables.

A campaign's ``people.csv`` files add up to gigabytes; the fleet tables need, per camera of
each bag, only counts, sums (for exact means) and fixed-bin histograms (for percentiles and
the distribution plots). :func:`bag_stats` computes them from one replay's ``frames.csv`` and
``people.csv`` right after the replay, where the files are (a value counts in bin
``round(value / width)``); :func:`merge` adds them up for any
grouping (vehicle, campaign, camera...); :func:`describe` turns a merged group into table
columns. All of it is a function of the tables, so it is as deterministic as they are.

GT errors follow the replay's own rule (``summary.json``'s ``ground_truth``): people matched
to a GT person (``gt_index`` set) and lifted.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

#: metric -> (people.csv column, histogram bin width in the metric's unit)
METRICS: dict[str, tuple[str, float]] = {
    "root_distance_m": ("root_z_m", 0.01),
    "root_depth_std_m": ("root_std_z_m", 0.01),
    "mpjpe_mm": ("mpjpe_mm", 1.0),
    "p_mpjpe_mm": ("p_mpjpe_mm", 1.0),
    "best_of_k_mm": ("best_of_k_mm", 1.0),
    "coverage90": ("coverage90", 0.01),
    "root_err_m": ("root_err_m", 0.01),
}
GT_METRICS = ("mpjpe_mm", "p_mpjpe_mm", "best_of_k_mm", "coverage90", "root_err_m")
COUNTS = ("frames", "ok", "failed", "people", "lifted", "gt_frames", "gt_people", "gt_matched")


def empty() -> dict[str, Any]:
    return {
        **{c: 0 for c in COUNTS},
        "failures": {},
        "sum": {m: [0, 0.0] for m in METRICS},
        "hist": {m: {} for m in METRICS},
    }


def _int(value: str) -> int:
    return int(value) if value not in ("", None) else 0


def bag_stats(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Per camera of one replay in ``out_dir``: counts, failure kinds, sums and histograms."""
    cams: dict[str, dict[str, Any]] = {}
    with open(out_dir / "frames.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            c = cams.setdefault(r["camera"], empty())
            c["frames"] += 1
            if r["status"] == "ok":
                c["ok"] += 1
            else:
                c["failed"] += 1
                kind = r["reason"].split(":")[0]
                c["failures"][kind] = c["failures"].get(kind, 0) + 1
            c["people"] += _int(r["people"])
            c["lifted"] += _int(r["lifted"])
            if r.get("gt_people", "") != "":
                c["gt_frames"] += 1
                c["gt_people"] += _int(r["gt_people"])
                c["gt_matched"] += _int(r["gt_matched"])
    with open(out_dir / "people.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["lifted"] != "1":
                continue
            c = cams.setdefault(r["camera"], empty())
            matched = r.get("gt_index", "") != ""
            for metric, (col, width) in METRICS.items():
                if (metric in GT_METRICS and not matched) or r.get(col, "") == "":
                    continue
                add(c, metric, float(r[col]), width)
    return cams


def add(stats: dict[str, Any], metric: str, value: float, width: float) -> None:
    if not math.isfinite(value):
        return
    s = stats["sum"][metric]
    s[0] += 1
    s[1] += value
    b = str(round(value / width))
    stats["hist"][metric][b] = stats["hist"][metric].get(b, 0) + 1


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several per-camera stats (in the order given: sums are order-exact)."""
    out = empty()
    for p in parts:
        for c in COUNTS:
            out[c] += p[c]
        for k, n in p["failures"].items():
            out["failures"][k] = out["failures"].get(k, 0) + n
        for m in METRICS:
            out["sum"][m][0] += p["sum"][m][0]
            out["sum"][m][1] += p["sum"][m][1]
            for b, n in p["hist"][m].items():
                out["hist"][m][b] = out["hist"][m].get(b, 0) + n
    return out


def percentile(hist: dict[str, int], width: float, q: float) -> float:
    """The ``q`` quantile (0-1) from a histogram, to the bin width (NaN if empty)."""
    total = sum(hist.values())
    if total == 0:
        return float("nan")
    bins = sorted((int(b), n) for b, n in hist.items())
    need, seen = q * total, 0
    for b, n in bins:
        seen += n
        if seen >= need:
            return round(b * width, 6)
    return round(bins[-1][0] * width, 6)


def mean(stats: dict[str, Any], metric: str) -> float:
    n, total = stats["sum"][metric]
    return total / n if n else float("nan")


def describe(stats: dict[str, Any]) -> dict[str, Any]:
    """Table columns of one group: counts, rates, and per metric the mean, p50 and p95."""
    ok = stats["ok"]
    row: dict[str, Any] = {c: stats[c] for c in ("frames", "ok", "failed")}
    row["failed_frac"] = stats["failed"] / stats["frames"] if stats["frames"] else float("nan")
    row["people"] = stats["people"]
    row["people_per_frame"] = stats["people"] / ok if ok else float("nan")
    row["lifted"] = stats["lifted"]
    row["failures"] = ";".join(f"{k}={n}" for k, n in sorted(stats["failures"].items()))
    row["gt_people"] = stats["gt_people"]
    row["gt_recall"] = stats["gt_matched"] / stats["gt_people"] if stats["gt_people"] else None
    for metric, (_, width) in METRICS.items():
        n = stats["sum"][metric][0]
        row[f"{metric}_n"] = n
        row[metric] = mean(stats, metric) if n else None
        row[f"{metric}_p50"] = percentile(stats["hist"][metric], width, 0.5) if n else None
        row[f"{metric}_p95"] = percentile(stats["hist"][metric], width, 0.95) if n else None
    return row


def columns() -> list[str]:
    """The columns :func:`describe` fills, in table order."""
    return list(describe(empty()))
