"""A fleet run from start to end: check, skip what is done, replay the rest, write the tables.

:func:`run_fleet` is what ``hpe3d-fleet run`` calls. It checks the configuration and ``OUT``
before anything starts, skips every bag whose record says it is done with this run's key
(without opening the bag when its files are unchanged; :mod:`hpe3d_ros.fleet.identity`),
starts or joins Ray only if something is left (:mod:`hpe3d_ros.fleet.cluster`), and writes
the fleet tables (:mod:`hpe3d_ros.fleet.tables`), the distributions picture and
``timings.json`` (this run's wall-clock facts: the only file that differs between two runs
of the same bags, parameters and seed).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpe3d_ros.config import NodeConfig, load_config
from hpe3d_ros.fleet import identity, plots, store, tables
from hpe3d_ros.fleet.inputs import BagEntry
from hpe3d_ros.fleet.worker import RunSpec

log = logging.getLogger("hpe3d_ros.fleet")


@dataclass
class FleetOptions:
    """How to replay (as ``hpe3d-replay``'s options) and where (Ray)."""

    params_file: str
    overrides: dict[str, Any] = field(default_factory=dict)
    storage: str = "mcap"
    cameras: list[str] | None = None
    pictures: bool = False  # True: hpe3d-replay's default overlays and MP4
    overlays: int = 4
    video_max_frames: int = 600
    address: str | None = None  # None: start a local Ray instance
    num_cpus: int | None = None  # of the local instance (None: all)
    workers: int | None = None  # bags in flight (None: CPUs / cpus_per_bag)
    cpus_per_bag: float = 1.0
    gpus_per_bag: float | None = None  # None: 1 if the cluster has GPUs and cfg asks for cuda
    retries: int = 3
    rerun: bool = False
    progress: bool = True
    group_by: str = ""  # grouping of distributions.png ("": vehicle, else the first label)
    stop: Callable[[], bool] | None = None  # checked between bags: true cancels the run


def wants_gpu(values: dict[str, Any]) -> bool:
    """The configuration runs a model on a GPU (a cuda device or a GPU backend)."""
    devices = (values.get("lifter.device", ""), values.get("detector.device", ""))
    backends = (values.get("lifter.backend", ""), values.get("detector.backend", ""))
    return any(str(d).startswith("cuda") for d in devices) or any(
        "cuda" in str(b) or "tensorrt" in str(b) for b in backends
    )


def _options(opts: FleetOptions) -> dict[str, Any]:
    """The replay options that change results (part of the run key)."""
    return {
        "storage": opts.storage,
        "cameras": opts.cameras,
        "overlays": opts.overlays if opts.pictures else 0,
        "video_max_frames": opts.video_max_frames if opts.pictures else 0,
    }


def _skippable(rec: dict[str, Any] | None, entry: BagEntry, run_key: str) -> bool:
    """Done with this run's key, and the bag's files (and GT file) untouched since."""
    if not rec or rec.get("run_key") != run_key or rec.get("status") not in ("ok", "failed"):
        return False
    if rec.get("gt_npz") != entry.gt_npz or entry.gt_npz:  # a side-car GT: hash it
        return False
    try:
        return rec.get("fingerprint") == identity.fingerprint(Path(entry.bag))
    except OSError:
        return False


def run_fleet(entries: list[BagEntry], out: Path, opts: FleetOptions) -> dict[str, Any]:
    """Replay ``entries`` into ``out``; returns ``{"tables", "timings", "results"}``.

    Raises:
        StoreError: ``out`` cannot be used; ConfigError: bad parameters (nothing started).
    """
    t0 = time.perf_counter()
    out = out.resolve()
    store.check_out(out)
    cfg = load_config(opts.params_file, **opts.overrides)
    ident = identity.run_identity(cfg.values, opts.params_file, _options(opts))
    run_key = identity.digest(ident)
    spec = RunSpec(
        str(out),
        os.getcwd(),
        opts.params_file,
        dict(opts.overrides),
        run_key,
        _options(opts),
        opts.rerun,
    )
    with store.locked(out):
        stale_before = store.remove_attempts(out)
        results: dict[str, dict[str, Any]] = {}
        todo = []
        for e in entries:
            rec = store.read_record(out / store.BAGS / e.name)
            if not os.path.lexists(e.bag):
                results[e.name] = {
                    "name": e.name,
                    "bag": e.bag,
                    "status": "error",
                    "outcome": "error",
                    "reason": f"no such bag: {e.bag}",
                }
            elif not opts.rerun and _skippable(rec, e, run_key):
                results[e.name] = {**rec, "outcome": "skipped"}
            else:
                todo.append(e)
        facts = _replay(todo, spec, cfg, opts, results) if todo else {}
        stale_after = store.remove_attempts(out)
        now = {e.name: {"name": e.name, "bag": e.bag, "labels": e.labels} for e in entries}
        records = [{**results[e.name], **now[e.name]} for e in entries]
        tabs = tables.build(records)
        run = {
            "run_key": run_key,
            "params_file": opts.params_file,
            "params": cfg.values,
            "options": _options(opts),
            "weights": ident["weights"],
            "model_id": sorted({r["model_id"] for r in records if r.get("model_id")}),
        }
        tables.write(out, tabs, run)
        plots.distributions(tabs, out / "distributions.png", _group_by(tabs, opts.group_by))
        timings = _timings(records, facts, time.perf_counter() - t0, stale_before, stale_after)
        store.write_json(out / "timings.json", timings)
    return {"tables": tabs, "timings": timings, "results": records}


def _group_by(tabs: dict[str, Any], wanted: str) -> str:
    if wanted:
        return wanted
    labels = tabs["labels"]
    return "vehicle" if "vehicle" in labels else (labels[0] if labels else "camera")


def _replay(
    todo: list[BagEntry],
    spec: RunSpec,
    cfg: NodeConfig,
    opts: FleetOptions,
    results: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Start or join Ray, run the bags left, put their results in ``results``."""
    from hpe3d_ros.fleet import cluster  # imports Ray: only when bags are left

    t0 = time.perf_counter()
    started = cluster.connect(opts.address, opts.num_cpus)
    try:
        res = cluster.resources()
        gpus = opts.gpus_per_bag
        if gpus is None:
            gpus = 1.0 if res["GPU"] > 0 and wants_gpu(cfg.values) else 0.0
        workers = opts.workers or max(1, int(res["CPU"] // max(opts.cpus_per_bag, 1e-9)))
        if gpus > 0:
            workers = min(workers, max(1, int(res["GPU"] // gpus)))
        connect_s = time.perf_counter() - t0
        log.info(
            "Ray: %d node(s), %g CPUs, %g GPUs; %d bag(s) to replay, %d in flight "
            "(%g CPU, %g GPU each)",
            res["nodes"],
            res["CPU"],
            res["GPU"],
            len(todo),
            workers,
            opts.cpus_per_bag,
            gpus,
        )
        done = [0]
        per_worker: dict[str, dict[str, float]] = {}

        def report(r: dict[str, Any]) -> None:
            done[0] += 1
            who = f"pid {r.get('pid', '?')} on node {str(r.get('node_id', '?'))[:8]}"
            w = per_worker.setdefault(who, {"bags": 0, "frames": 0, "replay_s": 0.0})
            w["bags"] += 1
            if r["outcome"] in ("published", "duplicate"):
                w["frames"] += r.get("frames", 0)
                w["replay_s"] += r.get("replay_s", 0.0)
            rate = r["frames"] / r["replay_s"] if r.get("replay_s") else 0.0
            what = (
                f"{r['status']}, {r.get('frames', 0)} frames, {rate:.1f} frames/s"
                if r["outcome"] != "reused"
                else "unchanged, reused"
            )
            why = f" ({r['reason']})" if r.get("reason") else ""
            log.info(
                "[%d/%d] bag %s: %s%s; worker %s (%d bags)",
                done[0],
                len(todo),
                r["name"],
                what,
                why,
                who,
                w["bags"],
            )

        t1 = time.perf_counter()
        for r in cluster.run_tasks(
            todo,
            spec,
            workers=workers,
            cpus_per_bag=opts.cpus_per_bag,
            gpus_per_bag=gpus,
            retries=opts.retries,
            progress=opts.progress,
            on_result=report,
            stop=opts.stop,
        ):
            results[r["name"]] = r
        for who, w in sorted(per_worker.items()):
            log.info(
                "worker %s: %d bags, %d frames, %.1f s replaying",
                who,
                w["bags"],
                w["frames"],
                w["replay_s"],
            )
        return {
            "connect_s": connect_s,
            "tasks_s": time.perf_counter() - t1,
            "workers": workers,
            "cluster": res,
            "gpus_per_bag": gpus,
            "cpus_per_bag": opts.cpus_per_bag,
            "per_worker": per_worker,
        }
    finally:
        if started:
            import ray

            ray.shutdown()


def _timings(
    records: list[dict[str, Any]],
    facts: dict[str, Any],
    wall: float,
    stale_before: int,
    stale_after: int,
) -> dict[str, Any]:
    """This run's wall-clock facts (``timings.json``)."""
    replayed = [r for r in records if r.get("outcome") in ("published", "duplicate")]
    frames = sum(r["frames"] for r in replayed)
    busy = sum(
        r.get("replay_s", 0.0) + r.get("hash_s", 0.0) + r.get("model_load_s", 0.0)
        for r in replayed
    )
    tasks_s, workers = facts.get("tasks_s", 0.0), facts.get("workers", 0)
    outcomes = {}
    for r in records:
        outcomes[r.get("outcome", "error")] = outcomes.get(r.get("outcome", "error"), 0) + 1
    return {
        "wall_s": wall,
        **{k: v for k, v in facts.items() if k != "tasks_s"},
        "tasks_s": tasks_s,
        "outcomes": outcomes,
        "frames_replayed": frames,
        "frames_per_s": frames / tasks_s if tasks_s > 0 else 0.0,
        "replay_s_sum": sum(r.get("replay_s", 0.0) for r in replayed),
        "model_loads": sum(1 for r in replayed if r.get("model_load_s", 0.0) > 0),
        # worker time not spent in a bag's hash, model load or replay, per bag
        "overhead_s_per_bag": (tasks_s * workers - busy) / len(replayed) if replayed else 0.0,
        "abandoned_attempts_removed": {"before": stale_before, "after": stale_after},
    }
