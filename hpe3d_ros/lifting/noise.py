"""How noisy a detector's 2D keypoints are: the noise level a noise-aware lifter is given.

:func:`detector_noise_std` models the standard deviation of a detector's keypoint error as
a fraction of the person's pixel size with a pixel floor, larger at low confidence (the form
the lifter's training noise takes, ``training.data.observe``), and returns it in normalised
camera units (pixels / focal length), the unit :meth:`Lifter.sample`'s ``noise_std`` takes.

The default fraction is measured on this package's default detector (MoveNet MultiPose,
bottom-up, 512 px tiles; ``BENCHMARKS.md``, mirrored-pass disagreement on vtest.avi): the
mean distance between the two passes' keypoints is 0.028 of the box height; for independent
Gaussian errors of std ``s`` per coordinate and pass that mean is ``sqrt(pi) * s``, so
``s`` is about 0.016 of the height. Top-down MoveNet halves it. Error both passes share (a
systematic offset) is not in that figure, so it is a lower bound; pass a larger
``fraction`` for a coarser detector.
"""

from __future__ import annotations

import numpy as np

#: Keypoint noise std / person height of the default detector (module docstring).
DETECTOR_NOISE_FRACTION = 0.016
DETECTOR_NOISE_FLOOR_PX = 1.0
_CONF_REF = 0.7  # confidence at which the fraction holds; noise grows as 1.6 - conf


def detector_noise_std(
    kp_norm: np.ndarray,
    confidence: np.ndarray,
    focal_px: float,
    fraction: float = DETECTOR_NOISE_FRACTION,
    floor_px: float = DETECTOR_NOISE_FLOOR_PX,
) -> np.ndarray:
    """(N, 17, 2) normalised keypoints, (N, 17) confidences -> (N, 17) noise std, normalised.

    The person's size is the larger side of the box around its visible joints (finite,
    confidence > 0); joints that are not visible get 0 (the lifter ignores them).
    """
    kp = np.asarray(kp_norm, dtype=np.float64).reshape(-1, 17, 2)
    conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64).reshape(-1, 17))
    seen = np.isfinite(kp).all(-1) & (conf > 0)
    hi = np.where(seen[..., None], kp, -np.inf).max(axis=1)
    lo = np.where(seen[..., None], kp, np.inf).min(axis=1)
    extent = np.where(seen.any(-1)[:, None], hi - lo, 0.0)  # (N, 2); 0 with no joint seen
    size = np.max(extent, axis=-1)  # normalised units
    base = np.hypot(fraction * size, floor_px / float(focal_px))[:, None]
    gain = (1.6 - np.clip(conf, 0.0, 1.0)) / (1.6 - _CONF_REF)
    return np.where(seen, base * gain, 0.0)
