"""Regressions of the shipped lifter weights (issues 14 and 17) on the unseen test bodies.

The same code as the model card's tables (:func:`training.evaluate_cells.evaluate`: one
1280 x 720, 60 deg camera, {exact, 2 px, 5 px} x {3-8, 8-15, 15-25 m}, split ``v2`` test
subjects 8, 13, 16, 131, 135), on every 12th test frame and K=100 instead of every frame
and K=200, so the bounds are looser than the model card's targets: they catch a lifter that
lost its one body per person, its bone limits, its calibration under noise or its edge over
the equally trained deterministic baseline, not a percent.
"""

from __future__ import annotations

import pytest

from hpe3d_ros.lifting import load_lifter
from hpe3d_ros.lifting.body import MAX_BONE_M
from hpe3d_ros.lifting.runtime import DEFAULT_WEIGHTS
from training.evaluate_cells import evaluate
from training.mocap import DEFAULT_DATA, ORIG_DATA

BASELINE = DEFAULT_WEIGHTS.with_name("lifter_baseline.pt")

pytestmark = pytest.mark.skipif(
    not (DEFAULT_DATA.is_file() and ORIG_DATA.is_file()),
    reason=f"shared mocap absent: {DEFAULT_DATA.parent}",
)


@pytest.fixture(scope="module")
def report() -> dict:
    return evaluate(
        [str(DEFAULT_WEIGHTS), str(BASELINE)],
        ["default", "baseline"],
        split="test",
        k=100,
        stride=12,
        modes=("given", "unknown"),
        log=lambda *_: None,
    )


def test_the_shipped_default_is_a_noise_aware_one_body_lifter():
    lifter = load_lifter()
    assert lifter.cfg.arch == "bodyvae" and lifter.cfg.noise_input and lifter.latent_dim
    assert load_lifter(BASELINE).latent_dim == 0
    # run-time evidence: both models move their calibrated draw toward the keypoints
    # (training.fit_evidence --shift --candidates 256 --spread 1.45 --temporal-memory 0.3)
    assert lifter.evidence.shift and lifter.evidence.candidates == 256
    assert lifter.temporal.evidence.shift and lifter.temporal.evidence.memory_s == 0.3


@pytest.mark.parametrize("mode", ["given", "unknown"])
def test_every_hypothesis_of_a_person_is_one_body_within_the_limits(report, mode):
    for cell, row in report["models"]["default"][mode]["cells"].items():
        assert row["bone spread p99 mm"] <= 5.0, (cell, row["bone spread p99 mm"])
        assert row["max bone m"] <= MAX_BONE_M + 1e-6, (cell, row["max bone m"])


@pytest.mark.parametrize("mode", ["given", "unknown"])
def test_coverage_holds_in_every_noise_and_distance_cell(report, mode):
    """Model card target 0.85-0.95 per cell (all frames, K=200); here 0.80-0.97."""
    cells = report["models"]["default"][mode]["cells"]
    assert len(cells) == 9
    for cell, row in cells.items():
        assert 0.80 <= row["cov90"] <= 0.97, (cell, row["cov90"])
        assert row["cov90 min joint"] >= 0.55, (cell, row["cov90 min joint"])


def test_mean_of_k_and_best_of_k_against_the_equal_baseline(report):
    """Mean of K no worse than the deterministic baseline (the model card: 0.97-1.00 x),
    best-of-100 clearly better, in each cell."""
    ours = report["models"]["default"]["given"]["cells"]
    base = report["models"]["baseline"]["given"]["cells"]
    for cell in ours:
        ratio = ours[cell]["MPJPE"] / base[cell]["MPJPE"]
        best = ours[cell]["best-of-K"] / base[cell]["MPJPE"]
        assert ratio <= 1.03, (cell, ratio)
        assert best <= 0.85, (cell, best)


