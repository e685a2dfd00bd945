"""One bag on one worker: skip it if done, else replay it exactly as ``hpe3d-replay`` would.

:func:`replay_entry` runs inside a worker process (a Ray task, :mod:`hpe3d_ros.fleet.cluster`)
and knows nothing of Ray. The worker keeps the models it loaded for the next bag (one load per
worker process, not per bag), and calls :func:`hpe3d_ros.replay.replay` on the bag alone, with
the bag path as given, the parameters file, seed and options of the run, in the driver's
working folder: so ``OUT/bags/<name>/`` holds the same ``frames.csv``, ``people.csv`` and
``summary.json`` bytes as ``hpe3d-replay <bag> -o X --no-pictures`` (``--pictures``: without
``--no-pictures``) run there, whichever worker ran it and in whatever order bags finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpe3d_ros.fleet import identity, store
from hpe3d_ros.fleet.bagstats import bag_stats
from hpe3d_ros.fleet.inputs import BagEntry
from hpe3d_ros.untrusted import error_line

log = logging.getLogger("hpe3d_ros.fleet")


@dataclass(frozen=True)
class RunSpec:
    """What every bag of a fleet run shares (sent to each worker)."""

    out: str  # absolute path of OUT
    cwd: str  # the driver's working folder: relative bag paths are relative to it
    params_file: str
    overrides: dict[str, Any]
    run_key: str
    options: dict[str, Any] = field(default_factory=dict)  # storage, cameras, pictures
    rerun: bool = False


class WorkerMismatch(RuntimeError):
    """This worker would not compute what the driver asked for (other weights or software)."""


class _NoSignals:
    """``replay()``'s stop protocol without signal handlers: a worker's signals are Ray's."""

    requested = False
    name = ""
    exit_code = 0

    @contextlib.contextmanager
    def abortable(self) -> Iterator[None]:
        yield


_LOADED: dict[str, Any] = {}  # this process's models: {"key": ..., "cfg", "pipeline", "load_s"}


def _pipeline(spec: RunSpec) -> tuple[Any, Any, float, bool]:
    """(cfg, pipeline, load seconds, loaded now): the models load once per worker process."""
    key = json.dumps([spec.cwd, spec.params_file, spec.overrides, spec.run_key], sort_keys=True)
    if _LOADED.get("key") != key:
        from hpe3d_ros.build import build_pipeline
        from hpe3d_ros.config import load_config

        _LOADED.clear()
        cfg = load_config(spec.params_file, **spec.overrides)
        mine = identity.digest(identity.run_identity(cfg.values, spec.params_file, spec.options))
        if mine != spec.run_key:
            raise WorkerMismatch(
                f"worker on {os.uname().nodename} has other weights, parameters or hpe3d_ros "
                f"than the driver (run key {mine[:12]} != {spec.run_key[:12]})"
            )
        t0 = time.perf_counter()
        pipeline = build_pipeline(cfg)
        _LOADED.update(key=key, cfg=cfg, pipeline=pipeline, load_s=time.perf_counter() - t0)
        return cfg, pipeline, _LOADED["load_s"], True
    return _LOADED["cfg"], _LOADED["pipeline"], _LOADED["load_s"], False


