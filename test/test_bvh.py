"""BVH reader, forward kinematics, CMU skeleton mappings and the rebuild command.

Every BVH here is written by the test itself (no CMU data needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from training import rebuild_cmu
from training.bvh import euler_to_matrix, forward_kinematics, parse_bvh, subsample_indices
from training.cmu_skeletons import detect_skeleton, head_up_coefficients, to_h36m

ROT = ("Zrotation", "Xrotation", "Yrotation")
POS = ("Xposition", "Yposition", "Zposition")

Joint = tuple[str, str | None, tuple[float, float, float], tuple[str, ...]]


def write_bvh(joints: list[Joint], motion: np.ndarray, frame_time: float) -> str:
    """BVH text for (name, parent, offset, channels) joints in parent-first order.

    Joints without channels whose name ends in ``_end`` become End Sites.
    """
    children: dict[str | None, list[Joint]] = {}
    for j in joints:
        children.setdefault(j[1], []).append(j)
    lines = ["HIERARCHY"]

    def emit(j: Joint, depth: int) -> None:
        name, parent, off, chans = j
        pad = "  " * depth
        if name.endswith("_end") and not chans:
            lines.append(f"{pad}End Site")
        else:
            lines.append(f"{pad}{'ROOT' if parent is None else 'JOINT'} {name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {off[0]} {off[1]} {off[2]}")
        if chans:
            lines.append(f"{pad}  CHANNELS {len(chans)} {' '.join(chans)}")
        for c in children.get(name, []):
            emit(c, depth + 1)
        lines.append(pad + "}")

    emit(children[None][0], 0)
    lines += ["MOTION", f"Frames: {len(motion)}", f"Frame Time: {frame_time}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in np.atleast_2d(motion)]
    return "\n".join(lines) + "\n"


CHAIN: list[Joint] = [
    ("root", None, (0.0, 0.0, 0.0), POS + ROT),
    ("a", "root", (0.0, 1.0, 0.0), ROT),
    ("a_end", "a", (0.0, 1.0, 0.0), ()),
]


def test_parse_and_fk_hand_computed() -> None:
    motion = np.array(
        [
            [1, 2, 3, 0, 0, 0, 0, 0, 0],
            [1, 2, 3, 90, 0, 0, 0, 90, 0],  # root Z 90 deg, joint a X 90 deg
        ],
        dtype=float,
    )
    bvh = parse_bvh(write_bvh(CHAIN, motion, 1 / 120))
    assert bvh.names == ("root", "a", "a_end")
    assert list(bvh.parents) == [-1, 0, 1]
    assert bvh.channels[2] == ()
    assert bvh.num_frames == 2 and bvh.fps == pytest.approx(120.0)
    pos, rot = forward_kinematics(bvh)
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 3, 3], [1, 4, 3]], atol=1e-9)
    # Frame 1: Rz(90) maps the offset (0,1,0) to (-1,0,0); then Rz90 Rx90 (0,1,0) = (0,0,1).
    np.testing.assert_allclose(pos[1], [[1, 2, 3], [0, 2, 3], [0, 2, 4]], atol=1e-9)
    np.testing.assert_allclose(rot[1, 1], euler_to_matrix([90, 90, 0], "ZXY"), atol=1e-12)
    pos_sel, _ = forward_kinematics(bvh, np.array([1]))
    np.testing.assert_allclose(pos_sel[0], pos[1])


@pytest.mark.parametrize(
    ("order", "expected_end"),
    [("YX", (1.0, 0.0, 0.0)), ("XY", (0.0, 0.0, 1.0))],  # Ry90 Rx90 vs Rx90 Ry90 of (0,1,0)
)
def test_euler_channel_order_is_respected(order: str, expected_end: tuple) -> None:
    chans = tuple(f"{ax}rotation" for ax in order)
    joints: list[Joint] = [
        ("root", None, (0.0, 0.0, 0.0), POS),
        ("a", "root", (0.0, 0.0, 0.0), chans),
        ("a_end", "a", (0.0, 1.0, 0.0), ()),
    ]
    bvh = parse_bvh(write_bvh(joints, np.array([[0, 0, 0, 90, 90]], float), 1 / 30))
    pos, _ = forward_kinematics(bvh)
    np.testing.assert_allclose(pos[0, 2], expected_end, atol=1e-9)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "ZYX", "YZX"])
def test_euler_to_matrix_matches_scipy_intrinsic(order: str) -> None:
    angles = np.array([[10.0, -35.0, 70.0], [120.0, 5.0, -80.0]])
    expected = Rotation.from_euler(order, angles, degrees=True).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(angles, order), expected, atol=1e-12)


def test_parse_rejects_bad_files() -> None:
    good = write_bvh(CHAIN, np.zeros((1, 9)), 0.01)
    with pytest.raises(ValueError):
        parse_bvh(good.replace("Xrotation", "Qrotation"))
    with pytest.raises(ValueError):
        parse_bvh(good.split("MOTION")[0])


def test_subsample_indices() -> None:
    idx, fps = subsample_indices(10, 120.0, 30.0)
    assert list(idx) == [0, 4, 8] and fps == pytest.approx(30.0)
    idx, fps = subsample_indices(7, 60.0, 30.0, start=1)
    assert list(idx) == [1, 3, 5] and fps == pytest.approx(30.0)


# A Daz-named figure in centimetres, Y up, standing at the origin (rest pose).
DAZ: list[Joint] = [
    ("hip", None, (0, 100, 0), POS + ROT),
    ("rThigh", "hip", (-10, 0, 0), ROT), ("rShin", "rThigh", (0, -45, 0), ROT),
    ("rFoot", "rShin", (0, -45, 0), ROT),
    ("lThigh", "hip", (10, 0, 0), ROT), ("lShin", "lThigh", (0, -45, 0), ROT),
    ("lFoot", "lShin", (0, -45, 0), ROT),
    ("abdomen", "hip", (0, 20, 0), ROT), ("chest", "abdomen", (0, 20, 0), ROT),
    ("neck", "chest", (0, 10, 0), ROT), ("head", "neck", (0, 10, 0), ROT),
    ("leftEye", "head", (3, 5, 8), ROT), ("rightEye", "head", (-3, 5, 8), ROT),
    ("lShldr", "chest", (15, 0, 0), ROT), ("lForeArm", "lShldr", (25, 0, 0), ROT),
    ("lHand", "lForeArm", (25, 0, 0), ROT),
    ("rShldr", "chest", (-15, 0, 0), ROT), ("rForeArm", "rShldr", (-25, 0, 0), ROT),
    ("rHand", "rForeArm", (-25, 0, 0), ROT),
]  # fmt: skip
N_DAZ_CH = 3 + 3 * len(DAZ)


def _yup_to_zup(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def test_daz_mapping_to_h36m() -> None:
    motion = np.zeros((2, N_DAZ_CH))
    head_col = 3 + 3 * [j[0] for j in DAZ].index("head")
    motion[1, head_col + 1] = 30.0  # frame 1: head pitched 30 deg about X
    bvh = parse_bvh(write_bvh(DAZ, motion, 1 / 120))
    skel = detect_skeleton(bvh.names)
    assert skel.name == "daz"
    up = head_up_coefficients(bvh, skel)
    pos, _ = forward_kinematics(bvh)
    h36m = to_h36m(pos, bvh.names, skel, up)
    assert h36m.shape == (2, 17, 3)
    expected_yup_m = {
        0: (0, 1.0, 0), 1: (-0.1, 1.0, 0), 2: (-0.1, 0.55, 0), 3: (-0.1, 0.1, 0),
        4: (0.1, 1.0, 0), 6: (0.1, 0.1, 0), 7: (0, 1.25, 0), 8: (0, 1.5, 0),
        9: (0, 1.65, 0.08), 10: (0, 1.76, 0.08), 11: (0.15, 1.4, 0), 13: (0.65, 1.4, 0),
        14: (-0.15, 1.4, 0), 16: (-0.65, 1.4, 0),
    }  # fmt: skip
    for j, p in expected_yup_m.items():
        np.testing.assert_allclose(h36m[0, j], _yup_to_zup(p), atol=1e-9, err_msg=f"joint {j}")
    # Head pitched: the eyes and the head top turn with the head (up axis is head-rigid).
    rx = euler_to_matrix([30.0], "X")
    head_m = np.array([0, 1.6, 0])
    eye = head_m + rx @ np.array([0, 0.05, 0.08])
    np.testing.assert_allclose(h36m[1, 9], _yup_to_zup(eye), atol=1e-9)
    np.testing.assert_allclose(h36m[1, 10], _yup_to_zup(eye + 0.11 * rx @ [0, 1, 0]), atol=1e-9)
    np.testing.assert_allclose(h36m[1, :9], h36m[0, :9], atol=1e-9)


def test_cmu_named_skeleton_uses_head_bone() -> None:
    names = ["Hips", "RightHip", "RightKnee", "RightAnkle", "LeftHip", "LeftKnee", "LeftAnkle",
             "lowerneck", "Head", "Head_end", "LeftShoulder", "LeftElbow", "LeftWrist",
             "RightShoulder", "RightElbow", "RightWrist"]  # fmt: skip
    skel = detect_skeleton(names)
    assert skel.name == "cmu"
    pos = np.zeros((1, len(names), 3))
    pos[0, names.index("Head")] = (0, 30, 0)  # CMU units
    pos[0, names.index("Head_end")] = (0, 32, 0)
    h36m = to_h36m(pos, names, skel)
    head_m = 30 * 0.056444
    np.testing.assert_allclose(h36m[0, 9], [0, 0, head_m + 0.08], atol=1e-9)
    np.testing.assert_allclose(h36m[0, 10], [0, 0, head_m + 0.19], atol=1e-9)
    with pytest.raises(ValueError):
        detect_skeleton(["foo", "bar"])


def _daz_walk(n_frames: int) -> np.ndarray:
    motion = np.zeros((n_frames, N_DAZ_CH))
    motion[:, 0] = np.linspace(0, 50, n_frames)  # walks along +X (cm)
    return motion


def test_rebuild_writes_the_shared_layout(tmp_path: Path) -> None:
    przestr, iclone, koyama = (tmp_path / n for n in ("przestr", "iclone", "koyama"))
    files = {
        przestr / "data/08/08_01.bvh": (_daz_walk(48), 1 / 120),  # 120 Hz -> 12 frames
        koyama / "resources/131_01.bvh": (_daz_walk(40), 1 / 120),  # 10 frames
        koyama / "resources/scaled_131_01.bvh": (_daz_walk(40), 1 / 120),  # not a trial
        iclone / "All_BVH/subjects/008/008_01.bvh": (_daz_walk(60), 1 / 60),  # duplicate
        iclone / "All_BVH/subjects/002/002_05.bvh": (_daz_walk(25), 1 / 60),  # 1, 3, ..., 23
        iclone / "All_BVH/subjects/002/002_06.bvh": (_daz_walk(8), 1 / 60),  # too short
    }
    for path, (motion, dt) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(write_bvh(DAZ, motion, dt))
    out = tmp_path / "out.npz"
    argv = ["--przestr", str(przestr), "--iclone", str(iclone), "--koyama", str(koyama)]
    assert rebuild_cmu.main([*argv, "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    assert set(d) == {"poses", "subject", "sequence", "frame", "source", "fps", "joint_names",
                      "parents", "up_axis", "units"}  # fmt: skip
    n = 12 + 10 + 12
    assert d["poses"].shape == (n, 17, 3) and d["poses"].dtype == np.float32
    assert d["subject"].dtype == np.int16 and d["frame"].dtype == np.int32
    assert d["fps"].dtype == np.float32 and np.allclose(d["fps"], 30.0)
    assert list(np.unique(d["sequence"])) == ["02_05", "08_01", "131_01"]
    assert sorted(set(d["source"].tolist())) == ["iclone_daz", "koyama_daz", "przestr_daz"]
    assert list(d["frame"][d["sequence"] == "02_05"]) == list(range(1, 24, 2))
    assert list(d["frame"][d["sequence"] == "08_01"]) == list(range(0, 48, 4))
    assert d["joint_names"].shape == (17,) and d["parents"].tolist()[:4] == [-1, 0, 1, 2]
    assert str(d["up_axis"]) == "z" and str(d["units"]) == "metres"
    # Z up, metres: the figure stands with its feet 0.1 m above the floor, head top at 1.76 m.
    np.testing.assert_allclose(d["poses"][:, 3, 2], 0.1, atol=1e-6)
    np.testing.assert_allclose(d["poses"][:, 10, 2], 1.76, atol=1e-6)
    walk = d["poses"][d["sequence"] == "08_01", 0, 0]
    np.testing.assert_allclose(walk, np.linspace(0, 0.5, 48)[::4], atol=1e-6)
