"""The demo's picture of a track's hypotheses over time (issue 17)."""

from __future__ import annotations

import numpy as np

from hpe3d_ros.replay.track_picture import TrackStrip
from hpe3d_ros.results import FrameResult, Person3D


def _person(track_id: int, k: int, t: float) -> Person3D:
    rng = np.random.default_rng(abs(track_id))
    hyps = rng.normal(0, 0.3, size=(k, 17, 3)).astype(np.float32) + np.float32(0.1 * t)
    root = np.array([0.5, 0.2, 8.0 + t])
    return Person3D(
        track_id,
        0.9,
        np.zeros(4, np.float32),
        np.zeros((17, 2), np.float32),
        np.ones(17, np.float32),
        root,
        np.full(3, 0.1, np.float32),
        hyps + root.astype(np.float32),
    )


def test_longest_track_is_drawn_with_its_first_hypotheses(tmp_path):
    strip = TrackStrip(keep=3, panels=4)
    for i in range(12):
        people = [_person(5, 8, i / 10)]
        if i % 3 == 0:
            people.append(_person(9, 8, i / 10))  # a shorter track
        if i == 4:
            people.append(_person(-1, 8, 0.0))  # untracked: ignored
            people.append(
                Person3D(
                    7,
                    0.5,
                    *[np.zeros(s, np.float32) for s in (4, (17, 2), 17)],
                    np.zeros(3),
                    np.zeros(3, np.float32),
                    np.zeros((0, 17, 3), np.float32),
                )
            )  # not lifted: ignored
        strip.add("front", i, 1_000_000_000 + i * 100_000_000, FrameResult("front", "", i, people))
    tid, frames = strip.longest("front")
    assert tid == 5 and len(frames) == 12 and frames[0][3].shape == (3, 17, 3)
    np.testing.assert_allclose(
        frames[3][2],
        _person(5, 8, 0.3).hypotheses_m.mean(0) - _person(5, 8, 0.3).root_m,
        atol=1e-5,
    )  # root-relative
    assert strip.longest("rear") is None and not strip.plot("rear", tmp_path / "x.png")
    assert strip.plot("front", tmp_path / "track.png")
    assert (tmp_path / "track.png").stat().st_size > 20_000
