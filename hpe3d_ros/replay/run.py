"""Offline evaluation: replay rosbag2 bags through exactly what the node runs.

:func:`replay` reads every message of a bag's camera topics in log-time order and hands it to
that camera's :class:`~hpe3d_ros.runner.CameraRunner`, the per-frame runner the live node
drives too: CameraInfo messages as they were recorded, frames one by one (never dropped:
each input frame gives one row of ``frames.csv``, failed frames with their reason). It writes

* ``OUT/bags/<sequence>/``: a bag (MCAP) with the node's output topics, types and messages
  (:mod:`hpe3d_ros.ros.outputs`), header stamps = input stamps, log times = input log times,
  and ``/diagnostics`` every ``diagnostics.period_s`` of bag time;
* ``OUT/frames.csv``, ``OUT/people.csv``, ``OUT/summary.json`` (all three byte-identical for
  the same bags, parameters and seed) and ``OUT/timings.json`` (:mod:`hpe3d_ros.replay.report`),
  with GT errors when the bag carries ``gt_poses`` or ``--gt-npz`` is given
  (:mod:`hpe3d_ros.replay.ground_truth`, :mod:`hpe3d_ros.replay.evaluate`);
* ``OUT/pictures/<sequence>/``: overlays, hypotheses plots, an MP4 per camera.

Which topics are cameras: :mod:`hpe3d_ros.replay.inputs`. Each bag is one sequence; tracks
are reset between bags.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hpe3d_ros.config import ConfigError, NodeConfig
from hpe3d_ros.pipeline import Pipeline
from hpe3d_ros.replay.bagio import BagReader, BagReadError, BagWriter, deserialize, serialize_ros
from hpe3d_ros.replay.evaluate import frame_rows
from hpe3d_ros.replay.ground_truth import Sidecar, gt_from_msg
from hpe3d_ros.replay.inputs import CAMERA_INFO, Stream, discover_streams, read_frame
from hpe3d_ros.replay.output import check_output, clear_previous, mark, sequence_names
from hpe3d_ros.replay.pictures import Pictures
from hpe3d_ros.replay.report import Tables, build_summary, write_summary
from hpe3d_ros.replay.signals import GracefulStop, Interrupted
from hpe3d_ros.replay.vehicle import BagVehicle, VehicleTable
from hpe3d_ros.ros.outputs import CameraHealth, diagnostics_message, frame_messages
from hpe3d_ros.ros.topics import DIAGNOSTICS, OUTPUTS, output_topic
from hpe3d_ros.runner import CameraRunner, Outcome
from hpe3d_ros.stamps import stamp_to_ns

DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"


def replay(
    bags: Sequence[str | Path],
    out_dir: str | Path,
    cfg: NodeConfig,
    pipeline: Pipeline,
    *,
    cameras: Sequence[str] | None = None,
    gt_npz: str | Path | None = None,
    storage: str = "mcap",
    progress: bool = False,
    overlays: int = 4,
    video_max_frames: int = 600,
    params_file: str = "",
    model_load_s: float = 0.0,
    overwrite: bool = False,
    stop: GracefulStop | None = None,
) -> dict[str, Any]:
    """Replay ``bags`` (one sequence each) into ``out_dir``; returns the summary.

    A damaged bag does not raise: everything up to the damage is written, the bag's entry in
    ``summary["bags"]`` carries the error and ``summary["complete"]`` is False. SIGINT and
    SIGTERM stop the replay after the frame in hand (a second one aborts that frame); the
    results so far are closed properly and ``summary["interrupted"]`` names the signal
    (:mod:`hpe3d_ros.replay.signals`; pass ``stop`` when the caller already handles them).

    Raises:
        OutputError: ``out_dir`` holds results (without ``overwrite``) or data that a replay
            did not write (:mod:`hpe3d_ros.replay.output`); nothing is deleted then.
        ValueError: the GT file is unusable.
    """
    out_dir = Path(out_dir)
    bags = [Path(b) for b in bags]
    check_output(out_dir, bags, overwrite)
    sidecar = Sidecar(gt_npz) if gt_npz else None
    clear_previous(out_dir)
    mark(out_dir, bags)
    tables = Tables(out_dir)
    vehicle = VehicleTable(out_dir) if cfg.vehicle.people else None  # ~/people, issue 18
    pictures = Pictures(out_dir / "pictures", overlays, video_max_frames, pipeline.lifting)
    timing: dict[str, list[float]] = {"frame_ms": [], "loop_s": []}
    infos = []
    t0 = time.perf_counter()
    with contextlib.nullcontext(stop) if stop else GracefulStop() as stop:
        run = _Run(out_dir, cfg, pipeline, cameras, sidecar, storage, tables, pictures, timing,
                   progress, stop, vehicle)  # fmt: skip
        try:
            for bag, seq in zip(bags, sequence_names(bags), strict=True):
                if stop.requested:
                    infos.append(_not_replayed(bag, seq, f"not replayed: {stop.name}"))
                    continue
                infos.append(_replay_bag(run, bag, seq))
        finally:
            tables.close()
            if vehicle is not None:
                vehicle.close()
            written = pictures.close()
        wall = time.perf_counter() - t0
        loop = sum(timing.pop("loop_s"))
        n = len(tables.frame_rows)
        timings = {
            "wall_s": wall,
            "frames_s": loop,
            "model_load_s": model_load_s,
            "frames_per_s": n / loop if loop > 0 else 0.0,
            "stage_ms": {k: _stats(v) for k, v in sorted(timing.items())},
        }
        summary = build_summary(
            tables,
            bags=infos,
            timings=timings,
            params={"params_file": params_file, **cfg.values},
            model_id=pipeline.model_id,
            outputs={  # relative to out_dir: the same run elsewhere writes the same summary
                "frames_csv": tables.frames_path.name,
                "people_csv": tables.people_path.name,
                "pictures": [str(Path(p).relative_to(out_dir)) for p in written],
            },
        )
        if vehicle is not None:
            summary["vehicle"] = {"target_frame": cfg.vehicle.target_frame,
                                  "sequences": vehicle.sequences}  # fmt: skip
            summary["outputs"]["vehicle_people_csv"] = vehicle.path.name
        summary["interrupted"] = stop.name
        summary["exit_code"] = stop.exit_code
        if stop.requested:
            summary["complete"] = False
        write_summary(summary, out_dir)
    return summary


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {}
    return {"mean": float(v.mean()), "p50": float(np.median(v)),
            "p95": float(np.percentile(v, 95)), "n": int(v.size)}  # fmt: skip


def _not_replayed(bag: Path, seq: str, error: str) -> dict[str, Any]:
    return {"bag": str(bag), "sequence": seq, "complete": False, "error": error,
            "streams": [], "output_bag": "", "output_messages": {}}  # fmt: skip


@dataclass
class _Run:
    """What every bag of one replay shares."""

    out_dir: Path
    cfg: NodeConfig
    pipeline: Pipeline
    cameras: Sequence[str] | None
    sidecar: Sidecar | None
    storage: str
    tables: Tables
    pictures: Pictures
    timing: dict[str, list[float]]
    progress: bool
    stop: GracefulStop
    vehicle: VehicleTable | None = None


@dataclass
class _Bag:
    """One bag's cameras as the node would run them, and its output bag."""

    seq: str
    streams: dict[str, Stream]  # image topic -> stream
    runners: dict[str, CameraRunner]  # image topic -> runner
    infos: dict[str, list[CameraRunner]]  # CameraInfo topic -> runners it calibrates
    gts: dict[str, dict[int, np.ndarray]]  # GT topic -> stamp -> (P, 17, 3)
    writer: BagWriter
    counts: dict[str, int] = field(default_factory=dict)
    pending: dict[str, tuple] = field(default_factory=dict)  # topic -> (frame | error, log ns)
    next_diag_ns: int | None = None
    vehicle: BagVehicle | None = None  # ~/people (output.people)


