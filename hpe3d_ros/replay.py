"""Offline evaluation: replay rosbag2 bags through exactly the node's pipeline.

``hpe3d-replay BAG [BAG ...] --output OUT`` reads every frame of the camera topics (no drops:
each input frame gives one row of ``OUT/frames.csv``, failed frames with their reason), runs
the pipeline that ``config/pipeline.yaml`` describes, and writes

* ``OUT/bags/<sequence>/``: a bag (MCAP) with the node's output topics and types
  (:mod:`hpe3d_ros.topics`), header stamps = input stamps, log times = input log times; one
  message per topic per processed frame, as the live node publishes (failed frames: none),
  and ``/diagnostics`` every ``diagnostics.period_s`` of bag time;
* ``OUT/frames.csv``, ``OUT/people.csv``, ``OUT/summary.json`` (:mod:`hpe3d_ros.report`),
  with GT errors when the bag carries ``gt_poses`` or ``--gt-npz`` is given
  (:mod:`hpe3d_ros.replay_gt`);
* ``OUT/pictures/<sequence>/``: overlays, hypotheses plots, an MP4 per camera.

Which topics are cameras and how frames meet their CameraInfo: :mod:`hpe3d_ros.replay_inputs`.
Each bag is one sequence; tracks are reset between bags.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
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
from hpe3d_ros.replay_pictures import Pictures
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
) -> dict[str, Any]:
    """Replay ``bags`` (one sequence each) into ``out_dir``; returns the summary.

    A damaged bag does not raise: everything up to the damage is written, the bag's entry in
    ``summary["bags"]`` carries the error and ``summary["complete"]`` is False.

    Raises:
        ConfigError: a camera named in ``cameras`` is not configured or not in a bag.
        ValueError: a bag has no camera topics, or the GT file is unusable.
    """
    out_dir = Path(out_dir)
    sidecar = Sidecar(gt_npz) if gt_npz else None
    tables = Tables(out_dir)
    pictures = Pictures(out_dir / "pictures", overlays, video_max_frames)
    timing: dict[str, list[float]] = {"frame_ms": [], "loop_s": []}
    infos = []
    t0 = time.perf_counter()
    try:
        for bag in bags:
            if infos and infos[-1].get("interrupted"):
                break
            infos.append(
                _replay_bag(
                    Path(bag),
                    out_dir,
                    cfg,
                    pipeline,
                    cameras,
                    sidecar,
                    storage,
                    tables,
                    pictures,
                    timing,
                    progress,
                )
            )
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
        outputs={
            "frames_csv": str(tables.frames_path),
            "people_csv": str(tables.people_path),
            "pictures": written,
        },
    )
    write_summary(summary, out_dir / "summary.json")
    return summary


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {}
    return {"mean": float(v.mean()), "p50": float(np.median(v)),
            "p95": float(np.percentile(v, 95)), "n": int(v.size)}  # fmt: skip


def _replay_bag(
    bag: Path,
    out_dir: Path,
    cfg: NodeConfig,
    pipeline: Pipeline,
    cameras: Sequence[str] | None,
    sidecar: Sidecar | None,
    storage: str,
    tables: Tables,
    pictures: Pictures,
    timing: dict[str, list[float]],
    progress: bool,
) -> dict[str, Any]:
    """One bag (= one sequence): two passes (CameraInfo/GT, then frames); returns its info."""
    seq = bag.stem if bag.is_file() else bag.name
    info: dict[str, Any] = {"bag": str(bag), "sequence": seq, "complete": True, "error": "",
                            "streams": [], "output_bag": "", "output_messages": {}}  # fmt: skip
    try:
        reader = BagReader(bag)
    except BagReadError as exc:
        info.update(complete=False, error=str(exc))
        return info
    with reader:
        streams = discover_streams(reader.topics, cfg, cameras)
        if not streams:
            raise ValueError(
                f"bag {bag}: no camera topics (an Image, CompressedImage or h36m17 "
                f"Keypoints2DArray topic with a camera_info topic beside it); topics: "
                f"{sorted(reader.topics)}"
            )
        info["streams"] = [vars(s) for s in streams]
        if reader.damage:
            info["recovered_because"] = reader.damage
        pipeline.reset()
        calib = CameraInfoIndex(cfg["camera_info_tolerance_s"])
        gts: dict[str, dict[int, np.ndarray]] = {}
        try:
            side = {s.info_topic for s in streams} | {s.gt_topic for s in streams if s.gt_topic}
            for topic, msgtype, _, raw in reader.messages(side):
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
        info["output_bag"] = str(out_dir / "bags" / seq)
        writer = BagWriter(out_dir / "bags" / seq, storage)
        diag = BagDiagnostics([s.camera for s in streams], cfg, pipeline.model_id)
        t_loop = time.perf_counter()
        bar = tqdm(total=total, unit="frame", desc=seq, disable=not progress, file=sys.stderr)
        try:
            for topic, msgtype, log_ns, raw in reader.messages(by_topic):
                s = by_topic[topic]
                t = time.perf_counter()
                frame, people, result, image = process_frame(
                    seq,
                    s,
                    counts[topic],
                    msgtype,
                    log_ns,
                    raw,
                    calib,
                    pipeline,
                    sidecar,
                    gts.get(s.gt_topic or "", {}),
                )
                if result is not None:
                    for out_topic, out_type, data in output_messages(result, cfg, image):
                        writer.write(out_topic, out_type, log_ns, data)
                    for stage, ms in result.timings_ms.items():
                        timing.setdefault(stage, []).append(ms)
                ms = 1e3 * (time.perf_counter() - t)
                timing["frame_ms"].append(ms)
                diag.on_frame(s.camera, log_ns, result is not None, frame["reason"], ms)
                for out_topic, out_type, data in diag.due(log_ns):
                    writer.write(out_topic, out_type, log_ns, data)
                tables.add(frame, people)
                pictures.add(seq, s.camera, counts[topic], image, result, frame["reason"])
                counts[topic] += 1
                bar.update()
        except BagReadError as exc:
            info.update(complete=False, error=str(exc))
        except KeyboardInterrupt:  # keep what was done: tables, summary, pictures
            why = f"bag {bag}: interrupted by the user after {sum(counts.values())} frames"
            info.update(complete=False, interrupted=True, error=why)
        finally:
            timing["loop_s"].append(time.perf_counter() - t_loop)
            bar.close()
            writer.close()
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
    if (out / "frames.csv").exists() and not args.overwrite:
        print(f"{err} {out} already holds replay results; pass --overwrite", file=sys.stderr)
        return 1
    for sub in ("bags", "pictures"):
        shutil.rmtree(out / sub, ignore_errors=True)
    from hpe3d_ros.build import ModelLoadError, build_pipeline

    t0 = time.perf_counter()
    try:
        pipeline = build_pipeline(cfg)
    except ModelLoadError as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    load_s = time.perf_counter() - t0
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
        )
    except (ConfigError, BagReadError, ValueError) as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    print(f"results: {out}/frames.csv, people.csv, summary.json, bags/, pictures/")
    if not summary["complete"]:
        for b in summary["bags"]:
            if b["error"]:
                print(
                    f"{err} {b['error']} (results up to that point are in {out})", file=sys.stderr
                )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
