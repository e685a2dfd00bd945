import numpy as np
import pytest

from hpe3d_ros import skeleton as sk


def test_h36m_tree_is_consistent():
    assert len(sk.H36M_JOINT_NAMES) == len(sk.H36M_PARENTS) == 17
    assert sk.H36M_PARENTS[sk.H36M_ROOT] == -1
    # Every parent precedes its child, so forward passes over the tree are one loop.
    assert all(p < c for c, p in enumerate(sk.H36M_PARENTS) if p >= 0)
    assert len(sk.H36M_BONES) == 16
    for left, right in zip(sk.H36M_LEFT, sk.H36M_RIGHT, strict=True):
        assert sk.H36M_JOINT_NAMES[left].replace("left", "right") == sk.H36M_JOINT_NAMES[right]


def test_coco_left_right_names():
    for left, right in zip(sk.COCO_LEFT, sk.COCO_RIGHT, strict=True):
        assert sk.COCO_JOINT_NAMES[left].startswith("left_")
        assert sk.COCO_JOINT_NAMES[right] == sk.COCO_JOINT_NAMES[left].replace("left", "right")


def test_flip_is_an_involution():
    assert np.array_equal(sk.H36M_FLIP[sk.H36M_FLIP], np.arange(17))
    assert sk.H36M_FLIP[1] == 4 and sk.H36M_FLIP[16] == 13 and sk.H36M_FLIP[0] == 0


def test_coco_to_h36m_rows_sum_to_one():
    np.testing.assert_allclose(sk.COCO_TO_H36M.sum(axis=1), 1.0)


def _coco_person() -> tuple[np.ndarray, np.ndarray]:
    kp = np.zeros((17, 2))
    c = {n: i for i, n in enumerate(sk.COCO_JOINT_NAMES)}
    kp[c["left_eye"]], kp[c["right_eye"]] = (110, 40), (90, 40)
    kp[c["left_shoulder"]], kp[c["right_shoulder"]] = (130, 80), (70, 80)
    kp[c["left_hip"]], kp[c["right_hip"]] = (120, 200), (80, 200)
    kp[c["left_knee"]], kp[c["right_knee"]] = (120, 260), (80, 260)
    conf = np.linspace(0.5, 0.9, 17)
    return kp, conf


def test_coco_to_h36m_virtual_joints_by_hand():
    kp, conf = _coco_person()
    h, hc = sk.coco_to_h36m(kp, conf)
    j = {n: i for i, n in enumerate(sk.H36M_JOINT_NAMES)}
    np.testing.assert_allclose(h[j["pelvis"]], (100, 200))
    np.testing.assert_allclose(h[j["thorax"]], (100, 80))
    np.testing.assert_allclose(h[j["spine"]], (100, 140))
    np.testing.assert_allclose(h[j["neck_nose"]], (100, 40))
    np.testing.assert_allclose(h[j["head_top"]], (100, 20))  # eyes + 0.5 (eyes - thorax)
    np.testing.assert_allclose(h[j["left_knee"]], (120, 260))
    c = {n: i for i, n in enumerate(sk.COCO_JOINT_NAMES)}
    assert hc[j["pelvis"]] == pytest.approx(min(conf[c["left_hip"]], conf[c["right_hip"]]))
    assert hc[j["left_knee"]] == pytest.approx(conf[c["left_knee"]])


def test_coco_to_h36m_batched_and_nan_stays_local():
    kp, conf = _coco_person()
    kp[sk.COCO_JOINT_NAMES.index("right_ankle")] = np.nan
    h, _ = sk.coco_to_h36m(np.stack([kp, kp]), np.stack([conf, conf]))
    assert h.shape == (2, 17, 2)
    bad = ~np.isfinite(h).all(axis=-1)
    assert bad[:, sk.H36M_JOINT_NAMES.index("right_ankle")].all()
    assert bad.sum() == 2  # only the right ankle of each person


def test_coco_to_h36m_rejects_wrong_joint_count():
    with pytest.raises(ValueError, match="17 COCO joints"):
        sk.coco_to_h36m(np.zeros((18, 2)), np.zeros(18))


def test_mirror_h36m_swaps_sides_and_negates_x_in_2d_and_3d():
    pts = np.random.default_rng(0).normal(size=(2, 17, 3)).astype(np.float32)
    m = sk.mirror_h36m(pts)
    assert m.dtype == np.float32 and m is not pts
    assert np.array_equal(m[:, sk.H36M_FLIP], pts * np.array([-1, 1, 1], np.float32))
    assert np.array_equal(sk.mirror_h36m(m), pts)  # its own inverse
    assert np.array_equal(sk.mirror_h36m(pts[..., :2]), m[..., :2])
