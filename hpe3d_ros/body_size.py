"""Body size from a known ground (ROS-free): the scale a single image cannot give.

Scaling a root-relative pose and its root translation together about the camera changes no
reprojection, so a small person near and a big one further away look the same, and the
lifter's size barely follows the truth. Feet on a known ground tell them apart: only one
scale puts the lower ankle on the ankle plane of :class:`~hpe3d_ros.placement.GroundPrior`.
:func:`ground_size` measures that scale per frame, :class:`TrackSizes` gathers it over a
person's track, and :func:`size_posterior` weighs it against a prior around the lifter's
body with an adult and a child mode. The pipeline scales all K hypotheses of a person by the
result (they keep one body) before placing them (``placement.size_log_std``;
``BENCHMARKS.md``, "Body size from the ground").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hpe3d_ros.placement import GroundPrior, lower_ankle, solve_root_translation

#: Body size from the ground (:func:`ground_size`): a person's size factor is clipped to
#: this range around the lifter's body (a child of 1.0 m to an adult of 2.2 m for a
#: 1.65 m lifter body), whatever the ground says.
SIZE_FACTOR_RANGE = (0.55, 1.35)
#: How far the lower ankle's height, as the ground-size estimate sees it, strays from the
#: ankle plane (m): the ankle's own height step to step and the lifted ankle's error
#: relative to the pelvis. Fitted on the training subjects of
#: ``benchmarks/placement_accuracy.py``: the log error of the ground's size factor has an
#: RMS of 0.064-0.072 at 5-20 m, 2 and 5 px, flat in distance and noise, times the camera's
#: 1.40 m above the ankle plane.
SIZE_FOOT_STD_M = 0.095
#: What a track's frames do not average away (log size): the person's own ankle height and
#: the lifted legs' error. Fitted on the training subjects' 2 s tracks
#: (``benchmarks/placement_accuracy.py --track-seconds 2``): the ground's size error, RMS
#: 0.050 (log), is this and the frames' own 0.030 together.
SIZE_BIAS_LOG_STD = 0.04
#: The prior's adult mode (``placement.size_log_std``): how far an adult's size strays from
#: the lifter's estimate, its log error's RMS on the shared mocap's subjects (0.030-0.057 over
#: the test and training subjects, ``benchmarks/placement_accuracy.py``'s last column).
SIZE_LOG_STD = 0.05
#: The prior's second mode, children, in log size around the lifter's adult body (about
#: 1.68 m): statures 1.0-1.55 m within two std of 1.25 m. Its weight: the share of people
#: in that mode before anything is seen (0 = adults only).
CHILD_SIZE_LOG_MEAN = float(np.log(1.25 / 1.68))
CHILD_SIZE_LOG_STD = 0.12
CHILD_PRIOR_WEIGHT = 0.1


@dataclass(frozen=True)
class GroundSize:
    """:func:`ground_size`'s measurement for a batch of people: what the ground alone says."""

    log_factor: np.ndarray  # (...,) log of the size factor that puts the ankle on its plane
    info: np.ndarray  # (...,) its precision, 1 / log-variance; 0 where not measured

    @property
    def measured(self) -> np.ndarray:
        return self.info > 0


def ground_size(
    pose_rel_m: np.ndarray,
    kp_norm: np.ndarray,
    weights: np.ndarray,
    ground: GroundPrior | None,
    ground_scale: np.ndarray | float = 1.0,
) -> GroundSize:
    """How big the person is, from the feet on a known ground (one measurement per pose).

    A single image cannot tell a small person near from a big one further away: scaling a
    root-relative pose and its root translation together about the camera changes no
    reprojection. The ground can: place the pose without the prior (``t0``), and the lower
    ankle stands ``h = n . (ankle + t0)`` below the camera; the pose scaled by
    ``ground.ankle_plane / h`` puts that ankle on the ankle plane with the same
    reprojection. That factor's log error is :data:`SIZE_FOOT_STD_M` over the camera's
    height above the ankle plane (measured flat in distance and 2D noise up to 20 m and
    5 px). :func:`size_posterior` combines it with the prior around the lifter's body.

    Arguments as :func:`solve_root_translation`. Not measured (``info`` 0): without a ground,
    where ``ground_scale`` is 0 (no foot seen), or where the placed ankle is not clearly below
    the camera.
    """
    X = np.asarray(pose_rel_m, dtype=np.float64)
    batch = X.shape[:-2]
    if ground is None:
        return GroundSize(np.zeros(batch), np.zeros(batch))
    n = np.asarray(ground.normal, dtype=np.float64)
    t0 = solve_root_translation(X, kp_norm, weights, None)
    h = (lower_ankle(X, n)[..., 0, :] + t0) @ n
    plane = ground.ankle_plane
    g = np.broadcast_to(np.asarray(ground_scale, dtype=np.float64), batch)
    ok = np.isfinite(h) & (h > 0.25 * plane) & (g > 0)
    log_g = np.log(plane / np.where(ok, h, plane))
    return GroundSize(log_g, np.where(ok, (plane / SIZE_FOOT_STD_M) ** 2, 0.0))


