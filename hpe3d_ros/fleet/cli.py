"""``hpe3d-fleet``: replay a campaign of bags on a Ray cluster, or compare two such runs.

``hpe3d-fleet run INPUT... -o OUT`` (bags, folders of bags, manifests) and
``hpe3d-fleet compare A B -o C``. Exit codes of ``run``:

* 0: every bag replayed (or found done) and ``ok``;
* 1: bad input or options (one line says what; nothing was started), or some bags failed
  (each one in ``bags.csv`` with its one-line reason; the others are done);
* 128 + N: stopped by signal N (SIGINT 130, SIGTERM 143): finished bags are kept, and the
  same command started again replays only the others.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from hpe3d_ros.config import ConfigError
from hpe3d_ros.fleet.compare import CompareError, compare, format_compare
from hpe3d_ros.fleet.inputs import InputError, collect
from hpe3d_ros.fleet.store import StoreError
from hpe3d_ros.fleet.tables import format_table
from hpe3d_ros.replay.cli import HelpFormatter, add_config_options, overrides_from_args

PROG = "hpe3d-fleet"


class _TqdmHandler(logging.Handler):
    """Log lines above the progress bar, not through it."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


class _Signals:
    """SIGINT/SIGTERM: the first asks the run to stop between bags (the driver then cancels
    the bags in flight and exits 128 + N); a second one interrupts at once."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.signum:
            raise KeyboardInterrupt
        self.signum = signum

    def requested(self) -> bool:
        return self.signum != 0


def _at_least(low: float, kind: type = int, above: bool = False) -> Any:
    """argparse type: a number >= ``low`` (> ``low`` with ``above``)."""

    def parse(text: str) -> Any:
        value = kind(text)
        if value < low or (above and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if above else '>='} {low}: {text}")
        return value

    return parse


def _run_parser(sub: Any) -> None:
    ap = sub.add_parser("run", help="replay bags on Ray into OUT (resumes an earlier run)",
                        formatter_class=HelpFormatter)  # fmt: skip
    ap.add_argument(
        "inputs",
        nargs="+",
        help="bag folders, .mcap/.db3 files, folders of bags, "
        "or manifests (.yaml/.csv: bag, vehicle, campaign, sequence, ...)",
    )
    ap.add_argument("--output", "-o", type=Path, required=True, help="output folder")
    add_config_options(ap)  # the same options as hpe3d-replay
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="output bags")
    ap.add_argument(
        "--pictures",
        action="store_true",
        help="overlays and MP4 per bag as "
        "hpe3d-replay writes them (default: none, as --no-pictures)",
    )
    ray_opts = ap.add_argument_group("Ray")
    ray_opts.add_argument(
        "--address",
        help="join this Ray cluster (HOST:PORT or 'auto'); default: start a local Ray instance",
    )
    ray_opts.add_argument(
        "--num-cpus", type=_at_least(1), help="CPUs of the local instance (default: all)"
    )
    ray_opts.add_argument(
        "--workers", type=_at_least(1), help="bags in flight (default: CPUs / --cpus-per-bag)"
    )
    ray_opts.add_argument("--cpus-per-bag", type=_at_least(0, float, above=True), default=1.0)
    ray_opts.add_argument(
        "--gpus-per-bag",
        type=_at_least(0, float),
        help="GPU share of a bag's task (0.5: "
        "two per GPU; default: 1 when the cluster has GPUs and the "
        "parameters ask for cuda, else 0)",
    )
    ray_opts.add_argument(
        "--retries",
        type=_at_least(0),
        default=3,
        help="retries of a bag whose worker died (default 3)",
    )
    ap.add_argument(
        "--rerun",
        action="store_true",
        help="replay every bag again, even those done with the same bag, weights and parameters",
    )
    ap.add_argument("--group-by", default="", help="grouping of distributions.png")
    ap.add_argument("--quiet", action="store_true", help="no progress bar, no per-bag lines")


def _compare_parser(sub: Any) -> None:
    ap = sub.add_parser("compare", help="two fleet outputs side by side")
    ap.add_argument("a", type=Path, help="first fleet output folder")
    ap.add_argument("b", type=Path, help="second fleet output folder")
    ap.add_argument("--output", "-o", type=Path, required=True, help="comparison folder")
    ap.add_argument("--labels", default="A,B", help="names of the two runs (default A,B)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Replay a campaign of rosbag2 bags on a Ray cluster (each bag as "
        "hpe3d-replay would, byte for byte), with fleet tables; or compare two runs.",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    _compare_parser(sub)
    args = ap.parse_args(argv)
    logging.getLogger("hpe3d_ros.fleet").setLevel(logging.INFO)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    logging.getLogger("hpe3d_ros.fleet").addHandler(handler)
    try:
        return _compare(args) if args.command == "compare" else _run(args)
    finally:
        logging.getLogger("hpe3d_ros.fleet").removeHandler(handler)


def _compare(args: argparse.Namespace) -> int:
    labels = tuple(x.strip() for x in args.labels.split(","))
    if len(labels) != 2 or not all(labels):
        print(f"{PROG}: error: --labels expects two names, e.g. old,new", file=sys.stderr)
        return 1
    try:
        result = compare(args.a, args.b, args.output, labels)
    except CompareError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(format_compare(result, labels))
    print(
        f"comparison: {args.output}/compare_bags.csv, compare_by_*.csv, compare.json, compare.png"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every worker's status line, not a count
    from hpe3d_ros.fleet.errors import ClusterError, Stopped
    from hpe3d_ros.fleet.run import FleetOptions, run_fleet

    err = f"{PROG}: error:"
    try:
        overrides = overrides_from_args(args)
        entries = collect(args.inputs)
    except (ConfigError, InputError) as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    if args.quiet:
        logging.getLogger("hpe3d_ros.fleet").setLevel(logging.WARNING)
    signals = _Signals()
    opts = FleetOptions(
        params_file=str(args.params_file),
        overrides=overrides,
        storage=args.storage,
        cameras=args.cameras.split(",") if args.cameras else None,
        pictures=args.pictures,
        address=args.address,
        num_cpus=args.num_cpus,
        workers=args.workers,
        cpus_per_bag=args.cpus_per_bag,
        gpus_per_bag=args.gpus_per_bag,
        retries=args.retries,
        rerun=args.rerun,
        progress=not args.quiet,
        group_by=args.group_by,
        stop=signals.requested,
    )
    old = {s: signal.signal(s, signals) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run_fleet(entries, args.output, opts)
    except (ConfigError, StoreError, ClusterError) as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        print(
            f"{err} hpe3d-fleet needs Ray: pip install ray (the version of requirements.lock)",
            file=sys.stderr,
        )
        return 1
    except (Stopped, KeyboardInterrupt):
        signum = signals.signum or signal.SIGINT
        print(
            f"{err} interrupted by {signal.Signals(signum).name}; finished bags are kept in "
            f"{args.output}/bags; run the same command again to replay the others",
            file=sys.stderr,
        )
        return 128 + signum
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if signals.signum:  # arrived after the last bag: the results are complete
        print(
            f"{err} {signal.Signals(signals.signum).name} received after the last bag",
            file=sys.stderr,
        )
    tabs = result["tables"]
    print(format_table(tabs))
    t = result["timings"]
    print(
        f"{len(entries)} bags: {tabs['counts']['ok']} ok, {tabs['counts']['failed']} failed, "
        f"{tabs['counts']['error']} not replayed; {t['outcomes']}; "
        f"{t['frames_replayed']} frames replayed at {t['frames_per_s']:.1f} frames/s"
    )
    print(
        f"results: {args.output}/bags.csv, cameras.csv, by_*.csv, summary.json, "
        f"distributions.csv/.png, bags/<name>/"
    )
    if tabs["failures"]:
        for f in tabs["failures"]:
            print(f"{err} bag {f['name']}: {f['status']}: {f['reason']}", file=sys.stderr)
        return 1
    return 0