def test_the_shipped_temporal_model_is_smoother_and_not_less_accurate():
    """Issue 17 on the test subjects' sequences (:func:`training.evaluate_temporal.evaluate`,
    5 px noise) on every 4th sequence and K=50; ratios to the single-frame network of the
    same file. Model card (temporal_v19, all sequences, K=200): 30 Hz 0.88 / 0.26 / 0.19
    / 0.14, 10 Hz 0.92 / 0.50 / 0.38 / 0.28; here (30 Hz, 10 Hz) MPJPE <= 0.95 / 0.97,
    velocity <= 0.45 / 0.65, acceleration <= 0.40 / 0.55, flicker <= 0.30 / 0.40, coverage
    0.80-0.97."""
    from hpe3d_ros.lifting.temporal_runtime import TemporalLifter
    from training.evaluate_temporal import evaluate as evaluate_sequences

    lifter = load_lifter()
    assert isinstance(lifter, TemporalLifter) and lifter.window == 162 and lifter.rate_hz == 30
    assert lifter.temporal.tcfg.channels == 512  # temporal_x93_s1_c20 (as temporal_v19)
    report = evaluate_sequences(
        [str(DEFAULT_WEIGHTS)], ["default"], split="test", k=50, stride=4, log=lambda *_: None
    )
    res = report["models"]["default"]
    bounds = {"30Hz": (0.95, 0.45, 0.40, 0.30), "10Hz": (0.97, 0.65, 0.55, 0.40)}
    for rate, limits in bounds.items():
        t, s = res["temporal"][rate]["all"], res["single"][rate]["all"]
        assert t["frames"] > 1000, (rate, t["frames"])
        for key, limit in zip(("MPJPE", "MPJVE", "accel", "flicker"), limits, strict=True):
            assert t[key] / s[key] <= limit, (rate, key, t[key] / s[key])
        assert 0.80 <= t["cov90"] <= 0.97, (rate, t["cov90"])


def test_real_skeletons_torso_and_neck_are_read_as_they_are():
    """Every real CMU skeleton marks its thorax below the shoulders and its nose on the head's
    axis (training/conventions.py). The lifter trained on rig motions with real lengths but
    the rigs' convention read their torso 20-48 mm per spine bone too long and the neck 44-74
    mm too short; trained with the convention move (v2_body_gcn_cmu) within about 15 mm on
    the validation skeletons. Here: test skeletons 16, 131, 135 (never trained on), exact
    2D at 8-15 m, every 4th frame: spine bones within 20 mm, neck within 35 mm, on average."""
    from training.bodies import BONE_GROUPS
    from training.body_bias import body_bias

    bias = body_bias(str(DEFAULT_WEIGHTS), "test", "exact@8-15m", stride=4)
    torso, neck = list(BONE_GROUPS).index("torso"), list(BONE_GROUPS).index("neck")
    for s in (16, 131, 135):
        spine, nk = bias[(s, "real")][torso], bias[(s, "real")][neck]
        assert abs(spine) <= 0.020 and abs(nk) <= 0.035, (s, spine, nk)


def test_the_shipped_noise_estimator_reads_the_noise_level_from_the_keypoints():
    """Without ``noise_std`` the shipped lifter reads the level from the 2D pose itself
    (hpe3d_ros.lifting.noise_estimate): on the test bodies its mean estimate per cell is
    within 0.3 of the true noise-level feature at 2 and 5 px (measured: 0.01-0.15), and it
    orders exact < 2 px < 5 px at 15-25 m (measured +0.04, +0.84, +1.35; a step of 0.5 is a
    factor 2.1 in noise). Exact 2D reads as mild noise (about 0): the training views always
    carry a pixel floor but in a tenth of them."""
    import numpy as np

    from hpe3d_ros.lifting.normalize import N_FEATURES, N_JOINTS, prepare_inputs
    from training.conditions import CELLS, condition_views
    from training.mocap import load_all_mocap, split_indices

    m = load_all_mocap(DEFAULT_DATA, ORIG_DATA)
    rows = split_indices(m["subject"], "test", "v2")[::12]
    lifter = load_lifter()
    assert lifter.noise_estimator is not None and load_lifter(BASELINE).noise_estimator
    est, true = {}, {}
    for cell in CELLS:
        v = condition_views(m["poses"][rows], cell, np.random.default_rng(0))
        f, _ = lifter.features(v.kp_norm, v.conf)
        t, _ = prepare_inputs(v.kp_norm, v.conf, lifter.conf_threshold, v.noise_std, True)
        seen = t[:, 2 * N_JOINTS : 3 * N_JOINTS]
        assert (f[:, -1] == 1).all()  # the estimate stands in as a given level
        est[cell.name] = float((f[:, N_FEATURES:-1] * seen).sum() / seen.sum())
        true[cell.name] = float((t[:, N_FEATURES:-1] * seen).sum() / seen.sum())
        if cell.noise_px:
            assert abs(est[cell.name] - true[cell.name]) < 0.3, (cell.name, est, true)
    far = [est[f"{n}@15-25m"] for n in ("exact", "2px", "5px")]
    assert far[0] + 0.5 < far[1] < far[2] - 0.3, far
