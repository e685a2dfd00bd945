"""Backend selection: names, fallback order, the log line, the Lifter API, engine cache keys."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from hpe3d_ros.backends import BackendUnavailable, candidates, load_backend_lifter
from hpe3d_ros.backends.detector import active_backend, session_opener
from hpe3d_ros.backends.tensorrt_engine import detector_profile, engine_path, lifter_profile
from hpe3d_ros.camera import CameraModel
from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.runtime import WEIGHTS_DIR
from hpe3d_ros.pipeline import Pipeline, PipelineConfig

RNG = np.random.default_rng(0)
KP = (RNG.uniform(-0.3, 0.3, (4, 1, 2)) + RNG.normal(0, 0.05, (4, 17, 2))).astype(np.float32)
CONF = RNG.uniform(0.3, 1.0, (4, 17)).astype(np.float32)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The torch-cpu backend sets torch's (process-wide) thread count: restore it."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def auto_lifter(onnx_dir):
    return load_backend_lifter(backend="auto", onnx_dir=onnx_dir)


def test_candidates_follow_the_documented_order():
    assert candidates("auto") == (
        "tensorrt",
        "onnxruntime-cuda",
        "torch-cuda",
        "onnxruntime-cpu",
        "torch-cpu",
    )
    assert candidates("torch")[0] == "torch-cpu"
    assert candidates("torch", "cuda")[0] == "torch-cuda"
    assert candidates("onnxruntime", "cuda")[:2] == ("onnxruntime-cuda", "tensorrt")
    assert len(set(candidates("tensorrt"))) == 5
    with pytest.raises(ValueError, match="unknown lifter backend"):
        candidates("tflite")


def test_auto_on_a_cpu_machine_logs_the_choice_and_every_skip(onnx_dir, caplog):
    with caplog.at_level(logging.INFO, logger="hpe3d_ros.backends"):
        lifter = load_backend_lifter(backend="auto", onnx_dir=onnx_dir)
    assert lifter.backend == "onnxruntime-cpu"
    (record,) = [r for r in caplog.records if "lifter backend" in r.getMessage()]
    msg = record.getMessage()
    assert record.levelno == logging.INFO
    assert "lifter backend onnxruntime-cpu (asked auto)" in msg
    for skipped in ("tensorrt:", "onnxruntime-cuda:", "torch-cuda:"):
        assert skipped in msg


def test_a_named_backend_that_cannot_run_falls_back_with_a_warning(onnx_dir, caplog):
    with caplog.at_level(logging.INFO, logger="hpe3d_ros.backends"):
        lifter = load_backend_lifter(backend="torch", device="cuda", onnx_dir=onnx_dir)
    assert lifter.backend == "onnxruntime-cpu"
    (record,) = [r for r in caplog.records if "lifter backend" in r.getMessage()]
    assert record.levelno == logging.WARNING and "torch-cuda: " in record.getMessage()


def test_nothing_runnable_raises_with_every_reason(monkeypatch):
    import hpe3d_ros.backends.select as select

    def unavailable(name, *a, **k):
        raise BackendUnavailable(f"{name} broken")

    monkeypatch.setattr(select, "make_core", unavailable)
    with pytest.raises(BackendUnavailable, match="torch-cpu broken"):
        load_backend_lifter(backend="auto")


def test_backend_lifter_has_the_lifter_api(auto_lifter):
    ref = load_lifter()
    assert auto_lifter.joint_names == ref.joint_names
    assert auto_lifter.latent_dim == ref.latent_dim > 0
    assert auto_lifter.latent_dof == ref.latent_dof
    assert auto_lifter.arch == ref.arch == "bodyvae"  # delegated to the wrapped Lifter
    out = auto_lifter.sample(KP, CONF, 20, seed=3)
    assert out.shape == (4, 20, 17, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, auto_lifter.sample(KP, CONF, 20, seed=3))
    assert np.abs(out - auto_lifter.sample(KP, CONF, 20, seed=4)).max() > 1e-3
    np.testing.assert_allclose(out, ref.sample(KP, CONF, 20, seed=3), atol=1e-4)
    np.testing.assert_array_equal(out[:, :, 0], 0.0)  # root-relative
    assert auto_lifter.predict_mean(KP, CONF, k=20, seed=3).shape == (4, 17, 3)
    with pytest.raises(ValueError, match="noise must be"):
        auto_lifter.sample_with_noise(KP, CONF, np.zeros((4, 2, 3), np.float32))
    with pytest.raises(ValueError, match="noise is for 3 people"):
        auto_lifter.sample_with_noise(KP, CONF, np.zeros((3, 2, ref.latent_dim), np.float32))


def test_torch_backend_is_the_same_numbers(onnx_dir):
    lifter = load_backend_lifter(WEIGHTS_DIR / "lifter_baseline.pt", "torch", onnx_dir=onnx_dir)
    assert lifter.backend == "torch-cpu" and lifter.latent_dim == 0
    want = load_lifter(WEIGHTS_DIR / "lifter_baseline.pt").sample(KP, CONF, 3, 0)
    np.testing.assert_allclose(lifter.sample(KP, CONF, 3, 0), want, atol=1e-5)


def test_pipeline_runs_unchanged_on_a_backend_lifter(auto_lifter):
    camera = CameraModel.from_fov(1280, 720, 90.0)
    kp_px = camera.normalized_to_pixel(KP.astype(np.float64))
    cfg = PipelineConfig(num_hypotheses=10)
    ref = Pipeline(None, load_lifter(), cfg).lift_keypoints(kp_px, CONF, camera, seed=5)
    got = Pipeline(None, auto_lifter, cfg).lift_keypoints(kp_px, CONF, camera, seed=5)
    assert got.lifted.all()
    np.testing.assert_allclose(got.hypotheses_m, ref.hypotheses_m, atol=1e-3)
    np.testing.assert_allclose(got.root_m, ref.root_m, atol=1e-3)


def test_engine_cache_key_changes_with_gpu_tensorrt_model_and_profile(tmp_path):
    key = {
        "model": "lifter_default_26f4_op17.onnx",
        "model_sha256": "ab" * 32,
        "gpu": "NVIDIA H100 80GB HBM3",
        "tensorrt": "tensorrt-10.13.0",
        "precision": "fp16",
        "profile": {"features": [[1, 72], [5, 72], [20, 72]]},
    }
    path = engine_path(key, tmp_path)
    assert path.parent == tmp_path and path.suffix == ".engine"
    assert "NVIDIA-H100-80GB-HBM3" in path.name and "tensorrt-10.13.0-fp16" in path.name
    assert engine_path(dict(key), tmp_path) == path
    for field, value in [
        ("model_sha256", "cd" * 32),
        ("gpu", "Orin"),
        ("tensorrt", "tensorrt-8.6.2"),
        ("precision", "int8"),
        ("profile", {"features": [[1, 72], [5, 72], [40, 72]]}),
    ]:
        assert engine_path({**key, field: value}, tmp_path) != path


def test_profiles_cover_1_to_20_people_and_1_to_200_hypotheses():
    prof = lifter_profile(16)
    assert prof["noise"] == ((1, 1, 16), (5, 50, 16), (20, 200, 16))
    assert prof["features"][2] == (20, 72) and "noise" not in lifter_profile(0)
    det = detector_profile([(416, 512), (512, 512), (512, 384)])
    assert det["input"] == ((1, 384, 416, 3), (1, 512, 416, 3), (1, 512, 512, 3))


def test_a_detector_given_an_unavailable_backend_runs_on_the_cpu(caplog):
    from hpe3d_ros.detection import load_detector

    with caplog.at_level(logging.WARNING, logger="hpe3d_ros.backends"):
        det = load_detector(tiles=(1, 1), input_size=256,
                            opener=session_opener("onnxruntime-cuda", 1))  # fmt: skip
    assert active_backend(det) == "onnxruntime-cpu"
    assert "onnxruntime-cuda unavailable" in caplog.text
    assert len(det.detect(np.zeros((48, 64, 3), np.uint8))) == 0  # and it runs


def test_missing_tensorrt_says_which_imports_failed():
    from hpe3d_ros.backends.tensorrt_backend import import_tensorrt

    with pytest.raises(BackendUnavailable, match="no_such_trt: ModuleNotFoundError"):
        import_tensorrt(("no_such_trt",))


def test_torch_cpu_threads_stay_at_one_unless_openmp_waits_passively(monkeypatch):
    from hpe3d_ros.backends.select import cpu_threads_for_torch

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert cpu_threads_for_torch(2) == 1
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert cpu_threads_for_torch(2) == 2


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_the_lifters_torch_threads_are_set_on_every_cpu_backend(monkeypatch, backend):
    """The temporal model runs in torch whatever the backend: with the process's default
    thread count (cores here, 1 in a Ray task) replay's figures differed between one machine
    and the fleet in the 7th digit (test_fleet, run on its own)."""
    import torch

    from hpe3d_ros.backends import load_backend_lifter

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        lifter = load_backend_lifter(backend=backend, threads=2)
        assert lifter.backend == f"{backend}-cpu"
        assert torch.get_num_threads() == 1  # cpu_threads_for_torch(2) without passive waits
    finally:
        torch.set_num_threads(before)


def test_engine_cache_is_content_checked_and_rebuilt(tmp_path, monkeypatch, caplog):
    """The cache logic of ``ensure_engine`` without a GPU: the builder is faked, not the cache."""
    import types

    import hpe3d_ros.backends.tensorrt_engine as te

    fake_trt = types.SimpleNamespace(
        __name__="tensorrt", __version__="10.99.0", BuilderFlag=types.SimpleNamespace(FP16=1)
    )
    builds = []

    def build(onnx_path, profile, precision, calibration=None, trt=None):
        builds.append(precision)
        return b"serialized engine %d" % len(builds)

    monkeypatch.setattr(te, "import_tensorrt", lambda *a: fake_trt)
    monkeypatch.setattr(te, "cuda_device_name", lambda: "NVIDIA H200")
    monkeypatch.setattr(te, "build_engine", build)
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(b"model bytes")
    first = te.ensure_engine(onnx_path, lifter_profile(16), "fp16", tmp_path)
    assert first.read_bytes() == b"serialized engine 1" and builds == ["fp16"]
    assert json.loads(first.with_suffix(".json").read_text())["gpu"] == "NVIDIA H200"
    assert te.ensure_engine(onnx_path, lifter_profile(16), "fp16", tmp_path) == first
    assert builds == ["fp16"]  # from the cache
    first.write_bytes(b"serialized")  # truncated
    with caplog.at_level(logging.WARNING, logger="hpe3d_ros.backends"):
        second = te.ensure_engine(onnx_path, lifter_profile(16), "fp16", tmp_path)
    assert f"cached TensorRT engine {first} is corrupt" in caplog.text
    assert len(builds) == 2 and second.read_bytes() == b"serialized engine 2"
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".engine", ".json", ".onnx"]


def test_a_detector_session_opener_falls_back_to_the_cpu_with_one_warning(caplog):
    from hpe3d_ros.backends.detector import session_backend, session_opener
    from hpe3d_ros.backends.tensorrt_backend import TrtSession
    from hpe3d_ros.detection.movenet_multipose import MULTIPOSE_ONNX

    with caplog.at_level(logging.WARNING, logger="hpe3d_ros.backends"):
        session = session_opener("onnxruntime-cuda", threads=1)(MULTIPOSE_ONNX)
    assert session_backend(session) == "onnxruntime-cpu"
    assert session.get_inputs()[0].name  # a real session
    (record,) = [r for r in caplog.records if "detector backend" in r.getMessage()]
    assert "onnxruntime-cuda unavailable" in record.getMessage()
    assert MULTIPOSE_ONNX.name in record.getMessage()
    with pytest.raises(ValueError, match="unknown detector backend"):
        session_opener("tflite")
    assert session_backend(TrtSession.__new__(TrtSession)) == "tensorrt"  # by type, not name


def test_backend_lifter_is_built_from_the_checkpoint_not_a_copied_dict():
    from hpe3d_ros.backends import BackendLifter
    from hpe3d_ros.backends.torch_backend import TorchCore

    base = load_lifter()
    lifter = BackendLifter(base.checkpoint, TorchCore(base))
    assert lifter.model is not base.model and lifter.backend == "torch-cpu"
    assert "lifter" not in vars(lifter)  # no wrapped Lifter whose state it mirrors
    np.testing.assert_allclose(
        lifter.sample(KP, CONF, 4, seed=1), base.sample(KP, CONF, 4, seed=1), atol=1e-5
    )


def test_int8_calibration_reads_its_keypoints_from_a_file(tmp_path):
    from hpe3d_ros.backends.int8_calibration import lifter_calibration_inputs

    lifter = load_lifter()
    path = tmp_path / "calibration.npz"
    np.savez(path, kp_norm=KP, conf=CONF)
    got = lifter_calibration_inputs(lifter, path, batches=3, people=2, hyps=4)
    assert got["features"].shape == (3, 2, lifter.model.cfg.n_in)
    assert got["rotation"].shape == (3, 2, 3, 3)
    assert got["noise"].shape == (3, 2, 4, lifter.latent_dim)
    feats = lifter.features(KP, CONF)[0]
    # every row is one of the file's people: float32 features of another batch size differ
    # in the last digits only (BLAS kernels vary with the CPU: 2e-6 measured), people by far more
    apart = np.abs(feats[:, None] - feats[None]).max(axis=-1)
    assert apart[~np.eye(len(feats), dtype=bool)].min() > 1e-2
    for row in got["features"].reshape(6, -1):
        assert np.abs(feats - row).max(axis=1).min() < 1e-5
    bad = tmp_path / "bad.npz"
    np.savez(bad, kp=KP)
    with pytest.raises(ValueError, match="needs arrays kp_norm"):
        lifter_calibration_inputs(lifter, bad)


def test_product_code_imports_nothing_from_training():
    import ast

    from test.conftest import REPO

    for path in (REPO / "hpe3d_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "training" for n in names), path


def test_a_damaged_engine_key_does_not_stop_the_engine_loading(tmp_path):
    from hpe3d_ros.backends.tensorrt_backend import FLAVOURS, _builder_of

    engine = tmp_path / "lifter.0123456789abcdef.engine"
    assert _builder_of(engine) == FLAVOURS  # no key
    engine.with_suffix(".json").write_text('{"tensorrt": "tensorrt_rtx_bindings-1.7.1"}')
    assert _builder_of(engine)[0] == "tensorrt_rtx_bindings"
    assert set(_builder_of(engine)) == set(FLAVOURS)
    for damaged in ('{"tensorrt": ', "[]", '{"gpu": "x"}', '{"tensorrt": 3}'):
        engine.with_suffix(".json").write_text(damaged)
        assert _builder_of(engine) == FLAVOURS, damaged
