"""INT8 calibration inputs for the lifter: real bodies from the package's reference inputs.

The calibrator feeds TensorRT batches shaped like the profile's ``opt`` shapes (5 people x 50
hypotheses); features come from the shipped reference people
(:mod:`hpe3d_ros.lifting.reference_inputs`: CMU mocap seen through random vehicle cameras,
the distribution the lifter was trained on). Without that file it falls back to synthetic
keypoints and says so in the log.
"""

from __future__ import annotations

import logging

import numpy as np

from hpe3d_ros.lifting.normalize import prepare_inputs

LOG = logging.getLogger(__name__)


def lifter_calibration_inputs(
    lifter, batches: int = 64, people: int = 5, hyps: int = 50, seed: int = 0
) -> dict[str, np.ndarray]:
    """Input name -> (batches, *opt shape) float32 arrays for the lifter graph."""
    rng = np.random.default_rng(seed)
    total = batches * people
    try:
        from hpe3d_ros.lifting.reference_inputs import calibration_features

        feats, R = calibration_features(lifter, total, rng)
    except (ImportError, OSError) as exc:
        LOG.warning("INT8 calibration on synthetic keypoints (no mocap: %s)", exc)
        kp = rng.uniform(-0.3, 0.3, (total, 1, 2)) + rng.normal(0, 0.05, (total, 17, 2))
        feats, R = prepare_inputs(kp, rng.uniform(0.3, 1.0, (total, 17)))
    out = {
        "features": feats.reshape(batches, people, -1).astype(np.float32),
        "rotation": R.reshape(batches, people, 3, 3).astype(np.float32),
    }
    if lifter.latent_dim:
        shape = (batches, people, hyps, lifter.latent_dim)
        out["noise"] = rng.standard_normal(shape, dtype=np.float32)
    return out


def make_calibrator(trt, inputs: dict[str, np.ndarray]):
    """A ``trt.IInt8EntropyCalibrator2`` over ``inputs`` (name -> (batches, *shape))."""
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.inputs = inputs
            self.n = len(next(iter(inputs.values())))
            self.i = 0
            self._keep: list = []

        def get_batch_size(self) -> int:
            return 1  # explicit batch: shapes come from the calibration profile

        def get_batch(self, names):
            if self.i >= self.n:
                return None
            self._keep = [torch.from_numpy(self.inputs[n][self.i]).cuda() for n in names]
            self.i += 1
            return [t.data_ptr() for t in self._keep]

        def read_calibration_cache(self):
            return None

        def write_calibration_cache(self, cache) -> None:
            return None

    return Calibrator()
