"""The GPU run's script, checked on the CPU: a dry run of every step, step time limits, the
collation into BENCHMARKS.md tables, the wheel joining, the preparation and its one call."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import gpu_prepare, gpu_report, gpu_run
from test.conftest import REPO, SHARED_DATA


@pytest.fixture(autouse=True)
def keep_torch_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """The whole script on the CPU, in this process (no step processes: saves torch imports)."""
    out = tmp_path_factory.mktemp("gpu_dry")
    carry = tmp_path_factory.mktemp("carry")
    if (SHARED_DATA / "cmu_h36m17_30fps.npz").exists():  # CI and developers have ../shared
        gpu_prepare.write_views(carry / "test_subjects.npz", "test", 64, 2026, True)
    argv = ["--dry-run", "--in-process", "--out", str(out), "--carry", str(carry)]
    rc = gpu_run.main([*argv, "--budget-s", "900"])
    return rc, out, json.loads((out / "gpu_results.json").read_text())


def test_dry_run_executes_every_step_on_the_cpu(dry_run):
    rc, out, res = dry_run
    assert rc == 0, res["steps"]
    assert list(res["steps"]) == list(gpu_run.STEP_NAMES)
    assert all(s["status"] == "ok" for s in res["steps"].values()), res["steps"]
    # what comes back through $OUT: 3 files (the device returns at most 8)
    assert sorted(p.name for p in out.iterdir()) == ["gpu_log.txt", "gpu_results.json",
                                                     "gpu_tables.md"]  # fmt: skip
    assert res["dry_run"] and res["machine"]["gpu"] is None
    trt = res["tensorrt"]  # TensorRT-RTX is pinned: it imports (its builder needs no GPU)
    if trt.get("flavour"):
        assert trt["attempts"] == ["already importable"] and trt["builder"]
    else:
        assert "registry not asked (dry run)" in trt["attempts"] and trt["why_none"]


def test_dry_run_measures_the_cpu_stand_ins_and_records_why_gpu_backends_did_not_run(dry_run):
    _, _, res = dry_run
    ran = {(r["model"], r["backend"]): r for r in res["parity"] if "skipped" not in r}
    skipped = {(r["model"], r["backend"]): r["skipped"] for r in res["parity"] if "skipped" in r}
    for model in ("lifter_default.pt", "lifter_baseline.pt"):
        assert (
            ran[model, "onnxruntime-cpu"]["ok"] and ran[model, "onnxruntime-cpu"]["max_mm"] < 0.1
        )
        fp16 = ran[model, "onnxruntime-cpu-fp16"]
        assert fp16["precision"] == "fp16" and fp16["ok"] and 0 < fp16["mean_mm"] <= 2
        assert "CUDA" in skipped[model, "torch-cuda"]
        assert "CUDA" in skipped[model, "tensorrt-fp16"]
    lifter = {r["backend"] for r in res["lifter"] if "median_ms" in r}
    assert {"onnxruntime-cpu", "onnxruntime-cpu-fp16", "torch-cpu"} <= lifter
    sizes = {r["size"] for r in res["detector"] if "median_ms" in r}
    assert sizes == {"640x480", "1280x720"}
    cams = {(r["lifter_asked"], r["cameras"]) for r in res["pipeline"] if "frames_per_s" in r}
    assert cams == {("auto", 1), ("auto", 4), ("torch", 1), ("torch", 4)}
    four = next(r for r in res["pipeline"] if r.get("cameras") == 4)
    assert four["frames"] == 4 * res["ctx"]["frames"]
    int8 = {r["backend"]: r for r in res["int8"]}
    if "mpjpe_mm" in int8.get("torch-cpu", {}):
        assert 20 < int8["torch-cpu"]["mpjpe_mm"] < 300
        assert abs(int8["onnxruntime-cpu-fp16"]["cost_mm"]) < 1.0
        assert "skipped" in int8["tensorrt-int8"]
    else:  # no ../shared: says how to make the data
        assert "gpu_prepare.py" in next(iter(int8.values()))["skipped"]
    assert "4 skipped" in res["tests"]["summary"] and len(res["tests"]["skips"]) == 3  # 3 lines
    assert all("no CUDA device" in s or "not importable" in s for s in res["tests"]["skips"])


def test_dry_run_tables_show_every_backend_with_a_figure_or_a_reason(dry_run):
    _, out, res = dry_run
    text = (out / "gpu_tables.md").read_text()
    assert text == gpu_report.render(res)
    assert text.startswith("#### DRY RUN on the CPU")
    for backend in ("tensorrt-fp16", "tensorrt-int8", "onnxruntime-cuda", "torch-cuda-compiled"):
        assert f"| {backend} | lifter_default.pt | not run: " in text
    assert "| onnxruntime-cpu | 640x480 |" in text


def gpu_like_results() -> dict:
    """What a GPU run returns, shaped like gpu_run's JSON (figures invented for the test)."""
    lat = {"median_ms": 0.8, "p90_ms": 0.9, "min_ms": 0.7, "cpu_ms": 0.8}
    return {
        "command": "python benchmarks/gpu_run.py --budget-s 300",
        "dry_run": False,
        "started": "2026-12-01 10:00 UTC",
        "machine": {
            "gpu": "NVIDIA H200",
            "driver": "580.159.03",
            "cpus": 16,
            "python": "3.12.3",
            "torch": "2.11.0+cu130",
            "torch_cuda": "13.0",
            "onnxruntime": "1.30.0",
            "ort_providers": ["CPUExecutionProvider"],
        },
        "tensorrt": {"flavour": "tensorrt", "version": "10.16.1", "attempts": ["local wheels"]},
        "steps": {"machine": {"status": "ok", "reason": "", "seconds": 3.0}},
        "tests": {"command": "pytest -q -rs", "summary": "60 passed in 30s", "skips": []},
        "parity": [
            {
                "model": "lifter_default.pt",
                "backend": "tensorrt-fp16",
                "precision": "fp16",
                "mean_mm": 0.5,
                "max_mm": 3.0,
                "limit_mm": 2.0,
                "ok": True,
            },
            {
                "model": "lifter_default.pt",
                "backend": "tensorrt-fp32",
                "precision": "fp32",
                "mean_mm": 0.2,
                "max_mm": 0.5,
                "limit_mm": 0.1,
                "ok": False,
            },
            {
                "model": "lifter_default.pt",
                "backend": "onnxruntime-cuda",
                "skipped": "CUDAExecutionProvider not in this onnxruntime",
            },
        ],
        "lifter": [
            {
                "backend": "tensorrt-fp16",
                "model": "lifter_default.pt",
                "people": 10,
                "k": 200,
                **lat,
            },
            {
                "backend": "torch-cuda",
                "model": "lifter_default.pt",
                "people": 10,
                "k": 200,
                **{**lat, "median_ms": 1.6},
            },
        ],
        "detector": [{"backend": "tensorrt", "size": "640x480", "people": 6, **lat}],
        "pipeline": [
            {
                "lifter_asked": "auto",
                "lifter": "tensorrt-fp16",
                "detector": "tensorrt",
                "cameras": c,
                "frames": 100 * c,
                "k": 50,
                "people_per_frame": 6.0,
                "frames_per_s": f,
                "per_camera_frames_per_s": f / c,
                "cpu_ms_per_frame": 5.0,
                "stage_median_ms": {"detect": 3.0, "lift_and_place": 1.5},
            }
            for c, f in ((1, 120.0), (4, 300.0))
        ],
        "int8": [
            {"backend": "torch-cpu", "frames": 2000, "k": 50, "mpjpe_mm": 80.0, "cost_mm": 0.0},
            {
                "backend": "tensorrt-int8",
                "frames": 2000,
                "k": 50,
                "mpjpe_mm": 83.5,
                "cost_mm": 3.5,
            },
        ],
    }


