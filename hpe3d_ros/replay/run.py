"""Offline evaluation: replay rosbag2 bags through exactly the node's pipeline.

``hpe3d-replay BAG [BAG ...] --output OUT`` reads every frame of the camera topics (no drops:
each input frame gives one row of ``OUT/frames.csv``, failed frames with their reason), runs
the pipeline that ``config/pipeline.yaml`` describes, and writes

* ``OUT/bags/<sequence>/``: a bag (MCAP) with the node's output topics and types
  (:mod:`hpe3d_ros.topics`), header stamps = input stamps, log times = input log times; one
  message per topic per processed frame, as the live node publishes (failed frames: none),
  and ``/diagnostics`` every ``diagnostics.period_s`` of bag time;
* ``OUT/frames.csv``, ``OUT/people.csv``, ``OUT/summary.json`` (all three byte-identical for
  the same bags, parameters and seed) and ``OUT/timings.json`` (:mod:`hpe3d_ros.report`),
  with GT errors when the bag carries ``gt_poses`` or ``--gt-npz`` is given
  (:mod:`hpe3d_ros.replay_gt`);
* ``OUT/pictures/<sequence>/``: overlays, hypotheses plots, an MP4 per camera.

Which topics are cameras and how frames meet their CameraInfo: :mod:`hpe3d_ros.replay_inputs`.
Each bag is one sequence; tracks are reset between bags.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from hpe3d_ros.bagio import BagReader, BagReadError, BagWriter, deserialize
from hpe3d_ros.config import ConfigError, NodeConfig, load_config
from hpe3d_ros.pipeline import Pipeline
from hpe3d_ros.replay_frame import process_frame, stamp_ns
from hpe3d_ros.replay_gt import Sidecar, gt_from_msg
from hpe3d_ros.replay_inputs import (
    CAMERA_INFO,
    BagDiagnostics,
    CameraInfoIndex,
    discover_streams,
    frame_seed,
    output_messages,
)
from hpe3d_ros.replay_output import (
    OutputError,
    check_output,
    clear_previous,
    mark,
    sequence_names,
)
from hpe3d_ros.replay_pictures import Pictures
from hpe3d_ros.replay_signals import GracefulStop, Interrupted
from hpe3d_ros.report import Tables, build_summary, format_summary, write_summary

__all__ = ["discover_streams", "frame_seed", "main", "replay"]


def shipped_params() -> Path:
    """``config/pipeline.yaml`` of a checkout, else of the installed package's share folder."""
    here = Path(__file__).resolve().parents[1] / "config" / "pipeline.yaml"
    if here.is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("hpe3d_ros")) / "config" / "pipeline.yaml"
    except Exception:  # not in an ament index: the pip world's prefix
        return Path(sys.prefix) / "share" / "hpe3d_ros" / "config" / "pipeline.yaml"


