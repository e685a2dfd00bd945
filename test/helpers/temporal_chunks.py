"""Six training chunks of the validation subjects, as the temporal trainer draws them, for the
temporal training and sequence-loss tests (they need the shared mocap: shared_mocap skips,
with the reason, where it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import AugmentConfig
from training.mocap import load_all_mocap, split_indices
from training.temporal_data import SequenceConfig, draw_chunks, make_chunks, sequence_runs

EXACT = AugmentConfig(
    body_model="scaled",
    exact_prob=1.0,
    outlier_prob=0.0,
    drop_prob_max=0.0,
    lower_body_drop_prob=0.0,
    noise_known_prob=0.5,
)


def shared_mocap():
    """All shared mocap (split v2's subjects), or a skip with the reason."""
    from test.conftest import SHARED_DATA

    if not (SHARED_DATA / "cmu_h36m17_30fps.npz").exists():
        pytest.skip("shared mocap not found (only CI and developers have ../shared)")
    return load_all_mocap()


def chunks(mocap, aug, window=9, n=6, seed=0, **seq):
    rows = split_indices(mocap["subject"], "val", "v2")
    runs = sequence_runs(mocap["sequence"], mocap["subject"], rows)
    scfg = SequenceConfig(chunk=12, **seq)
    rng = np.random.default_rng(seed)
    picks = draw_chunks(runs, n, scfg.chunk + window - 1, rng)
    return make_chunks(mocap["poses"], picks, aug, scfg, window, rng, None, False), scfg