def test_report_of_a_gpu_run_marks_targets_and_failures():
    text = gpu_report.render(gpu_like_results())
    assert text.startswith("#### GPU run, 2026-12-01 10:00 UTC")
    assert "NVIDIA H200, driver 580.159.03" in text and "TensorRT: tensorrt 10.16.1" in text
    row = "| tensorrt-fp16 | lifter_default.pt | 10 x 200 | 0.800 (0.900) | 0.700 | 0.80 | met |"
    assert row in text
    assert "| torch-cuda | lifter_default.pt | 10 x 200 | 1.600 (0.900) |" in text
    assert "**missed** |" in text  # torch CUDA over 1 ms
    assert "| tensorrt-fp32 | 0.200 | 0.500 | 0.1 | **FAIL** |" in text
    assert "| onnxruntime-cuda | not run: CUDAExecutionProvider not in this onnxruntime |" in text
    assert "| tensorrt-fp16 | tensorrt | 1 | 120.0 | 120.0 | 3.0 | 1.50 | met |" in text
    assert "| tensorrt-fp16 | tensorrt | 4 | 300.0 | 75.0 |" in text
    assert "| tensorrt-int8 | 2000 | 83.50 | +3.50 |" in text


def test_update_replaces_only_the_marked_block(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    head = "# Benchmarks\n\nbefore the block\n"
    tail = "\nafter the block\n## Next section\n"
    doc.write_text(f"{head}{gpu_report.BEGIN}\nold figures\n{gpu_report.END}{tail}")
    results = tmp_path / "gpu_results.json"
    results.write_text(json.dumps(gpu_like_results()))
    assert gpu_report.main([str(results), "--update", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith(head + gpu_report.BEGIN + "\n#### GPU run")
    assert text.endswith(gpu_report.END + tail) and "old figures" not in text
    assert gpu_report.main([str(results), "--update", str(doc)]) == 0
    assert doc.read_text() == text  # idempotent
    no_markers = tmp_path / "plain.md"
    no_markers.write_text("no block here\n")
    assert gpu_report.main([str(results), "--update", str(no_markers)]) == 1
    assert no_markers.read_text() == "no block here\n"


def test_benchmarks_md_has_the_block_the_report_fills():
    text = (REPO / "BENCHMARKS.md").read_text()
    assert text.count(gpu_report.BEGIN) == 1 and text.count(gpu_report.END) == 1
    assert text.index(gpu_report.BEGIN) < text.index(gpu_report.END)


def test_bad_arguments_and_files_are_one_line_and_non_zero(tmp_path, capsys):
    for argv in (["--budget-s", "5"], ["--steps", "bogus"], ["--budget-s", "x"]):
        with pytest.raises(SystemExit) as exc:
            gpu_run.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("gpu_run: error:")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert gpu_report.main([str(bad)]) == 1
    assert gpu_report.main([str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "missing.json" in err


def test_a_step_past_its_limit_is_recorded_and_the_next_step_runs(tmp_path, monkeypatch):
    """Subprocess steps as on the device: ``tests`` gets 1 s and is cut; ``machine`` runs."""
    monkeypatch.setattr(gpu_run, "PLAN", (("tests", 1), ("machine", 120)))
    out = tmp_path / "out"
    argv = ["--out", str(out), "--steps", "tests", "machine", "--budget-s", "200"]
    assert gpu_run.main(argv) == 1  # a step timed out
    res = json.loads((out / "gpu_results.json").read_text())
    assert res["steps"]["tests"]["status"] == "timed out"
    assert res["steps"]["machine"]["status"] == "ok"
    assert res["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "===== machine" in (out / "gpu_log.txt").read_text()
    assert "| tests | timed out |" in (out / "gpu_tables.md").read_text()


def test_split_wheels_are_joined_before_install(tmp_path):
    folder = tmp_path / "wheels"
    folder.mkdir()
    data = bytes(range(256)) * 100
    (folder / "pkg-1.0-py3-none-any.whl.part-aa").write_bytes(data[:10000])
    (folder / "pkg-1.0-py3-none-any.whl.part-ab").write_bytes(data[10000:])
    (folder / "small-1.0-py3-none-any.whl").write_bytes(b"whole")
    found = gpu_run.local_wheels([folder, tmp_path / "absent"], tmp_path / "join")
    assert sorted(p.name for p in found) == ["pkg-1.0-py3-none-any.whl",
                                             "small-1.0-py3-none-any.whl"]  # fmt: skip
    assert (tmp_path / "join" / "pkg-1.0-py3-none-any.whl").read_bytes() == data


def test_prepare_prints_the_one_device_call_and_the_tree_fits(tmp_path, capsys):
    assert gpu_prepare.main(["--skip-data", "--out", str(tmp_path / "carry")]) == 0
    out = capsys.readouterr().out
    call = json.loads(out.split("device run call: ")[1])
    assert call["command"].startswith("bash benchmarks/run_gpu.sh --budget-s ")
    budget = float(call["command"].split()[-1])
    assert budget + 30 <= call["timeout_s"] and 2 * call["timeout_s"] + 180 <= 900
    assert gpu_prepare.travelling_bytes([]) < gpu_prepare.LIMIT_MIB * 2**20


def test_the_shell_entry_passes_its_arguments_on():
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    cmd = ["bash", "benchmarks/run_gpu.sh", "--help"]
    proc = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0 and "--budget-s" in proc.stdout and "--dry-run" in proc.stdout