SHIPPED_PARAMS = shipped_params()


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
    (:mod:`hpe3d_ros.replay_signals`; pass ``stop`` when the caller already handles them).

    Raises:
        OutputError: ``out_dir`` holds results (without ``overwrite``) or data that a replay
            did not write (:mod:`hpe3d_ros.replay_output`); nothing is deleted then.
        ValueError: the GT file is unusable.
    """
    out_dir = Path(out_dir)
    bags = [Path(b) for b in bags]
    check_output(out_dir, bags, overwrite)
    sidecar = Sidecar(gt_npz) if gt_npz else None
    clear_previous(out_dir)
    mark(out_dir, bags)
    tables = Tables(out_dir)
    pictures = Pictures(out_dir / "pictures", overlays, video_max_frames)
    timing: dict[str, list[float]] = {"frame_ms": [], "loop_s": []}
    infos = []
    t0 = time.perf_counter()
    with contextlib.nullcontext(stop) if stop else GracefulStop() as stop:
        run = _Run(out_dir, cfg, pipeline, cameras, sidecar, storage, tables, pictures, timing,
                   progress, stop)  # fmt: skip
        try:
            for bag, seq in zip(bags, sequence_names(bags), strict=True):
                if stop.requested:
                    infos.append(_not_replayed(bag, seq, f"not replayed: {stop.name}"))
                    continue
                infos.append(_replay_bag(run, bag, seq))
        finally:
            tables.close()
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


def _replay_bag(run: _Run, bag: Path, seq: str) -> dict[str, Any]:
    """One bag (= one sequence): two passes (CameraInfo/GT, then frames); returns its info."""
    cfg, pipeline, tables, pictures, stop = (
        run.cfg,
        run.pipeline,
        run.tables,
        run.pictures,
        run.stop,
    )
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
            if reader.damage:
                why = f"bag {bag} is damaged and no camera topic could be recovered " \
                      f"({reader.damage})"  # fmt: skip
            else:
                why = (f"bag {bag}: no camera topics (an Image, CompressedImage or h36m17 "
                       f"Keypoints2DArray topic with a camera_info topic beside it); topics: "
                       f"{sorted(reader.topics)}")  # fmt: skip
            info.update(complete=False, error=why)
            return info
        info["streams"] = [vars(s) for s in streams]
        if reader.damage:
            info["recovered_because"] = reader.damage
        pipeline.reset()
        calib = CameraInfoIndex(cfg["camera_info_tolerance_s"])
        gts: dict[str, dict[int, np.ndarray]] = {}
        try:
            side = {s.info_topic for s in streams} | {s.gt_topic for s in streams if s.gt_topic}
            for topic, msgtype, _, raw in reader.messages(side):
                if stop.requested:
                    break
                try:
                    msg = deserialize(raw, msgtype)
                except Exception:  # frames needing it fail as "missing"
                    continue
                if msgtype == CAMERA_INFO:
                    calib.add(topic, msg)
                else:
                    gts.setdefault(topic, {})[stamp_ns(msg)] = gt_from_msg(msg)
        except BagReadError as exc:
            info.update(complete=False, error=str(exc))
        by_topic = {s.topic: s for s in streams}
        counts = dict.fromkeys(by_topic, 0)
        for s in streams:
            pictures.plan(seq, s.camera, reader.counts.get(s.topic), calib.stamps(s.info_topic))
        total = sum(reader.counts.get(t) or 0 for t in by_topic) or None
        info["output_bag"] = f"bags/{seq}"
        writer = BagWriter(run.out_dir / "bags" / seq, run.storage)
        diag = BagDiagnostics([s.camera for s in streams], cfg, pipeline.model_id)
        t_loop = time.perf_counter()
        bar = tqdm(total=total, unit="frame", desc=seq, disable=not run.progress, file=sys.stderr)
        try:
            for topic, msgtype, log_ns, raw in reader.messages(by_topic):
                if stop.requested:
                    break
                s = by_topic[topic]
                t = time.perf_counter()
                with stop.abortable():
                    frame, people, result, image = process_frame(
                        seq,
                        s,
                        counts[topic],
                        msgtype,
                        log_ns,
                        raw,
                        calib,
                        pipeline,
                        run.sidecar,
                        gts.get(s.gt_topic or "", {}),
                    )
                if result is not None:
                    for out_topic, out_type, data in output_messages(result, cfg, image):
                        writer.write(out_topic, out_type, log_ns, data)
                    for stage, ms in result.timings_ms.items():
                        run.timing.setdefault(stage, []).append(ms)
                ms = 1e3 * (time.perf_counter() - t)
                run.timing["frame_ms"].append(ms)
                diag.on_frame(s.camera, log_ns, result is not None, frame["reason"], ms)
                for out_topic, out_type, data in diag.due(log_ns):
                    writer.write(out_topic, out_type, log_ns, data)
                tables.add(frame, people)
                pictures.add(seq, s.camera, counts[topic], image, result, frame["reason"])
                counts[topic] += 1
                bar.update()
        except BagReadError as exc:
            info.update(complete=False, error=str(exc))
        except Interrupted:  # a second signal aborted the frame in hand
            pass
        finally:
            run.timing["loop_s"].append(time.perf_counter() - t_loop)
            bar.close()
            writer.close()
        if stop.requested:
            why = f"bag {bag}: interrupted by {stop.name} after {sum(counts.values())} frames"
            info.update(complete=False, interrupted=stop.name, error=why)
        info["output_messages"] = dict(writer.counts)
        info["frames"] = counts
    return info


def _parse_set(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects name=value, got {item!r}")
        out[name.strip()] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hpe3d-replay",
        description="Replay rosbag2 bags (sqlite3/MCAP) through the hpe3d pipeline: output "
        "bag, per-frame tables, JSON summary (with GT errors when GT is present), pictures.",
    )
    ap.add_argument("bags", nargs="+", type=Path, help="input bag folders (or .mcap/.db3 files)")
    ap.add_argument("--output", "-o", type=Path, required=True, help="output folder")
    ap.add_argument(
        "--params-file",
        type=Path,
        default=SHIPPED_PARAMS,
        help="node parameters YAML (default: the shipped config/pipeline.yaml)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter, e.g. --set lifter.num_hypotheses=20",
    )
    ap.add_argument("--seed", type=int, help="lifter seed (same as --set lifter.seed=N)")
    ap.add_argument("--cameras", help="comma-separated configured cameras (default: discover)")
    ap.add_argument(
        "--gt-npz",
        type=Path,
        help="side-car ground truth: stamp_ns (N,), poses_m (N, 17, 3) optical-frame "
        "metres, optional camera (N,); overrides gt_poses topics",
    )
    ap.add_argument(
        "--storage",
        choices=("mcap", "sqlite3"),
        default="mcap",
        help="storage of the output bag (default: mcap)",
    )
    ap.add_argument("--overlays", type=int, default=4, help="overlay PNGs per camera")
    ap.add_argument(
        "--video-max-frames",
        type=int,
        default=600,
        help="frames per camera in the overlay MP4 (0: no video)",
    )
    ap.add_argument("--no-pictures", action="store_true", help="skip PNGs and MP4s")
    ap.add_argument("--overwrite", action="store_true", help="replace earlier results in OUT")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    err = "hpe3d-replay: error:"
    try:
        overrides = _parse_set(args.set)
        if args.seed is not None:
            overrides["lifter.seed"] = args.seed
        cfg = load_config(args.params_file, **overrides)
    except ConfigError as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    out = args.output
    missing = [str(b) for b in args.bags if not os.path.lexists(b)]
    if missing:
        print(f"{err} no such bag: {', '.join(missing)} (nothing was written)", file=sys.stderr)
        return 1
    try:
        check_output(out, args.bags, args.overwrite)  # again in replay(), before any delete
    except OutputError as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    from hpe3d_ros.build import ModelLoadError, build_pipeline

    with GracefulStop() as stop:
        t0 = time.perf_counter()
        try:
            with stop.abortable():
                pipeline = build_pipeline(cfg)
        except ModelLoadError as exc:
            print(f"{err} {exc}", file=sys.stderr)
            return 1
        except Interrupted:
            pass
        if stop.requested:
            print(f"{err} interrupted by {stop.name} while loading the models; nothing was "
                  f"written", file=sys.stderr)  # fmt: skip
            return stop.exit_code
        load_s = time.perf_counter() - t0
        return _run(args, cfg, pipeline, load_s, stop)


def _run(
    args: argparse.Namespace,
    cfg: NodeConfig,
    pipeline: Pipeline,
    load_s: float,
    stop: GracefulStop,
) -> int:
    err, out = "hpe3d-replay: error:", args.output
    try:
        summary = replay(
            args.bags,
            out,
            cfg,
            pipeline,
            cameras=args.cameras.split(",") if args.cameras else None,
            gt_npz=args.gt_npz,
            storage=args.storage,
            progress=not args.quiet,
            overlays=0 if args.no_pictures else args.overlays,
            video_max_frames=0 if args.no_pictures else args.video_max_frames,
            params_file=str(args.params_file),
            model_load_s=load_s,
            overwrite=args.overwrite,
            stop=stop,
        )
    except (ConfigError, BagReadError, ValueError) as exc:  # OutputError is a ValueError
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    print(f"results: {out}/frames.csv, people.csv, summary.json, timings.json, bags/, pictures/")
    return _exit_code(summary, out, err)


def _exit_code(summary: dict[str, Any], out: Path, err: str) -> int:
    """0 when every bag was read to its end and at least one frame was processed."""
    if summary["interrupted"]:
        print(f"{err} interrupted by {summary['interrupted']} after {summary['frames']} "
              f"frames; the results so far are in {out}", file=sys.stderr)  # fmt: skip
        return summary["exit_code"]
    rc = 0
    if not summary["complete"]:
        for b in summary["bags"]:
            if b["error"]:
                print(
                    f"{err} {b['error']} (results up to that point are in {out})", file=sys.stderr
                )
        rc = 1
    if summary["frames_ok"] == 0:
        kinds = sorted(
            {k for c in summary["cameras"] for k in c["failures"]},
            key=lambda k: -sum(c["failures"].get(k, 0) for c in summary["cameras"]),
        )
        why = f" (failures: {', '.join(kinds)})" if kinds else ""
        print(f"{err} no frame could be processed: {summary['frames']} frames, 0 ok{why}",
              file=sys.stderr)  # fmt: skip
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
