"""``load_lifter``: a lifter checkpoint file -> the lifter that runs it.

A file with a ``"temporal"`` entry (issue 17) gives a
:class:`~hpe3d_ros.lifting.temporal_runtime.TemporalLifter` (the single-frame network and its
temporal model for tracked people), any other a :class:`~hpe3d_ros.lifting.runtime.Lifter`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hpe3d_ros.lifting.runtime import DEFAULT_WEIGHTS, Lifter
from hpe3d_ros.lifting.temporal_runtime import TemporalLifter


def load_lifter(path: str | Path | None = None, device: str = "cpu") -> Lifter:
    """Load a lifter checkpoint; ``path=None`` loads the shipped default weights."""
    path = DEFAULT_WEIGHTS if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lifter weights not found: {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "temporal" in checkpoint:
        return TemporalLifter(checkpoint, device=device)
    return Lifter(checkpoint, device=device)
