"""TensorRT: FP16 engine vs PyTorch <= 2 mm mean joint difference, cache reuse, detector engine.

The engine runs need TensorRT and a CUDA device (the GPU run, ``benchmarks/gpu_run.py``);
elsewhere they skip with the reason. Without a GPU, TensorRT-RTX's builder (pinned in
requirements.lock) still compiles every engine ahead of time: those tests run in ``make test``.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpe3d_ros.backends.base import BackendLifter, BackendUnavailable


def _trt_reason() -> str | None:
    from hpe3d_ros.backends.tensorrt_backend import BUILDERS, cuda_device_name, import_tensorrt

    try:
        import_tensorrt(BUILDERS)
        cuda_device_name()
    except BackendUnavailable as exc:
        return str(exc)
    return None


REASON = _trt_reason()
needs_trt = pytest.mark.skipif(REASON is not None, reason=f"TensorRT cannot run: {REASON}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


@needs_trt
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_engine_matches_torch(cache, precision):
    from hpe3d_ros.backends.tensorrt_backend import TensorRTCore
    from hpe3d_ros.backends.tensorrt_engine import lifter_engine
    from hpe3d_ros.lifting import load_lifter

    lifter = load_lifter()
    engine = lifter_engine(None, precision, cache, cache / "onnx")
    trt_lifter = BackendLifter(lifter.checkpoint, TensorRTCore(engine, precision))
    rng = np.random.default_rng(0)
    for n, k in [(1, 1), (5, 50), (20, 200)]:
        kp = rng.uniform(-0.3, 0.3, (n, 1, 2)) + rng.normal(0, 0.05, (n, 17, 2))
        conf = rng.uniform(0.3, 1.0, (n, 17))
        noise = lifter.noise(n, k, seed=n * 1000 + k)
        got = trt_lifter.sample_with_noise(kp, conf, noise)
        want = lifter.sample_with_noise(kp, conf, noise)
        err = np.linalg.norm(got - want, axis=-1).mean()
        assert err <= (2e-3 if precision == "fp16" else 1e-4), (n, k, err)


@needs_trt
def test_second_request_comes_from_the_cache(cache):
    from hpe3d_ros.backends.tensorrt_engine import lifter_engine

    first = lifter_engine(None, "fp16", cache, cache / "onnx")
    mtime = first.stat().st_mtime_ns
    assert lifter_engine(None, "fp16", cache, cache / "onnx") == first
    assert first.stat().st_mtime_ns == mtime
    assert first.with_suffix(".json").is_file()


@needs_trt
def test_detector_engine_finds_the_same_people(cache, monkeypatch):
    import cv2

    from hpe3d_ros.backends.detector import session_opener
    from hpe3d_ros.detection import load_detector
    from test.conftest import TEST_DATA

    monkeypatch.setenv("HPE3D_ENGINE_CACHE", str(cache))
    image = cv2.cvtColor(cv2.imread(str(TEST_DATA / "vtest_0040.jpg")), cv2.COLOR_BGR2RGB)
    want = load_detector().detect(image)
    det = load_detector(opener=session_opener("tensorrt", precision="fp32"))
    assert type(det.session).__name__ == "TrtSession"
    got = det.detect(image)
    assert len(got) == len(want)


def _builder_reason() -> str | None:
    from hpe3d_ros.backends.tensorrt_backend import BUILDERS, import_tensorrt

    try:
        import_tensorrt(BUILDERS)
    except BackendUnavailable as exc:
        return str(exc)
    return None


NO_GPU_BUILDER = [
    pytest.mark.skipif(REASON is None, reason="a CUDA device is present: the tests above build"),
    pytest.mark.skipif(_builder_reason() is not None, reason=f"no builder: {_builder_reason()}"),
]


@pytest.mark.parametrize("model", ["lifter_default", "lifter_baseline", "multipose"])
def test_a_builder_without_gpu_still_builds_every_engine(tmp_path, model):
    """TensorRT-RTX (pinned in requirements.lock) compiles ahead of time without a GPU; the
    kernels come at the first run on the GPU. Every ONNX file parses and builds for its
    optimisation profile: the float16 lifter graph (strongly typed FP16), the float32
    baseline graph (no noise input) and MoveNet MultiPose with its dynamic input sizes."""
    for mark in NO_GPU_BUILDER:
        if mark.args[0]:
            pytest.skip(mark.kwargs["reason"])
    from hpe3d_ros.backends.detector import DEFAULT_SIZES
    from hpe3d_ros.backends.export import export_lifter
    from hpe3d_ros.backends.tensorrt_engine import build_engine, detector_profile, lifter_profile
    from hpe3d_ros.detection.movenet_multipose import MULTIPOSE_ONNX
    from hpe3d_ros.lifting import load_lifter
    from hpe3d_ros.lifting.runtime import WEIGHTS_DIR

    if model == "multipose":
        onnx_path, profile, precision = MULTIPOSE_ONNX, detector_profile(DEFAULT_SIZES), "fp32"
    else:
        lifter = load_lifter(WEIGHTS_DIR / f"{model}.pt")
        half = model == "lifter_default"
        onnx_path = export_lifter(lifter, tmp_path / f"{model}.onnx", half=half)
        profile = lifter_profile(lifter.latent_dim, n_in=lifter.model.cfg.n_in)
        precision = "fp16" if half else "fp32"
    assert len(build_engine(onnx_path, profile, precision)) > 1_000_000


def test_int8_without_a_calibrator_api_says_so():
    """TensorRT 11 and TensorRT-RTX have no implicit INT8 calibrator: one clear reason."""
    for mark in NO_GPU_BUILDER[1:]:
        if mark.args[0]:
            pytest.skip(mark.kwargs["reason"])
    from hpe3d_ros.backends.tensorrt_backend import BUILDERS, import_tensorrt
    from hpe3d_ros.backends.tensorrt_engine import build_engine, has_precision_flags

    trt = import_tensorrt(BUILDERS)
    if has_precision_flags(trt) and hasattr(trt, "IInt8EntropyCalibrator2"):
        pytest.skip(f"{trt.__name__} {trt.__version__} has the calibrator (GPU tests build it)")
    with pytest.raises(BackendUnavailable, match="no INT8 calibrator API"):
        build_engine("unused.onnx", {}, "int8", trt=trt)
