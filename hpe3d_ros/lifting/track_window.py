"""A track's frames on the temporal lifter's time grid (numpy; training, runtime, pipeline).

A camera delivers frames at its own rate (10, 15, 30 Hz, with jitter and lost frames); the
temporal lifter works on a regular grid at its own ``rate_hz``. :func:`grid_weights` says,
for any grid time, which frame(s) it reads: a time on a frame (within :data:`STAMP_TOL_S`)
takes that frame; a time between two frames no more than ``max_gap_s`` apart interpolates
them linearly; a time before the first frame, after the last, or inside a longer gap is
*unseen*. :func:`window_times` is the grid of a window ending at a frame, so a frame's
output depends only on it and earlier frames (causal).
"""

from __future__ import annotations

import numpy as np

#: Two stamps closer than this are the same instant (seconds).
STAMP_TOL_S = 1e-3


def window_times(t_end: float, n: int, rate_hz: float) -> np.ndarray:
    """(n,) ascending grid times of a window of ``n`` frames at ``rate_hz`` ending at ``t_end``."""
    return t_end - (n - 1 - np.arange(n)) / rate_hz


def grid_weights(
    stamps: np.ndarray, times: np.ndarray, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frames ``stamps`` (T,) strictly increasing seconds, read at ``times`` (n,).

    Returns ``i0``, ``i1`` (n,) the frames a time lies between (equal on a frame), ``w``
    (n,) the weight of ``i1`` (value = (1 - w) frame[i0] + w frame[i1]) and ``seen`` (n,)
    bool; unseen times have ``i0 = i1 = 0`` and ``w = 0``.
    """
    stamps = np.asarray(stamps, dtype=np.float64).reshape(-1)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    n_frames, n = len(stamps), len(times)
    if n_frames == 0:
        zero = np.zeros(n, dtype=np.int64)
        return zero, zero.copy(), np.zeros(n), np.zeros(n, dtype=bool)
    i = np.searchsorted(stamps, times + STAMP_TOL_S, side="right") - 1  # last frame <= t
    ic = np.clip(i, 0, n_frames - 1)
    jc = np.clip(i + 1, 0, n_frames - 1)
    s0, s1 = stamps[ic], stamps[jc]
    exact = (i >= 0) & (np.abs(times - s0) <= STAMP_TOL_S)
    between = (i >= 0) & ~exact & (jc > ic) & (s1 - s0 <= max_gap_s)
    w = np.where(between, (times - s0) / np.where(jc > ic, s1 - s0, 1.0), 0.0)
    seen = exact | between
    i0 = np.where(seen, ic, 0)
    i1 = np.where(between, jc, i0)
    return i0, i1, np.clip(w, 0.0, 1.0), seen
