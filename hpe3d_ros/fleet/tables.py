"""The fleet's tables: one row per bag, per bag and camera, and per group of bags.

Written into ``OUT`` from the bags' records (:mod:`hpe3d_ros.fleet.bagstats`), never from
the per-bag tables, so a campaign's summary costs as much as its number of bags:

* ``bags.csv``: status (``ok``; ``failed``: a damaged or unusable bag, replayed as far as it
  goes; ``error``: not replayed, e.g. a missing path or a worker that died on every retry)
  with its one-line reason, the labels of the manifest, counts, people per frame, distances
  and, with ground truth, MPJPE, P-MPJPE, best-of-K, coverage@90, root error (mean, p50, p95);
* ``cameras.csv``: the same per bag and camera;
* ``by_camera.csv``, ``by_sequence.csv`` and ``by_<label>.csv`` for every manifest label
  (``vehicle``, ``campaign``...): the same pooled over the group's bags (means are exact,
  percentiles to the histogram bin: 1 mm, 1 cm, 0.01);
* ``distributions.csv``: the pooled histograms per group (``value`` = bin centre, ``width``,
  ``count``), the data of ``distributions.png``;
* ``summary.json``: all of it as JSON. These files are functions of the bags, the
  parameters and the seed: byte-identical whatever the workers and the order they finished in.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from hpe3d_ros.fleet.bagstats import METRICS, columns, describe, merge

BAG_FIELDS = ("name", "bag", "status", "reason", "sequence")
RESULT_FIELDS = ("key", "bag_sha256", "gt_sha256", "model_id")


def fmt(value: Any) -> str:
    """Table cell: floats with 6 significant digits, None/NaN empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def sequence_of(rec: dict[str, Any]) -> str:
    """The manifest's ``sequence`` label, else the replay's sequence name (the bag's name)."""
    seqs = rec.get("sequences") or [rec["name"]]
    return rec.get("labels", {}).get("sequence") or seqs[0]


def _stats(rec: dict[str, Any]) -> dict[str, Any]:
    return merge([rec["cameras"][c] for c in sorted(rec.get("cameras") or {})])


def label_names(records: list[dict[str, Any]]) -> list[str]:
    names = {k for r in records for k in r.get("labels", {}) if k != "sequence"}
    return sorted(names)


def build(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the tables hold, from the records of one run's bags (any order)."""
    records = sorted(records, key=lambda r: r["name"])
    labels = label_names(records)
    bags, cams = [], []
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {"camera": {}, "sequence": {}}
    groups.update({k: {} for k in labels})
    for r in records:
        head = {
            "name": r["name"],
            "bag": r["bag"],
            "status": r["status"],
            "reason": r.get("reason", ""),
            "sequence": sequence_of(r),
            **{k: r.get("labels", {}).get(k, "") for k in labels},
        }
        per_cam = r.get("cameras") or {}
        bags.append({**head, **describe(_stats(r))} if per_cam else head)
        for cam in sorted(per_cam):
            cams.append({**head, "camera": cam, **describe(per_cam[cam])})
            groups["camera"].setdefault(cam, []).append(per_cam[cam])
        if per_cam:
            groups["sequence"].setdefault(head["sequence"], []).append(_stats(r))
            for k in labels:
                groups[k].setdefault(head[k] or "(none)", []).append(_stats(r))
    merged = {k: {g: merge(v) for g, v in sorted(gs.items())} for k, gs in groups.items()}
    everything = merge([_stats(r) for r in records if r.get("cameras")])
    return {
        "labels": labels,
        "bags": bags,
        "cameras": cams,
        "groups": {
            k: [{"group": g, **describe(s)} for g, s in gs.items()] for k, gs in merged.items()
        },
        "histograms": {k: {g: s["hist"] for g, s in gs.items()} for k, gs in merged.items()}
        | {"all": {"all": everything["hist"]}},
        "total": describe(everything),
        "counts": {s: sum(r["status"] == s for r in records) for s in ("ok", "failed", "error")},
        "failures": [
            {"name": r["name"], "status": r["status"], "reason": r.get("reason", "")}
            for r in records
            if r["status"] != "ok"
        ],
        "results": {r["name"]: {k: r.get(k) for k in RESULT_FIELDS if k in r} for r in records},
    }


def write_csv(path: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    """A CSV file of ``rows`` (dicts) in ``header``'s column order, cells by :func:`fmt`."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow([fmt(row.get(c)) for c in header])


def write(out: Path, tables: dict[str, Any], run: dict[str, Any]) -> list[Path]:
    """Write the CSV files and ``summary.json`` into ``out``; returns the paths written."""
    stat_cols = columns()
    head = [*BAG_FIELDS, *tables["labels"]]
    written = [out / "bags.csv", out / "cameras.csv"]
    write_csv(written[0], head + stat_cols, tables["bags"])
    write_csv(written[1], [*head, "camera", *stat_cols], tables["cameras"])
    for key, rows in tables["groups"].items():
        path = out / f"by_{key}.csv"
        write_csv(path, ["group", *stat_cols], rows)
        written.append(path)
    dist = []
    for key, groups in tables["histograms"].items():
        for group, hists in groups.items():
            for metric, hist in hists.items():
                width = METRICS[metric][1]
                for b, n in sorted(hist.items(), key=lambda kv: int(kv[0])):
                    dist.append(
                        {
                            "group_by": key,
                            "group": group,
                            "metric": metric,
                            "value": round(int(b) * width, 6),
                            "width": width,
                            "count": n,
                        }
                    )
    written.append(out / "distributions.csv")
    write_csv(written[-1], ["group_by", "group", "metric", "value", "width", "count"], dist)
    summary = {k: v for k, v in tables.items() if k != "histograms"} | {"run": run}
    written.append(out / "summary.json")
    written[-1].write_text(
        json.dumps(summary, indent=2, sort_keys=True, default=_json_default) + "\n"
    )
    return written


def _json_default(value: Any) -> Any:
    return str(value)


def format_table(tables: dict[str, Any], key: str = "") -> str:
    """The printed summary: per bag (or per ``key`` group) counts and the main figures."""
    rows = tables["groups"][key] if key else tables["bags"]
    first = "group" if key else "name"
    gt = any(r.get("mpjpe_mm") is not None for r in rows)
    head = f"{first:<28}{'frames':>8}{'failed':>8}{'ppl/frame':>10}{'dist p50 m':>11}"
    head += f"{'MPJPE':>8}{'P-MPJPE':>9}{'best-of-K':>10}{'cov@90':>8}{'root m':>8}" if gt else ""
    lines = [head]
    for r in rows:
        name = str(r.get(first, ""))[:27]
        if "frames" not in r:
            lines.append(f"{name:<28}{r['status']}: {r.get('reason', '')}")
            continue
        line = (
            f"{name:<28}{r['frames']:>8}{r['failed']:>8}{_num(r['people_per_frame'], 2):>10}"
            f"{_num(r['root_distance_m_p50'], 2):>11}"
        )
        if gt:
            line += "".join(
                f"{_num(r[m], d):>{w}}"
                for m, d, w in (
                    ("mpjpe_mm", 1, 8),
                    ("p_mpjpe_mm", 1, 9),
                    ("best_of_k_mm", 1, 10),
                    ("coverage90", 2, 8),
                    ("root_err_m", 3, 8),
                )
            )
        if r.get("status") not in (None, "ok"):
            line += f"  {r['status']}: {r.get('reason', '')}"
        lines.append(line)
    return "\n".join(lines)


def _num(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"
