"""The temporal sampler's memory of a track's frames: what was computed is not computed again.

A tracked person's frame stays in the temporal window for about a second of later frames, so
:class:`~hpe3d_ros.lifting.temporal_runtime.TemporalSampler` keeps, per track key, each recent
frame's inputs (stamp, keypoints, confidences, noise level) and the arrays computed from them
(features, rotation, usable flag, code). A frame whose stamp and inputs are unchanged is read
back; the others, of every track of a call, are computed in one batch. The most recently used
:data:`MAX_CACHED_TRACKS` tracks are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

#: Tracks whose frames (and seeds whose noise, tracks whose evidence) the temporal sampler
#: remembers at most (the oldest are forgotten first).
MAX_CACHED_TRACKS = 512

#: One track's frames: (stamps (T,), keypoints (T, 17, 2), confidences (T, 17), noise (T, 17)).
FrameInputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def forget_oldest(cache: dict) -> None:
    """Drop the oldest entries of ``cache`` (insertion order) beyond MAX_CACHED_TRACKS."""
    while len(cache) > MAX_CACHED_TRACKS:
        cache.pop(next(iter(cache)))


def cached_rows(cached: dict | None, stamps, kp, conf, noise) -> np.ndarray:
    """(T,) per frame of a track its row in the track's cached arrays, -1 where the cache
    does not hold that stamp with the same inputs (NaN equal to NaN)."""
    rows = np.full(len(stamps), -1)
    if cached is None:
        return rows
    c_stamps, c_kp, c_conf, c_noise = cached["in"]
    if len(c_stamps) == 0:
        return rows
    pos = np.clip(np.searchsorted(c_stamps, stamps), 0, len(c_stamps) - 1)
    match = c_stamps[pos] == stamps

    def same(a, b):
        eq = (a == b) | (np.isnan(a) & np.isnan(b))
        return eq.all(axis=tuple(range(1, eq.ndim)))

    p = pos[match]
    ok = same(kp[match], c_kp[p]) & same(conf[match], c_conf[p]) & same(noise[match], c_noise[p])
    rows[np.flatnonzero(match)[ok]] = p[ok]
    return rows


class FrameCache:
    """Per track key, its frames' inputs and computed arrays (module docstring)."""

    def __init__(self) -> None:
        self._tracks: dict = {}  # key -> {"in": FrameInputs, "out": its arrays}

    def __len__(self) -> int:
        return len(self._tracks)

    def clear(self) -> None:
        self._tracks.clear()

    def forget(self, key: Hashable) -> None:
        self._tracks.pop(key, None)

    def arrays(
        self,
        keys: Sequence[Hashable | None],
        inputs: Sequence[FrameInputs],
        compute: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, ...]],
    ) -> list[list[np.ndarray]]:
        """Per track (``keys[i]``, None = not remembered; ``inputs[i]``) its arrays, one row
        per input frame: remembered rows (a copy) where the frame is unchanged, the others
        from one ``compute(keypoints, confidences, noise)`` over every track's new frames.
        The cache is read for all tracks before any of them is stored; the arrays returned
        are the ones it keeps (read them, do not write to them)."""
        cached = [self._tracks.get(key) if key is not None else None for key in keys]
        hits = [cached_rows(c, *inp) for c, inp in zip(cached, inputs, strict=True)]
        miss = [h < 0 for h in hits]
        new = None
        if any(m.any() for m in miss):  # new frames of every track in one batch
            new = compute(
                *(
                    np.concatenate([inp[j][m] for inp, m in zip(inputs, miss, strict=True)])
                    for j in (1, 2, 3)
                )
            )
        out = []
        start = 0
        for key, inp, hit, m, old in zip(keys, inputs, hits, miss, cached, strict=True):
            k = int(m.sum())
            if k == len(hit):  # every frame new
                arrays = [a[start : start + k] for a in new]
            else:  # remembered rows (a copy), the new ones filled in
                arrays = [a[np.clip(hit, 0, None)] for a in old["out"]]
                if k:
                    for a, b in zip(arrays, new, strict=True):
                        a[m] = b[start : start + k]
            start += k
            out.append(arrays)
            if key is not None:  # re-inserted: the most recently used tracks are last
                self._tracks.pop(key, None)
                self._tracks[key] = {"in": inp, "out": arrays}
        forget_oldest(self._tracks)
        return out
