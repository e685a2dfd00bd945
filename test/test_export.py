"""ONNX export of the lifter: checker clean, opset and metadata, dynamic N x K, same numbers."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

from hpe3d_ros.backends.base import BackendLifter
from hpe3d_ros.backends.export import OPSET, export_lifter, export_lifter_file, main
from hpe3d_ros.backends.onnxruntime_backend import OnnxRuntimeCore
from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.runtime import WEIGHTS_DIR


def keypoints(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """N plausible people: a jittered cluster each, some joints below threshold or NaN."""
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-0.4, 0.4, (n, 1, 2)) + rng.normal(0, 0.06, (n, 17, 2))
    conf = rng.uniform(0.05, 1.0, (n, 17))
    if n:
        kp[0, 3] = np.nan
    return kp.astype(np.float32), conf.astype(np.float32)


@pytest.fixture(scope="module")
def cvae():
    return load_lifter(WEIGHTS_DIR / "lifter_default.pt")


@pytest.fixture(scope="module")
def baseline():
    return load_lifter(WEIGHTS_DIR / "lifter_baseline.pt")


@pytest.fixture(scope="module")
def cvae_onnx(cvae, tmp_path_factory):
    return export_lifter(cvae, tmp_path_factory.mktemp("onnx") / "cvae.onnx")


@pytest.fixture(scope="module")
def ort_cvae(cvae, cvae_onnx):
    return BackendLifter(cvae.checkpoint, OnnxRuntimeCore(cvae_onnx))


def test_onnx_file_is_checker_clean_with_opset_and_metadata(cvae, cvae_onnx):
    model = onnx.load(str(cvae_onnx))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == OPSET == 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["hpe3d.arch"] == cvae.arch == "bodyvae"  # the shipped default
    assert meta["hpe3d.latent_dim"] == str(cvae.latent_dim)
    assert meta["hpe3d.joint_names"].split(",") == list(cvae.joint_names)
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}  # fmt: skip
    assert inputs == {
        "features": ["people", cvae.cfg.n_in],  # 72 + 18 noise-level features
        "noise": ["people", "hypotheses", cvae.latent_dim],
        "rotation": ["people", 3, 3],
    }
    out = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out == ["people", "hypotheses", 17, 3]


@pytest.mark.parametrize("n", [1, 5, 20])
@pytest.mark.parametrize("k", [1, 50, 200])
def test_onnxruntime_matches_torch_on_the_same_noise(cvae, ort_cvae, n, k):
    kp, conf = keypoints(n, seed=n * 1000 + k)
    noise = cvae.noise(n, k, seed=k)
    want = cvae.sample_with_noise(kp, conf, noise)
    got = ort_cvae.sample_with_noise(kp, conf, noise)
    assert got.shape == want.shape == (n, k, 17, 3)
    assert np.abs(got - want).max() <= 1e-4  # metres
    if k > 1:  # hypotheses differ: the noise is used
        assert np.ptp(got[:, :, 1:], axis=1).max() > 0.01


def test_seeded_sample_equals_torch_lifter(cvae, ort_cvae):
    kp, conf = keypoints(3)
    np.testing.assert_allclose(ort_cvae.sample(kp, conf, 10, 7), cvae.sample(kp, conf, 10, 7),
                               atol=1e-4)  # fmt: skip


@pytest.mark.parametrize(("n", "k"), [(0, 10), (3, 0), (0, 0)])
def test_empty_inputs_short_circuit(ort_cvae, n, k):
    kp, conf = keypoints(n)
    out = ort_cvae.sample(kp, conf, k, 0)
    assert out.shape == (n, k, 17, 3) and out.dtype == np.float32


def test_baseline_exports_without_noise_and_repeats_over_k(baseline, tmp_path):
    path = export_lifter(baseline, tmp_path / "base.onnx")
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["features", "rotation"]
    lifter = BackendLifter(baseline.checkpoint, OnnxRuntimeCore(path))
    kp, conf = keypoints(4)
    got, want = lifter.sample(kp, conf, 5, 0), baseline.sample(kp, conf, 5, 0)
    assert got.shape == (4, 5, 17, 3)
    assert np.abs(got - want).max() <= 1e-4
    np.testing.assert_array_equal(got[:, 0], got[:, 4])


def test_fp16_graph_stays_within_two_millimetres(cvae, tmp_path):
    """The float16 ONNX a strongly typed TensorRT build uses (here run by ONNX Runtime)."""
    path = export_lifter(cvae, tmp_path / "half.onnx", half=True)
    kp, conf = keypoints(5)
    noise = cvae.noise(5, 50, seed=0)
    got = BackendLifter(cvae.checkpoint, OnnxRuntimeCore(path)).sample_with_noise(kp, conf, noise)
    err = np.linalg.norm(got - cvae.sample_with_noise(kp, conf, noise), axis=-1).mean()
    assert 0 < err <= 2e-3


def test_cli_exports_once_and_reuses_the_file(tmp_path):
    weights = WEIGHTS_DIR / "lifter_baseline.pt"
    assert main(["--weights", str(weights), "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("lifter_baseline_*_op17.*.onnx")
    mtime = path.stat().st_mtime_ns
    assert export_lifter_file(weights, tmp_path) == path
    assert path.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*tmp*"))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_a_corrupt_cached_onnx_is_rebuilt_with_a_warning_naming_it(tmp_path, caplog, damage):
    weights = WEIGHTS_DIR / "lifter_baseline.pt"
    good = export_lifter_file(weights, tmp_path)
    data = bytearray(good.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 3]
    elif damage == "garbage":
        data = bytearray(b"not an onnx file" * 10)
    else:
        data[len(data) // 2] ^= 0x10  # one bit in the weights: still parses as ONNX
    good.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="hpe3d_ros.backends"):
        rebuilt = export_lifter_file(weights, tmp_path)
    assert f"cached ONNX {good} is corrupt" in caplog.text
    assert not good.exists() or good == rebuilt
    kp, conf = keypoints(2)
    base = load_lifter(weights)
    got = BackendLifter(base.checkpoint, OnnxRuntimeCore(rebuilt)).sample(kp, conf, 1, 0)
    np.testing.assert_allclose(got, base.sample(kp, conf, 1, 0), atol=1e-4)


def test_start_up_survives_a_corrupt_cache_and_names_the_file(tmp_path, caplog):
    from hpe3d_ros.backends import load_backend_lifter

    good = export_lifter_file(None, tmp_path)
    good.write_bytes(good.read_bytes()[:1000])
    with caplog.at_level(logging.INFO, logger="hpe3d_ros.backends"):
        lifter = load_backend_lifter(backend="onnxruntime", onnx_dir=tmp_path)
    assert lifter.backend == "onnxruntime-cpu"
    assert f"cached ONNX {good} is corrupt" in caplog.text


def test_an_unreadable_cache_folder_falls_back_and_names_it(tmp_path, caplog):
    from hpe3d_ros.backends import load_backend_lifter

    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.INFO, logger="hpe3d_ros.backends"):
        lifter = load_backend_lifter(backend="onnxruntime", onnx_dir=blocker)
    assert lifter.backend == "torch-cpu"
    assert f"cannot write the ONNX cache in {blocker}" in caplog.text


def test_an_interrupted_export_leaves_no_cache_entry(tmp_path, monkeypatch):
    import hpe3d_ros.backends.export as export

    def half_written(lifter, path, *args, **kwargs):
        Path(path).write_bytes(b"\x08\x07partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_lifter", half_written)
    with pytest.raises(KeyboardInterrupt):
        export.export_lifter_file(WEIGHTS_DIR / "lifter_baseline.pt", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_input_is_one_line_and_non_zero(tmp_path, capsys):
    assert main(["--weights", str(tmp_path / "missing.pt")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lifter weights not found" in err and "missing.pt" in err
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert main(["--weights", str(broken), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot export" in err and "broken.pt" in err
    for bad in (["--opset", "99"], ["--opset", "x"], ["--bogus"]):
        with pytest.raises(SystemExit) as exc:
            main(bad)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("hpe3d-export: error:")


def test_cli_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: build/export)" in out and "(default: 17)" in out
    assert "(default: the shipped lifter_default.pt)" in out


def test_cli_commands_print_no_traceback(tmp_path):
    """The installed commands, as a user runs them: one line on stderr, exit 1 or 2."""
    import subprocess
    import sys

    for module, args, code in [
        ("hpe3d_ros.backends.export", ["--weights", "missing.pt"], 1),
        ("hpe3d_ros.backends.tensorrt_engine", ["--weights", "missing.pt"], 1),
        ("hpe3d_ros.backends.tensorrt_engine", ["--sizes", "12"], 2),
        ("hpe3d_ros.backends.tensorrt_engine", ["--cache-dir", __file__], 1),
        ("hpe3d_ros.backends.tensorrt_engine", ["--precision", "int4"], 2),
        ("hpe3d_ros.backends.tensorrt_engine", ["--calibration", "missing.npz"], 1),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == code, (module, args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
