"""One-body ensembles of lifters (:mod:`hpe3d_ros.lifting.ensemble`)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.ensemble import EnsembleLifter, interleave_order, split_k
from hpe3d_ros.lifting.runtime import DEFAULT_WEIGHTS, Lifter
from training.bodies import bone_lengths

BASELINE = DEFAULT_WEIGHTS.with_name("lifter_baseline.pt")


@pytest.fixture(scope="module")
def first() -> Lifter:
    lifter = load_lifter()
    lifter.evidence = None  # the ensemble draws plainly (its docstring); so does its member
    return lifter


@pytest.fixture(scope="module")
def second() -> Lifter:
    """The shipped network with its bone-length head and decoder moved: another member."""
    ck = copy.deepcopy(torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True))
    ck.pop("temporal", None)
    sd = ck["state_dict"]
    sd["length_head.bias"] = sd["length_head.bias"] + 0.4
    gen = torch.Generator().manual_seed(3)
    for key in [k for k in sd if k.startswith("decoder.") and k.endswith("weight")]:
        sd[key] = sd[key] + 0.05 * sd[key].float().std() * torch.randn(
            sd[key].shape, generator=gen
        ).to(sd[key].dtype)
    return Lifter(ck)


@pytest.fixture(scope="module")
def people():
    """Five standing people, synthetic normalised 2D keypoints (H36M-17 order)."""
    rng = np.random.default_rng(0)
    base = np.array(
        [[0, 0], [0.1, 0], [0.1, 0.45], [0.1, 0.9], [-0.1, 0], [-0.1, 0.45], [-0.1, 0.9],
         [0, -0.25], [0, -0.5], [0, -0.6], [0, -0.72], [-0.2, -0.45], [-0.3, -0.2],
         [-0.3, 0.05], [0.2, -0.45], [0.3, -0.2], [0.3, 0.05]]
    )  # fmt: skip
    kp = 0.08 * base[None] + rng.normal(0, 0.002, (5, 17, 2)) + np.array([0.05, 0.02])
    return kp.astype(np.float32), np.full((5, 17), 0.9, np.float32)


def test_k_is_split_evenly_and_interleaved():
    assert split_k(200, 2) == [100, 100]
    assert split_k(7, 3) == [3, 2, 2]
    assert split_k(1, 2) == [1, 0]
    order = interleave_order([3, 2])  # member 0: positions 0-2, member 1: 3-4
    assert order.tolist() == [0, 3, 1, 4, 2]
    with pytest.raises(ValueError):
        split_k(3, 0)


def test_each_member_draws_as_it_would_alone_with_the_same_body(first, people):
    """Two copies of one lifter: every even hypothesis is the lifter's own draw."""
    kp, conf = people
    ens = EnsembleLifter([first, first])
    h = ens.sample(kp, conf, 10, seed=4)
    assert h.shape == (5, 10, 17, 3) and h.dtype == np.float32
    np.testing.assert_allclose(h[:, 0::2], first.sample(kp, conf, 5, seed=4), atol=1e-5)
    np.testing.assert_allclose(h[:, 1::2], first.sample(kp, conf, 5, seed=4 + 7919), atol=1e-5)
    np.testing.assert_array_equal(h, ens.sample(kp, conf, 10, seed=4))  # reproducible


def test_different_members_share_one_skeleton_per_person(first, second, people):
    kp, conf = people
    one, two = first.sample(kp, conf, 4, seed=1), second.sample(kp, conf, 4, seed=1)
    l1, l2 = bone_lengths(one)[:, 0], bone_lengths(two)[:, 0]
    assert np.abs(l1 - l2).max() > 0.01  # the members disagree on the body
    h = EnsembleLifter([first, second]).sample(kp, conf, 40, seed=1)
    lengths = bone_lengths(h)  # (N, K, 16)
    assert lengths.std(axis=1).max() < 1e-4  # one body across all K
    np.testing.assert_allclose(lengths[:, 0], np.sqrt(l1 * l2), rtol=1e-3)
    assert np.isfinite(h).all() and np.abs(h[:, :, 0]).max() == 0.0  # root at the origin


def test_spread_scales_the_latent_noise(first, second, people):
    kp, conf = people
    narrow = EnsembleLifter([first, second], spread=0.2).sample(kp, conf, 60, seed=2)
    wide = EnsembleLifter([first, second], spread=1.0).sample(kp, conf, 60, seed=2)

    def within_member(h):
        return np.linalg.norm(h[:, 0::2] - h[:, 0::2].mean(1, keepdims=True), axis=-1).mean()

    assert within_member(narrow) < 0.5 * within_member(wide)


def test_empty_inputs_and_bad_members(first, people):
    kp, conf = people
    ens = EnsembleLifter([first, first])
    assert ens.sample(kp[:0], conf[:0], 8, seed=0).shape == (0, 8, 17, 3)
    assert ens.sample(kp, conf, 0, seed=0).shape == (5, 0, 17, 3)
    with pytest.raises(ValueError, match="at least 2"):
        EnsembleLifter([first])
    with pytest.raises(ValueError, match="one-body"):
        EnsembleLifter([first, load_lifter(BASELINE)])
    with pytest.raises(ValueError, match="one-body"):
        EnsembleLifter([load_lifter(BASELINE), first])
    with pytest.raises(ValueError, match="spread"):
        EnsembleLifter([first, first], spread=0.0)


def test_deterministic_members_average(people):
    kp, conf = people
    base = load_lifter(BASELINE)
    ens = EnsembleLifter([base, base])
    h = ens.sample(kp, conf, 3, seed=0)
    assert h.shape == (5, 3, 17, 3)
    np.testing.assert_allclose(h, np.repeat(base.sample(kp, conf, 1), 3, axis=1), atol=1e-6)