def _replay_bag(run: _Run, bag: Path, seq: str) -> dict[str, Any]:
    """One bag (= one sequence): GT first (evaluation only), then every camera message in
    log-time order through the cameras' runners; returns the bag's entry of the summary."""
    cfg, stop = run.cfg, run.stop
    info = _not_replayed(bag, seq, "")
    info["complete"] = True
    try:
        reader = BagReader(bag)
    except BagReadError as exc:
        info.update(complete=False, error=str(exc))
        return info
    with reader:
        try:
            streams = discover_streams(reader.topics, cfg, run.cameras)
        except ConfigError as exc:  # --cameras names a camera this bag does not hold
            info.update(complete=False, error=f"bag {bag}: {exc}")
            return info
        if not streams:
            why = (f"bag {bag} is damaged and no camera topic could be recovered ({reader.damage})"
                   if reader.damage else
                   f"bag {bag}: no camera topics (an Image, CompressedImage or h36m17 "
                   f"Keypoints2DArray topic with a camera_info topic beside it); topics: "
                   f"{sorted(reader.topics)}")  # fmt: skip
            info.update(complete=False, error=why)
            return info
        info["streams"] = [vars(s) for s in streams]
        if reader.damage:
            info["recovered_because"] = reader.damage
        run.pipeline.reset()
        gts = _read_gt(reader, streams, info)
        b = _Bag(seq, {s.topic: s for s in streams}, {}, {}, gts,
                 BagWriter(run.out_dir / "bags" / seq, run.storage))  # fmt: skip
        for s in streams:
            b.runners[s.topic] = CameraRunner(
                s.camera, run.pipeline, frame_id=s.frame_id,
                info_tolerance_s=cfg.camera_info_tolerance_s,
                stats_window_s=DIAG_WINDOW_S, clock=None)  # fmt: skip
            b.infos.setdefault(s.info_topic, []).append(b.runners[s.topic])
            b.counts[s.topic] = 0
            run.pictures.plan(seq, s.camera, reader.counts.get(s.topic))
        if run.vehicle is not None:
            b.vehicle = BagVehicle(seq, cfg, run.pipeline, reader,
                                   {s.camera: s.gt_topic for s in streams}, run.sidecar,
                                   run.vehicle)  # fmt: skip
        info["output_bag"] = f"bags/{seq}"
        total = sum(reader.counts.get(t) or 0 for t in b.streams) or None
        t_loop = time.perf_counter()
        bar = tqdm(total=total, unit="frame", desc=seq, disable=not run.progress, file=sys.stderr)
        try:
            try:
                for topic, msgtype, log_ns, raw in reader.messages(b.streams.keys() | b.infos):
                    if stop.requested:
                        break
                    if topic in b.infos:
                        _camera_info(run, b, topic, raw)
                    if topic in b.streams:
                        _arrive(run, b, topic, msgtype, log_ns, raw)
                        bar.update()
            except BagReadError as exc:
                info.update(complete=False, error=str(exc))
            for topic in sorted(b.pending, key=lambda t: b.pending[t][1]):  # the bag's last frames
                if not stop.requested:
                    _process(run, b, topic)
        except Interrupted:  # a second signal aborted the frame in hand
            pass
        finally:
            run.timing["loop_s"].append(time.perf_counter() - t_loop)
            bar.close()
            b.writer.close()
        if stop.requested:
            done = sum(b.counts.values())
            why = f"bag {bag}: interrupted by {stop.name} after {done} frames"
            info.update(complete=False, interrupted=stop.name, error=why)
        info["output_messages"] = dict(b.writer.counts)
        info["frames"] = dict(b.counts)
        if b.vehicle is not None:
            run.vehicle.sequences.append(b.vehicle.summary())
    return info


