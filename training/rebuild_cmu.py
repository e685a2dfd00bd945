"""Rebuild the CMU training file (H36M-17, metres, Z up, 30 Hz) from public BVH copies.

Usage (see ``training/README.md``)::

    python -m training.rebuild_cmu --przestr przestr.git --iclone iclone.git \\
        --koyama bvh11.git --out cmu_h36m17_30fps.npz

Each input is a clone of one public repository re-hosting part of the CMU database: a
bare git directory (``git clone --bare``), a normal clone, or a plain directory with the
same file layout. The output has the keys of ``shared/data/cmu_h36m17_30fps.npz``:
``poses subject sequence frame source fps joint_names parents up_axis units``.

When a trial is in both the Przestr and the iClone copies, the Przestr copy is used.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hpe3d_ros.skeleton import H36M_JOINT_NAMES, H36M_PARENTS
from training.bvh import forward_kinematics, parse_bvh, subsample_indices
from training.cmu_skeletons import detect_skeleton, head_up_coefficients, to_h36m

#: Sequences shorter than this after subsampling are skipped.
MIN_FRAMES = 10
#: ``joint_names`` as written in the shared file: the order of ``H36M_JOINT_NAMES``, short names.
FILE_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
    "neck_nose", "head_top", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow",
    "r_wrist",
)  # fmt: skip
assert len(FILE_JOINT_NAMES) == len(H36M_JOINT_NAMES)


class Source:
    """Read-only file tree: a bare git dir, a clone (its HEAD), or a plain directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if (self.path / "objects").is_dir() and (self.path / "HEAD").is_file():
            self.git_dir: Path | None = self.path
        elif (self.path / ".git").is_dir():
            self.git_dir = self.path / ".git"
        elif self.path.is_dir():
            self.git_dir = None
        else:
            raise FileNotFoundError(f"no such source directory: {self.path}")

    def files(self) -> Iterator[str]:
        """Relative POSIX paths of all files, sorted."""
        if self.git_dir is None:
            yield from sorted(
                p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
            )
            return
        out = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "ls-tree", "-r", "--name-only", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        yield from sorted(out.splitlines())

    def read(self, rel: str) -> str | None:
        """File text (latin-1), or None if the blob or file is missing."""
        if self.git_dir is None:
            p = self.path / rel
            return p.read_text(encoding="latin-1") if p.is_file() else None
        r = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "show", f"HEAD:{rel}"], capture_output=True
        )
        return r.stdout.decode("latin-1") if r.returncode == 0 else None


def list_trials(przestr: Source, iclone: Source, koyama: Source) -> list[dict]:
    """Candidate trials in processing order: Przestr, then Koyama (131), then iClone."""
    items = []
    for rel in przestr.files():
        if rel.startswith("data/") and rel.endswith(".bvh"):
            sid = rel.rsplit("/", 1)[-1][:-4]
            items.append(
                dict(
                    sid=sid,
                    subject=int(sid.split("_")[0]),
                    src=przestr,
                    rel=rel,
                    drop_first=False,
                    repo="przestr",
                )
            )
    for rel in koyama.files():
        if rel.startswith("resources/131_") and rel.endswith(".bvh"):
            sid = rel.rsplit("/", 1)[-1][:-4]
            items.append(
                dict(sid=sid, subject=131, src=koyama, rel=rel, drop_first=False, repo="koyama")
            )
    for rel in iclone.files():
        if rel.startswith("All_BVH/subjects/") and rel.endswith(".bvh"):
            a, b = rel.rsplit("/", 1)[-1][:-4].split("_")
            # The iClone files start with a prepended T-pose: frame 0 is dropped.
            items.append(
                dict(
                    sid=f"{int(a):02d}_{b}",
                    subject=int(a),
                    src=iclone,
                    rel=rel,
                    drop_first=True,
                    repo="iclone",
                )
            )
    return items


def source_tag(repo: str, skeleton: str) -> str:
    """The ``source`` column: ``przestr_daz``, ``iclone_cc``, ``<repo>_cmu_orig``."""
    return f"{repo}_cmu_orig" if skeleton in ("cmu", "asf") else f"{repo}_{skeleton}"


