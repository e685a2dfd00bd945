"""Fleet replay on a local Ray instance (2 CPUs, 2 workers; one instance for this module):
six small mocap bags, one of them damaged, give the per-bag tables of single-machine replay;
a worker killed mid-bag is retried to the same bytes; a second run skips finished bags; an
interrupted command started again replays only the rest; two runs compare side by side."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed")
import ray

from hpe3d_ros.fleet import cluster
from hpe3d_ros.fleet.cli import main
from hpe3d_ros.fleet.compare import compare
from hpe3d_ros.fleet.inputs import collect
from hpe3d_ros.fleet.run import FleetOptions, run_fleet
from hpe3d_ros.lifting import DEFAULT_WEIGHTS
from hpe3d_ros.replay import SHIPPED_PARAMS
from test.conftest import REPO, SHARED_DATA
from test.helpers.fleet_bags import (
    OVERRIDES,
    cwd,
    fleet_command,
    make_campaign,
    output_messages,
    same_tables,
    single_machine,
)

PARAMS = str(SHIPPED_PARAMS)
FLEET_TABLES = (
    "bags.csv",
    "cameras.csv",
    "by_camera.csv",
    "by_sequence.csv",
    "by_vehicle.csv",
    "by_campaign.csv",
    "distributions.csv",
    "summary.json",
)
TASK_TITLE = b"ray::fleet_replay_bag"

pytestmark = pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no lifter weights yet")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    mocap = SHARED_DATA / "cmu_h36m17_30fps.npz"
    if not mocap.exists():
        pytest.skip(f"shared mocap not found at {mocap} (only CI and developers have ../shared)")
    root = tmp_path_factory.mktemp("campaign")
    rels = make_campaign(root, mocap)
    return root, rels


@pytest.fixture(scope="module")
def refs(campaign, tmp_path_factory):
    root, rels = campaign
    return single_machine(root, rels, tmp_path_factory.mktemp("single"), PARAMS)


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs, started as hpe3d-fleet starts one."""
    assert cluster.connect(num_cpus=2, object_store_mb=128)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def fleet(root: Path, out: Path, inputs=("manifest.yaml",), **kw) -> dict:
    kw.setdefault("progress", False)
    with cwd(root):
        entries = collect(list(inputs))
        overrides = {**OVERRIDES, **kw.pop("overrides", {})}
        return run_fleet(entries, out, FleetOptions(params_file=PARAMS, overrides=overrides, **kw))


@pytest.fixture(scope="module")
def first_run(campaign, local_ray, tmp_path_factory):
    root, _ = campaign
    out = tmp_path_factory.mktemp("fleet") / "out"
    return out, fleet(root, out, workers=2)


def _outcomes(out: Path) -> dict[str, int]:
    return json.loads((out / "timings.json").read_text())["outcomes"]


def _assert_same_as(out: Path, refs: dict[str, Path], messages: bool = False) -> None:
    for name, ref in refs.items():
        assert same_tables(out / "bags" / name, ref) == [], name
        if messages:  # the output bag: the same messages, /diagnostics included
            assert output_messages(out / "bags" / name) == output_messages(ref), name


def test_two_workers_give_the_tables_of_one_machine(first_run, refs):
    out, result = first_run
    _assert_same_as(out, refs, messages=True)
    recs = {r["name"]: r for r in result["results"]}
    assert {n: r["status"] for n, r in recs.items()} == {
        "run0": "ok",
        "run1": "ok",
        "run2": "ok",
        "run3": "ok",
        "run4": "ok",
        "run5": "failed",
    }
    reason = recs["run5"]["reason"]
    assert "damaged" in reason and "\n" not in reason
    # each worker process loaded the models once, not once per bag
    pids = {r["pid"] for r in recs.values()}
    assert result["timings"]["model_loads"] == len(pids) < len(recs)
    assert result["timings"]["outcomes"] == {"published": 6}
    assert not any((out / ".attempts").iterdir())
    # fleet tables: per bag, camera, sequence, vehicle, campaign; GT errors where GT exists
    bags = list(csv.DictReader(open(out / "bags.csv")))
    assert [b["name"] for b in bags] == [f"run{i}" for i in range(6)]
    assert bags[5]["status"] == "failed" and bags[5]["reason"] == reason
    vehicles = list(csv.DictReader(open(out / "by_vehicle.csv")))
    assert [v["group"] for v in vehicles] == ["a", "b"]
    for v in vehicles:
        assert 10 < float(v["mpjpe_mm"]) < 300 and 0 < float(v["coverage90"]) <= 1
        assert float(v["gt_recall"]) > 0.9
    assert int(vehicles[0]["frames"]) == 180
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"ok": 5, "failed": 1, "error": 0}
    assert (out / "distributions.png").stat().st_size > 10_000


