"""CMU trials on their own skeletons from Acclaim ASF/AMC files, to the H36M-17 training layout.

The CMU database's original format is an ASF skeleton (one per subject: bone directions,
lengths, rotation axes) and AMC motions (per frame, the root's translation and every bone's
rotation). Real skeletons are what the lifter's body estimate learns from, so every public
ASF/AMC trial the tools can reach is worth converting. Usage (``training/README.md``)::

    python -m training.asf_amc --source mocap.git --tag gsimchoni_asfamc \\
        --trial 55_02 inst/extdata/lambada.asf inst/extdata/lambada.amc \\
        --merge ../shared/data/cmu_orig_h36m17_30fps.npz --out cmu_orig_plus.npz

Forward kinematics (the Acclaim convention of CMU's own player): a bone's rotation axes
``C`` (its ``axis`` line; order ``XYZ`` means ``Rz @ Ry @ Rx``, x applied first), its AMC
angles ``M`` (``rx ry rz``, the same composition), local rotation ``C M C^-1``, global
rotation the parent's times the local one, and the bone's end its start plus
``length * R_global @ direction`` (``direction`` in the skeleton's world frame). Joint
``name`` below is the *start* of bone ``name`` (where BVH conversions put the joint of that
name), ``name_end`` its end, so :func:`training.cmu_skeletons.to_h36m` with the ``asf`` map
applies unchanged: hips = start of the femurs, thorax = start of ``lowerneck``, nose and
head top 8 / 19 cm along the ``head`` bone.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from training.bvh import euler_to_matrix, subsample_indices
from training.cmu_skeletons import SKELETON_MAPS, to_h36m
from training.rebuild_cmu import MIN_FRAMES, Source, rows_to_arrays

INCH_M = 0.0254
_ROW_KEYS = ("poses", "subject", "sequence", "frame", "source", "fps")  # one entry a frame
_DOF_AXES = {"rx": 0, "ry": 1, "rz": 2}


@dataclasses.dataclass(frozen=True)
class AsfBone:
    name: str
    parent: int  # index into Asf.bones, -1 = the root
    direction: np.ndarray  # (3,) unit, skeleton world frame
    length: float  # file units
    axis: np.ndarray  # (3, 3) C
    dofs: tuple[str, ...]  # subset of rx ry rz, in file order


@dataclasses.dataclass(frozen=True)
class Asf:
    bones: tuple[AsfBone, ...]  # parents before children
    root_axis: np.ndarray  # (3, 3)
    root_order: tuple[str, ...]  # e.g. TX TY TZ RX RY RZ
    angle_unit: str  # "deg" | "rad"
    metres_per_unit: float

    def index(self, name: str) -> int:
        return [b.name for b in self.bones].index(name)


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    key = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            head, _, rest = line[1:].partition(" ")
            key = head.lower()
            out.setdefault(key, [])
            if rest.strip():
                out[key].append(rest.strip())
        else:
            out.setdefault(key, []).append(line)
    return out


def _axis_matrix(values: list[str], order: str, angle_unit: str) -> np.ndarray:
    """``axis ax ay az XYZ`` -> C = Rz(az) @ Ry(ay) @ Rx(ax) for order XYZ (x first)."""
    to_deg = np.rad2deg if angle_unit == "rad" else float
    angles = {a: float(to_deg(float(v))) for a, v in zip("XYZ", values, strict=True)}
    order = order.upper()
    # applied first = rightmost: reverse the file order for euler_to_matrix's left-to-right product
    return euler_to_matrix(np.array([angles[a] for a in order[::-1]]), order[::-1])


def parse_asf(text: str) -> Asf:
    """An ASF skeleton (``ValueError`` on a file without bones or hierarchy)."""
    sec = _sections(text)
    units = dict(line.split()[:2] for line in sec.get("units", []) if len(line.split()) >= 2)
    length_unit = float(units.get("length", 1.0))
    angle_unit = units.get("angle", "deg").lower()[:3]
    root = {line.split()[0].lower(): line.split()[1:] for line in sec.get("root", [])}
    root_axis = _axis_matrix(
        root.get("orientation", ["0", "0", "0"]), root.get("axis", ["XYZ"])[0], angle_unit
    )
    raw: dict[str, dict] = {}
    cur: dict | None = None
    for line in sec.get("bonedata", []):
        word, *rest = line.split()
        if word == "begin":
            cur = {}
        elif word == "end" and cur is not None:
            raw[cur["name"]] = cur
            cur = None
        elif cur is not None and word in ("name", "direction", "length", "axis", "dof"):
            cur[word] = rest[0] if word == "name" else rest
    parent_of: dict[str, str] = {}
    for line in sec.get("hierarchy", []):
        words = line.split()
        if words[0] in ("begin", "end"):
            continue
        for child in words[1:]:
            parent_of[child] = words[0]
    if not raw or not parent_of:
        raise ValueError("ASF: no bones or no hierarchy")
    order: list[str] = []
    pending = [c for c, p in parent_of.items() if p == "root"]
    while pending:  # breadth first from the root: parents before children
        name = pending.pop(0)
        order.append(name)
        pending += [c for c, p in parent_of.items() if p == name]
    bones = []
    for name in order:
        b = raw.get(name, {})
        if "direction" not in b or "length" not in b:
            raise ValueError(f"ASF: bone {name!r} has no direction or length in :bonedata")
        d = np.array([float(v) for v in b["direction"]])
        ax = b.get("axis", ["0", "0", "0", "XYZ"])
        bones.append(
            AsfBone(
                name=name,
                parent=-1 if parent_of[name] == "root" else order.index(parent_of[name]),
                direction=d / max(np.linalg.norm(d), 1e-12),
                length=float(b["length"][0]),
                axis=_axis_matrix(ax[:3], ax[3] if len(ax) > 3 else "XYZ", angle_unit),
                dofs=tuple(v.lower() for v in b.get("dof", [])),
            )
        )
    return Asf(
        bones=tuple(bones),
        root_axis=root_axis,
        root_order=tuple(v.upper() for v in root.get("order", "TX TY TZ RX RY RZ".split())),
        angle_unit=angle_unit,
        metres_per_unit=INCH_M / length_unit,
    )


def parse_amc(text: str, asf: Asf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AMC frames -> frame numbers (F,), root values (F, len(root_order)), bone angles (F, B, 3);
    every angle in degrees (an ASF in radians converted here).

    A bone without a line in a frame, or without some dofs, keeps 0 for them.
    """
    names = {b.name: i for i, b in enumerate(asf.bones)}
    numbers: list[int] = []
    roots: list[list[float]] = []
    angles: list[np.ndarray] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ":")):
            continue
        words = line.split()
        if len(words) == 1 and words[0].isdigit():
            numbers.append(int(words[0]))
            roots.append([0.0] * len(asf.root_order))
            angles.append(np.zeros((len(asf.bones), 3)))
            continue
        if not roots:
            raise ValueError(f"AMC: values before the first frame number: {line[:40]!r}")
        values = [float(v) for v in words[1:]]
        if words[0] == "root":
            roots[-1] = values
        elif words[0] in names:
            bone = asf.bones[names[words[0]]]
            for dof, v in zip(bone.dofs, values, strict=False):  # a short line keeps 0
                if dof in _DOF_AXES:
                    angles[-1][names[words[0]], _DOF_AXES[dof]] = v
    if not roots:
        raise ValueError("AMC: no frames")
    a = np.stack(angles)
    r = np.array(roots, dtype=np.float64)
    if asf.angle_unit == "rad":
        a = np.rad2deg(a)
        rot = [i for i, c in enumerate(asf.root_order) if c.startswith("R")]
        r[:, rot] = np.rad2deg(r[:, rot])
    return np.array(numbers), r, a