#: Window of the rates on ``/diagnostics`` (as the live node's).
DIAG_WINDOW_S = 5.0


def _read_gt(reader: BagReader, streams: list[Stream], info: dict) -> dict[str, dict]:
    """Ground-truth poses of the bag by topic and stamp (not something the node sees)."""
    gts: dict[str, dict[int, np.ndarray]] = {}
    topics = {s.gt_topic for s in streams if s.gt_topic}
    if not topics:
        return gts
    try:
        for topic, msgtype, _, raw in reader.messages(topics):
            with contextlib.suppress(Exception):  # an unreadable GT message: no GT there
                msg = deserialize(raw, msgtype)
                gts.setdefault(topic, {})[stamp_to_ns(msg.header.stamp)] = gt_from_msg(msg)
    except BagReadError as exc:
        info.update(complete=False, error=str(exc))
    return gts


def _camera_info(run: _Run, b: _Bag, topic: str, raw: bytes) -> None:
    """A recorded CameraInfo reaches the runners it calibrates. A frame held for its own
    CameraInfo (the same stamp) is processed right after it; any other held frame before."""
    try:
        msg = deserialize(raw, CAMERA_INFO)
    except Exception:  # an unreadable CameraInfo is one the node never received
        return
    stamp = stamp_to_ns(msg.header.stamp)
    for image_topic, runner in b.runners.items():
        if runner not in b.infos[topic]:
            continue
        held = b.pending.get(image_topic)
        pair = held is not None and not isinstance(held[0], str) and held[0].stamp_ns == stamp
        if held is not None and not pair:
            _process(run, b, image_topic)
        runner.camera_info(msg)
        if pair:
            _process(run, b, image_topic)


