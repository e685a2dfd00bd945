"""Starting weights of a temporal run: a single-frame lifter v2 (``base``) or a written
temporal entry (``init``) copied into a :class:`~hpe3d_ros.lifting.temporal.TemporalBodyVAE`."""

from __future__ import annotations

from pathlib import Path

import torch

from hpe3d_ros.lifting.runtime import float_state
from hpe3d_ros.lifting.temporal import TemporalBodyVAE, TemporalConfig, grid_layout


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
    """Copy every weight of a written ``temporal.pt`` into ``model``.

    The entry may lack grid inputs the model has (``rate_input``, ``raw_input``): the TCN's
    weights for them start at zero, so the model starts as the entry."""
    ck = torch.load(entry, map_location="cpu", weights_only=True)
    state = float_state(ck["state_dict"])
    key = "temporal.expand.weight"
    have, want = state[key], model.temporal.expand.weight
    if have.shape != want.shape:
        old = dict(_offsets(grid_layout(model.cfg, TemporalConfig(**ck["temporal_config"]))))
        new = dict(_offsets(model.grid_layout()))
        if (
            have.shape[0] != want.shape[0]
            or have.shape[2] != want.shape[2]
            or any(name not in new or new[name][1] != n for name, (_, n) in old.items())
        ):
            shapes = f"{tuple(have.shape)}, model {tuple(want.shape)}"
            raise ValueError(f"{entry}: temporal input weights {shapes}")
        wider = have.new_zeros(want.shape)
        for name, (lo, n) in old.items():
            wider[:, new[name][0] : new[name][0] + n] = have[:, lo : lo + n]
        state[key] = wider
    model.load_state_dict(state)


def _offsets(layout: list[tuple[str, int]]) -> list[tuple[str, tuple[int, int]]]:
    """(name, (first channel, channels)) of each group of a grid layout."""
    out, lo = [], 0
    for name, n in layout:
        out.append((name, (lo, n)))
        lo += n
    return out
