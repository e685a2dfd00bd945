"""Human3.6M loader, cameras and protocol, on tiny files written in the VideoPose3D layout.

The reference projection below is a numpy port of VideoPose3D's ``qrot``/``qinverse``/
``project_to_2d`` (how ``data_2d_h36m_gt.npz`` is made), kept independent of
``training.h36m_cameras`` so that conventions are checked, not assumed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training import h36m
from training.h36m_cameras import (
    _EXTRINSICS,
    _INTRINSICS,
    SUBJECTS,
    camera_to_world,
    distort_normalized,
    h36m_camera,
    pixels_to_normalized,
    project_to_pixels,
    undistort_normalized,
    world_to_camera,
)


def _qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    qvec = np.broadcast_to(q[1:], v.shape)
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2 * (q[0] * uv + uuv)


def reference_project(pos_world_m: np.ndarray, subject: str, cam_idx: int) -> np.ndarray:
    """VideoPose3D: world_to_camera + project_to_2d + image_coordinates, in pixels."""
    q, t_mm = (np.array(a) for a in _EXTRINSICS[subject][cam_idx])
    _, _, _, f, c, k, p = (np.array(a) if i > 2 else a for i, a in enumerate(_INTRINSICS[cam_idx]))
    q_inv = q * np.array([1, -1, -1, -1])
    x = _qrot(q_inv, pos_world_m - t_mm / 1000)
    xx = x[..., :2] / x[..., 2:]
    r2 = (xx**2).sum(-1, keepdims=True)
    radial = 1 + (k * np.concatenate([r2, r2**2, r2**3], -1)).sum(-1, keepdims=True)
    tan = (p * xx).sum(-1, keepdims=True)
    return f * (xx * (radial + tan) + p * r2) + c


def _poses_world(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 32, 3) world metres: a person about 1 m tall around the capture centre."""
    base = rng.uniform(-0.4, 0.4, size=(1, 32, 3)) + np.array([0.3, -0.2, 0.9])
    return base + 0.02 * rng.normal(size=(n, 32, 3))


def test_world_camera_round_trip_and_reference() -> None:
    rng = np.random.default_rng(0)
    pts = _poses_world(rng, 3)[:, h36m.H36M32_TO_17]
    for subject in SUBJECTS:
        for ci in range(4):
            cam = h36m_camera(subject, ci)
            pc = world_to_camera(pts, cam)
            assert (pc[..., 2] > 3.0).all()  # the person is in front, metres away
            np.testing.assert_allclose(camera_to_world(pc, cam), pts, atol=1e-12)
            px = project_to_pixels(pc, cam)
            # 1e-4 px: VideoPose3D rotates with the stored, not exactly unit, quaternions.
            np.testing.assert_allclose(px, reference_project(pts, subject, ci), atol=1e-4)
            assert ((px > 0) & (px < 1000)).all()
    with pytest.raises(KeyError):
        h36m_camera("S2", 0)


def test_undistort_inverts_the_h36m_lens_model() -> None:
    cam = h36m_camera("S9", 1)
    xy = np.random.default_rng(1).uniform(-0.45, 0.45, size=(200, 2))  # to the image corners
    np.testing.assert_allclose(
        undistort_normalized(distort_normalized(xy, cam), cam), xy, atol=1e-12
    )
    assert np.abs(distort_normalized(xy, cam) - xy).max() > 1e-2  # the lens does distort
    pc = np.concatenate([xy * 4.0, np.full((200, 1), 4.0)], axis=1)
    np.testing.assert_allclose(
        pixels_to_normalized(project_to_pixels(pc, cam), cam), xy, atol=1e-10
    )


H36M_META = {
    "layout_name": "h36m",
    "num_joints": 17,
    "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
}
ACTIONS = {"S1": ("Walking",), "S9": ("Walking 1", "Directions"), "S11": ("Walking", "Eating")}
T = 6


def write_dataset(data_dir: Path, extra_2d_frames: int = 2) -> dict:
    """data_3d_h36m.npz and data_2d_h36m_gt.npz exactly as VideoPose3D writes them."""
    rng = np.random.default_rng(2)
    pos3d = {s: {a: _poses_world(rng, T).astype(np.float32) for a in acts}
             for s, acts in ACTIONS.items()}  # fmt: skip
    pos2d = {}
    for s, acts in pos3d.items():
        pos2d[s] = {}
        for a, pos in acts.items():
            longer = np.concatenate([pos, pos[-1:].repeat(extra_2d_frames, 0)])
            kept = longer[:, h36m.H36M32_TO_17]
            pos2d[s][a] = [reference_project(kept, s, ci).astype(np.float32) for ci in range(4)]
    np.savez_compressed(data_dir / "data_3d_h36m.npz", positions_3d=pos3d)
    np.savez_compressed(data_dir / "data_2d_h36m_gt.npz", positions_2d=pos2d, metadata=H36M_META)
    return pos3d


