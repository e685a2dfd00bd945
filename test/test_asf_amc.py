"""Acclaim ASF/AMC reader and forward kinematics (training.asf_amc) on small written skeletons."""

import numpy as np
import pytest

from training.asf_amc import forward_kinematics, main, parse_amc, parse_asf, trial_to_h36m


def asf_text(bones, length_unit=0.45, angle="deg"):
    """bones: (name, parent, direction, length, axis 'ax ay az', dofs)."""
    lines = [":version 1.10", ":name VICON", ":units", "  mass 1.0", f"  length {length_unit}",
             f"  angle {angle}", ":root", "   order TX TY TZ RX RY RZ", "   axis XYZ",
             "   position 0 0 0", "   orientation 0 0 0", ":bonedata"]  # fmt: skip
    for i, (name, _, d, length, axis, dofs) in enumerate(bones):
        lines += ["  begin", f"     id {i + 1}", f"     name {name}",
                  "     direction " + " ".join(str(v) for v in d), f"     length {length}",
                  f"     axis {axis} XYZ"]  # fmt: skip
        if dofs:
            lines.append("    dof " + " ".join(dofs))
        lines.append("  end")
    lines += [":hierarchy", "  begin"]
    children: dict[str, list[str]] = {}
    for name, parent, *_ in bones:
        children.setdefault(parent, []).append(name)
    lines += [f"    {p} " + " ".join(c) for p, c in children.items()]
    lines.append("  end")
    return "\n".join(lines) + "\n"


def amc_text(frames):
    """frames: list of {bone: values} (root: tx ty tz rx ry rz)."""
    out = ["#!OML:ASF test", ":FULLY-SPECIFIED", ":DEGREES"]
    for i, frame in enumerate(frames, start=1):
        out.append(str(i))
        out += [f"{b} " + " ".join(str(v) for v in vals) for b, vals in frame.items()]
    return "\n".join(out) + "\n"


CHAIN = [
    ("upper", "root", (1, 0, 0), 2.0, "0 0 0", ("rx", "ry", "rz")),
    ("lower", "upper", (0, -1, 0), 3.0, "0 0 90", ("rx",)),
]


def test_rest_pose_is_the_sum_of_length_times_direction():
    asf = parse_asf(asf_text(CHAIN))
    assert [b.name for b in asf.bones] == ["upper", "lower"]
    assert asf.metres_per_unit == pytest.approx(0.0254 / 0.45)
    numbers, root, angles = parse_amc(amc_text([{"root": [1, 2, 3, 0, 0, 0]}]), asf)
    assert numbers.tolist() == [1]
    start, end = forward_kinematics(asf, root, angles)
    np.testing.assert_allclose(start[0, 0], [1, 2, 3])
    np.testing.assert_allclose(end[0, 0], [3, 2, 3])
    np.testing.assert_allclose(start[0, 1], end[0, 0])
    np.testing.assert_allclose(end[0, 1], [3, -1, 3])


def test_dof_rotates_about_the_bone_axis_and_children_follow():
    asf = parse_asf(asf_text(CHAIN))
    # 'lower' has axis rotated 90 deg about z: its rx turns about world y (Rz90 @ x = y),
    # so (0, -1, 0) stays put; 'upper' rz 90 turns the whole chain about z.
    frames = [{"root": [0] * 6, "lower": [90]}, {"root": [0] * 6, "upper": [0, 0, 90]}]
    _, root, angles = parse_amc(amc_text(frames), asf)
    start, end = forward_kinematics(asf, root, angles)
    np.testing.assert_allclose(end[0, 1] - start[0, 1], [0, -3, 0], atol=1e-12)
    np.testing.assert_allclose(end[1, 0], [0, 2, 0], atol=1e-12)
    np.testing.assert_allclose(end[1, 1] - start[1, 1], [3, 0, 0], atol=1e-12)


def test_axis_makes_the_dof_turn_about_a_rotated_axis():
    bones = [("b", "root", (1, 0, 0), 1.0, "0 0 90", ("rx",))]
    asf = parse_asf(asf_text(bones))
    _, root, angles = parse_amc(amc_text([{"root": [0] * 6, "b": [90]}]), asf)
    _, end = forward_kinematics(asf, root, angles)
    # rx about the bone's x axis, which the axis line turned onto world y: (1,0,0) -> (0,0,-1)
    np.testing.assert_allclose(end[0, 0], [0, 0, -1], atol=1e-12)


