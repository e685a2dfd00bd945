"""Pictures of a fleet: the distributions of its metrics per group, and two runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hpe3d_ros.fleet.bagstats import METRICS

PANELS = ("root_distance_m", "root_depth_std_m", "mpjpe_mm", "best_of_k_mm", "root_err_m")
MAX_GROUPS = 8


def _rebinned(hist: dict[str, int], width: float, edges: np.ndarray) -> np.ndarray:
    values = np.array([int(b) * width for b in hist], dtype=np.float64)
    counts = np.array(list(hist.values()), dtype=np.float64)
    h, _ = np.histogram(values, bins=edges, weights=counts)
    return h


def _edges(hists: list[dict[str, int]], width: float, bins: int = 50) -> np.ndarray | None:
    vals = [int(b) * width for h in hists for b in h]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    return np.linspace(lo - width, hi + width, bins + 1)


def _hist_panel(ax: Any, metric: str, groups: dict[str, dict[str, dict[str, int]]]) -> None:
    width = METRICS[metric][1]
    hists = {g: h[metric] for g, h in list(groups.items())[:MAX_GROUPS] if h[metric]}
    edges = _edges(list(hists.values()), width)
    ax.set_title(metric)
    if edges is None:
        ax.text(
            0.5,
            0.5,
            "no data (no ground truth?)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        return
    for g, h in hists.items():
        counts = _rebinned(h, width, edges)
        ax.stairs(counts / max(counts.sum(), 1), edges, label=f"{g} (n={int(sum(h.values()))})")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=7)


def distributions(tables: dict[str, Any], path: Path, group_by: str) -> Path:
    """Per ``group_by`` group: histograms of distance, depth spread and (with GT) errors;
    and every bag's frames, ok and failed."""
    groups = tables["histograms"].get(group_by) or tables["histograms"]["all"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, metric in zip(axes.flat, PANELS, strict=False):
        _hist_panel(ax, metric, groups)
    ax = axes.flat[-1]
    rows = [b for b in tables["bags"] if "frames" in b]
    x = np.arange(len(rows))
    ok = np.array([b["ok"] for b in rows])
    failed = np.array([b["failed"] for b in rows])
    edges = ["red" if b["status"] != "ok" else "none" for b in rows]
    ax.bar(x, ok, color="tab:green", edgecolor=edges, label="frames ok")
    ax.bar(x, failed, bottom=ok, color="tab:red", label="frames failed")
    ax.set_title(f"frames per bag ({len(rows)} bags; red outline: bag failed)")
    ax.set_xticks([])
    ax.legend(fontsize=7)
    fig.suptitle(f"fleet: {len(tables['bags'])} bags, grouped by {group_by}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def comparison(
    rows: list[dict[str, Any]], hists: dict[str, dict], labels: tuple[str, str], path: Path
) -> Path:
    """Two runs: per-bag MPJPE (else distance) of A against B, and pooled histograms."""
    a, b = labels
    metric = (
        "mpjpe_mm"
        if any(r.get(f"mpjpe_mm_{a}") is not None for r in rows)
        else ("root_distance_m_p50")
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    xs = [r.get(f"{metric}_{a}") for r in rows]
    ys = [r.get(f"{metric}_{b}") for r in rows]
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    ax = axes[0]
    if pts:
        x, y = np.array(pts).T
        ax.scatter(x, y, s=12)
        lim = [min(x.min(), y.min()), max(x.max(), y.max())]
        ax.plot(lim, lim, "k--", lw=1)
    ax.set_xlabel(f"{metric} ({a})")
    ax.set_ylabel(f"{metric} ({b})")
    ax.set_title("per bag")
    for ax, m in zip(axes[1:], ("mpjpe_mm", "root_distance_m"), strict=True):
        _hist_panel(ax, m, {a: hists[a], b: hists[b]})
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
