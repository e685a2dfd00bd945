"""Ray: start or join a cluster, run one task per bag, keep the workers busy, report progress.

Each bag is one Ray task (:func:`fleet_replay_bag`). Ray reuses a worker process for the
next task, and the worker keeps its models (:mod:`hpe3d_ros.fleet.worker`), so models load
once per worker process, not once per bag; GPU tasks keep their worker too
(``max_calls=0``: Ray's default for GPU tasks is a fresh process per task). A task whose
worker process dies (killed, out of memory, node lost) is run again by Ray
(``max_retries``); since a bag's results are a function of the bag, the run's parameters and
seed, the retry writes the same bytes. At most ``workers`` tasks are in flight, so the
driver can stop the run between bags and a long queue does not sit in Ray's scheduler.

Without an address the driver starts a local Ray instance (``num_cpus`` settable); with one
(``auto``, ``HOST:PORT``) it joins an existing cluster (``ray start --head`` / KubeRay).
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from tqdm import tqdm

from hpe3d_ros.fleet import store
from hpe3d_ros.fleet.errors import ClusterError, Stopped
from hpe3d_ros.fleet.inputs import BagEntry
from hpe3d_ros.fleet.worker import RunSpec, replay_entry

log = logging.getLogger("hpe3d_ros.fleet")


def connect(
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    object_store_mb: int = 256,
) -> bool:
    """Join ``address`` or start a local Ray instance; returns True when this call started it
    (the caller then shuts it down). An already connected driver is left as it is."""
    if ray.is_initialized():
        return False
    common = {"log_to_driver": True, "logging_level": logging.WARNING}
    if address:
        _answers(address)
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                include_dashboard=False,
                object_store_memory=object_store_mb << 20,
                **common,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"cannot {'join' if address else 'start'} Ray: {first}") from exc
    return True


def _answers(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast on a ``HOST:PORT`` where nothing listens (``ray.init`` would retry for
    minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            f"'ray start --head', or leave out --address for a local instance"
        ) from exc


def resources() -> dict[str, float]:
    """The cluster's total CPUs and GPUs and its number of live nodes."""
    total = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return {"CPU": total.get("CPU", 0.0), "GPU": total.get("GPU", 0.0), "nodes": nodes}


def _worker_logging() -> None:
    """Worker processes print this package's INFO lines (Ray forwards them to the driver's
    log, prefixed with the task name, pid and node address)."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def fleet_replay_bag(spec: RunSpec, entry: BagEntry) -> dict[str, Any]:
    """The Ray task: one bag on this worker (the process title reads ``ray::fleet_replay_bag``
    while it runs)."""
    _worker_logging()
    return replay_entry(spec, entry, ray.get_runtime_context().get_node_id())


def _in_progress_rows(out: Path, seen: dict[Path, tuple[int, int]]) -> int:
    """Rows written so far to the frames tables of bags in flight (read incrementally)."""
    total = 0
    folder = out / store.ATTEMPTS
    live = set()
    for path in folder.glob("*/frames.csv") if folder.is_dir() else []:
        live.add(path)
        offset, rows = seen.get(path, (0, -1))  # -1: the header line
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except OSError:
            continue
        rows += chunk.count(b"\n")
        seen[path] = (offset + len(chunk), rows)
        total += max(rows, 0)
    for gone in set(seen) - live:
        del seen[gone]
    return total


def run_tasks(
    entries: list[BagEntry],
    spec: RunSpec,
    *,
    workers: int,
    cpus_per_bag: float = 1.0,
    gpus_per_bag: float = 0.0,
    retries: int = 3,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """Replay ``entries`` with at most ``workers`` tasks in flight; results in input order.

    A task that fails for good (its retries used up, or a worker that cannot load the
    models) gives an ``error`` result with a one-line reason; the other bags go on. When
    ``stop()`` turns true (checked at least once a second) the tasks in flight are cancelled
    and :class:`Stopped` is raised; finished bags stay (so does any exception's).
    """
    task = ray.remote(max_calls=0)(fleet_replay_bag).options(
        num_cpus=cpus_per_bag, num_gpus=gpus_per_bag, max_retries=retries
    )
    spec_ref = ray.put(spec)
    queue = deque(enumerate(entries))
    pending: dict[Any, tuple[int, BagEntry]] = {}
    results: list[dict[str, Any] | None] = [None] * len(entries)
    bar = tqdm(
        total=len(entries),
        unit="bag",
        desc="fleet",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    frames, t0, rows_seen, last = 0, time.perf_counter(), {}, 0.0
    out = Path(spec.out)
    try:
        while queue or pending:
            if stop is not None and stop():
                raise Stopped("stop requested")
            while queue and len(pending) < workers:
                i, e = queue.popleft()
                pending[task.remote(spec_ref, e)] = (i, e)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                i, e = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    res = _failed(e, exc)
                results[i] = res
                frames += res.get("frames", 0) if res.get("outcome") != "reused" else 0
                bar.update()
                if on_result:
                    on_result(res)
            now = time.perf_counter()
            if progress and (ready or now - last > 2.0):
                last = now
                live = _in_progress_rows(out, rows_seen)
                rate = (frames + live) / max(now - t0, 1e-9)
                bar.set_postfix_str(f"{frames + live} frames, {rate:.1f} frames/s")
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return [r for r in results if r is not None]


def _failed(entry: BagEntry, exc: BaseException) -> dict[str, Any]:
    """The result of a task Ray gave up on, with the cause in one line."""
    cause = getattr(exc, "cause", None) or exc
    lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
    text = (
        lines[-1]
        if isinstance(exc, ray.exceptions.RayTaskError) and lines
        else (lines[0] if lines else "")
    )
    return {
        "name": entry.name,
        "bag": entry.bag,
        "labels": entry.labels,
        "gt_npz": entry.gt_npz,
        "status": "error",
        "outcome": "error",
        "reason": f"{type(cause).__name__}: {text}"[:500],
    }