def forward_kinematics(asf: Asf, root: np.ndarray, angles: np.ndarray):
    """:func:`parse_amc`'s root values and angles -> bone starts and ends, (F, B, 3) each, in
    file units, the skeleton's Y-up world."""
    n_f, n_b = angles.shape[:2]
    col = {c: i for i, c in enumerate(asf.root_order)}
    trans = np.stack(
        [root[:, col[c]] if c in col else np.zeros(n_f) for c in ("TX", "TY", "TZ")], -1
    )
    rot_deg = np.stack(
        [root[:, col[c]] if c in col else np.zeros(n_f) for c in ("RX", "RY", "RZ")], -1
    )
    c = asf.root_axis
    root_rot = c @ euler_to_matrix(rot_deg[:, ::-1], "ZYX") @ c.T
    start = np.zeros((n_f, n_b, 3))
    end = np.zeros((n_f, n_b, 3))
    glob = np.zeros((n_f, n_b, 3, 3))
    for i, b in enumerate(asf.bones):
        local = b.axis @ euler_to_matrix(angles[:, i, ::-1], "ZYX") @ b.axis.T
        if b.parent < 0:
            glob[:, i] = root_rot @ local
            start[:, i] = trans
        else:
            glob[:, i] = glob[:, b.parent] @ local
            start[:, i] = end[:, b.parent]
        end[:, i] = start[:, i] + b.length * np.einsum("fij,j->fi", glob[:, i], b.direction)
    return start, end


def trial_to_h36m(asf: Asf, amc_text: str, fps_in: float = 120.0, fps_out: float = 30.0):
    """One trial -> (F, 17, 3) metres Z up (H36M-17), the kept AMC frame numbers, the rate."""
    numbers, root, angles = parse_amc(amc_text, asf)
    idx, fps_eff = subsample_indices(len(root), fps_in, fps_out)
    start, end = forward_kinematics(asf, root[idx], angles[idx])
    names = [b.name for b in asf.bones] + ["head_end"]
    pos = np.concatenate([start, end[:, [asf.index("head")]]], axis=1)
    skel = dataclasses.replace(SKELETON_MAPS["asf"], scale_m=asf.metres_per_unit)
    return to_h36m(pos, names, skel), numbers[idx], fps_eff


