"""Fleet replay on Ray: per-frame cost, 1 vs 2 workers, scheduling overhead per bag.

``nice -n 10 .venv/bin/python benchmarks/bench_fleet.py --json runs/bench_fleet.json``

1. **Per-frame cost, one process** (``replay()`` in-process, shipped parameters, K = 50): wall
   and CPU seconds per frame (``getrusage``: what a campaign pays per core) and the replay's
   stage times, for camera bags (the 150-frame vtest clip, 768x576 JPEG, about 7 people a
   frame: detector + lifter) and keypoint-level mocap bags (3 people, 1280x720: lifter only).
2. **Scaling**: ``hpe3d-fleet`` on a fresh local Ray instance (2 CPUs) with 1 and with 2
   workers, one CPU and one detector thread per bag (``detector.threads=1``): frames/s of the
   task phase (model loads included) and in steady state (frames / time inside ``replay()``
   per worker), and the scaling efficiency ``fps(2) / (2 fps(1))``.
3. **Scheduling overhead per bag**: many 1-frame bags through the fleet (2 workers, models
   already loaded) against ``replay()`` of the same bags in-process: the difference per bag is
   what Ray and the fleet's bookkeeping (hash, record, publish, tables) add.

Prints a Markdown summary; ``--json`` writes every figure (``BENCHMARKS.md``, "Fleet replay").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpe3d_ros.build import build_pipeline  # noqa: E402
from hpe3d_ros.camera import CameraModel  # noqa: E402
from hpe3d_ros.config import load_config  # noqa: E402
from hpe3d_ros.fleet.inputs import collect  # noqa: E402
from hpe3d_ros.fleet.run import FleetOptions, run_fleet  # noqa: E402
from hpe3d_ros.replay import SHIPPED_PARAMS, replay  # noqa: E402
from hpe3d_ros.replay.make_bag import (  # noqa: E402
    mocap_scene,
    read_video,
    write_image_bag,
    write_mocap_bag,
)

CLIP = ROOT / "demo" / "vtest_600_750.mp4"
MOCAP = ROOT.parent / "shared" / "data" / "cmu_h36m17_30fps.npz"
PARAMS = str(SHIPPED_PARAMS)
#: one core per bag: 1 detector thread (the shipped 2 would give 2 workers 4 threads on 2 cores)
ONE_CORE = {"detector.threads": 1, "lifter.threads": 1}


def make_bags(root: Path, kind: str, bags: int, frames: int) -> list[Path]:
    """``bags`` bags of ``frames`` frames each: camera bags (consecutive pieces of the clip)
    or mocap bags (a different seed each)."""
    out = []
    if kind == "image":
        clip = list(read_video(CLIP))
        cam = CameraModel.from_fov(clip[0].shape[1], clip[0].shape[0], 60.0)
        for i in range(bags):
            start = (i * frames) % max(1, len(clip) - frames)
            write_image_bag(root / f"img{i}", clip[start : start + frames], cam, compressed=True)
            out.append(root / f"img{i}")
    else:
        cam = CameraModel.from_fov(1280, 720, 90.0)
        for i in range(bags):
            scene = mocap_scene(MOCAP, cam, frames=frames, people=3, seed=100 + i)
            write_mocap_bag(root / f"mocap{i}", scene, cam)
            out.append(root / f"mocap{i}")
    return out


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def per_frame_cost(bags: list[Path], out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """``replay()`` of ``bags`` in this process: wall and CPU seconds per frame, stages."""
    cfg = load_config(PARAMS, **overrides)
    pipeline = build_pipeline(cfg)
    replay(bags[:1], out / "warm", cfg, pipeline, overlays=0, video_max_frames=0)
    cpu0, t0 = _cpu_s(), time.perf_counter()
    summary = replay(bags, out / "cost", cfg, pipeline, overlays=0, video_max_frames=0)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    n = summary["frames"]
    stages = json.loads((out / "cost" / "timings.json").read_text())["stage_ms"]
    return {
        "frames": n,
        "frames_per_s": n / wall,
        "wall_ms_per_frame": 1e3 * wall / n,
        "cpu_ms_per_frame": 1e3 * cpu / n,
        "stage_ms_mean": {k: v["mean"] for k, v in stages.items()},
        "people_per_frame": sum(c["people"] for c in summary["cameras"]) / max(n, 1),
    }


def fleet_run(bags: list[Path], out: Path, workers: int, overrides: dict[str, Any]) -> dict:
    """One ``hpe3d-fleet`` run on a fresh local Ray instance with 2 CPUs."""
    shutil.rmtree(out, ignore_errors=True)
    opts = FleetOptions(
        params_file=PARAMS, overrides=overrides, num_cpus=2, workers=workers, progress=False
    )
    load0 = os.getloadavg()[0]
    result = run_fleet(collect([str(b) for b in bags]), out, opts)
    t = result["timings"]
    replayed = [r for r in result["results"] if r.get("outcome") == "published"]
    busy: dict[int, float] = {}
    for r in replayed:
        busy[r["pid"]] = busy.get(r["pid"], 0.0) + r["replay_s"]
    cpu = sum(r["replay_cpu_s"] for r in replayed)
    return {
        "workers": workers,
        "bags": len(replayed),
        "frames": t["frames_replayed"],
        "ray_start_s": t["connect_s"],
        "tasks_s": t["tasks_s"],
        "frames_per_s": t["frames_per_s"],
        # steady state: every worker busy replaying, model loads and the tail left out
        "steady_frames_per_s": t["frames_replayed"] / max(busy.values()),
        # CPU seconds of the workers' replays: per frame, and cores they got while replaying
        "cpu_ms_per_frame": 1e3 * cpu / max(t["frames_replayed"], 1),
        "cores_obtained": cpu / max(busy.values()),
        "model_loads": t["model_loads"],
        "model_load_s_mean": sum(r["model_load_s"] for r in replayed) / max(t["model_loads"], 1),
        "overhead_s_per_bag": t["overhead_s_per_bag"],
        "load_average": [load0, os.getloadavg()[0]],
    }


def overhead(root: Path, out: Path, n: int) -> dict[str, Any]:
    """Per 1-frame bag: in-process ``replay()`` vs the fleet (2 warm workers)."""
    bags = make_bags(root / "tiny", "mocap", n, 1)
    cfg = load_config(PARAMS, **ONE_CORE)
    pipeline = build_pipeline(cfg)
    t0 = time.perf_counter()
    for i, b in enumerate(bags):
        replay([b], out / f"single{i}", cfg, pipeline, overlays=0, video_max_frames=0)
    single = (time.perf_counter() - t0) / n
    import ray

    from hpe3d_ros.fleet import cluster

    cluster.connect(num_cpus=2)
    try:
        opts = FleetOptions(params_file=PARAMS, overrides=ONE_CORE, workers=2, progress=False)
        run_fleet(collect([str(b) for b in bags[:4]]), out / "warmup", opts)  # load the models
        t0 = time.perf_counter()
        result = run_fleet(collect([str(b) for b in bags]), out / "fleet", opts)
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    t = result["timings"]
    return {
        "bags": n,
        "replay_in_process_s_per_bag": single,
        "fleet_worker_s_per_bag": t["tasks_s"] * 2 / n,
        "fleet_overhead_s_per_bag": t["tasks_s"] * 2 / n - single,
        "fleet_bookkeeping_s_per_bag": t["overhead_s_per_bag"],
        "fleet_wall_s": wall,
        "tables_s": wall - t["tasks_s"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bags", type=int, default=8, help="bags per scaling run")
    ap.add_argument("--frames", type=int, default=30, help="frames per camera bag")
    ap.add_argument("--mocap-frames", type=int, default=150, help="frames per mocap bag")
    ap.add_argument("--tiny", type=int, default=40, help="1-frame bags for the overhead")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench_fleet")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    figures: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0]}
    }
    for kind, frames in (("image", args.frames), ("mocap", args.mocap_frames)):
        bags = make_bags(args.out / kind, kind, args.bags, frames)
        fig = {
            "shipped": per_frame_cost(bags[:2], args.out / f"{kind}_cost", {}),
            "one_core": per_frame_cost(bags[:2], args.out / f"{kind}_cost1", ONE_CORE),
        }
        for workers in (1, 2):
            fig[f"fleet_{workers}"] = fleet_run(
                bags, args.out / f"{kind}_w{workers}", workers, ONE_CORE
            )
        for rate in ("frames_per_s", "steady_frames_per_s"):
            fig[f"efficiency_{rate}"] = fig["fleet_2"][rate] / (2 * fig["fleet_1"][rate])
        figures[kind] = fig
        print(f"## {kind}\n{json.dumps(fig, indent=1)}", flush=True)
    figures["overhead"] = overhead(args.out, args.out / "overhead", args.tiny)
    print(f"## overhead\n{json.dumps(figures['overhead'], indent=1)}")
    figures["machine"]["load_average_end"] = os.getloadavg()[0]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