class GroundTruthPlusNoiseLifter:
    """TEST STAND-IN, not a model: looks the 2D input up in a table of the true poses and
    returns them (plus an optional offset / Gaussian noise), to exercise the protocol code."""

    def __init__(self, pos3d: dict, sigma: float = 0.0, offset: float = 0.0, k_dim: int = 0):
        keys, poses = [], []
        for s in pos3d:
            for pos in pos3d[s].values():
                for ci in range(4):
                    pc = world_to_camera(
                        pos[:, h36m.H36M32_TO_17].astype(float), h36m_camera(s, ci)
                    )
                    keys.append((pc[..., :2] / pc[..., 2:]).reshape(len(pc), -1))
                    poses.append(pc - pc[:, :1])
        self.keys, self.poses = np.concatenate(keys), np.concatenate(poses)
        self.sigma, self.offset, self.latent_dim = sigma, offset, k_dim

    def _gt(self, kp: np.ndarray) -> np.ndarray:
        d = np.abs(kp.reshape(len(kp), 1, -1) - self.keys[None]).max(axis=-1)
        assert (d.min(axis=1) < 1e-6).all(), "2D input does not match any true pose"
        out = self.poses[d.argmin(axis=1)].copy()
        out[:, 1:, 0] += self.offset
        return out

    def predict(self, kp: np.ndarray, conf: np.ndarray) -> np.ndarray:
        return self._gt(kp)

    def sample(self, kp: np.ndarray, conf: np.ndarray, k: int, seed: int | None) -> np.ndarray:
        noise = self.sigma * np.random.default_rng(seed).normal(size=(len(kp), k, 17, 3))
        noise[:, :, 0] = 0.0  # root stays at the origin
        return self._gt(kp)[:, None] + noise


def test_loaders_reduce_joints_and_cut_detections(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    pos3d = h36m.load_positions_3d(tmp_path / "data_3d_h36m.npz")
    assert pos3d["S9"]["Directions"].shape == (T, 17, 3)
    kp2d, meta = h36m.load_keypoints_2d(tmp_path / "data_2d_h36m_gt.npz")
    assert meta["num_joints"] == 17 and kp2d["S9"]["Directions"][0].shape == (T + 2, 17, 2)
    seqs = list(h36m.iter_sequences(pos3d, kp2d, h36m.TEST_SUBJECTS))
    assert len(seqs) == 4 * 4  # two actions each for S9 and S11, four cameras
    s = seqs[0]
    assert s.kp_norm.shape == (T, 17, 2) and s.poses_cam_m.shape == (T, 17, 3)
    np.testing.assert_allclose(s.poses_cam_m[:, 0], 0.0)
    np.testing.assert_allclose(s.confidence, 1.0)
    strided = list(h36m.iter_sequences(pos3d, kp2d, ["S1"], stride=4))
    assert strided[0].kp_norm.shape == (2, 17, 2)


def test_loader_rejects_other_layouts_and_short_detections(tmp_path: Path) -> None:
    pos3d = write_dataset(tmp_path, extra_2d_frames=0)
    meta = dict(H36M_META, layout_name="coco")
    np.savez_compressed(tmp_path / "coco.npz", positions_2d={}, metadata=meta)
    with pytest.raises(ValueError):
        h36m.load_keypoints_2d(tmp_path / "coco.npz")
    kp2d, _ = h36m.load_keypoints_2d(tmp_path / "data_2d_h36m_gt.npz")
    kp2d["S9"]["Walking 1"][0] = kp2d["S9"]["Walking 1"][0][:-1]
    p3 = h36m.load_positions_3d(tmp_path / "data_3d_h36m.npz")
    with pytest.raises(ValueError):
        list(h36m.iter_sequences(p3, kp2d, ["S9"]))
    assert set(pos3d) == {"S1", "S9", "S11"}


def test_protocol_end_to_end_deterministic(tmp_path: Path, capsys) -> None:
    pos3d = write_dataset(tmp_path)
    exact = GroundTruthPlusNoiseLifter(pos3d)
    errors = h36m.evaluate(exact, h36m.iter_sequences(
        h36m.load_positions_3d(tmp_path / "data_3d_h36m.npz"),
        h36m.load_keypoints_2d(tmp_path / "data_2d_h36m_gt.npz")[0]))  # fmt: skip
    assert len(errors["mpjpe"]) == 4 * 4 * T
    np.testing.assert_allclose(errors["mpjpe"], 0.0, atol=1e-6)
    np.testing.assert_allclose(errors["p_mpjpe"], 0.0, atol=1e-6)
    # 10 mm along x on the 16 non-root joints: MPJPE = 16/17 * 10 mm on every frame.
    shifted = GroundTruthPlusNoiseLifter(pos3d, offset=0.010)
    argv = ["--data-dir", str(tmp_path), "--detector", "gt"]
    assert h36m.main(argv, lifter=shifted) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln and ln[0].isupper()}
    assert set(lines) >= {"Directions", "Eating", "Walking", "Average"}
    assert lines["Walking"][1] == str(2 * 4 * T)  # "Walking 1" (S9) + "Walking" (S11)
    for name in ("Directions", "Eating", "Walking", "Average"):
        assert float(lines[name][2]) == pytest.approx(160 / 17, abs=0.05)
        assert float(lines[name][3]) < float(lines[name][2])  # Procrustes removes some of it


