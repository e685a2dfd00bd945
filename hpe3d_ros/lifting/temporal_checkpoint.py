"""The temporal checkpoint format (issue 17): a single-frame lifter v2 checkpoint with one more
entry, ``"temporal"`` -- the temporal network's config, weights and calibration
(:func:`make_temporal_entry`). The shipped file is a *bundle* (:func:`bundle`): the entry's
weights equal to the lifter's own (the frozen 2D encoder) are stored once and named in
``base_keys``; :func:`complete_entry` puts them back when the file is loaded
(:mod:`hpe3d_ros.lifting.temporal_runtime`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from hpe3d_ros.lifting.temporal import TemporalBodyVAE


def make_temporal_entry(
    model: TemporalBodyVAE,
    conf_threshold: float,
    temperature: float = 1.0,
    latent_dof: float = math.inf,
    train_config: dict | None = None,
    metrics: dict | None = None,
    git_commit: str = "unknown",
) -> dict:
    """The ``"temporal"`` entry of a checkpoint (plain tensors and values)."""
    return {
        "model_config": model.cfg.to_dict(),
        "temporal_config": model.tcfg.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "conf_threshold": float(conf_threshold),
        "temperature": float(temperature),
        "latent_dof": float(latent_dof),
        "train_config": train_config or {},
        "metrics": metrics or {},
        "git_commit": git_commit,
    }


def complete_entry(checkpoint: dict) -> dict:
    """The ``"temporal"`` entry of ``checkpoint`` with a complete state dict: a bundle stores
    only the weights that differ from its single-frame lifter's (the frozen 2D encoder is
    the same tensor twice) and names the others in ``base_keys``; they are copied back here."""
    entry = checkpoint["temporal"]
    shared = entry.get("base_keys") or []
    if not shared:
        return entry
    base = checkpoint["state_dict"]
    missing = [k for k in shared if k not in base]
    if missing:
        raise ValueError(f"temporal entry reads weights its lifter lacks: {missing[:3]}")
    return {**entry, "state_dict": {**{k: base[k] for k in shared}, **entry["state_dict"]}}


def shared_keys(entry_state: dict, base_state: dict) -> list[str]:
    """Keys of a temporal state dict whose tensors equal the single-frame lifter's (the
    lifter's, in its own precision, converted to the entry's, gives the entry's exactly)."""
    return [
        k
        for k, v in entry_state.items()
        if k in base_state
        and base_state[k].shape == v.shape
        and torch.equal(base_state[k].to(v.dtype), v)
    ]


def bundle(base: str | Path, entry: str | Path, dst: str | Path) -> None:
    """Write ``dst`` = single-frame checkpoint ``base`` + the temporal ``entry`` (the
    ``train_temporal --bundle`` command); the entry's weights equal to the base's (its frozen
    2D encoder) are stored once, named in its ``base_keys`` (:func:`complete_entry` reads
    them back), the others in half precision, as the shipped single-frame lifter is."""
    ck = torch.load(base, map_location="cpu", weights_only=True)
    tmp = torch.load(entry, map_location="cpu", weights_only=True)
    shared = shared_keys(tmp["state_dict"], ck["state_dict"])
    tmp["state_dict"] = {  # half precision, as the single-frame lifter ships
        k: v.half() if v.is_floating_point() else v
        for k, v in tmp["state_dict"].items()
        if k not in shared
    }
    tmp["base_keys"] = shared
    ck["temporal"] = tmp
    torch.save(ck, dst)