def test_bone_lengths_hold_under_any_angles_and_radians_read_as_degrees():
    rng = np.random.default_rng(0)
    deg = parse_asf(asf_text(CHAIN))
    chain_rad = [
        (*b[:4], "0 0 " + str(np.pi / 2) if b[4] == "0 0 90" else b[4], b[5]) for b in CHAIN
    ]
    rad = parse_asf(asf_text(chain_rad, angle="rad"))
    vals = rng.uniform(-120, 120, size=(5, 4))
    frames_deg = [{"root": [0, 0, 0, *v[:3]], "upper": list(v[:3]), "lower": [v[3]]} for v in vals]
    frames_rad = [
        {b: (list(np.deg2rad(x)) if b != "root" else [0, 0, 0, *np.deg2rad(x[3:])])
         for b, x in f.items()} for f in frames_deg
    ]  # fmt: skip
    s1, e1 = forward_kinematics(deg, *parse_amc(amc_text(frames_deg), deg)[1:])
    _, e2 = forward_kinematics(rad, *parse_amc(amc_text(frames_rad), rad)[1:])
    np.testing.assert_allclose(np.linalg.norm(e1 - s1, axis=-1), [[2.0, 3.0]] * 5)
    np.testing.assert_allclose(e1, e2, atol=1e-9)


# A CMU-named skeleton standing upright (Y up), just the bones the H36M mapping reads.
BODY = [
    ("lhipjoint", "root", (1, -1, 0), 1.0, "0 0 0", ()),
    ("lfemur", "lhipjoint", (0, -1, 0), 7.0, "0 0 0", ("rx", "ry", "rz")),
    ("ltibia", "lfemur", (0, -1, 0), 7.0, "0 0 0", ("rx",)),
    ("lfoot", "ltibia", (0, 0, 1), 2.0, "0 0 0", ("rx", "rz")),
    ("rhipjoint", "root", (-1, -1, 0), 1.0, "0 0 0", ()),
    ("rfemur", "rhipjoint", (0, -1, 0), 7.0, "0 0 0", ("rx", "ry", "rz")),
    ("rtibia", "rfemur", (0, -1, 0), 7.0, "0 0 0", ("rx",)),
    ("rfoot", "rtibia", (0, 0, 1), 2.0, "0 0 0", ("rx", "rz")),
    ("thorax", "root", (0, 1, 0), 8.0, "0 0 0", ("rx", "ry", "rz")),
    ("lowerneck", "thorax", (0, 1, 0), 2.0, "0 0 0", ("rx", "ry", "rz")),
    ("head", "lowerneck", (0, 1, 0), 3.0, "0 0 0", ("rx", "ry", "rz")),
    ("lclavicle", "thorax", (1, 0, 0), 3.0, "0 0 0", ()),
    ("lhumerus", "lclavicle", (1, 0, 0), 5.0, "0 0 0", ("rx", "ry", "rz")),
    ("lradius", "lhumerus", (1, 0, 0), 4.0, "0 0 0", ("rx",)),
    ("lwrist", "lradius", (1, 0, 0), 1.0, "0 0 0", ()),
    ("rclavicle", "thorax", (-1, 0, 0), 3.0, "0 0 0", ()),
    ("rhumerus", "rclavicle", (-1, 0, 0), 5.0, "0 0 0", ("rx", "ry", "rz")),
    ("rradius", "rhumerus", (-1, 0, 0), 4.0, "0 0 0", ("rx",)),
    ("rwrist", "rradius", (-1, 0, 0), 1.0, "0 0 0", ()),
]


