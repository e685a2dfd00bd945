"""Markdown tables of :mod:`training.evaluate_cells` reports (per cell, subject, joint; ratios).

A report is the dict :func:`training.evaluate_cells.evaluate` returns and ``--json`` writes:
``models`` -> name -> mode -> ``cells`` -> cell name -> figures. :func:`merge_reports` joins
the models of several runs on the same views, so that models measured apart share one table.
"""

from __future__ import annotations

import numpy as np

from training.conditions import CELLS


def one_line(row: dict) -> str:
    """One cell's figures on one log line."""
    return (
        f"MPJPE {row['MPJPE']:.1f} best {row['best-of-K']:.1f} cov {row['cov90']:.3f} "
        f"(joint {row['cov90 min joint']:.2f}) spread {row['bone spread mm']:.1f} mm "
        f"max bone {row['max bone m']:.2f} m"
    )


def print_tables(report: dict) -> None:
    """Markdown tables of a report of :func:`training.evaluate_cells.evaluate`."""
    cells = [c.name for c in CELLS]
    for key, fmt in (("MPJPE", "{:.1f}"), ("best-of-K", "{:.1f}"), ("cov90", "{:.3f}"),
                     ("cov90 min joint", "{:.2f}")):  # fmt: skip
        head = f"{report['split']}, {report['frames']} frames, K={report['k']}"
        print(f"\n{key} per cell ({head})\n")
        print("| model | mode | " + " | ".join(cells) + " |")
        print("|---|---|" + "---|" * len(cells))
        for name, entry in report["models"].items():
            for mode, r in entry.items():
                if key.startswith("cov90") and r.get("deterministic"):
                    continue
                vals = [fmt.format(r["cells"][c][key]) for c in cells]
                print(f"| {name} | {mode} | " + " | ".join(vals) + " |")
    print("\nOverall (mean over the 9 cells) and body consistency\n")
    print(
        "| model | mode | MPJPE | P-MPJPE | best-of-K | cov90 | worst cell cov | worst joint "
        "| worst subject | bone spread mm | max bone m | stature slope | height slope |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, entry in report["models"].items():
        for mode, r in entry.items():
            rows = list(r["cells"].values())
            subj = np.mean([list(x["cov90 per subject"].values()) for x in rows], axis=0)
            cov = (
                "n/a | n/a | n/a | n/a"
                if r.get("deterministic")
                else f"{np.mean([x['cov90'] for x in rows]):.3f} | "
                f"{min(x['cov90'] for x in rows):.3f} / {max(x['cov90'] for x in rows):.3f} | "
                f"{min(x['cov90 min joint'] for x in rows):.2f} | {subj.min():.3f}"
            )
            print(
                f"| {name} | {mode} | {np.mean([x['MPJPE'] for x in rows]):.1f} | "
                f"{np.mean([x['P-MPJPE'] for x in rows]):.1f} | "
                f"{np.mean([x['best-of-K'] for x in rows]):.1f} | {cov} | "
                f"{max(x['bone spread mm'] for x in rows):.1f} | "
                f"{max(x['max bone m'] for x in rows):.2f} | {r['stature']['slope']:.2f} | "
                f"{r['stature']['height']['slope']:.2f} |"
            )
    print_subjects_and_joints(report)


def _by_int(d: dict) -> dict:
    return {int(k): v for k, v in d.items()}  # JSON made the subject keys strings


def print_subjects_and_joints(report: dict) -> None:
    """Per subject (MPJPE, cov90) and per joint (cov90), each the mean over the 9 cells."""
    from hpe3d_ros.skeleton import H36M_JOINT_NAMES

    entries = [(n, m, r) for n, e in report["models"].items() for m, r in e.items()]
    subjects = sorted({int(s) for _, _, r in entries
                       for s in next(iter(r["cells"].values()))["MPJPE per subject"]})  # fmt: skip
    print("\nPer subject, mean over the 9 cells: MPJPE mm / cov90\n")
    print("| model | mode | " + " | ".join(str(s) for s in subjects) + " |")
    print("|---|---|" + "---|" * len(subjects))
    for name, mode, r in entries:
        rows = list(r["cells"].values())
        vals = []
        for s in subjects:
            mp = np.mean([_by_int(x["MPJPE per subject"])[s] for x in rows])
            cov = (
                ""
                if r.get("deterministic")
                else f" / {np.mean([_by_int(x['cov90 per subject'])[s] for x in rows]):.3f}"
            )
            vals.append(f"{mp:.1f}{cov}")
        print(f"| {name} | {mode} | " + " | ".join(vals) + " |")
    joints = list(H36M_JOINT_NAMES[1:])
    print("\nPer joint, mean over the 9 cells: cov90\n")
    print("| model | mode | " + " | ".join(joints) + " |")
    print("|---|---|" + "---|" * len(joints))
    for name, mode, r in entries:
        if r.get("deterministic"):
            continue
        per = np.mean([x["cov90 per joint"] for x in r["cells"].values()], axis=0)
        print(f"| {name} | {mode} | " + " | ".join(f"{v:.2f}" for v in per) + " |")


def print_ratios(report: dict, reference: str) -> None:
    """Mean-of-K and best-of-K MPJPE of every model over ``reference``'s MPJPE, per cell."""
    ref_entry = report["models"][reference]
    ref = ref_entry.get("given", ref_entry.get("unknown"))
    cells = [c.name for c in CELLS]
    for key in ("MPJPE", "best-of-K"):
        print(f"\n{key} / {reference} MPJPE per cell\n")
        print("| model | mode | " + " | ".join(cells) + " | mean |")
        print("|---|---|" + "---|" * (len(cells) + 1))
        for name, entry in report["models"].items():
            if name == reference:
                continue
            for mode, r in entry.items():
                base = ref_entry.get(mode, ref)["cells"]
                q = [r["cells"][c][key] / base[c]["MPJPE"] for c in cells]
                vals = " | ".join(f"{v:.3f}" for v in q)
                print(f"| {name} | {mode} | {vals} | {np.mean(q):.3f} |")


def merge_reports(reports: list[dict]) -> dict:
    """One report of the models of several :func:`training.evaluate_cells.evaluate` runs on
    the same views (split, K, seed and frames must agree; a later run's model of the same name
    wins)."""
    first = reports[0]
    same = ("split", "k", "seed", "frames")
    bodies = {r.get("body", "estimated") for r in reports}
    if len(bodies) > 1:
        raise SystemExit(f"runs with different bodies: {sorted(bodies)}")
    for r in reports[1:]:
        if any(r[key] != first[key] for key in same):
            raise SystemExit(f"runs on different views: {[(k, r[k], first[k]) for k in same]}")
    return {**first, "models": {n: e for r in reports for n, e in r["models"].items()}}
