"""Fleet replay pieces that need no Ray: inputs and manifests, names, keys, the output folder's
atomic publishing, the per-bag stats, the tables, and that only the fleet imports Ray."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from hpe3d_ros.fleet import bagstats, identity, store, tables
from hpe3d_ros.fleet.cli import main
from hpe3d_ros.fleet.inputs import InputError, collect, unique_names
from hpe3d_ros.fleet.run import wants_gpu
from test.conftest import REPO


def _bag(path, payload=b"x"):
    path.mkdir(parents=True)
    (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    (path / f"{path.name}.mcap").write_bytes(payload)
    return path


def test_ray_is_imported_by_the_fleet_only():
    code = (
        "import sys\n"
        "import hpe3d_ros.replay, hpe3d_ros.ros.node, hpe3d_ros.build\n"
        "from hpe3d_ros.replay import main, replay\n"
        "assert 'ray' not in sys.modules, 'node/replay imported ray'\n"
        "import hpe3d_ros.fleet.run\n"
        "assert 'ray' not in sys.modules, 'the fleet imports ray only to run on it'\n"
        "import hpe3d_ros.fleet.cluster\n"
        "assert 'ray' in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_folders_are_searched_and_manifests_read_relative_to_themselves(tmp_path):
    a = _bag(tmp_path / "camp" / "veh_a" / "run1")
    b = _bag(tmp_path / "camp" / "veh_b" / "run1")  # same name, other vehicle
    (tmp_path / "camp" / "loose.mcap").write_bytes(b"y")
    found = collect([str(tmp_path / "camp")])
    assert [e.bag for e in found] == [str(tmp_path / "camp" / "loose.mcap"), str(a), str(b)]
    names = [e.name for e in found]
    assert names[0] == "loose" and len(set(names)) == 3
    assert names[1].startswith("run1-") and names[2].startswith("run1-")
    # the same bag keeps its name whatever else the run holds
    assert collect([str(tmp_path / "camp" / "veh_a"), str(b)])[1].name == names[2]

    (tmp_path / "camp" / "m.yaml").write_text(
        "bags:\n- bag: veh_a/run1\n  vehicle: a\n  campaign: nov\n  name: a1\n"
        "- veh_b/run1\n- {bag: /abs/missing, gt_npz: gt.npz, weather: rain}\n"
    )
    (tmp_path / "camp" / "m.csv").write_text("bag,vehicle,sequence\nveh_b/run1,b,crossing\n")
    m = collect([str(tmp_path / "camp" / "m.yaml"), str(tmp_path / "camp" / "m.csv")])
    assert [e.bag for e in m] == [str(a), str(b), "/abs/missing", str(b)]
    assert m[0].name == "a1" and m[0].labels == {"vehicle": "a", "campaign": "nov"}
    assert m[2].gt_npz == str(tmp_path / "camp" / "gt.npz") and m[2].labels == {"weather": "rain"}
    assert m[3].labels == {"vehicle": "b", "sequence": "crossing"}
    assert len({e.name for e in m}) == 4  # the same bag twice: two folders


@pytest.mark.parametrize(
    "text,suffix,why",
    [
        ("bag_path,vehicle\nx,a\n", ".csv", "no 'bag' column"),
        ("- vehicle: a\n", ".yaml", "entry 1 names no bag"),
        ("{a: 1}\n", ".yaml", "expected a list"),
        ("- [unclosed\n", ".yaml", "not valid YAML"),
    ],
)
def test_bad_manifests_are_refused_in_one_line(tmp_path, text, suffix, why):
    path = tmp_path / f"m{suffix}"
    path.write_text(text)
    with pytest.raises(InputError, match=why) as exc:
        collect([str(path)])
    assert "\n" not in str(exc.value)


def test_unique_names_are_folder_safe():
    names = unique_names([("a b/../c", "/x/1"), ("", "/x/2"), ("ok", "/x/3"), ("ok", "/x/3")])
    assert names[0] == "a_b_.._c" and names[1] == "bag"
    assert names[2] != names[3] and all("/" not in n for n in names)


def test_content_hash_follows_bytes_and_fingerprint_follows_touches(tmp_path):
    a = _bag(tmp_path / "a", b"same")
    b = _bag(tmp_path / "b", b"same")
    assert identity.content_hash(a) != identity.content_hash(b)  # file names differ
    (b / "b.mcap").rename(b / "a.mcap")
    assert identity.content_hash(a) == identity.content_hash(b)
    fp = identity.fingerprint(a)
    (a / "a.mcap").write_bytes(b"other")
    assert identity.content_hash(a) != identity.content_hash(b)
    assert identity.fingerprint(a) != fp


def test_the_run_key_covers_parameters_weights_and_options(tmp_path):
    values = {"lifter.seed": 0, "lifter.weights": ""}
    key = identity.digest(identity.run_identity(values, "p.yaml", {"storage": "mcap"}))
    assert key == identity.digest(
        identity.run_identity(dict(values), "p.yaml", {"storage": "mcap"})
    )
    for v, p, o in [
        ({**values, "lifter.seed": 1}, "p.yaml", {"storage": "mcap"}),
        (values, "q.yaml", {"storage": "mcap"}),
        (values, "p.yaml", {"storage": "sqlite3"}),
    ]:
        assert identity.digest(identity.run_identity(v, p, o)) != key
    w = tmp_path / "lifter.pt"
    w.write_bytes(b"1")
    with_w = identity.digest(identity.run_identity({**values, "lifter.weights": str(w)}, "p", {}))
    w.write_bytes(b"2")  # same path, other bytes: another key
    assert identity.digest(
        identity.run_identity({**values, "lifter.weights": str(w)}, "p", {})
    ) != (with_w)


def test_publish_is_all_or_nothing_and_never_replaces_foreign_data(tmp_path):
    out = tmp_path / "out"
    attempt = store.new_attempt(out, "run1")
    attempt.mkdir()
    store.write_json(attempt / store.RECORD, {"key": "k1"})
    assert store.publish(out, attempt, "run1", "k1") == "published"
    assert store.read_record(out / "bags" / "run1") == {"key": "k1"}
    again = store.new_attempt(out, "run1")
    again.mkdir()
    store.write_json(again / store.RECORD, {"key": "k1"})
    assert store.publish(out, again, "run1", "k1") == "duplicate" and not again.exists()
    newer = store.new_attempt(out, "run1")
    newer.mkdir()
    store.write_json(newer / store.RECORD, {"key": "k2"})
    assert store.publish(out, newer, "run1", "k2") == "published"
    assert store.read_record(out / "bags" / "run1") == {"key": "k2"}
    assert store.abandoned_attempts(out) == []
    (out / "bags" / "mine").mkdir()  # not a fleet's result: refused, kept
    other = store.new_attempt(out, "mine")
    other.mkdir()
    with pytest.raises(store.StoreError, match="not written by hpe3d-fleet"):
        store.publish(out, other, "mine", "k")
    assert (out / "bags" / "mine").is_dir()
    assert store.remove_attempts(out) == 1


def test_output_folder_rules(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    with pytest.raises(store.StoreError, match="not written by hpe3d-fleet"):
        store.check_out(tmp_path / "data")
    (tmp_path / "file").write_text("")
    with pytest.raises(store.StoreError, match="not a folder"):
        store.check_out(tmp_path / "file")
    with store.locked(tmp_path / "out"):
        store.check_out(tmp_path / "out")  # marked: ours
        with (
            pytest.raises(store.StoreError, match="another hpe3d-fleet run"),
            store.locked(tmp_path / "out"),
        ):
            pass


def _tables(folder, frames, people):
    folder.mkdir(parents=True, exist_ok=True)
    fcols = ["camera", "status", "reason", "people", "lifted", "gt_people", "gt_matched"]
    pcols = [
        "camera",
        "lifted",
        "root_z_m",
        "root_std_z_m",
        "gt_index",
        "mpjpe_mm",
        "p_mpjpe_mm",
        "best_of_k_mm",
        "coverage90",
        "root_err_m",
    ]
    for name, cols, rows in (("frames.csv", fcols, frames), ("people.csv", pcols, people)):
        with open(folder / name, "w", newline="") as f:
            w = csv.DictWriter(f, cols, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)


def test_bag_stats_pool_exactly_and_percentiles_hold_to_the_bin(tmp_path):
    rng = np.random.default_rng(0)
    mpjpe = rng.gamma(4.0, 15.0, size=400)
    people = [
        {
            "camera": "front",
            "lifted": 1,
            "root_z_m": f"{4 + i % 9:.3f}",
            "root_std_z_m": "0.5",
            "gt_index": 0 if i % 4 else "",
            "mpjpe_mm": f"{m:.6g}",
            "p_mpjpe_mm": "",
            "best_of_k_mm": "",
            "coverage90": "1",
            "root_err_m": "0.1",
        }
        for i, m in enumerate(mpjpe)
    ]
    people.append({**people[1], "lifted": 0, "mpjpe_mm": "9999"})  # not lifted: not counted
    frames = [
        {
            "camera": "front",
            "status": "ok",
            "reason": "",
            "people": 4,
            "lifted": 4,
            "gt_people": 4,
            "gt_matched": 3,
        }
        for _ in range(100)
    ]
    frames.append(
        {
            "camera": "front",
            "status": "failed",
            "reason": "no_camera_info: none yet",
            "people": "",
            "lifted": "",
            "gt_people": "",
            "gt_matched": "",
        }
    )
    _tables(tmp_path / "a", frames, people[:200])
    _tables(tmp_path / "b", frames, people[200:])
    sa, sb = bagstats.bag_stats(tmp_path / "a"), bagstats.bag_stats(tmp_path / "b")
    both = bagstats.merge([sa["front"], sb["front"]])
    row = bagstats.describe(both)
    matched = np.array([float(f"{m:.6g}") for i, m in enumerate(mpjpe) if i % 4])
    assert row["mpjpe_mm_n"] == matched.size
    assert row["mpjpe_mm"] == pytest.approx(matched.mean(), rel=1e-12)
    assert abs(row["mpjpe_mm_p50"] - np.percentile(matched, 50)) <= 1.0
    assert abs(row["mpjpe_mm_p95"] - np.percentile(matched, 95)) <= 1.5
    assert row["coverage90_p50"] == 1.0
    assert row["frames"] == 202 and row["failed"] == 2 and row["failures"] == "no_camera_info=2"
    assert row["gt_recall"] == pytest.approx(0.75)
    assert row["people_per_frame"] == 4.0


def test_fleet_tables_do_not_depend_on_the_order_of_results(tmp_path):
    recs = []
    for i, veh in enumerate("aab"):
        _tables(
            tmp_path / f"r{i}",
            [
                {
                    "camera": "front",
                    "status": "ok",
                    "reason": "",
                    "people": 1,
                    "lifted": 1,
                    "gt_people": "",
                    "gt_matched": "",
                }
            ],
            [
                {
                    "camera": "front",
                    "lifted": 1,
                    "root_z_m": str(5 + i),
                    "root_std_z_m": "1",
                    "gt_index": "",
                }
            ],
        )
        recs.append(
            {
                "name": f"r{i}",
                "bag": f"b/r{i}",
                "status": "ok",
                "reason": "",
                "labels": {"vehicle": veh},
                "cameras": bagstats.bag_stats(tmp_path / f"r{i}"),
            }
        )
    recs.append(
        {
            "name": "gone",
            "bag": "b/gone",
            "status": "error",
            "reason": "no such bag: b/gone",
            "labels": {"vehicle": "b"},
        }
    )
    outs = []
    for k, order in enumerate((recs, recs[::-1])):
        out = tmp_path / f"out{k}"
        out.mkdir()
        tables.write(out, tables.build(order), {"run_key": "x"})
        outs.append(out)
    for name in (
        "bags.csv",
        "cameras.csv",
        "by_vehicle.csv",
        "by_camera.csv",
        "summary.json",
        "distributions.csv",
    ):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    by_vehicle = list(csv.DictReader(open(outs[0] / "by_vehicle.csv")))
    assert [(r["group"], r["frames"], r["root_distance_m"]) for r in by_vehicle] == [
        ("a", "2", "5.5"),
        ("b", "1", "7"),
    ]
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["counts"] == {"ok": 3, "failed": 0, "error": 1}
    assert summary["failures"] == [
        {"name": "gone", "status": "error", "reason": "no such bag: b/gone"}
    ]


def test_missing_bags_and_bad_options_fail_before_ray_starts(tmp_path, capsys):
    (tmp_path / "m.yaml").write_text("- bag: nowhere/run1\n  vehicle: a\n")
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "m.yaml"), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "bag run1: error: no such bag:" in err
    assert next(csv.DictReader(open(out / "bags.csv")))["status"] == "error"
    assert json.loads((out / "timings.json").read_text())["outcomes"] == {"error": 1}
    assert main(["run", str(tmp_path / "m.yaml"), "-o", str(out), "--set", "lifter.seed"]) == 1
    assert "--set expects name=value" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "m.yaml"), "-o", str(tmp_path)]) == 1
    assert "not written by hpe3d-fleet" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "m.yaml"), "-o", str(out), "--set", "lifter.seed=-4"]) == 1
    assert "lifter.seed" in capsys.readouterr().err


def test_gpu_tasks_only_when_the_parameters_ask_for_a_gpu():
    assert not wants_gpu({"lifter.device": "cpu", "detector.backend": "onnxruntime-cpu"})
    assert wants_gpu({"lifter.device": "cuda"})
    assert wants_gpu({"detector.backend": "tensorrt"})
    assert wants_gpu({"lifter.backend": "auto", "detector.backend": "onnxruntime-cuda"})


def test_an_address_where_no_cluster_answers_fails_at_once(tmp_path, capsys):
    bag = _bag(tmp_path / "run1")
    t0 = time.monotonic()
    rc = main(
        ["run", str(bag), "-o", str(tmp_path / "out"), "--address", "127.0.0.1:1", "--quiet"]
    )
    assert rc == 1 and time.monotonic() - t0 < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hpe3d-fleet: error: no Ray cluster answers at 127.0.0.1:1")


@pytest.mark.parametrize(
    "option",
    [
        ["--workers", "0"],
        ["--retries", "-1"],
        ["--num-cpus", "0"],
        ["--cpus-per-bag", "0"],
        ["--gpus-per-bag", "-0.5"],
    ],
)
def test_impossible_ray_options_are_refused(tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exc:
        main(["run", "bag", "-o", str(tmp_path / "out"), *option])
    assert exc.value.code == 2 and f"argument {option[0]}: must be" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
