"""Temporal lifter training (issue 17): chunks read tracks exactly as the runtime does, the
self-supervised geometry, and a tiny supervised + self-supervised run end to end; the
supervised loss itself is ``test_sequence_loss``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hpe3d_ros.lifting.model import ModelConfig
from hpe3d_ros.lifting.normalize import to_camera
from hpe3d_ros.lifting.temporal import TemporalBodyVAE, TemporalConfig
from hpe3d_ros.lifting.temporal_checkpoint import make_temporal_entry
from hpe3d_ros.lifting.temporal_runtime import TemporalSampler, TrackInput
from test.helpers.temporal_chunks import EXACT, chunks, shared_mocap
from training.data import AugmentConfig
from training.mocap import split_indices
from training.selfsup import fit_depth, frame_2d, reprojection, view_features, with_root
from training.temporal_data import sequence_runs


@pytest.fixture(scope="module")
def mocap():
    return shared_mocap()


def test_chunks_read_tracks_as_the_runtime_does(mocap):
    from training.temporal_calibrate import validation_rows

    torch.manual_seed(0)
    small = ModelConfig(
        arch="bodyvae", noise_input=True, width=16, cond_dim=8, latent_dim=2, dec_width=8
    )
    model = TemporalBodyVAE(small, TemporalConfig(widths=(3, 3), channels=8)).eval()
    sampler = TemporalSampler(make_temporal_entry(model, 0.2))
    batch, _ = chunks(
        mocap, AugmentConfig(body_model="scaled"), strides=(3,), stride_probs=(1.0,), gap_prob=0.5
    )
    w = 9
    assert batch.i0.shape == (6, 12 + w - 1) and batch.mask.any()
    rows, _ = validation_rows(sampler.model, batch)
    n = 0
    for b, (stamps, kp, conf, noise) in enumerate(batch.tracks):
        for p in np.flatnonzero(batch.mask[b]):
            t_end = (w - 1 + p) / 30.0
            upto = np.flatnonzero(np.abs(stamps - t_end) < 1e-9)
            assert upto.size == 1  # a counted frame is a frame the camera delivered
            i = upto[0] + 1
            tr = TrackInput(stamps[:i], kp[:i], conf[:i], None if noise is None else noise[:i])
            packed, rot = sampler.packed([tr])
            np.testing.assert_allclose(packed[0], rows[n], atol=1e-5)
            np.testing.assert_allclose(rot[0], batch.rot[batch.cur[b, p]], atol=1e-6)
            n += 1
    assert n == len(rows) > 10
    # balanced: every subject as many rows as the others, the small one's rows repeated
    batch.subject = np.where(np.arange(len(batch.mask)) < 5, 14, 11)  # 5 chunks against 1
    with pytest.raises(ValueError, match="subjects"):
        validation_rows(sampler.model, dataclasses.replace(batch, subject=None), True)
    even, _ = validation_rows(sampler.model, batch, True)
    per_chunk = batch.mask.sum(1)
    assert per_chunk[:5].sum() > 3 * per_chunk[5]  # pooled, subject 14 outweighs 11
    assert len(even) == round(len(rows) / 2) * 2
    of_11 = {r.tobytes() for r in rows[-per_chunk[5] :]}  # the last chunk's rows, exactly
    assert sum(r.tobytes() in of_11 for r in even) == round(len(rows) / 2)
    # stride 3: counted frames are 3 apart; targets are the camera-frame poses
    counted = np.flatnonzero(batch.mask[0])
    assert set(np.diff(counted) % 3) <= {0}
    rot = batch.rot[batch.cur].reshape(-1, 3, 3).astype(np.float64)
    back = to_camera(batch.target.reshape(-1, 16, 3).astype(np.float64), rot)
    np.testing.assert_allclose(back, batch.pose_cam.reshape(-1, 17, 3)[:, 1:], atol=1e-5)


def test_selfsup_geometry_on_exact_2d(mocap):
    batch, _ = chunks(mocap, EXACT, n=4)
    cur = torch.from_numpy(batch.frames[batch.cur]).double()
    kp, vis, spread = frame_2d(cur)
    truth = with_root(torch.from_numpy(batch.target).double())
    m = torch.from_numpy(batch.mask)

    def mean_reprojection(pose):
        return float(reprojection(pose, kp, vis, spread).sum(-1)[m].sum() / vis[m].sum())

    assert mean_reprojection(truth) < 0.03  # the true pose reprojects onto its own 2D
    mirrored = truth * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert mean_reprojection(mirrored) > 0.03  # depth flipped: perspective tells it apart
    # the true depth comes back; the 2D of a view on the axis gives the frame's own features
    depth = fit_depth(truth, kp, vis, spread)
    q = truth[..., :2] / (depth[..., None] + truth[..., 2])[..., None]
    again = view_features(q, cur, m.double())
    sel = m & (vis[..., 0] > 0)  # pelvis seen: the frame's centre is the root
    np.testing.assert_allclose(again[sel][:, :34], cur[sel][:, :34], atol=0.02)
    np.testing.assert_allclose(again[sel][:, 71], cur[sel][:, 71], atol=0.02)
    np.testing.assert_allclose(again[sel][:, 72:], cur[sel][:, 72:])  # noise level kept


def test_tiny_supervised_and_selfsupervised_run(tmp_path, mocap):
    from test.conftest import REPO
    from test.helpers.temporal_lifter import tiny_temporal_checkpoint
    from training.evaluate_temporal import evaluate
    from training.train_temporal import TemporalTrainConfig, train

    base = tiny_temporal_checkpoint(tmp_path / "base.pt")
    cfg = TemporalTrainConfig.from_yaml(REPO / "training/config/temporal_tiny.yaml")
    cfg.out_dir = str(tmp_path / "run")
    cfg.subjects_3d, cfg.subjects_2d = [2, 6, 7, 9, 10, 12], [1, 3, 5]
    cfg.selfsup = {"n_samples": 2}
    cfg.base = str(base)
    cfg.epochs = 1
    train(cfg, quiet=True)
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 2 and float(log[1].split(",")[4]) > 0  # self-supervised loss logged
    entry = torch.load(tmp_path / "run" / "temporal.pt", weights_only=True)
    assert entry["temperature"] > 0 and "val_conditions" in entry["metrics"]
    from training.train_temporal import recalibrate

    even = recalibrate(str(tmp_path / "run" / "temporal.pt"), str(tmp_path / "even.pt"), True)
    even = torch.load(even, weights_only=True)
    assert even["train_config"]["calibration_balanced"] and even["temperature"] > 0
    assert not entry["train_config"]["calibration_balanced"]
    from training.train_temporal import main

    with pytest.raises(SystemExit) as stop:  # one usage line, not a traceback
        main(["--recalibrate", str(tmp_path / "missing.pt"), "--balanced"])
    assert stop.value.code == 2
    report = evaluate(
        [str(tmp_path / "run" / "lifter.pt")],
        ["tiny"],
        k=4,
        stride=20,
        rates=("10Hz",),
        log=lambda *_: None,
    )
    res = report["models"]["tiny"]
    for mode in ("single", "temporal"):
        r = res[mode]["10Hz"]["all"]
        assert r["frames"] > 30 and np.isfinite([r["MPJPE"], r["flicker"], r["accel"]]).all()


def test_real_footage_tracks_and_adaptation(tmp_path, mocap):
    from test.conftest import REPO
    from training.adapt_temporal import adapt
    from training.video_tracks import load_tracks

    tracks_file = REPO / "training" / "data" / "vtest_tracks.npz"
    tracks = load_tracks(tracks_file, (600, 750))
    assert len(tracks) >= 5
    for tr in tracks:
        assert (np.diff(tr.stamps_s) > 0).all() and tr.stamps_s.min() >= 60.0
        assert np.diff(tr.stamps_s).min() == pytest.approx(0.1)  # the clip's 10 Hz
        assert np.isfinite(tr.noise_std).all() and tr.kp_norm.shape[1:] == (17, 2)
    from training.train_temporal import TemporalTrainConfig, train

    cfg = TemporalTrainConfig.from_yaml(REPO / "training/config/temporal_tiny.yaml")
    cfg.out_dir, cfg.epochs = str(tmp_path / "run"), 1
    train(cfg, quiet=True)
    figures = adapt(
        tmp_path / "run" / "temporal.pt",
        tracks_file,
        tmp_path / "adapted.pt",
        steps=2,
        lr=1e-3,
        selfsup={"n_samples": 2},
        log=lambda *_: None,
    )
    before, after = figures["held_out_before"], figures["held_out_after"]
    assert before["frames"] == after["frames"] > 300 and 0 < before["px"] < 100
    adapted = torch.load(tmp_path / "adapted.pt", weights_only=True)
    trained = torch.load(tmp_path / "run" / "temporal.pt", weights_only=True)
    assert adapted["metrics"]["adaptation"]["steps"] == 2
    changed = [
        k
        for k in trained["state_dict"]
        if not torch.equal(trained["state_dict"][k], adapted["state_dict"][k])
    ]
    assert changed  # the weights moved


def test_flip_average_mirrors_the_input_and_its_hypotheses_back():
    from training.evaluate_temporal import FlipAveraged

    class Echo:  # an equivariant "lifter": joint j at (x, y, 1 + y) of its own 2D
        def sample(self, kp, conf, k, seed=None, noise_std=None):
            pose = np.concatenate([kp, 1.0 + kp[..., 1:]], -1)
            return np.repeat(pose[:, None], k, 1).astype(np.float32)

        def sample_sequence(self, kp, conf, k, seed=None, stamps_s=None, noise_std=None):
            return self.sample(kp, conf, k, seed, noise_std)

    rng = np.random.default_rng(0)
    kp = rng.normal(size=(1, 17, 2))
    kp[0, 0, 0] = 0.5  # the root right of the optical axis: mirrored, left of it
    ns = np.where(np.arange(17) == 1, 1.0, 2.0)[None]  # right hip: 1, mirrored to the left
    ns_mirrored = ns[:, [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]]

    class Check(Echo):
        def sample(self, kp, conf, k, seed=None, noise_std=None):
            mirrored = kp[0, 0, 0] < 0
            assert np.array_equal(noise_std, ns_mirrored if mirrored else ns)
            return super().sample(kp, conf, k, seed, None)

    direct = Echo().sample(kp, np.ones((1, 17)), 5)
    flipped = FlipAveraged(Check()).sample(kp, np.ones((1, 17)), 5, 0, ns)
    assert flipped.shape == (1, 5, 17, 3) and np.allclose(flipped, direct)  # 3 direct + 2 back
    seq = FlipAveraged(Check()).sample_sequence(kp, np.ones((1, 17)), 4, 0, None, ns)
    assert np.allclose(seq, direct[:, :4])
    assert not hasattr(FlipAveraged(object()), "sample_sequence")


def test_track_figures_measure_the_hypotheses_body(mocap):
    from training.bodies import bone_lengths
    from training.evaluate_temporal import summarise, track_figures

    gt = mocap["poses"][:20].astype(np.float64)
    gt = gt - gt[:, :1]
    hyps = np.repeat(1.1 * gt[:, None], 4, 1)  # every bone 10 % long, no other error
    ok = np.ones(20, bool)
    ok[3] = False
    r = summarise(track_figures(hyps, gt, ok, 1 / 30))
    true = bone_lengths(gt)[ok]
    assert r["bone error"] == pytest.approx(100 * true.mean(), rel=1e-9)  # mm
    assert r["size bias"] == pytest.approx(100 * true.sum(-1).mean(), rel=1e-9)
    r = summarise(track_figures(np.repeat(gt[:, None], 4, 1), gt, ok, 1 / 30))
    assert r["bone error"] < 1e-9 and abs(r["size bias"]) < 1e-9 and r["MPJPE"] < 1e-9


def test_evaluation_reports_merge_and_refuse_other_conditions(capsys):
    from training.evaluate_temporal import merge_reports, print_tables

    def report(name, mpjpe, k=200):
        cell = dict.fromkeys(("MPJVE", "accel", "flicker", "excess", "bone change"), 1.0)
        cell.update(frames=5, MPJPE=mpjpe, cov90=0.9, **{"best-of-K": 1.0})
        cells = {"3-8m": cell, "all": cell}
        entry = {"single": {"10Hz": cells}, "temporal": {"10Hz": cells}}
        return {"split": "val", "noise_px": 5.0, "k": k, "models": {name: entry}}

    merged = merge_reports([report("a", 80.0), report("b", 60.0)])
    assert list(merged["models"]) == ["a", "b"]
    print_tables(merged, "a/single", only_cells=("all",), only_modes=("temporal",))
    out = capsys.readouterr().out.splitlines()
    ratios = [r for r in out if r.startswith("| b | temporal | 10Hz | ") and "| all |" in r]
    assert ratios == ["| b | temporal | 10Hz | all | 0.750 | 1.000 | 1.000 | 1.000 | 0.900 |"]
    assert not [r for r in out if "| 3-8m |" in r or r.startswith("| b | single | 10Hz | all")]
    with pytest.raises(ValueError, match="merged"):
        merge_reports([report("a", 80.0), report("b", 60.0, k=50)])
    with pytest.raises(ValueError, match="merged"):
        merge_reports([report("a", 80.0), {**report("b", 60.0), "views": 3}])
    with pytest.raises(ValueError, match="merged"):
        merge_reports([report("a", 80.0), {**report("b", 60.0), "subjects": ["8"]}])


def test_evaluation_sees_each_segment_in_as_many_views_as_asked(mocap):
    from training.sequence_views import sequence_views

    rows = split_indices(mocap["subject"], "val", "v2")
    runs = sequence_runs(mocap["sequence"], mocap["subject"], rows)[:2]
    one = sequence_views(mocap["poses"], runs, (8, 15), 5.0, np.random.default_rng(1))
    three = sequence_views(mocap["poses"], runs, (8, 15), 5.0, np.random.default_rng(1), views=3)
    assert len(three) == 3 * len(one) > 0
    assert np.allclose(three[0][2], one[0][2])  # the same draws first
    for i, (_, _, pose) in enumerate(one):  # the same segment, seen from elsewhere
        views = three[3 * i : 3 * i + 3]
        assert all(v[2].shape == pose.shape for v in views)
        lengths = [np.linalg.norm(v[2][:, 3] - v[2][:, 2], axis=-1) for v in views]
        assert np.allclose(lengths, np.linalg.norm(pose[:, 3] - pose[:, 2], axis=-1))
        assert not np.allclose(views[1][2], views[2][2], atol=1e-3)


def test_a_rate_input_model_starts_as_the_entry_it_is_initialised_from(tmp_path):
    from test.helpers.temporal_lifter import SMALL, tiny_temporal_checkpoint
    from training.temporal_init import init_from_entry

    entry = torch.load(tiny_temporal_checkpoint(tmp_path / "t.pt"), weights_only=True)
    torch.save(entry["temporal"], tmp_path / "temporal.pt")
    old = TemporalBodyVAE(ModelConfig(**SMALL), TemporalConfig(widths=(3, 3), channels=24))
    init_from_entry(old, tmp_path / "temporal.pt")
    tcfg = TemporalConfig(widths=(3, 3), channels=24, rate_input=True, raw_input=True)
    new = TemporalBodyVAE(ModelConfig(**SMALL), tcfg)
    init_from_entry(new, tmp_path / "temporal.pt")
    old.eval(), new.eval()
    torch.manual_seed(0)
    packed = torch.rand(4, old.packed_size)
    f, c = old.cfg.n_in, old.cfg.cond_dim
    grid = packed[:, f:].unflatten(1, (old.window, c + 1))
    raw = torch.rand(4, old.window, f)  # any new input: its weights start at 0
    interp = torch.rand(4, old.window, 1)
    wide = torch.cat([grid[..., :c], raw, grid[..., c:], interp], -1)  # code, raw, seen, rate
    widened = torch.cat([packed[:, :f], wide.flatten(1)], 1)
    with torch.no_grad():
        for a, b in zip(old.encode(packed), new.encode(widened), strict=True):
            torch.testing.assert_close(a, b)
    wider = TemporalBodyVAE(ModelConfig(**SMALL), TemporalConfig(widths=(3, 3), channels=32))
    with pytest.raises((ValueError, RuntimeError)):
        init_from_entry(wider, tmp_path / "temporal.pt")


def test_motion_probe_finds_a_delay_and_a_damped_motion():
    from training.motion_probe import GAINS, LAGS, delay_and_gain

    rng = np.random.default_rng(0)
    t = np.arange(120) / 30.0
    gt = rng.normal(0, 0.2, (1, 17, 3)) + np.sin(2 * t)[:, None, None] * rng.normal(
        0, 0.3, (1, 17, 3)
    )
    idx = np.arange(0, 120, 3)  # a 10 Hz camera
    ok = np.ones(len(idx), bool)
    late = delay_and_gain(gt[idx - 2], gt, idx, ok, 0.1)  # follows the person 2 frames late
    assert int(np.argmin(late["mpjpe"])) == LAGS.index(2) and min(late["mpjpe"]) < 1e-9
    assert int(np.argmin(late["mpjve"])) == LAGS.index(2)
    still = gt[idx].mean(0)
    damped = still + 0.6 * (gt[idx] - still)  # moves 60 % as far as the person
    g = delay_and_gain(damped, gt, idx, ok, 0.1)
    assert int(np.argmin(g["mpjve_gain"])) == GAINS.index(0.6) and min(g["mpjve_gain"]) < 1e-9
