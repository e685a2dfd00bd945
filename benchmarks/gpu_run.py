"""Every GPU figure in one command, within a time budget: ``python benchmarks/gpu_run.py``.

    bash benchmarks/run_gpu.sh --budget-s 300          # on the GPU machine (results in $OUT)
    python benchmarks/gpu_run.py --dry-run --out build/gpu_dry   # the same run on the CPU

Steps, in order of importance, each in its own process with its own time limit inside the
budget (a step that fails or runs out of time is recorded, and the next one runs):

1. ``machine``: GPU, driver, Python, torch/CUDA, onnxruntime and its providers.
2. ``tensorrt_setup``: a TensorRT module if one imports; else wheels carried in
   ``build/gpu_carry/wheels`` (``gpu_prepare.py --wheels``), ``.whl`` or ``build/wheels``
   (split parts ``NAME.whl.part-aa, -ab...`` are joined) installed with
   ``pip --no-index --target build/trt_site``; else, where a registry answers within seconds,
   ``pip install --target build/trt_site tensorrt-cu13`` (``-cu12`` on CUDA 12 torch). Every
   attempt is recorded; without TensorRT the TensorRT rows say why and the rest runs.
3. ``parity``: every shipped lifter on every backend against torch FP32 on the same noise
   (FP16 mean joint difference <= 2 mm).
4. ``lifter``: ``sample`` latency, 10 people x K = 200 first (target <= 1 ms on H100-class).
5. ``detector``: MoveNet MultiPose at 640x480 and 1280x720.
6. ``pipeline``: frames/s at 640x480, 1 and 4 cameras, lifter ``auto`` and torch.
7. ``int8``: MPJPE on the unseen test subjects, torch FP32 vs TensorRT FP16 vs INT8.
8. ``tests``: the export/backend/TensorRT test files (skipped TensorRT tests run here).
9. ``lifter_compiled``: torch.compile on CUDA (last: it compiles for tens of seconds).

Into ``--out`` (``$OUT`` on the device, which returns at most 8 files): ``gpu_results.json``
(every figure, rewritten after each step, so a run cut short still returns what it did),
``gpu_tables.md`` (``gpu_report.py``'s tables) and ``gpu_log.txt`` (each step's output).
``--dry-run`` runs the whole script on the CPU: GPU backends are asked for and recorded as
not run with their reasons, CPU stand-ins are measured at tiny sizes, no registry is asked.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import gpu_report  # noqa: E402

#: (step, most seconds) in the order they run.
PLAN = (
    ("machine", 60),
    ("tensorrt_setup", 90),
    ("parity", 150),
    ("lifter", 90),
    ("detector", 60),
    ("pipeline", 120),
    ("int8", 120),
    ("tests", 150),
    ("lifter_compiled", 120),
)
STEP_NAMES = tuple(name for name, _ in PLAN)
TEST_FILES = ("test/test_export.py", "test/test_backends.py", "test/test_backends_tensorrt.py")
SITE = ROOT / "build" / "trt_site"
LOG_TAIL = 200_000  # characters of each step's output kept in gpu_log.txt


def machine() -> dict:
    """What the figures were measured on."""
    import torch

    info = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if info["gpu"]:
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    try:
        query = "--query-gpu=name,driver_version,memory.total"
        out = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.strip()  # fmt: skip
        info["nvidia_smi"] = out
        info["driver"] = out.split(",")[1].strip() if "," in out else None
    except (OSError, subprocess.TimeoutExpired) as exc:
        info["driver"] = f"no nvidia-smi ({type(exc).__name__})"
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["ort_providers"] = ort.get_available_providers()
    except ImportError as exc:
        info["onnxruntime"] = f"not importable: {exc}"
    return info


def probe_tensorrt() -> dict:
    """The TensorRT module that imports here (in a fresh process, with ``build/trt_site``)."""
    code = (
        "from hpe3d_ros.backends.tensorrt_backend import import_tensorrt\n"
        "from hpe3d_ros.backends.base import BackendUnavailable\n"
        "import json\ntry:\n    t = import_tensorrt()\n"
        "    print(json.dumps({'flavour': t.__name__, 'version': t.__version__,"
        " 'builder': hasattr(t, 'Builder')}))\n"
        "except BackendUnavailable as e:\n    print(json.dumps({'why_none': str(e)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=child_env(), timeout=60, cwd=ROOT)  # fmt: skip
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"why_none": out.stderr.strip()[-300:]}


def local_wheels(folders: list[Path], tmp: Path) -> list[Path]:
    """Wheels in ``folders``, split ones (``NAME.whl.part-aa``, ``-ab``...) joined into ``tmp``."""
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        found += sorted(folder.glob("*.whl"))
        for first in sorted(folder.glob("*.whl.part-aa")):
            whole = tmp / first.name[: -len(".part-aa")]
            tmp.mkdir(parents=True, exist_ok=True)
            with open(whole, "wb") as out:
                for part in sorted(folder.glob(first.name[:-2] + "*")):
                    out.write(part.read_bytes())
            found.append(whole)
    return found


def tensorrt_setup(ctx: dict, allow_registry: bool) -> dict:
    """Make a TensorRT module importable if it can be done here (see module docstring)."""
    attempts = []
    state = probe_tensorrt()
    if state.get("flavour"):
        return {**state, "attempts": ["already importable"]}
    folders = [Path(ctx["carry"]) / "wheels", ROOT / ".whl", ROOT / "build" / "wheels"]
    wheels = local_wheels(folders, ROOT / "build" / "wheel_join")
    if wheels:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
               "--upgrade", "--target", str(SITE), *map(str, wheels)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        names = ", ".join(w.name for w in wheels)
        attempts.append(f"local wheels ({names}): pip rc {proc.returncode} {proc.stderr[-200:]}")
        state = probe_tensorrt()
    else:
        attempts.append("no wheels carried (build/gpu_carry/wheels, .whl, build/wheels)")
    if not state.get("flavour") and allow_registry:
        import torch

        major = (torch.version.cuda or "13").split(".")[0]
        spec = f"tensorrt-cu{major}"
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--retries", "0", "--timeout", "10",
               "--target", str(SITE), spec]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=75)
            tail = (proc.stderr.strip().splitlines() or [""])[-1][:300]
            attempts.append(f"pip install {spec} from the registry: rc {proc.returncode} {tail}")
        except subprocess.TimeoutExpired:
            attempts.append(f"pip install {spec}: no answer from a registry within 75 s")
        state = probe_tensorrt()
    elif not state.get("flavour"):
        attempts.append("registry not asked (dry run)")
    return {**state, "attempts": attempts}


def run_tests(ctx: dict, timeout: float) -> dict:
    """The export/backend/TensorRT tests (dry run: the TensorRT file, whose tests skip here)."""
    files = TEST_FILES[2:] if ctx["dry_run"] else TEST_FILES
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *files]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=child_env())  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    skips = [ln.split("] ", 1)[-1][:300] for ln in lines if ln.startswith("SKIPPED")]
    return {"command": "pytest -q -rs " + " ".join(files), "rc": proc.returncode,
            "summary": lines[-1] if lines else proc.stderr[-300:], "skips": skips,
            "output": proc.stdout[-LOG_TAIL:] + proc.stderr[-5000:]}  # fmt: skip


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(SITE), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    env.setdefault("HPE3D_ONNX_CACHE", str(ROOT / "build" / "cache" / "onnx"))
    env.setdefault("HPE3D_ENGINE_CACHE", str(ROOT / "build" / "cache" / "engines"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_measure_step(name: str, ctx: dict, prior: dict):
    """One measurement step in this process (``gpu_measure.STEPS``)."""
    from benchmarks.gpu_measure import STEPS, Ctx

    c = Ctx(**{k: v for k, v in ctx.items() if k in Ctx.__dataclass_fields__})
    if name == "pipeline":
        return STEPS[name](c, prior.get("detector"))
    return STEPS[name](c)


def run_step(name: str, ctx: dict, prior: dict, timeout: float, in_process: bool, log) -> tuple:
    """(result, status, reason) of one step; its output goes to ``log``."""
    if name == "tests":
        try:
            res = run_tests(ctx, timeout)
        except subprocess.TimeoutExpired:
            return None, "timed out", f"pytest did not finish within {timeout:.0f} s"
        log.write(res.pop("output"))
        return res, ("ok" if res["rc"] in (0, 5) else "failed"), res["summary"]
    if name == "tensorrt_setup":
        return tensorrt_setup(ctx, allow_registry=not ctx["dry_run"]), "ok", ""
    if in_process:
        return (machine() if name == "machine" else run_measure_step(name, ctx, prior)), "ok", ""
    io = ROOT / "build" / "gpu_step"
    io.mkdir(parents=True, exist_ok=True)
    (io / "in.json").write_text(json.dumps({"ctx": ctx, "prior": prior}))
    out = io / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--step", name, "--step-io", str(io)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=child_env(), cwd=ROOT)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        log.write(str(exc.stdout or "")[-LOG_TAIL:] + str(exc.stderr or "")[-LOG_TAIL:])
        return None, "timed out", f"no result within {timeout:.0f} s"
    log.write(proc.stdout[-LOG_TAIL:] + proc.stderr[-LOG_TAIL:])
    if proc.returncode or not out.is_file():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return None, "failed", f"rc {proc.returncode}: {tail}"
    return json.loads(out.read_text()), "ok", ""


def run_all(args) -> dict:
    """Every step of ``args.steps`` within ``args.budget_s``; results and tables into out."""
    from benchmarks.gpu_measure import Ctx

    kw = {"carry": str(args.carry)} if args.carry else {}
    ctx = (Ctx.dry(**kw) if args.dry_run else Ctx(**kw)).to_dict()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    res = {
        "schema": 1,
        "command": args.command_line,
        "dry_run": args.dry_run,
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "budget_s": args.budget_s,
        "ctx": ctx,
        "steps": {},
    }
    deadline = time.monotonic() + args.budget_s
    limits = dict(PLAN)
    with open(out / "gpu_log.txt", "w") as log:
        for name in args.steps:
            left = deadline - time.monotonic()
            if left < 15:
                res["steps"][name] = {"status": "skipped", "reason": "budget spent", "seconds": 0}
                continue
            timeout = min(limits[name], left - 5)
            log.write(f"\n===== {name} (limit {timeout:.0f} s)\n")
            log.flush()
            t0 = time.monotonic()
            try:
                value, status, reason = run_step(name, ctx, res, timeout, args.in_process, log)
            except Exception as exc:  # a step's failure is a result, not the end of the run
                value, status, reason = None, "failed", f"{type(exc).__name__}: {exc}"[:300]
            res["steps"][name] = {"status": status, "reason": reason,
                                  "seconds": time.monotonic() - t0}  # fmt: skip
            if value is not None:
                res[name if name != "tensorrt_setup" else "tensorrt"] = value
            log.write(f"----- {name}: {status} {reason}\n")
            log.flush()
            (out / "gpu_results.json").write_text(json.dumps(res, indent=1, default=str))
            (out / "gpu_tables.md").write_text(gpu_report.render(res))
    return res


def main(argv: list[str] | None = None) -> int:
    from hpe3d_ros.backends.export import OneLineParser

    parser = OneLineParser(prog="gpu_run", description=__doc__.splitlines()[0])
    default_out = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "build" / "gpu"
    parser.add_argument("--out", type=Path, default=default_out, help="results folder ($OUT)")
    parser.add_argument("--budget-s", type=float, default=300.0, help="whole run, seconds")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, tiny sizes")
    parser.add_argument("--steps", nargs="+", choices=STEP_NAMES, default=list(STEP_NAMES))
    parser.add_argument("--carry", type=Path, default=None, help="gpu_prepare.py's folder "
                        "(default: build/gpu_carry)%(default).0s")  # fmt: skip
    parser.add_argument("--in-process", action="store_true", help="no step processes (tests)")
    parser.add_argument("--step", choices=STEP_NAMES, help=argparse_hidden())
    parser.add_argument("--step-io", type=Path, help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.step:  # a child: one step, its result into --step-io/<step>.json
        data = json.loads((args.step_io / "in.json").read_text())
        value = machine() if args.step == "machine" else None
        if value is None:
            value = run_measure_step(args.step, data["ctx"], data["prior"])
        (args.step_io / f"{args.step}.json").write_text(json.dumps(value, default=str))
        return 0
    if not 30 <= args.budget_s <= 3600:
        parser.error(f"--budget-s {args.budget_s:g} outside 30-3600")
    args.command_line = "python benchmarks/gpu_run.py " + shlex.join(argv or sys.argv[1:])
    res = run_all(args)
    bad = [n for n, s in res["steps"].items() if s["status"] in ("failed", "timed out")]
    sys.stdout.write(
        f"results in {args.out}: {len(res['steps'])} steps, failed: {bad or 'none'}\n"
    )
    return 1 if bad else 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
