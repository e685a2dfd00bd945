"""training.interval_probes: the quasi-random latents and the signal table (no network)."""

from __future__ import annotations

import math

import numpy as np

from hpe3d_ros.lifting.runtime import latent_noise
from training.interval_probes import SIGNALS, signal_table, sobol_noise


def test_quasi_random_latents_have_the_shipped_draws_shape_pairs_and_spread():
    for kind in ("sobol", "lhs"):
        e = sobol_noise(3, 201, 8, seed=5, dof=5.0, kind=kind)
        assert e.shape == (3, 201, 8) and e.dtype == np.float32
        np.testing.assert_array_equal(e[:, 1:200:2], -e[:, 0:200:2])  # antithetic pairs
        np.testing.assert_array_equal(e, sobol_noise(3, 201, 8, seed=5, dof=5.0, kind=kind))
        assert not np.array_equal(e[0], e[1])  # each person its own randomisation
        iid = latent_noise(200, 200, 8, 1, 5.0)
        assert abs(e.std() / iid.std() - 1) < 0.1, (kind, e.std(), iid.std())
    g = sobol_noise(1, 400, 4, seed=1, dof=math.inf)
    assert abs(g.std() - 1) < 0.05  # Gaussian: unit spread


def test_signal_table_ranks_a_signal_that_tracks_the_interval_fit():
    rng = np.random.default_rng(0)
    n = 500
    ratio = rng.lognormal(-0.7, 0.5, n)
    res = {name: rng.random(n) for name in SIGNALS}
    res["baseline_rel"] = ratio * 2  # tracks the fit exactly
    res["ratio"], res["covered"] = ratio, (ratio <= 1).astype(float)
    cells, subjects = np.arange(n) % 3, np.where(np.arange(n) < 250, 11, 35)
    lines = signal_table(res, cells, subjects)
    row = next(line for line in lines if line.startswith("| baseline_rel |")).split("|")
    assert row[2].strip() == "+1.000" and row[3].strip() == "+1.000"
    by_quintile = [float(v) for v in row[4].split("/")]
    assert by_quintile == sorted(by_quintile, reverse=True)  # wider misfit, less covered
    assert lines[-1].startswith("| (coverage) |")


def test_canonical_pose_forgets_place_heading_and_size_and_reads_camera_frames():
    from training.interval_probes import canonical_pose

    rng = np.random.default_rng(2)
    world = rng.normal(0, 0.3, (4, 17, 3))  # Z up
    a = 0.7
    turn = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    moved = 1.8 * world @ turn.T + np.array([3.0, -2.0, 0.5])
    np.testing.assert_allclose(
        canonical_pose(moved, False), canonical_pose(world, False), atol=1e-9
    )
    camera = np.stack([world[..., 0], -world[..., 2], world[..., 1]], -1)  # x right, y down
    np.testing.assert_allclose(
        canonical_pose(camera, True), canonical_pose(world, False), atol=1e-9
    )


def test_widened_scales_the_hypotheses_draw_not_the_candidates_and_restores_the_lifter():
    from hpe3d_ros.lifting import load_lifter
    from hpe3d_ros.lifting.evidence import CANDIDATE_STREAM
    from training.interval_probes import widened

    lifter = load_lifter()  # the shipped default: a shift evidence lifter
    hyps, cands = lifter.noise(2, 6, 3), lifter.noise(2, 6, [3, CANDIDATE_STREAM])
    with widened(lifter, 1.5) as wide:
        np.testing.assert_allclose(wide.noise(2, 6, 3), 1.5 * hyps, rtol=1e-6)
        np.testing.assert_array_equal(wide.noise(2, 6, [3, CANDIDATE_STREAM]), cands)
        rng = np.random.default_rng(0)
        kp = rng.normal(0, 0.05, (2, 17, 2)).astype(np.float32)
        conf = np.ones((2, 17), np.float32)
        spread_wide = wide.sample(kp, conf, 50, 7, noise_std=0.003).std(axis=1).mean()
    assert "noise" not in vars(lifter)  # the class's method again
    np.testing.assert_array_equal(lifter.noise(2, 6, 3), hyps)
    spread = lifter.sample(kp, conf, 50, 7, noise_std=0.003).std(axis=1).mean()
    assert spread_wide > 1.1 * spread  # the hypotheses really spread wider (1.16 x here)


def test_width_row_reports_cells_range_each_subject_and_their_spread():
    from training.interval_probes import width_row

    covered = np.array([1.0, 0.8, 0.9, 0.95, 0.85, 1.0])
    subjects = np.array([11, 11, 14, 14, 35, 35])
    row = width_row(1.1, [0.91, 0.88, 0.93], covered, subjects)
    assert row == "| 1.1 | 0.880-0.930 | 0.900 | 0.925 | 0.925 | 0.025 |"


def test_size_hedged_gives_each_hypothesis_its_own_size_about_the_root():
    from hpe3d_ros.lifting import load_lifter
    from training.bodies import bone_lengths
    from training.interval_probes import size_hedged

    lifter = load_lifter()
    rng = np.random.default_rng(1)
    kp = rng.normal(0, 0.05, (3, 17, 2)).astype(np.float32)
    conf = np.ones((3, 17), np.float32)
    plain = lifter.sample(kp, conf, 40, 5, noise_std=0.003)
    assert bone_lengths(plain).std(axis=1).max() < 1e-4  # one body per person
    with size_hedged(lifter, 0.05) as hedged:
        hyps = hedged.sample(kp, conf, 40, 5, noise_std=0.003)
    assert "sample" not in vars(lifter)  # the class's method again
    np.testing.assert_array_equal(hyps[:, :, 0], plain[:, :, 0])  # the root stays
    ratio = bone_lengths(hyps) / bone_lengths(plain)  # (N, K, 16): one factor per hypothesis
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[..., :1], ratio.shape), rtol=1e-4)
    log = np.log(ratio[..., 0])
    np.testing.assert_allclose(log[:, 0::2], -log[:, 1::2], atol=1e-5)  # antithetic pairs
    assert 0.03 < log.std() < 0.07  # about the size std asked for


def test_a_missing_weights_file_is_one_usage_line_not_a_traceback(capsys):
    import pytest

    from training.interval_probes import main

    with pytest.raises(SystemExit) as stop:
        main(["width", "--weights", "/nonexistent/lifter.pt"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "lifter weights not found: /nonexistent/lifter.pt" in err and "Traceback" not in err