def test_one_worker_writes_the_same_bytes(campaign, first_run, tmp_path):
    out1, _ = first_run
    out = tmp_path / "out"
    fleet(campaign[0], out, workers=1)
    for name in FLEET_TABLES:
        assert (out / name).read_bytes() == (out1 / name).read_bytes(), name
    for name in (f"run{i}" for i in range(6)):
        assert same_tables(out / "bags" / name, out1 / "bags" / name) == []


def _replaying_pid(out: Path, min_rows: int = 5) -> tuple[int, Path] | None:
    """A worker process running our task whose open frames table has ``min_rows`` rows."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not (proc / "cmdline").read_bytes().startswith(TASK_TITLE):
                continue
            for fd in (proc / "fd").iterdir():
                target = Path(os.readlink(fd))
                if target.name == "frames.csv" and str(out / ".attempts") in str(target):
                    if target.read_bytes().count(b"\n") > min_rows:
                        return int(proc.name), target.parent
        except OSError:
            continue
    return None


def test_a_worker_killed_mid_bag_is_retried_to_the_same_bytes(campaign, first_run, tmp_path):
    out1, _ = first_run
    out = tmp_path / "out"
    box = {}
    run = threading.Thread(target=lambda: box.update(r=fleet(campaign[0], out, workers=2)))
    run.start()
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and run.is_alive() and time.monotonic() < deadline:
        victim = _replaying_pid(out)
        time.sleep(0.02)
    assert victim is not None, "no worker was caught mid-bag"
    pid, attempt = victim
    os.kill(pid, signal.SIGKILL)
    run.join(timeout=300)
    assert not run.is_alive() and "r" in box
    assert not Path(f"/proc/{pid}").exists()
    t = box["r"]["timings"]
    assert t["abandoned_attempts_removed"]["after"] >= 1  # the killed attempt's folder
    assert not attempt.exists()
    killed_bag = attempt.name.rsplit(".", 1)[0]  # attempts are named <bag>.<id>
    assert {r["name"]: r["pid"] for r in box["r"]["results"]}[killed_bag] != pid
    for name in FLEET_TABLES:
        assert (out / name).read_bytes() == (out1 / name).read_bytes(), name
    for name in (f"run{i}" for i in range(6)):
        assert same_tables(out / "bags" / name, out1 / "bags" / name) == []


def test_a_second_run_skips_finished_bags(campaign, first_run, refs):
    root, rels = campaign
    out, _ = first_run
    before = {
        p.name: (p.stat().st_ino, (p / "fleet.json").stat().st_mtime_ns)
        for p in (out / "bags").iterdir()
    }
    tables = {n: (out / n).read_bytes() for n in FLEET_TABLES}
    result = fleet(root, out, workers=2)
    assert result["timings"]["outcomes"] == {"skipped": 6}  # the damaged bag too: same answer
    assert "connect_s" not in result["timings"]  # nothing left: Ray not even started
    assert {
        p.name: (p.stat().st_ino, (p / "fleet.json").stat().st_mtime_ns)
        for p in (out / "bags").iterdir()
    } == before
    # a bag lost (its run died before it finished) and a bag touched (same bytes)
    import shutil

    shutil.rmtree(out / "bags" / "run1")
    touched = next((root / rels[2]).glob("*.mcap"))
    os.utime(touched, ns=(time.time_ns(), time.time_ns()))
    result = fleet(root, out, workers=2)
    outcome = {r["name"]: r["outcome"] for r in result["results"]}
    assert outcome == {
        "run0": "skipped",
        "run1": "published",
        "run2": "reused",
        "run3": "skipped",
        "run4": "skipped",
        "run5": "skipped",
    }
    _assert_same_as(out, refs)
    for n in FLEET_TABLES:
        assert (out / n).read_bytes() == tables[n], n
    assert fleet(root, out, workers=2)["timings"]["outcomes"] == {"skipped": 6}


def _cli(root: Path, out: Path, address: str, *extra: str) -> subprocess.Popen:
    cmd = fleet_command(out, address, *extra)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_an_interrupted_command_resumes_without_redoing_or_losing_a_bag(
    campaign, refs, local_ray, tmp_path
):
    root, _ = campaign
    out = tmp_path / "out"
    proc = _cli(root, out, local_ray, "--workers", "1")
    deadline = time.monotonic() + 240
    done: list[str] = []
    while len(done) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        done = [p.name for p in (out / "bags").glob("*") if (p / "fleet.json").is_file()]
    assert len(done) >= 2, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGINT)
    log = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, log[-3000:]
    assert "interrupted by SIGINT" in log
    done = sorted(p.name for p in (out / "bags").glob("*"))
    assert 2 <= len(done) < 6
    again = _cli(root, out, local_ray)
    log = again.communicate(timeout=400)[0]
    assert again.returncode == 1, log[-3000:]  # run5 is damaged
    assert "bag run5: failed: bag veh_b/run5 is damaged" in log
    assert _outcomes(out) == {"skipped": len(done), "published": 6 - len(done)}
    for n in done:
        assert f"bag {n}:" not in log.split("Ray:")[-1]  # finished bags were not replayed
    _assert_same_as(out, refs)
    assert "pid" in log and "worker" in log  # per-worker status lines


def test_compare_two_runs_side_by_side(campaign, first_run, tmp_path, capsys):
    root, _ = campaign
    base, _ = first_run
    baseline = str(DEFAULT_WEIGHTS.parent / "lifter_baseline.pt")
    other = tmp_path / "baseline"
    (root / "two.yaml").write_text(
        "".join(f"- {{bag: veh_a/run{i}, vehicle: a}}\n" for i in (0, 1))
    )
    fleet(
        root,
        other,
        inputs=("two.yaml",),
        workers=2,
        overrides={"lifter.weights": baseline},
    )
    result = compare(base, other, tmp_path / "cmp", ("cvae", "baseline"))
    rows = {r["name"]: r for r in result["bags"]}
    assert sorted(rows) == [f"run{i}" for i in range(6)]
    assert rows["run2"]["status_baseline"] == "absent" and rows["run0"]["same_bag"] == 1
    assert rows["run0"]["mpjpe_mm_cvae"] != rows["run0"]["mpjpe_mm_baseline"]
    assert rows["run0"]["mpjpe_mm_delta"] == pytest.approx(
        rows["run0"]["mpjpe_mm_baseline"] - rows["run0"]["mpjpe_mm_cvae"]
    )
    assert "lifter.weights" in result["differences"] and "model_id" in result["differences"]
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 10_000
    vehicles = list(csv.DictReader(open(tmp_path / "cmp" / "compare_by_vehicle.csv")))
    assert [v["group"] for v in vehicles] == ["a", "b"] and vehicles[1]["frames_baseline"] == ""
    assert int(vehicles[0]["frames_baseline"]) == 120 and int(vehicles[0]["frames_cvae"]) == 180
    assert (
        main(
            [
                "compare",
                str(base),
                str(other),
                "-o",
                str(tmp_path / "c2"),
                "--labels",
                "cvae,baseline",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "differs: lifter.weights" in printed and "mpjpe_mm" in printed
