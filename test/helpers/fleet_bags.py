"""Small keypoint-level mocap bags (one of them damaged) and their single-machine replays,
shared by the fleet tests."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from hpe3d_ros.camera import CameraModel

try:  # where the replay's bag writer lives (it moved into hpe3d_ros.replay)
    from hpe3d_ros.replay.make_bag import mocap_scene, write_mocap_bag
except ImportError:  # pragma: no cover - the layout before the move
    from hpe3d_ros.make_bag import mocap_scene, write_mocap_bag

#: fast settings: K = 10 hypotheses (the per-bag tables are compared byte for byte)
OVERRIDES = {"lifter.num_hypotheses": 10}
TABLES = ("frames.csv", "people.csv", "summary.json")
CAM = CameraModel.from_fov(640, 360, 60.0)


def make_campaign(root: Path, mocap: Path, bags: int = 6, frames: int = 60) -> list[str]:
    """``bags`` mocap bags under ``root`` (two vehicles), the last one cut in half (damaged),
    and ``root/manifest.yaml``; returns the bag paths relative to ``root``."""
    rels = []
    lines = []
    for i in range(bags):
        vehicle = "a" if i < bags // 2 else "b"
        rel = f"veh_{vehicle}/run{i}"
        scene = mocap_scene(mocap, CAM, frames=frames, people=2, seed=i)
        write_mocap_bag(root / rel, scene, CAM)
        rels.append(rel)
        lines.append(f"- bag: {rel}\n  vehicle: {vehicle}\n  campaign: nov\n")
    damaged = next((root / rels[-1]).glob("*.mcap"))
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    (root / "manifest.yaml").write_text("".join(lines))
    return rels


@contextlib.contextmanager
def cwd(folder: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def single_machine(root: Path, rels: list[str], out: Path, params_file: str) -> dict[str, Path]:
    """``hpe3d-replay <bag> --no-pictures`` of each bag alone, run in ``root`` with the path
    as the manifest gives it; returns name -> output folder."""
    from hpe3d_ros.build import build_pipeline
    from hpe3d_ros.config import load_config
    from hpe3d_ros.replay import replay

    cfg = load_config(params_file, **OVERRIDES)
    pipeline = build_pipeline(cfg)
    refs = {}
    with cwd(root):
        for rel in rels:
            name = Path(rel).name
            replay(
                [rel],
                out / name,
                cfg,
                pipeline,
                overlays=0,
                video_max_frames=0,
                params_file=params_file,
            )
            refs[name] = out / name
    return refs


def output_messages(out: Path) -> dict[str, list[tuple[int, bytes]]]:
    """The output bag(s) of one replay folder: topic -> [(log time, raw message)], every
    topic (a replay's ``/diagnostics`` holds no wall-clock value)."""
    from hpe3d_ros.replay.bagio import BagReader

    got: dict[str, list[tuple[int, bytes]]] = {}
    for bag in sorted((out / "bags").iterdir()):
        with BagReader(bag) as r:
            for topic, _, t, raw in r.messages(r.topics):
                got.setdefault(topic, []).append((t, raw))
    return got


def same_tables(a: Path, b: Path) -> list[str]:
    """The per-bag files (tables and summary) that differ between two output folders."""
    return [f for f in TABLES if (a / f).read_bytes() != (b / f).read_bytes()]


def fleet_command(out: Path, address: str, *extra: str) -> list[str]:
    """``hpe3d-fleet run manifest.yaml -o OUT --address ADDRESS`` with the fast settings."""
    sets = [a for k, v in OVERRIDES.items() for a in ("--set", f"{k}={v}")]
    return [
        sys.executable,
        "-m",
        "hpe3d_ros.fleet",
        "run",
        "manifest.yaml",
        "-o",
        str(out),
        "--address",
        address,
        *sets,
        *extra,
    ]