def _arrive(run: _Run, b: _Bag, topic: str, msgtype: str, log_ns: int, raw: bytes) -> None:
    """A frame arrives: the one before it on this camera is processed, this one is held
    until its own CameraInfo (same stamp), any other message of its camera, or the bag's end.

    Camera drivers publish the image and then its CameraInfo; the node's worker takes a frame
    a moment after it arrives, when that CameraInfo is there. Holding the frame for exactly
    its pair gives the replay the same pairing, deterministically.
    """
    if topic in b.pending:
        _process(run, b, topic)
    try:
        frame: Any = read_frame(raw, msgtype)
    except ValueError as exc:
        frame = str(exc)
    b.pending[topic] = (frame, log_ns)


def _process(run: _Run, b: _Bag, topic: str) -> None:
    """The held frame of a camera: the runner runs it, then outputs, rows, pictures."""
    frame, log_ns = b.pending.pop(topic)
    s, runner = b.streams[topic], b.runners[topic]
    now = log_ns * 1e-9
    t = time.perf_counter()
    pose = None
    if isinstance(frame, str):
        out = runner.unreadable(frame, now)
    else:
        with run.stop.abortable():
            if b.vehicle is not None:  # the camera's pose at the image stamp sets its ground
                pose = b.vehicle.pose(s.camera, runner.frame_id or frame.frame_id, frame.stamp_ns)
            out = runner.arrive(frame, now) or runner.process(frame, 0.0, now)
    if out.ok:
        for kind, msg in frame_messages(out.result, out.image, run.cfg.output):
            b.writer.write(output_topic(s.camera, kind), OUTPUTS[kind], log_ns, serialize_ros(msg))
        if b.vehicle is not None:
            b.vehicle.frame(s.camera, out, pose, log_ns, b.writer)
        for stage, ms in out.result.timings_ms.items():
            run.timing.setdefault(stage, []).append(ms)
    run.timing["frame_ms"].append(1e3 * (time.perf_counter() - t))
    _diagnostics(run, b, log_ns)
    index = b.counts[topic]
    base = {"sequence": b.seq, "camera": s.camera, "topic": topic, "index": index,
            "log_time_ns": log_ns}  # fmt: skip
    row, people = frame_rows(base, out, _gt(run, b, s, out))
    run.tables.add(row, people)
    stamp = None if out.frame is None else out.frame.stamp_ns
    run.pictures.add(b.seq, s.camera, index, stamp, out.image, out.result, out.reason)
    b.counts[topic] += 1


def _gt(run: _Run, b: _Bag, s: Stream, out: Outcome) -> np.ndarray | None:
    if not out.ok:
        return None
    stamp = out.frame.stamp_ns
    if run.sidecar is not None:
        return run.sidecar.lookup(s.camera, stamp)
    return b.gts.get(s.gt_topic or "", {}).get(stamp)


def _diagnostics(run: _Run, b: _Bag, log_ns: int) -> None:
    """``/diagnostics`` every ``diagnostics.period_s`` of bag time, as the node publishes it."""
    period_ns = round(run.cfg.diagnostics.period_s * 1e9)
    if b.next_diag_ns is None:
        b.next_diag_ns = log_ns + period_ns
    if log_ns < b.next_diag_ns:
        return
    b.next_diag_ns = log_ns + period_ns
    now = log_ns * 1e-9
    health = [CameraHealth(r.name, {**r.snapshot(now), **(b.vehicle.snapshot(r.name)
                                                          if b.vehicle else {})},
                           len(r.calibration) > 0) for r in b.runners.values()]  # fmt: skip
    extra = {"lifter": run.pipeline.model_id, "detector": run.cfg.detector.mode}
    msg = diagnostics_message(log_ns, "/hpe3d_pipeline", health,
                              run.cfg.diagnostics.stale_timeout_s, extra)  # fmt: skip
    b.writer.write(DIAGNOSTICS, DIAGNOSTICS_TYPE, log_ns, serialize_ros(msg))
