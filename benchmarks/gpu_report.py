"""GPU-run results (``gpu_results.json``) -> the Markdown tables of BENCHMARKS.md.

    python benchmarks/gpu_report.py RESULTS.json                      # print the tables
    python benchmarks/gpu_report.py RESULTS.json --update BENCHMARKS.md

``--update`` replaces what lies between the ``<!-- gpu-results:begin -->`` and
``<!-- gpu-results:end -->`` lines of the file (both must be there, once each) and nothing
else. A row that did not run says why (``not run: ...``), so every table has every backend.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BEGIN = "<!-- gpu-results:begin -->"
END = "<!-- gpu-results:end -->"
TARGET_LIFTER_MS = 1.0  # K = 200 x 10 people on an H100-class GPU
TARGET_FPS = 100.0  # full pipeline, 640x480, one camera


def _f(value, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _skip(row: dict, width: int, lead: list[str]) -> list[str]:
    return [*lead, f"not run: {row['skipped']}"] + [""] * (width - len(lead) - 1)


def machine_lines(res: dict) -> str:
    m, trt = res.get("machine") or {}, res.get("tensorrt") or {}
    gpu = m.get("gpu") or "no GPU"
    lines = [
        f"- Machine: {gpu}, driver {m.get('driver', '?')}, {m.get('cpus', '?')} CPUs; "
        f"Python {m.get('python', '?')}, torch {m.get('torch', '?')} (CUDA "
        f"{m.get('torch_cuda') or 'none'}), onnxruntime {m.get('onnxruntime', '?')} "
        f"({', '.join(m.get('ort_providers') or []) or '?'})",
        f"- TensorRT: {trt.get('flavour') or 'none'} {trt.get('version') or ''}".rstrip()
        + (f" ({trt['why_none']})" if trt.get("why_none") else ""),
    ]
    for a in trt.get("attempts") or []:
        lines.append(f"  - {a}")
    return "\n".join(lines)


def steps_table(res: dict) -> str:
    rows = [
        [name, s.get("status", "?"), _f(s.get("seconds"), ".0f"), s.get("reason", "")]
        for name, s in (res.get("steps") or {}).items()
    ]
    return _table(["step", "status", "s", "note"], rows)


def parity_table(res: dict) -> str:
    rows = []
    for r in res.get("parity") or []:
        if "skipped" in r:
            rows.append(_skip(r, 6, [r["model"], r["backend"]]))
            continue
        ok = {True: "pass", False: "**FAIL**", None: "(no limit)"}[r.get("ok")]
        rows.append([r["model"], r["backend"], _f(r["mean_mm"], ".3f"), _f(r["max_mm"], ".3f"),
                     _f(r.get("limit_mm"), ".1f"), ok])  # fmt: skip
    return _table(["model", "backend", "mean mm", "max mm", "limit mm (mean)", "result"], rows)


def lifter_table(rows_in: list[dict]) -> str:
    rows = []
    for r in rows_in:
        if "skipped" in r:
            rows.append(_skip(r, 7, [r["backend"], r["model"]]))
            continue
        target = ""
        if (r["people"], r["k"]) == (10, 200) and r["model"] == "lifter_default.pt":
            target = "met" if r["median_ms"] <= TARGET_LIFTER_MS else "**missed**"
        rows.append([r["backend"], r["model"], f"{r['people']} x {r['k']}",
                     f"{r['median_ms']:.3f} ({r['p90_ms']:.3f})", _f(r["min_ms"], ".3f"),
                     _f(r["cpu_ms"], ".2f"), target])  # fmt: skip
    header = ["backend", "model", "people x K", "median ms (p90)", "min ms", "CPU ms",
              f"<= {TARGET_LIFTER_MS:g} ms at 10 x 200"]  # fmt: skip
    return _table(header, rows)


def detector_table(res: dict) -> str:
    rows = []
    for r in res.get("detector") or []:
        if "skipped" in r:
            rows.append(_skip(r, 6, [r["backend"], "-"]))
            continue
        median = f"{r['median_ms']:.1f} ({r['p90_ms']:.1f})"
        rows.append([r["backend"], r["size"], r["people"], median, _f(r["min_ms"], ".1f"),
                     _f(r["cpu_ms"], ".0f")])  # fmt: skip
    return _table(["backend", "image", "people", "median ms (p90)", "min ms", "CPU ms"], rows)


def pipeline_table(res: dict) -> str:
    rows = []
    for r in res.get("pipeline") or []:
        if "skipped" in r:
            rows.append(_skip(r, 8, [r["lifter_asked"], "-"]))
            continue
        st = r.get("stage_median_ms", {})
        target = ""
        if r["cameras"] == 1:
            target = "met" if r["frames_per_s"] >= TARGET_FPS else "**missed**"
        rows.append([r["lifter"], r["detector"], r["cameras"], _f(r["frames_per_s"], ".1f"),
                     _f(r["per_camera_frames_per_s"], ".1f"), _f(st.get("detect"), ".1f"),
                     _f(st.get("lift_and_place"), ".2f"), target])  # fmt: skip
    header = ["lifter", "detector", "cameras", "frames/s (all)", "frames/s per camera",
              "detect ms", "lift+place ms", f">= {TARGET_FPS:g} frames/s (1 camera)"]  # fmt: skip
    return _table(header, rows)


def int8_table(res: dict) -> str:
    rows = []
    for r in res.get("int8") or []:
        if "skipped" in r:
            rows.append(_skip(r, 4, [r["backend"]]))
            continue
        rows.append(
            [r["backend"], r["frames"], _f(r["mpjpe_mm"], ".2f"), _f(r["cost_mm"], "+.2f")]
        )
    return _table(["backend", "test frames", "MPJPE mm (mean of K)", "cost vs torch mm"], rows)


def tests_line(res: dict) -> str:
    t = res.get("tests") or {}
    if not t:
        return "- Tests: not run"
    lines = [f"- Tests (`{t.get('command', '?')}`): {t.get('summary', '?')}"]
    lines += [f"  - {s}" for s in t.get("skips") or []]
    return "\n".join(lines)


def render(res: dict) -> str:
    """Every table of a run, under a heading naming the run and its command."""
    kind = (
        "DRY RUN on the CPU (GPU steps replaced or skipped)" if res.get("dry_run") else "GPU run"
    )
    parts = [
        f"#### {kind}, {res.get('started', '?')}: `{res.get('command', '?')}`",
        machine_lines(res),
        tests_line(res),
        "Steps:\n\n" + steps_table(res),
        "Parity against torch FP32 on the same noise (every shipped lifter):\n\n"
        + parity_table(res),
        "Lifter `sample` latency:\n\n" + lifter_table(res.get("lifter") or []),
    ]
    if res.get("lifter_compiled"):
        parts.append("torch.compile on CUDA:\n\n" + lifter_table(res["lifter_compiled"]))
    parts += [
        "Detector (MoveNet MultiPose, 2x1 tiles of 512 px):\n\n" + detector_table(res),
        "Full pipeline, 640x480:\n\n" + pipeline_table(res),
        "Accuracy cost on the unseen test subjects:\n\n" + int8_table(res),
    ]
    return "\n\n".join(parts) + "\n"


def update_file(path: Path, text: str) -> None:
    """Replace the marked block of ``path`` with ``text`` (ValueError without both markers)."""
    doc = path.read_text()
    if doc.count(BEGIN) != 1 or doc.count(END) != 1 or doc.index(BEGIN) > doc.index(END):
        raise ValueError(f"{path}: needs one {BEGIN} line followed by one {END} line")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text.strip()}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    from hpe3d_ros.backends.export import OneLineParser

    parser = OneLineParser(prog="gpu_report", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="gpu_results.json of a run")
    parser.add_argument("--update", type=Path, default=None, help="file with the markers")
    args = parser.parse_args(argv)
    try:
        text = render(json.loads(args.results.read_text()))
        if args.update:
            update_file(args.update, text)
        else:
            sys.stdout.write(text)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"gpu_report: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
