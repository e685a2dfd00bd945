"""Hand-computed cases for hpe3d_ros.metrics."""

from __future__ import annotations

import numpy as np
import pytest

from hpe3d_ros import metrics


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: rotation matrix about a unit axis."""
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def test_mpjpe_hand_computed() -> None:
    gt = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    pred = np.zeros((2, 3))
    assert metrics.mpjpe(pred, gt) == pytest.approx(3.0)  # (5 + 1) / 2
    batch = np.stack([gt, gt + 1.0])
    out = metrics.mpjpe(np.zeros_like(batch), batch)
    assert out.shape == (2,)
    assert out[1] == pytest.approx((np.sqrt(16 + 25 + 1) + np.sqrt(1 + 1 + 4)) / 2)


def test_p_mpjpe_removes_similarity_transform() -> None:
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(5, 17, 3))
    rot = _rotation([0.3, -1.0, 0.5], 2.1)
    pred = 0.7 * gt @ rot.T + np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(metrics.p_mpjpe(pred, gt), 0.0, atol=1e-9)
    np.testing.assert_allclose(metrics.p_mpjpe(gt, pred), 0.0, atol=1e-9)
    assert (metrics.mpjpe(pred, gt) > 0.5).all()
    assert metrics.p_mpjpe(gt, gt) == pytest.approx(0.0, abs=1e-12)


def test_p_mpjpe_does_not_undo_a_mirror_image() -> None:
    # A non-planar pose and its reflection: a rotation cannot align them.
    gt = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=float)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert metrics.p_mpjpe(mirrored, gt) > 0.1


def test_p_mpjpe_hand_computed_translation_only_residual() -> None:
    # Two joints: any pair of points aligns exactly under a similarity transform.
    gt = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    pred = np.array([[5.0, 5.0, 5.0], [5.0, 7.0, 5.0]])
    assert metrics.p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-12)


def test_n_mpjpe_hand_computed() -> None:
    gt = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    pred = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # scale = <pred, gt> / <pred, pred> = 2 / 4 -> pred' = [[1,0,0],[0,0,0]] -> errors 0 and 1
    assert metrics.n_mpjpe(pred, gt) == pytest.approx(0.5)
    assert metrics.n_mpjpe(3.0 * gt, gt) == pytest.approx(0.0)


def test_mpjve_hand_computed() -> None:
    gt = np.zeros((4, 2, 3))
    pred = np.zeros((4, 2, 3))
    pred[:, :, 0] = np.arange(4)[:, None]  # moves 1 unit per frame along x
    assert metrics.mpjve(pred, gt) == pytest.approx(1.0)
    assert metrics.mpjve(gt + 5.0, gt) == pytest.approx(0.0)  # a constant offset has no velocity
    with pytest.raises(ValueError):
        metrics.mpjve(pred[:1], gt[:1])


def test_best_of_k_and_mean_of_k() -> None:
    gt = np.zeros((1, 2, 3))
    dx = np.array([1.0, 0.0, 0.0])
    one_sided = np.stack([gt + dx, gt + 3 * dx], axis=1)  # (1, K=2, 2, 3)
    assert metrics.best_of_k_mpjpe(one_sided, gt) == pytest.approx([1.0])
    assert metrics.mean_of_k_mpjpe(one_sided, gt) == pytest.approx([2.0])
    # Symmetric hypotheses: their mean is exact while each one is off by 1.
    symmetric = np.stack([gt + dx, gt - dx], axis=1)
    assert metrics.best_of_k_mpjpe(symmetric, gt) == pytest.approx([1.0])
    assert metrics.mean_of_k_mpjpe(symmetric, gt) == pytest.approx([0.0])
    # Adding hypotheses can only lower best-of-K.
    rng = np.random.default_rng(1)
    hyps = rng.normal(size=(10, 20, 17, 3))
    gt10 = rng.normal(size=(10, 17, 3))
    assert (
        metrics.best_of_k_mpjpe(hyps, gt10) <= metrics.best_of_k_mpjpe(hyps[:, :5], gt10) + 1e-12
    ).all()


def test_pck3d_and_auc() -> None:
    gt = np.zeros((2, 3))
    pred = np.array([[0.1, 0.0, 0.0], [0.0, 0.2, 0.0]])
    assert metrics.pck3d(pred, gt) == pytest.approx(0.5)
    assert metrics.pck3d(pred, gt, threshold=0.25) == pytest.approx(1.0)
    assert metrics.auc_pck3d(gt, gt) == pytest.approx(1.0)
    # 72.5 mm: within the 16 thresholds 75, 80, ..., 150 mm of 31 -> 16 / 31
    pred = np.array([[0.0725, 0.0, 0.0], [0.0, 0.0, 0.0725]])
    assert metrics.auc_pck3d(pred, gt) == pytest.approx(16 / 31)
    assert metrics.auc_pck3d(pred, gt, thresholds=[0.05, 0.1]) == pytest.approx(0.5)


def test_coverage_of_a_known_gaussian_matches_level() -> None:
    rng = np.random.default_rng(2)
    n, k, j = 1500, 100, 3
    centres = rng.normal(size=(n, 1, j, 3))
    scales = np.array([0.01, 0.1, 1.0])[None, None, :, None]  # different spread per joint
    hyps = centres + scales * rng.normal(size=(n, k, j, 3))
    gt = centres[:, 0] + scales[:, 0] * rng.normal(size=(n, j, 3))
    for level in (0.5, 0.9):
        cov = metrics.coverage(hyps, gt, level=level)
        assert cov.shape == (j,)
        np.testing.assert_allclose(cov, level, atol=0.04)
    # Over-confident hypotheses (10x too narrow) cover far less.
    narrow = centres + 0.1 * scales * rng.normal(size=(n, k, j, 3))
    assert (metrics.coverage(narrow, gt, level=0.9) < 0.2).all()


def test_per_group_table() -> None:
    rows = metrics.per_group_table(np.array([1.0, 2.0, 3.0, 6.0]), np.array(["b", "a", "b", "a"]))
    assert rows == [
        {"group": "a", "count": 2, "mean": 4.0},
        {"group": "b", "count": 2, "mean": 2.0},
        {"group": "all", "count": 4, "mean": 3.0},
    ]
    rows = metrics.per_group_table(np.array([1.0, 3.0]), np.array([8, 8], dtype=np.int16))
    assert rows[0] == {"group": 8, "count": 2, "mean": 2.0}
    assert isinstance(rows[0]["group"], int)


@pytest.mark.parametrize(
    "fn", [metrics.mpjpe, metrics.p_mpjpe, metrics.n_mpjpe, metrics.pck3d, metrics.auc_pck3d]
)
def test_pair_metrics_reject_mismatched_shapes(fn) -> None:
    with pytest.raises(ValueError):
        fn(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))
    with pytest.raises(ValueError):
        fn(np.zeros((17, 2)), np.zeros((17, 2)))


@pytest.mark.parametrize(
    "fn", [metrics.best_of_k_mpjpe, metrics.mean_of_k_mpjpe, metrics.coverage]
)
def test_hypothesis_metrics_reject_mismatched_shapes(fn) -> None:
    with pytest.raises(ValueError):
        fn(np.zeros((4, 5, 17, 3)), np.zeros((3, 17, 3)))
    with pytest.raises(ValueError):
        fn(np.zeros((4, 17, 3)), np.zeros((4, 17, 3)))
    with pytest.raises(ValueError):
        metrics.per_group_table(np.zeros(3), np.zeros(4))