def test_a_trial_maps_to_h36m_in_metres_z_up_at_30_hz():
    asf = parse_asf(asf_text(BODY))
    frames = [{"root": [0, 20, 0, 0, 0, 0]} for _ in range(8)]
    poses, numbers, fps = trial_to_h36m(asf, amc_text(frames), 120.0, 30.0)
    assert poses.shape == (2, 17, 3) and numbers.tolist() == [1, 5] and fps == 30.0
    u = 0.0254 / 0.45
    p = poses[0]
    np.testing.assert_allclose(p[0], [0, 0, (20 - np.sqrt(0.5)) * u], atol=1e-9)  # mid-hips
    np.testing.assert_allclose(p[4], [np.sqrt(0.5) * u, 0, (20 - np.sqrt(0.5)) * u], atol=1e-9)
    np.testing.assert_allclose(p[5, 2] - p[4, 2], -7 * u)  # left knee 7 units below the hip
    np.testing.assert_allclose(p[8], [0, 0, 28 * u], atol=1e-9)  # thorax = start of lowerneck
    np.testing.assert_allclose(p[11], [3 * u, 0, 28 * u], atol=1e-9)  # shoulder = humerus start
    np.testing.assert_allclose(p[13, 0], 12 * u)  # wrist = start of the wrist bone
    head = 30 * u
    np.testing.assert_allclose(p[9, 2], head + 0.08)  # nose / head top along the head bone
    np.testing.assert_allclose(p[10, 2], head + 0.19)


def test_the_command_writes_and_merges(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "07.asf").write_text(asf_text(BODY))
    frames = [{"root": [0, 20, 0, 0, 10 * i, 0], "lfemur": [i, 0, 0]} for i in range(48)]
    (src / "07_05.amc").write_text(amc_text(frames))
    first = tmp_path / "first.npz"
    assert main(["--source", str(src), "--trial", "07_05", "07.asf", "07_05.amc",
                 "--tag", "test_asfamc", "--out", str(first)]) == 0  # fmt: skip
    both = tmp_path / "both.npz"
    argv = ["--source", str(src), "--trial", "07_06", "07.asf", "07_05.amc",
            "--tag", "another_asfamc", "--merge", str(first), "--out", str(both)]  # fmt: skip
    assert main(argv) == 0
    with np.load(both) as d:
        assert d["poses"].shape == (24, 17, 3)
        assert d["sequence"].tolist() == ["07_05"] * 12 + ["07_06"] * 12
        assert d["source"].tolist() == ["test_asfamc"] * 12 + ["another_asfamc"] * 12
        assert (d["subject"] == 7).all() and d["frame"][:3].tolist() == [1, 5, 9]
        assert str(d["up_axis"]) == "z"
    assert main(["--source", str(src), "--trial", "07_07", "07.asf", "missing.amc",
                 "--tag", "x", "--out", str(tmp_path / "x.npz")]) == 1  # fmt: skip


def test_a_manifest_names_the_clones_and_tags_each_trial(tmp_path):
    clone = tmp_path / "clones" / "mocap"  # a plain directory named after the repository
    clone.mkdir(parents=True)
    (clone / "s7.asf").write_text(asf_text(BODY))
    (clone / "walk.amc").write_text(amc_text([{"root": [0, 20, 0, 0, 0, 0]}] * 40))
    manifest = tmp_path / "trials.csv"
    manifest.write_text(
        "# repository,commit,SS_TT,ASF,AMC,tag\n"
        "someone/mocap,0123,07_05,s7.asf,walk.amc,someone_asfamc+dup\n"
        "someone/mocap,0123,07_06,s7.asf,walk.amc,someone_asfamc\n"
    )
    out = tmp_path / "out.npz"
    assert main(["--manifest", str(manifest), "--clones", str(tmp_path / "clones"),
                 "--out", str(out)]) == 0  # fmt: skip
    with np.load(out) as d:
        assert d["source"].tolist() == ["someone_asfamc+dup"] * 10 + ["someone_asfamc"] * 10
    assert main(["--manifest", str(manifest), "--clones", str(tmp_path), "--out", str(out)]) == 1


def test_a_broken_file_is_one_line_not_a_traceback(tmp_path, capsys):
    (tmp_path / "07.asf").write_text(asf_text(CHAIN).replace("     length 3.0\n", ""))
    (tmp_path / "07_01.amc").write_text(amc_text([{"root": [0] * 6}] * 8))
    argv = ["--source", str(tmp_path), "--trial", "07_01", "07.asf", "07_01.amc", "--out",
            str(tmp_path / "x.npz")]  # fmt: skip
    assert main(argv) == 1
    assert "bone 'lower' has no direction or length" in capsys.readouterr().err
    (tmp_path / "07.asf").write_text(asf_text(CHAIN))
    (tmp_path / "07_01.amc").write_text("1\nroot 0 0 zero 0 0 0\n")
    assert main(argv) == 1
    assert not (tmp_path / "x.npz").exists()