def rebuild(
    przestr: Source, iclone: Source, koyama: Source, fps: float = 30.0
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Convert every trial; returns the npz arrays and a per-trial log."""
    cols: dict[str, list] = {k: [] for k in ("poses", "subject", "sequence", "frame", "source")}
    cols["fps"] = []
    log: list[dict] = []
    head_up: dict[str, tuple[float, float] | None] = {}  # calibrated once per skeleton
    done: set[str] = set()
    for it in list_trials(przestr, iclone, koyama):
        if it["sid"] in done:
            continue
        text = it["src"].read(it["rel"])
        if text is None:
            log.append(dict(seq=it["sid"], path=it["rel"], status="missing"))
            continue
        bvh = parse_bvh(text)
        skel = detect_skeleton(bvh.names)
        if skel.name not in head_up:
            head_up[skel.name] = head_up_coefficients(bvh, skel)
        idx, fps_eff = subsample_indices(bvh.num_frames, bvh.fps, fps, int(it["drop_first"]))
        if len(idx) < MIN_FRAMES:
            log.append(dict(seq=it["sid"], status="too short"))
            continue
        pos, _ = forward_kinematics(bvh, idx)
        poses = to_h36m(pos, bvh.names, skel, head_up[skel.name])
        if not np.isfinite(poses).all():
            log.append(dict(seq=it["sid"], status="non-finite"))
            continue
        done.add(it["sid"])
        tag = source_tag(it["repo"], skel.name)
        n = len(idx)
        cols["poses"].append(poses.astype(np.float32))
        cols["subject"] += [it["subject"]] * n
        cols["sequence"] += [it["sid"]] * n
        cols["frame"] += list(idx)
        cols["source"] += [tag] * n
        cols["fps"] += [fps_eff] * n
        log.append(
            dict(
                seq=it["sid"],
                subject=it["subject"],
                source=tag,
                src_fps=bvh.fps,
                out_frames=n,
                status="ok",
            )
        )
    return rows_to_arrays(cols), log


def rows_to_arrays(cols: dict[str, list]) -> dict[str, np.ndarray]:
    """Rows collected per trial (``poses``: (n, 17, 3) blocks; ``subject sequence frame source
    fps``: one entry a frame) -> the shared files' arrays, with their file-level keys
    (``joint_names parents up_axis units``). ``ValueError`` when no trial gave rows."""
    if not cols["poses"]:
        raise ValueError("no trial could be converted")
    return dict(
        poses=np.concatenate(cols["poses"]),
        subject=np.array(cols["subject"], dtype=np.int16),
        sequence=np.array(cols["sequence"]),
        frame=np.array(cols["frame"], dtype=np.int32),
        source=np.array(cols["source"]),
        fps=np.array(cols["fps"], dtype=np.float32),
        joint_names=np.array(FILE_JOINT_NAMES),
        parents=np.array(H36M_PARENTS, dtype=np.int8),
        up_axis=np.array("z"),
        units=np.array("metres"),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--przestr", required=True, help="clone of github.com/Przestr/motion-capture")
    ap.add_argument(
        "--iclone",
        required=True,
        help="clone of github.com/DragonForgedTheArtist/IClone-CMU-Mocap",
    )
    ap.add_argument("--koyama", required=True, help="clone of github.com/yuki-koyama/bvh11")
    ap.add_argument("--out", required=True, help="output .npz")
    ap.add_argument("--fps", type=float, default=30.0, help="target rate (integer stride)")
    ap.add_argument("--log", default=None, help="optional JSON log of every trial")
    args = ap.parse_args(argv)
    arrays, log = rebuild(Source(args.przestr), Source(args.iclone), Source(args.koyama), args.fps)
    np.savez_compressed(args.out, **arrays)
    if args.log:
        Path(args.log).write_text(json.dumps(log, indent=1))
    ok = [e for e in log if e["status"] == "ok"]
    print(
        f"{args.out}: {len(arrays['poses'])} frames, {len(ok)} sequences, "
        f"{len(np.unique(arrays['subject']))} subjects; skipped {len(log) - len(ok)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
