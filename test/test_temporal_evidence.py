"""The temporal model's evidence shift (hpe3d_ros/lifting/temporal_runtime.py): per track, the
candidates' chi-square averaged over its frames moves the centre of its hypotheses."""

from __future__ import annotations

import numpy as np
import pytest

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.evidence import EvidenceConfig, reprojection_chi2
from test.helpers.standing import walking_person

PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]


def test_temporal_evidence_is_shift_only():
    from hpe3d_ros.lifting.temporal_runtime import TemporalSampler

    entry = dict(load_lifter().temporal.entry)
    with pytest.raises(ValueError, match="shift"):
        TemporalSampler({**entry, "evidence": EvidenceConfig(2, 1.5).to_entry()})
    with pytest.raises(ValueError, match="memory_s"):
        EvidenceConfig(2, 1.5, shift=True, memory_s=-1.0)


def test_the_temporal_shift_moves_tracks_toward_their_2d_and_keeps_them_coherent():
    """The temporal model's shift (one candidate set per track, its chi-square averaged over
    the track): the last frame's mean hypothesis explains the keypoints better than the
    plain temporal draw, every hypothesis is still one body, and hypothesis k moves from
    frame to frame about as smoothly as without the shift (the centre follows the averaged
    evidence, not each frame's noise)."""
    lif = load_lifter()
    sampler = lif.temporal
    rng = np.random.default_rng(21)
    std = 1.0 / 1100
    tracks = [walking_person(rng, 12, 10.0) for _ in range(12)]
    noisy = [kp + rng.normal(0.0, std, kp.shape) for kp, _ in tracks]
    conf = np.ones((12, 17))

    def run(evidence):
        sampler.evidence = evidence
        try:
            return np.stack(
                [
                    lif.sample_sequence(kp, conf, 40, seed=30 + i, stamps_s=t, noise_std=std)
                    for i, (kp, (_, t)) in enumerate(zip(noisy, tracks, strict=True))
                ]
            )  # (tracks, T, k, 17, 3)
        finally:
            sampler.evidence = None

    ev = EvidenceConfig(2, 1.45, shift=True, memory_s=0.3)
    plain, moved = run(None), run(ev)
    np.testing.assert_array_equal(moved, run(ev))  # reproducible
    assert np.isfinite(moved).all()
    bones = np.linalg.norm(moved[..., 1:, :] - moved[..., PARENTS[1:], :], axis=-1)
    assert bones.std(axis=2).max() < 1e-3  # one body per track and frame

    kp_last = np.stack([kp[-1] for kp, _ in tracks])  # the truth's 2D at the last frame
    sigma, valid = np.full((12, 17), std), np.ones((12, 17), bool)
    mean_chi = reprojection_chi2(moved[:, -1].mean(1, keepdims=True), kp_last, valid, sigma)
    plain_chi = reprojection_chi2(plain[:, -1].mean(1, keepdims=True), kp_last, valid, sigma)
    assert (mean_chi[:, 0] < plain_chi[:, 0]).mean() >= 0.75
    assert np.median(mean_chi) < 0.95 * np.median(plain_chi)

    def jitter(h):  # mean displacement of hypothesis k from one frame to the next
        return np.linalg.norm(np.diff(h, axis=1), axis=-1).mean()

    assert jitter(moved) < 1.3 * jitter(plain), (jitter(moved), jitter(plain))


def test_the_evidence_memory_is_per_track_stepwise_as_the_sequence_and_idempotent(tmp_path):
    from hpe3d_ros.lifting.temporal_runtime import TrackInput
    from test.helpers.temporal_lifter import tiny_temporal_checkpoint, walking_track

    lif = load_lifter(tiny_temporal_checkpoint(tmp_path / "t.pt"))
    sampler = lif.temporal
    kp, conf, t = walking_track(12, rate_hz=10.0)
    kp = kp + np.random.default_rng(5).normal(0.0, 0.004, kp.shape)
    sampler.evidence = EvidenceConfig(2, 1.5, shift=True, memory_s=0.5)
    seq = lif.sample_sequence(kp, conf, 4, seed=3, stamps_s=t)

    def step(n, key):
        return sampler.sample_tracks([TrackInput(t[:n], kp[:n], conf[:n], None, key)], 4, [3])[0]

    stepped = [step(n, "a") for n in range(1, 13)]
    np.testing.assert_allclose(np.stack(stepped), seq, atol=1e-5)  # the same memory
    np.testing.assert_allclose(step(12, "a"), stepped[-1], atol=1e-6)  # the same frame again
    # without a key (or with memory 0) only the last frame counts: the same first frame,
    # a different centre later
    np.testing.assert_allclose(step(1, None), seq[0], atol=1e-5)
    assert not np.allclose(step(12, None), seq[-1], atol=1e-4)
    sampler.evidence = EvidenceConfig(2, 1.5, shift=True, memory_s=0.0)
    np.testing.assert_allclose(step(12, "b"), step(12, None), atol=1e-6)
    sampler.clear_cache()
    assert not sampler._evidence
    # without a seed the candidates are new at every frame: nothing is averaged
    sampler.evidence = EvidenceConfig(2, 1.5, shift=True, memory_s=0.5)
    sampler.sample_tracks([TrackInput(t, kp, conf, None, "c")], 4, [None])
    assert "c" not in sampler._evidence
