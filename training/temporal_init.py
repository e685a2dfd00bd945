"""Starting weights of a temporal run: a single-frame lifter v2 (``base``) or a written
temporal entry (``init``) copied into a :class:`~hpe3d_ros.lifting.temporal.TemporalBodyVAE`."""

from __future__ import annotations

from pathlib import Path

import torch

from hpe3d_ros.lifting.runtime import float_state
from hpe3d_ros.lifting.temporal import TemporalBodyVAE


def init_from_base(model: TemporalBodyVAE, base: str | Path) -> None:
    """Copy a single-frame lifter v2 checkpoint's weights into ``model`` (all but the
    temporal residual, which starts at zero: the model is then that lifter)."""
    ck = torch.load(base, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(float_state(ck["state_dict"]), strict=False)
    if unexpected or any(not k.startswith("temporal.") for k in missing):
        raise ValueError(
            f"{base} is not a lifter v2 checkpoint of this configuration "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def init_from_entry(model: TemporalBodyVAE, entry: str | Path) -> None:
    """Copy every weight of a written ``temporal.pt`` (same configuration) into ``model``.

    An entry without ``rate_input`` initialises a model with it: the new input channel's
    weights start at zero, so the model starts as the entry."""
    ck = torch.load(entry, map_location="cpu", weights_only=True)
    state = float_state(ck["state_dict"])
    key = "temporal.expand.weight"
    have, want = state[key], model.temporal.expand.weight
    if have.shape != want.shape:
        extra = want.shape[1] - have.shape[1]
        if extra != 1 or have.shape[0] != want.shape[0] or have.shape[2] != want.shape[2]:
            shapes = f"{tuple(have.shape)}, model {tuple(want.shape)}"
            raise ValueError(f"{entry}: temporal input weights {shapes}")
        state[key] = torch.cat([have, have.new_zeros(have.shape[0], extra, have.shape[2])], 1)
    model.load_state_dict(state)
