"""INT8 calibration inputs for the lifter: 2D keypoints given as a file, never read from training/.

The calibrator feeds TensorRT batches shaped like the profile's ``opt`` shapes (5 people x 50
hypotheses). The keypoints come from an ``.npz`` with ``kp_norm`` (M, 17, 2, normalised image
coordinates, NaN where missing) and ``conf`` (M, 17): detector-like views of real bodies, the
distribution the lifter was trained on (``benchmarks/gpu_prepare.py`` writes one from the
shared CMU mocap's training subjects; ``hpe3d-build-engine --precision int8 --calibration F``).
Without a file it falls back to synthetic keypoints and says so in the log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)


def load_keypoints(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(kp_norm (M, 17, 2), conf (M, 17)) float32 from an ``.npz`` (no pickles).

    Raises:
        ValueError: the file lacks the arrays or their shapes disagree (the message names it).
    """
    with np.load(path, allow_pickle=False) as data:
        if "kp_norm" not in data or "conf" not in data:
            raise ValueError(f"{path}: needs arrays kp_norm (M, 17, 2) and conf (M, 17)")
        kp, conf = data["kp_norm"].astype(np.float32), data["conf"].astype(np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (17, 2) or conf.shape != kp.shape[:2]:
        raise ValueError(f"{path}: kp_norm {kp.shape} / conf {conf.shape} are not (M,17,2)/(M,17)")
    return kp, conf


def lifter_calibration_inputs(
    lifter,
    keypoints: str | Path | None = None,
    batches: int = 64,
    people: int = 5,
    hyps: int = 50,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Input name -> (batches, *opt shape) float32 arrays for the lifter graph.

    ``keypoints``: an ``.npz`` as in the module docstring (rows drawn at random); None =
    synthetic keypoints (a warning).
    """
    rng = np.random.default_rng(seed)
    total = batches * people
    if keypoints is not None:
        kp_all, conf_all = load_keypoints(keypoints)
        rows = rng.choice(len(kp_all), total, replace=len(kp_all) < total)
        kp, conf = kp_all[rows], conf_all[rows]
    else:
        LOG.warning("INT8 calibration on synthetic keypoints (no --calibration file given)")
        kp = rng.uniform(-0.3, 0.3, (total, 1, 2)) + rng.normal(0, 0.05, (total, 17, 2))
        conf = rng.uniform(0.3, 1.0, (total, 17))
    feats, R = lifter.features(kp, conf)  # the run-time pre-processing
    out = {
        "features": feats.reshape(batches, people, -1).astype(np.float32),
        "rotation": R.reshape(batches, people, 3, 3).astype(np.float32),
    }
    if lifter.latent_dim:
        out["noise"] = lifter.noise(total, hyps, seed).reshape(
            batches, people, hyps, lifter.latent_dim
        )
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