def test_protocol_probabilistic_best_of_k(tmp_path: Path, capsys) -> None:
    pos3d = write_dataset(tmp_path)
    noisy = GroundTruthPlusNoiseLifter(pos3d, sigma=0.05, k_dim=8)
    argv = ["--data-dir", str(tmp_path), "--detector", "gt", "--k", "20", "--by-subject"]
    assert h36m.main(argv, lifter=noisy) == 0
    out = capsys.readouterr().out
    assert "best_mpjpe" in out and "cov90" in out and "\nS11\n" in out
    pos = h36m.load_positions_3d(tmp_path / "data_3d_h36m.npz")
    kp, _ = h36m.load_keypoints_2d(tmp_path / "data_2d_h36m_gt.npz")
    errors = h36m.evaluate(noisy, h36m.iter_sequences(pos, kp), k=20, seed=0)
    one = h36m.evaluate(noisy, h36m.iter_sequences(pos, kp), k=1, seed=0)
    # One draw of N(0, 5 cm) per axis: 16/17 * 50 mm * E|N(0, I3)| = 75 mm; the mean of 20
    # draws is sqrt(20) times closer; the best of 20 beats a single draw.
    assert one["mpjpe"].mean() == pytest.approx(16 / 17 * 50 * 1.596, rel=0.1)
    assert errors["mpjpe"].mean() == pytest.approx(75.1 / np.sqrt(20), rel=0.15)
    assert errors["best_mpjpe"].mean() < 0.9 * one["mpjpe"].mean()
    assert (errors["best_p_mpjpe"] > 0).all()
    assert (errors["cov90"] == 1.0).all()  # the truth is the centre of the draws
    table = h36m.protocol_table(errors)
    assert table[-1]["action"] == "Average"
    assert table[-1]["mpjpe"] == pytest.approx(np.mean([r["mpjpe"] for r in table[:-1]]))


class _PlantMarker:
    """Pickles as ``os.system("touch <marker>")``: what a swapped data file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _write_npz_pickle(path: Path, key: str, obj, protocol: int = 3, old_numpy: bool = False):
    """An .npz whose ``key`` is a 0-d object array pickled as numpy's ``np.save`` does."""
    import io
    import pickle
    import zipfile

    arr = np.empty((), dtype=object)
    arr[()] = obj
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    payload = pickle.dumps(arr, protocol=protocol)
    if old_numpy:  # files written by numpy 1.x name numpy.core, not numpy._core
        payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{key}.npy", buf.getvalue() + payload)


def test_planted_pickle_in_the_npz_is_refused_and_never_runs(tmp_path: Path, capsys) -> None:
    pos3d = write_dataset(tmp_path)
    marker = tmp_path / "MARKER"
    evil = {"S9": {"Directions": _PlantMarker(marker)}}
    _write_npz_pickle(tmp_path / "data_3d_h36m.npz", "positions_3d", evil)
    with pytest.raises(ValueError, match=r"refusing to unpickle (posix|os|nt)\.system"):
        h36m.load_positions_3d(tmp_path / "data_3d_h36m.npz")
    argv = ["--data-dir", str(tmp_path), "--detector", "gt"]
    assert h36m.main(argv, lifter=GroundTruthPlusNoiseLifter(pos3d)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to unpickle" in err[0]
    # the same payload through the plain loader would have created the marker
    assert not marker.exists()


def test_npz_pickle_reads_what_videopose3d_writes(tmp_path: Path) -> None:
    from training.npz_pickle import load_pickled_item

    data = {
        "S1": {"Walking": [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((1, 2))]},
        "meta": {"layout_name": "h36m", "num_joints": 17, "sym": [[1, 2], (3, 4)]},
        "bytes": b"\x00\xff",
        "n": np.float64(1.5),
    }
    for protocol, old in ((2, True), (3, True), (3, False), (5, False)):
        path = tmp_path / f"p{protocol}{old}.npz"
        _write_npz_pickle(path, "positions", data, protocol, old)
        got = load_pickled_item(path, "positions")
        np.testing.assert_array_equal(got["S1"]["Walking"][0], data["S1"]["Walking"][0])
        assert got["S1"]["Walking"][0].dtype == np.float32
        assert got["meta"] == data["meta"] and got["bytes"] == b"\x00\xff" and got["n"] == 1.5
    np.savez(tmp_path / "plain.npz", x=np.arange(3))  # numeric arrays need no pickle
    np.testing.assert_array_equal(load_pickled_item(tmp_path / "plain.npz", "x"), np.arange(3))
    with pytest.raises(KeyError):
        load_pickled_item(tmp_path / "plain.npz", "y")