@dataclasses.dataclass(frozen=True)
class Trial:
    """One trial to convert: where its files are and the rows' tags."""

    source: Source
    sid: str  # CMU SS_TT
    asf: str
    amc: str
    tag: str


def manifest_rows(path: str | Path) -> list[list[str]]:
    """The rows of a trial list (CSV: repository, commit, SS_TT, ASF path, AMC path, source
    tag), stripped; blank lines and ``#`` comments left out."""
    return [
        [v.strip() for v in raw.split(",")]
        for raw in Path(path).read_text().splitlines()
        if raw.strip() and not raw.lstrip().startswith("#")
    ]


def read_manifest(path: str | Path, clones: str | Path) -> list[Trial]:
    """A trial list (:func:`manifest_rows`) with every ``owner/name`` found in ``clones`` as
    ``name.git`` or ``name``."""
    trials, sources = [], {}
    for repo, _commit, sid, asf, amc, tag in manifest_rows(path):
        if repo not in sources:
            name = repo.split("/")[-1]
            found = [
                Path(clones) / n for n in (f"{name}.git", name) if (Path(clones) / n).is_dir()
            ]
            if not found:
                raise FileNotFoundError(
                    f"no clone of {repo} in {clones} (git clone --bare "
                    f"https://github.com/{repo} {Path(clones) / name}.git)"
                )
            sources[repo] = Source(found[0])
        trials.append(Trial(sources[repo], sid, asf, amc, tag))
    return trials


def convert(
    trials: list[Trial], fps_in: float = 120.0, fps: float = 30.0
) -> dict[str, np.ndarray]:
    """Every trial, in order, to the shared files' layout (:func:`rebuild_cmu.rows_to_arrays`);
    ``FileNotFoundError`` for a missing file, a trial too short or not
    finite is left out with one line on stderr."""
    cols: dict[str, list] = {k: [] for k in _ROW_KEYS}
    for t in trials:
        asf_text, amc_text = t.source.read(t.asf), t.source.read(t.amc)
        if asf_text is None or amc_text is None:
            raise FileNotFoundError(f"{t.sid}: {t.asf} or {t.amc} not in {t.source.path}")
        poses, frames, fps_eff = trial_to_h36m(parse_asf(asf_text), amc_text, fps_in, fps)
        finite = bool(np.isfinite(poses).all())
        if len(frames) < MIN_FRAMES or not finite:
            print(f"{t.sid}: left out ({len(frames)} frames, finite: {finite})", file=sys.stderr)
            continue
        n = len(frames)
        cols["poses"].append(poses.astype(np.float32))
        cols["subject"] += [int(t.sid.split("_")[0])] * n
        cols["sequence"] += [t.sid] * n
        cols["frame"] += list(frames)
        cols["source"] += [t.tag] * n
        cols["fps"] += [fps_eff] * n
        print(f"{t.sid}: {n} frames at {fps_eff:g} Hz ({t.tag})", file=sys.stderr)
    return rows_to_arrays(cols)


def _append(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``old`` then ``new``, in ``new``'s dtype (strings as wide as the longer)."""
    both = np.concatenate([old, new])
    return both if new.dtype.kind == "U" else both.astype(new.dtype)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", help="a trial list (training/data/cmu_*_trials.csv)")
    ap.add_argument(
        "--clones", default=".", help="with --manifest: folder of the repositories' clones"
    )
    ap.add_argument(
        "--source", help="without --manifest: a clone, bare git dir or plain directory"
    )
    ap.add_argument(
        "--trial", nargs=3, action="append", default=[], metavar=("SS_TT", "ASF", "AMC"),
        help="CMU subject_trial id and the two files' paths in --source (repeat)",
    )  # fmt: skip
    ap.add_argument("--tag", default="asfamc", help="with --trial: the rows' source tag")
    ap.add_argument("--fps-in", type=float, default=120.0, help="the AMC frame rate (CMU: 120)")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--merge", default=None, help="an npz of the same layout to append to")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        if args.manifest:
            trials = read_manifest(args.manifest, args.clones)
        elif args.source and args.trial:
            src = Source(args.source)
            trials = [Trial(src, sid, asf, amc, args.tag) for sid, asf, amc in args.trial]
        else:
            ap.error("give --manifest, or --source with --trial")
        arrays = convert(trials, args.fps_in, args.fps)
    except (FileNotFoundError, ValueError) as exc:
        print(f"asf_amc: {exc}", file=sys.stderr)
        return 1
    if args.merge:
        with np.load(args.merge, allow_pickle=False) as prev:
            arrays |= {k: _append(prev[k], arrays[k]) for k in _ROW_KEYS}
    np.savez_compressed(args.out, **arrays)
    print(f"{args.out}: {len(arrays['poses'])} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
