"""Two fleet runs side by side (e.g. two lifter checkpoints over the same campaign).

``hpe3d-fleet compare A B -o C`` reads the ``summary.json`` of two fleet outputs and writes
into ``C``: ``compare_bags.csv`` (one row per bag of either run: both statuses, whether the
bag's bytes were the same, and per figure the value of A, of B and B - A),
``compare_by_<group>.csv`` for every grouping of either run, ``compare.json`` (the same, the
totals and the parameters that differ) and ``compare.png``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hpe3d_ros.fleet import plots
from hpe3d_ros.fleet.tables import write_csv

FIGURES = (
    "frames",
    "failed_frac",
    "people_per_frame",
    "root_distance_m_p50",
    "mpjpe_mm",
    "p_mpjpe_mm",
    "best_of_k_mm",
    "coverage90",
    "root_err_m",
)


class CompareError(ValueError):
    """A folder is not a finished fleet output (one line)."""


def load(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CompareError(f"{out} holds no finished hpe3d-fleet run ({exc})") from exc


def _delta(a: Any, b: Any) -> float | None:
    ok = all(isinstance(v, int | float) and math.isfinite(v) for v in (a, b))
    return b - a if ok else None


def side_by_side(
    rows_a: list[dict],
    rows_b: list[dict],
    key: str,
    labels: tuple[str, str],
    extra: dict[str, dict] | None = None,
) -> list[dict[str, Any]]:
    """Rows of A and B joined on ``key``; for each figure: A, B and B - A."""
    a, b = labels
    by_a, by_b = {r[key]: r for r in rows_a}, {r[key]: r for r in rows_b}
    out = []
    for k in sorted(by_a.keys() | by_b.keys()):
        ra, rb = by_a.get(k, {}), by_b.get(k, {})
        row: dict[str, Any] = {key: k}
        if key == "name":
            row.update(
                {
                    f"status_{a}": ra.get("status", "absent"),
                    f"status_{b}": rb.get("status", "absent"),
                }
            )
            if extra:
                sa, sb = (extra[x].get(k, {}).get("bag_sha256") for x in (a, b))
                row["same_bag"] = "" if None in (sa, sb) else int(sa == sb)
        for f in FIGURES:
            row[f"{f}_{a}"], row[f"{f}_{b}"] = ra.get(f), rb.get(f)
            row[f"{f}_delta"] = _delta(ra.get(f), rb.get(f))
        out.append(row)
    return out


def _header(key: str, labels: tuple[str, str], bags: bool) -> list[str]:
    a, b = labels
    head = [key] + ([f"status_{a}", f"status_{b}", "same_bag"] if bags else [])
    for f in FIGURES:
        head += [f"{f}_{a}", f"{f}_{b}", f"{f}_delta"]
    return head


def _param_diff(ra: dict[str, Any], rb: dict[str, Any]) -> dict[str, list[Any]]:
    pa, pb = ra.get("params", {}), rb.get("params", {})
    diff = {
        k: [pa.get(k), pb.get(k)] for k in sorted(pa.keys() | pb.keys()) if pa.get(k) != pb.get(k)
    }
    for k in ("params_file", "model_id"):
        if ra.get(k) != rb.get(k):
            diff[k] = [ra.get(k), rb.get(k)]
    return diff


def compare(out_a: Path, out_b: Path, out: Path, labels: tuple[str, str] = ("A", "B")) -> dict:
    """Write the comparison of two fleet outputs into ``out``; returns ``compare.json``'s content.

    Raises:
        CompareError: either folder holds no finished fleet run, or the labels are equal.
    """
    if labels[0] == labels[1]:
        raise CompareError(f"the two labels must differ (both {labels[0]!r})")
    sa, sb = load(out_a), load(out_b)
    out.mkdir(parents=True, exist_ok=True)
    results = {labels[0]: sa.get("results", {}), labels[1]: sb.get("results", {})}
    bags = side_by_side(sa["bags"], sb["bags"], "name", labels, results)
    write_csv(out / "compare_bags.csv", _header("name", labels, True), bags)
    groups = {}
    for key in sorted(sa["groups"].keys() | sb["groups"].keys()):
        ga, gb = sa["groups"].get(key, []), sb["groups"].get(key, [])
        groups[key] = side_by_side(ga, gb, "group", labels)
        write_csv(out / f"compare_by_{key}.csv", _header("group", labels, False), groups[key])
    total = side_by_side(
        [{"group": "all", **sa["total"]}], [{"group": "all", **sb["total"]}], "group", labels
    )[0]
    hists = {labels[0]: _pooled(out_a), labels[1]: _pooled(out_b)}
    plots.comparison(bags, hists, labels, out / "compare.png")
    result = {
        "runs": {labels[0]: str(out_a), labels[1]: str(out_b)},
        "differences": _param_diff(sa.get("run", {}), sb.get("run", {})),
        "total": total,
        "bags": bags,
        "groups": groups,
    }
    (out / "compare.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _pooled(out: Path) -> dict[str, dict[str, int]]:
    """The run's pooled histograms per metric, from its ``distributions.csv``."""
    import csv

    from hpe3d_ros.fleet.bagstats import METRICS

    hist: dict[str, dict[str, int]] = {m: {} for m in METRICS}
    with open(out / "distributions.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["group_by"] == "all":
                width = METRICS[r["metric"]][1]
                hist[r["metric"]][str(round(float(r["value"]) / width))] = int(r["count"])
    return hist


def format_compare(result: dict[str, Any], labels: tuple[str, str]) -> str:
    """The printed comparison: the totals of A and B, the parameters that differ."""
    a, b = labels
    t = result["total"]
    lines = [f"{'figure':<22}{a:>14}{b:>14}{'B - A':>12}"]
    for f in FIGURES:
        va, vb, d = t.get(f"{f}_{a}"), t.get(f"{f}_{b}"), t.get(f"{f}_delta")
        lines.append(f"{f:<22}{_s(va):>14}{_s(vb):>14}{_s(d):>12}")
    for k, (va, vb) in result["differences"].items():
        lines.append(f"differs: {k}: {va!r} -> {vb!r}")
    changed = [r["name"] for r in result["bags"] if r.get("same_bag") == 0]
    if changed:
        lines.append(f"bags whose bytes differ between the runs: {', '.join(changed)}")
    return "\n".join(lines)


def _s(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
