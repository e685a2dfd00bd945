"""Representative lifter inputs shipped with the package (INT8 calibration, smoke checks).

``hpe3d_ros/weights/lifter_calibration_2d.npz`` holds 512 people as a 2D detector reports
them (normalised camera coordinates, NaN where a joint is missing, confidences): CMU mocap
of the training subjects seen through random vehicle cameras with detector-like noise,
written by ``python -m training.make_reference_inputs``. It lets product code (the TensorRT
INT8 calibrator) feed the lifter realistic inputs without the training code or its data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REFERENCE_INPUTS = Path(__file__).resolve().parents[1] / "weights" / "lifter_calibration_2d.npz"


def reference_keypoints(path: str | Path = REFERENCE_INPUTS) -> tuple[np.ndarray, np.ndarray]:
    """The shipped people: ``kp_norm`` (N, 17, 2) float32 (NaN = missing), ``conf`` (N, 17)."""
    with np.load(path, allow_pickle=False) as z:
        return z["kp_norm"], z["conf"]


def calibration_features(
    lifter, total: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``total`` people drawn from the shipped set, through ``lifter``'s own input features.

    Returns the graph inputs ``features`` (total, F) float32 and ``rotation`` (total, 3, 3).
    """
    kp, conf = reference_keypoints()
    pick = rng.choice(len(kp), total, replace=total > len(kp))
    return lifter.features(kp[pick], conf[pick])
