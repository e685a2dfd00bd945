"""ONNX export of the lifter: checker clean, opset and metadata, dynamic N x K, same numbers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from hpe3d_ros.backends.base import BackendLifter
from hpe3d_ros.backends.onnxruntime_backend import OnnxRuntimeCore
from hpe3d_ros.export import OPSET, export_lifter, export_lifter_file, main
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
    return BackendLifter(cvae, OnnxRuntimeCore(cvae_onnx))


def test_onnx_file_is_checker_clean_with_opset_and_metadata(cvae, cvae_onnx):
    model = onnx.load(str(cvae_onnx))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == OPSET == 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["hpe3d.arch"] == "cvae" and meta["hpe3d.latent_dim"] == str(cvae.latent_dim)
    assert meta["hpe3d.joint_names"].split(",") == list(cvae.joint_names)
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}  # fmt: skip
    assert inputs == {
        "features": ["people", 72],
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
    lifter = BackendLifter(baseline, OnnxRuntimeCore(path))
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
    got = BackendLifter(cvae, OnnxRuntimeCore(path)).sample_with_noise(kp, conf, noise)
    err = np.linalg.norm(got - cvae.sample_with_noise(kp, conf, noise), axis=-1).mean()
    assert 0 < err <= 2e-3


def test_cli_exports_once_and_reuses_the_file(tmp_path):
    weights = WEIGHTS_DIR / "lifter_baseline.pt"
    assert main(["--weights", str(weights), "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("lifter_baseline_*_op17.onnx")
    mtime = path.stat().st_mtime_ns
    assert export_lifter_file(weights, tmp_path) == path
    assert path.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.tmp"))
