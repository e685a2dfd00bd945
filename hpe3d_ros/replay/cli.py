"""``hpe3d-replay``: the command around :func:`hpe3d_ros.replay.run.replay`.

Checks everything that can be checked before a model is loaded or a file is written (the
parameters, the bag paths, the output folder: :mod:`hpe3d_ros.replay.output`), loads the
models, replays, prints the summary table, and exits with

* 0: every bag read to its end and at least one frame processed;
* 1: bad input (one line says what), a damaged bag (results up to the damage are kept), or
  no frame could be processed;
* 128 + N: stopped by signal N (SIGINT 130, SIGTERM 143), results so far kept
  (:mod:`hpe3d_ros.replay.signals`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from hpe3d_ros.config import ConfigError, NodeConfig, load_config
from hpe3d_ros.pipeline import Pipeline
from hpe3d_ros.replay.bagio import BagReadError
from hpe3d_ros.replay.output import OutputError, check_output
from hpe3d_ros.replay.report import format_summary
from hpe3d_ros.replay.run import replay
from hpe3d_ros.replay.signals import GracefulStop, Interrupted
from hpe3d_ros.replay.vehicle import format_vehicle


def shipped_params() -> Path:
    """``config/pipeline.yaml`` of a checkout, else of the installed package's share folder."""
    here = Path(__file__).resolve().parents[2] / "config" / "pipeline.yaml"
    if here.is_file():
        return here
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("hpe3d_ros")) / "config" / "pipeline.yaml"
    except Exception:  # not in an ament index: the pip world's prefix
        return Path(sys.prefix) / "share" / "hpe3d_ros" / "config" / "pipeline.yaml"


SHIPPED_PARAMS = shipped_params()


def _parse_set(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects name=value, got {item!r}")
        out[name.strip()] = yaml.safe_load(value)
    return out


def add_config_options(ap: argparse.ArgumentParser) -> None:
    """The options that choose the node's parameters (shared with ``hpe3d-fleet``)."""
    ap.add_argument(
        "--params-file",
        type=Path,
        default=SHIPPED_PARAMS,
        help="node parameters YAML",
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


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` and ``--seed`` as ``name -> value`` overrides of the parameters file.

    Raises:
        ConfigError: a ``--set`` item that is not ``name=value``.
    """
    overrides = _parse_set(args.set)
    if args.seed is not None:
        overrides["lifter.seed"] = args.seed
    return overrides


def config_from_args(args: argparse.Namespace) -> NodeConfig:
    """The configuration :func:`add_config_options`'s options describe.

    Raises:
        ConfigError: one line naming the bad parameter, file or ``--set`` item.
    """
    return load_config(args.params_file, **overrides_from_args(args))


class HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default where it has a meaningful one and its help does not say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hpe3d-replay",
        description="Replay rosbag2 bags (sqlite3/MCAP) through the hpe3d pipeline: output "
        "bag, per-frame tables, JSON summary (with GT errors when GT is present), pictures.",
        formatter_class=HelpFormatter,
    )
    ap.add_argument("bags", nargs="+", type=Path, help="input bag folders (or .mcap/.db3 files)")
    ap.add_argument("--output", "-o", type=Path, required=True, help="output folder")
    add_config_options(ap)
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
        help="storage of the output bag",
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
        cfg = config_from_args(args)
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
    if summary.get("vehicle"):
        print(format_vehicle(summary))
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
