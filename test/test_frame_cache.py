"""The temporal sampler's per-track frame memory (``frame_cache``), without a network."""

from __future__ import annotations

import numpy as np

from hpe3d_ros.lifting import frame_cache
from hpe3d_ros.lifting.frame_cache import FrameCache


def frames(stamps, shift=0.0):
    t = np.asarray(stamps, dtype=np.float64)
    kp = np.stack([np.full((17, 2), s + shift) for s in t])
    return t, kp, np.ones((len(t), 17)), np.full((len(t), 17), np.nan)


class Counter:
    """compute(): one row per frame (its first keypoint), remembering how many it saw."""

    def __init__(self):
        self.seen = []

    def __call__(self, kp, conf, noise):
        self.seen.append(len(kp))
        return (kp[:, 0, 0].copy(), 2 * kp[:, 0, 0])


def test_only_new_or_changed_frames_are_computed_and_rows_follow_the_inputs():
    cache, compute = FrameCache(), Counter()
    a = cache.arrays(["a", None], [frames([0, 1, 2]), frames([5, 6])], compute)
    assert compute.seen == [5] and len(cache) == 1  # a track without a key is not kept
    np.testing.assert_array_equal(a[0][0], [0, 1, 2])
    np.testing.assert_array_equal(a[1][1], [10, 12])
    # the window moved on one frame; frame 2 changed its keypoints; the keyless track again
    inputs = [frames([1, 2, 3]), frames([5, 6])]
    inputs[0][1][1] += 0.5
    b = cache.arrays(["a", None], inputs, compute)
    assert compute.seen == [5, 4]  # frames 2 (changed) and 3 (new), and both keyless ones
    np.testing.assert_array_equal(b[0][0], [1, 2.5, 3])
    c = cache.arrays(["a"], [inputs[0]], compute)
    assert compute.seen == [5, 4]  # nothing new: nothing computed
    np.testing.assert_array_equal(c[0][0], [1, 2.5, 3])
    np.testing.assert_array_equal(c[0][1], [2, 5, 6])


def test_the_most_recently_used_tracks_are_kept(monkeypatch):
    monkeypatch.setattr(frame_cache, "MAX_CACHED_TRACKS", 2)
    cache, compute = FrameCache(), Counter()
    for key in ("a", "b", "a", "c"):  # "a" used again after "b": "b" is the oldest
        cache.arrays([key], [frames([0, 1])], compute)
    assert compute.seen == [2, 2, 2]
    cache.arrays(["a"], [frames([0, 1])], compute)
    assert compute.seen == [2, 2, 2]  # "a" still there
    cache.arrays(["b"], [frames([0, 1])], compute)
    assert compute.seen == [2, 2, 2, 2]  # "b" was forgotten
    cache.forget("b")
    cache.clear()
    assert len(cache) == 0