def size_posterior(
    log_sum: np.ndarray,
    info: np.ndarray,
    size_log_std: float,
    child_weight: float = CHILD_PRIOR_WEIGHT,
) -> tuple[np.ndarray, np.ndarray]:
    """(factor, log std) of a person's size from ground measurements and the prior.

    ``log_sum`` / ``info``: the information-weighted sum of measured log factors and the
    summed information (one frame: ``info * log_factor`` and ``info``; a track: over its
    frames, :class:`TrackSizes`). However many frames, the measurement keeps a person's own
    bias (:data:`SIZE_BIAS_LOG_STD`: their ankle's height, the lifted legs' error). The prior,
    in log size around the lifter's body: adults normal(0, ``size_log_std``) and, with weight
    ``child_weight``, children normal(:data:`CHILD_SIZE_LOG_MEAN`,
    :data:`CHILD_SIZE_LOG_STD`); the posterior's mean and std over both. The factor is
    clipped to :data:`SIZE_FACTOR_RANGE`; where ``info`` is 0 the answer is the prior's.
    """
    info = np.asarray(info, dtype=np.float64)
    seen = info > 0
    meas = np.where(seen, np.asarray(log_sum, dtype=np.float64) / np.where(seen, info, 1.0), 0.0)
    var_m = 1.0 / np.where(seen, info, 1.0) + SIZE_BIAS_LOG_STD**2  # used only where seen
    modes = [(1.0 - child_weight, 0.0, size_log_std**2)]
    if child_weight > 0:
        modes.append((child_weight, CHILD_SIZE_LOG_MEAN, CHILD_SIZE_LOG_STD**2))
    log_ev, means, variances = [], [], []
    for weight, mu, var in modes:
        total = np.where(seen, var + var_m, var)
        log_ev.append(np.log(weight) - 0.5 * np.log(total) - 0.5 * (meas - mu) ** 2 / total)
        post_var = np.where(seen, var * var_m / (var + var_m), var)
        means.append(np.where(seen, post_var * (mu / var + meas / var_m), mu))
        variances.append(post_var)
    log_ev = np.stack(log_ev)
    resp = np.exp(log_ev - log_ev.max(axis=0))
    resp /= resp.sum(axis=0)
    if not seen.all():  # nothing measured: the prior's own weights
        prior_w = np.array([m[0] for m in modes]).reshape(-1, *[1] * seen.ndim)
        resp = np.where(seen, resp, prior_w)
    means, variances = np.stack(means), np.stack(variances)
    mean = (resp * means).sum(axis=0)
    var = (resp * (variances + means**2)).sum(axis=0) - mean**2
    log_s = np.clip(mean, *np.log(SIZE_FACTOR_RANGE))
    return np.exp(log_s), np.sqrt(np.maximum(var, 0.0))


class TrackSizes:
    """A track's body size from the ground, gathered over its frames.

    A body does not change along a track, but one frame's ground measurement is noisy (the
    lifted foot, the step). Each frame adds its measurement with its information scaled by
    ``min(1, dt / decorrelation_s)``: frames closer than about half a step apart are not
    independent evidence. As :class:`~hpe3d_ros.lifting.track_history.TrackHistory` keeps a
    camera's tracks: one unseen for ``forget_s`` (by that camera's stamps) is forgotten, and
    a stamp before the track's newest (a bag that loops, a clock that jumps back) starts it
    over.
    """

    def __init__(self, decorrelation_s: float = 0.5, forget_s: float = 2.0) -> None:
        self.decorrelation_s = decorrelation_s
        self.forget_s = forget_s
        self._state: dict[tuple[str, int], tuple[float, float, int]] = {}  # sum, info, ns

    def __len__(self) -> int:
        return len(self._state)

    def update(
        self, camera_name: str, stamp_ns: int, tracks: Sequence[int], measured: GroundSize
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add one frame's measurements (one per track; negative ids are untracked and not
        kept) and return each person's accumulated (``log_sum``, ``info``)."""
        log_sum = measured.info * measured.log_factor
        info = measured.info.copy()
        forget_ns = int(self.forget_s * 1e9)
        for key in [k for k, v in self._state.items()
                    if k[0] == camera_name and stamp_ns - v[2] > forget_ns]:  # fmt: skip
            del self._state[key]
        for i, track in enumerate(tracks):
            if track < 0:
                continue
            key = (camera_name, int(track))
            prev_sum, prev_info, prev_ns = self._state.get(key, (0.0, 0.0, None))
            if prev_ns is not None and stamp_ns == prev_ns:  # the same frame again
                log_sum[i], info[i] = prev_sum, prev_info
                continue
            if prev_ns is not None and stamp_ns < prev_ns:  # time went backwards: start over
                prev_sum, prev_info, prev_ns = 0.0, 0.0, None
            # a track's first measurement counts whole (earlier frames may have seen no foot)
            dt = self.decorrelation_s if prev_info == 0 else (stamp_ns - prev_ns) * 1e-9
            keep = min(1.0, dt / self.decorrelation_s)
            log_sum[i] = prev_sum + keep * log_sum[i]
            info[i] = prev_info + keep * info[i]
            self._state[key] = (float(log_sum[i]), float(info[i]), stamp_ns)
        return log_sum, info