@contextlib.contextmanager
def _cwd(folder: str) -> Iterator[None]:
    old = os.getcwd()
    if os.path.isdir(folder):
        os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def replay_entry(spec: RunSpec, entry: BagEntry, node_id: str = "") -> dict[str, Any]:
    """Replay (or reuse) one bag; returns its record plus this attempt's facts (``outcome``:
    ``reused``, ``published``, ``duplicate`` or ``error``; ``error`` is not stored).
    ``node_id`` names the cluster node this runs on (recorded with the pid and host)."""
    out = Path(spec.out)
    t0 = time.perf_counter()
    with _cwd(spec.cwd):
        bag = Path(entry.bag)
        base = {
            "name": entry.name,
            "bag": entry.bag,
            "labels": entry.labels,
            "gt_npz": entry.gt_npz,
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "node_id": node_id,
        }
        if not os.path.lexists(bag):
            return {**base, "status": "error", "outcome": "error", "reason": f"no such bag: {bag}"}
        try:
            fp = identity.fingerprint(bag)
            sha = identity.content_hash(bag)
            gt_sha = identity.file_sha256(Path(entry.gt_npz)) if entry.gt_npz else None
        except OSError as exc:
            return {
                **base,
                "status": "error",
                "outcome": "error",
                "reason": f"cannot read bag {bag}: {error_line(exc)}",
            }
        key = identity.bag_key(spec.run_key, sha, gt_sha)
        hash_s = time.perf_counter() - t0
        old = store.read_record(out / store.BAGS / entry.name)
        if old and old.get("key") == key and not spec.rerun:
            if old.get("fingerprint") != fp:  # a copy or a touch: the next run skips it sooner
                store.write_json(
                    out / store.BAGS / entry.name / store.RECORD, {**old, "fingerprint": fp}
                )
            where = {k: base[k] for k in ("pid", "host", "node_id")}
            return {**old, **where, "outcome": "reused", "hash_s": hash_s}
        cfg, pipeline, load_s, loaded = _pipeline(spec)
        log.info("bag %s: replaying on pid %d (%s)", entry.name, os.getpid(), base["host"])
        attempt = store.new_attempt(out, entry.name)
        t1, c1 = time.perf_counter(), time.process_time()
        try:
            summary = _replay(spec, entry, attempt, cfg, pipeline, load_s if loaded else 0.0)
            record = _record(base, summary, attempt, key, sha, gt_sha, fp, spec.run_key)
            record.update(
                hash_s=hash_s,
                replay_s=time.perf_counter() - t1,
                replay_cpu_s=time.process_time() - c1,
                model_load_s=load_s if loaded else 0.0,
            )
            store.write_json(attempt / store.RECORD, record)
            outcome = store.publish(out, attempt, entry.name, key)
        except Exception as exc:  # a bad GT file, an unusable output...: this bag only
            shutil.rmtree(attempt, ignore_errors=True)
            return {**base, "status": "error", "outcome": "error", "reason": error_line(exc)}
        log.info(
            "bag %s: %s, %d frames in %.1f s",
            entry.name,
            record["status"],
            record["frames"],
            record["replay_s"],
        )
        return {**record, "outcome": outcome}


def _replay(
    spec: RunSpec, entry: BagEntry, attempt: Path, cfg: Any, pipeline: Any, load_s: float
) -> dict[str, Any]:
    from hpe3d_ros.replay import replay

    o = spec.options
    return replay(
        [entry.bag],
        attempt,
        cfg,
        pipeline,
        cameras=o.get("cameras"),
        gt_npz=entry.gt_npz,
        storage=o.get("storage", "mcap"),
        progress=False,
        overlays=o.get("overlays", 0),
        video_max_frames=o.get("video_max_frames", 0),
        params_file=spec.params_file,
        model_load_s=load_s,
        stop=_NoSignals(),
    )


def _record(
    base: dict[str, Any],
    summary: dict[str, Any],
    folder: Path,
    key: str,
    sha: str,
    gt_sha: str | None,
    fp: list,
    run_key: str,
) -> dict[str, Any]:
    """A finished bag's record: status and one-line reason, counts, per-camera stats."""
    errors = [b["error"] for b in summary["bags"] if b.get("error")]
    if errors:
        status, reason = "failed", errors[0].splitlines()[0]
    elif summary["frames_ok"] == 0:
        status = "failed"
        reason = f"no frame could be processed: {summary['frames']} frames, 0 ok"
    else:
        status, reason = "ok", ""
    return {
        **base,
        "status": status,
        "reason": reason,
        "key": key,
        "run_key": run_key,
        "bag_sha256": sha,
        "gt_sha256": gt_sha,
        "fingerprint": fp,
        "model_id": summary["model_id"],
        "frames": summary["frames"],
        "frames_ok": summary["frames_ok"],
        "frames_failed": summary["frames_failed"],
        "sequences": [b["sequence"] for b in summary["bags"]],
        "cameras": bag_stats(folder),
    }
