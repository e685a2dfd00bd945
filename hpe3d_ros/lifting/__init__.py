"""Probabilistic 2D->3D lifting: K root-relative 3D hypotheses per person.

``load_lifter(path=None, device="cpu")`` returns a :class:`~hpe3d_ros.lifting.runtime.Lifter`
whose ``sample(keypoints_norm (N,17,2), confidence (N,17), k, seed) -> (N,k,17,3)`` gives
metres in the camera frame, H36M-17 order, root at the origin.
"""

from hpe3d_ros.lifting.loading import load_lifter
from hpe3d_ros.lifting.runtime import DEFAULT_WEIGHTS, Lifter

__all__ = ["DEFAULT_WEIGHTS", "Lifter", "load_lifter"]
