"""The pipeline with a temporal lifter (issue 17): per-track history, temporal model for
tracks with enough frames, single-frame model for new and untracked people, replayable."""

from __future__ import annotations

import numpy as np
import pytest

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.runtime import Lifter
from hpe3d_ros.pipeline import Pipeline, PipelineConfig
from test.helpers.temporal_lifter import tiny_temporal_checkpoint
from test.test_pipeline import CAMERA, IMAGE, FakeDetector, person_at

K = 6


@pytest.fixture
def weights(tmp_path):
    return tiny_temporal_checkpoint(tmp_path / "temporal.pt")


class Spy:
    """Counts which people each path lifts (wraps the lifter's two entry points)."""

    def __init__(self, lifter):
        self.single, self.temporal = [], []
        sample, tracks = lifter.sample, lifter.temporal.sample_tracks
        lifter.sample = lambda kp, *a, **kw: (self.single.append(len(kp)), sample(kp, *a, **kw))[1]
        lifter.temporal.sample_tracks = lambda tr, *a, **kw: (
            self.temporal.append(len(tr)),
            tracks(tr, *a, **kw),
        )[1]


def _frames(n, moving=True):
    out = []
    for i in range(n):
        walker = person_at(np.array([0.5 + (0.03 * i if moving else 0.0), 0.3, 7.0]))
        walker.track_id = 4
        other = person_at(np.array([-2.0, 0.3, 9.0]))  # untracked: id -1
        out.append([walker, other])
    return out


def _run(pipe, frames):
    results = []
    for i, people in enumerate(frames):
        pipe.detector.people = people
        stamp = 1_000_000_000 + round(i * 1e9 / 30)
        results.append(pipe.process(IMAGE, CAMERA, camera_name="front", stamp_ns=stamp))
    return results


def _rel(person):
    return person.hypotheses_m - person.root_m.astype(np.float32)


def test_tracks_with_history_go_through_the_temporal_model(weights):
    lifter = load_lifter(weights)
    spy = Spy(lifter)
    pipe = Pipeline(FakeDetector([]), lifter, PipelineConfig(num_hypotheses=K))
    res = _run(pipe, _frames(6))
    # frames 0-1: both people single-frame; from frame 2 (3 frames of track 4) it is temporal
    assert spy.single == [2, 2, 1, 1, 1, 1] and spy.temporal == [1, 1, 1, 1]
    track = pipe._temporal.history.track("front", 4)
    assert len(track.stamps_s) == 6 and track.noise_std.shape == (6, 17)
    want = lifter.temporal.sample_tracks([track], K, [pipe._temporal.track_seed("front", 4)])[0]
    np.testing.assert_allclose(_rel(res[-1].people[0]), want, atol=1e-4)
    assert all(r.people[1].hypotheses_m.shape == (K, 17, 3) for r in res)


def test_replay_gives_identical_hypotheses_and_reset_forgets(weights):
    lifter = load_lifter(weights)
    frames = _frames(8)
    a = _run(Pipeline(FakeDetector([]), lifter, PipelineConfig(num_hypotheses=K)), frames)
    pipe = Pipeline(FakeDetector([]), lifter, PipelineConfig(num_hypotheses=K))
    b = _run(pipe, frames)
    for ra, rb in zip(a, b, strict=True):
        for pa, pb in zip(ra.people, rb.people, strict=True):
            np.testing.assert_array_equal(pa.hypotheses_m, pb.hypotheses_m)
    pipe.reset()
    assert len(pipe._temporal.history) == 0
    c = _run(pipe, frames)
    np.testing.assert_array_equal(c[-1].people[0].hypotheses_m, a[-1].people[0].hypotheses_m)


def test_hypothesis_k_stays_the_same_mode_along_a_track(weights):
    lifter = load_lifter(weights)
    pipe = Pipeline(FakeDetector([]), lifter, PipelineConfig(num_hypotheses=K))
    res = _run(pipe, _frames(14, moving=False))
    w = lifter.window
    rel = np.stack([_rel(r.people[0]) for r in res[w:]])  # a still person, full windows
    np.testing.assert_allclose(rel, np.broadcast_to(rel[0], rel.shape), atol=1e-4)
    assert np.abs(rel[0, 0] - rel[0, 1]).max() > 1e-3  # hypotheses differ from each other


def test_temporal_off_is_the_single_frame_pipeline(weights):
    import torch

    frames = _frames(5)
    off = Pipeline(
        FakeDetector([]), load_lifter(weights), PipelineConfig(num_hypotheses=K, temporal=False)
    )
    plain = Lifter(torch.load(weights, weights_only=True))  # a lifter without the entry's API
    ref = Pipeline(FakeDetector([]), plain, PipelineConfig(num_hypotheses=K, temporal=False))
    for ra, rb in zip(_run(off, frames), _run(ref, frames), strict=True):
        for pa, pb in zip(ra.people, rb.people, strict=True):
            np.testing.assert_array_equal(pa.hypotheses_m, pb.hypotheses_m)
    assert off._temporal is None and off.lifting == "single-frame lifter"
    on = Pipeline(FakeDetector([]), load_lifter(weights), PipelineConfig(temporal_min_frames=4))
    assert on.lifting.startswith("temporal lifter (9 frames at 30 Hz) from a track's frame 4")
    with pytest.raises(ValueError, match="temporal"):
        PipelineConfig(temporal_min_frames=0)
