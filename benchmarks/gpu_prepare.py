"""Prepare the GPU run here, on the CPU: the data it carries and the exact call to make.

``python benchmarks/gpu_prepare.py`` writes into ``build/gpu_carry/`` (git-ignored, so the
device call names it in ``carry``):

* ``calibration.npz``: 2D keypoints (``kp_norm``, ``conf``) of the shared CMU mocap's
  *training* subjects seen through random vehicle cameras: the INT8 calibrator's inputs
  (``hpe3d-build-engine --calibration``);
* ``test_subjects.npz``: the same for the unseen *test* subjects, with the 3D truth
  (``pose_cam``): the INT8 (and FP16) accuracy cost is measured on them;

then checks the size of what would travel (tracked + untracked-not-ignored files + carry,
at most 64 MiB a call) and prints the one device call. ``--wheels SPEC...`` also downloads
wheels for the device's Python (cp312, manylinux x86-64) into ``build/gpu_carry/wheels``
when they fit; the device reaches no registry, so this is the only way a package gets there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CARRY = ROOT / "build" / "gpu_carry"
LIMIT_MIB = 64
#: The device: Python 3.12, x86-64, glibc >= 2.28 (KINDS.md of the device tool).
WHEEL_TAGS = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:"] + [
    f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64")
]
#: Device-call budget: one run of at most RUN_TIMEOUT_S leaves room for one re-run within the
#: 15 minutes of device time (start-up of a bare machine ~1-2 min each).
RUN_TIMEOUT_S = 360
BUDGET_S = 300


def write_views(path: Path, split: str, frames: int, seed: int, with_truth: bool) -> int:
    """Detector-like 2D views of one split of the shared mocap -> ``path``; rows written."""
    from training.data import AugmentConfig, generate, load_mocap, split_indices

    mocap = load_mocap()
    idx = split_indices(mocap["subject"], split)
    idx = idx[:: max(1, len(idx) // frames)][:frames]
    batch = generate(mocap["poses"][idx], AugmentConfig(), np.random.default_rng(seed),
                     augment_body=split == "train")  # fmt: skip
    arrays = {"kp_norm": batch.kp_norm.astype(np.float32), "conf": batch.conf.astype(np.float32)}
    if with_truth:
        arrays["pose_cam"] = batch.pose_cam.astype(np.float32)
        arrays["subject"] = mocap["subject"][idx].astype(np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return len(idx)


def travelling_bytes(carry: list[Path]) -> int:
    """Bytes a device call sends: tracked and untracked-not-ignored files, plus ``carry``."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    files = [ROOT / p for p in out.decode().split("\0") if p]
    total = sum(f.stat().st_size for f in files if f.is_file())
    for c in carry:
        total += sum(f.stat().st_size for f in c.rglob("*") if f.is_file()) if c.is_dir() else 0
    return total


def download_wheels(specs: list[str], dest: Path, room: int) -> list[str]:
    """``pip download`` each spec for the device into ``dest`` while they fit in ``room``."""
    notes = []
    for spec in specs:
        tmp = dest.parent / "wheel_tmp"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp)]
        proc = subprocess.run([*cmd, *WHEEL_TAGS, spec], capture_output=True, text=True)
        if proc.returncode:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            notes.append(f"{spec}: not downloadable for the device ({last})")
            continue
        for whl in tmp.glob("*.whl"):
            size = whl.stat().st_size
            if size > room:
                notes.append(
                    f"{whl.name}: {size / 2**20:.1f} MiB does not fit ({room / 2**20:.1f})"
                )
                whl.unlink()
                continue
            dest.mkdir(parents=True, exist_ok=True)
            whl.replace(dest / whl.name)
            room -= size
            notes.append(f"{whl.name}: {size / 2**20:.1f} MiB staged")
    return notes


def device_call(carry: list[Path]) -> dict:
    """The arguments of the one device ``run`` call."""
    return {
        "command": f"bash benchmarks/run_gpu.sh --budget-s {BUDGET_S}",
        "timeout_s": RUN_TIMEOUT_S,
        "carry": [str(c.relative_to(ROOT)) for c in carry],
    }


def main(argv: list[str] | None = None) -> int:
    from hpe3d_ros.backends.export import OneLineParser

    parser = OneLineParser(prog="gpu_prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CARRY, help="carry folder")
    parser.add_argument("--frames", type=int, default=2000, help="rows per file")
    parser.add_argument("--wheels", nargs="*", default=[], help="pip specs to stage")
    parser.add_argument("--skip-data", action="store_true", help="only size and call")
    args = parser.parse_args(argv)
    notes = []
    if not args.skip_data:
        try:
            n = write_views(args.out / "calibration.npz", "train", args.frames, 0, False)
            m = write_views(args.out / "test_subjects.npz", "test", args.frames, 2026, True)
            notes.append(f"calibration.npz: {n} training views; test_subjects.npz: {m} test views")
        except (ImportError, OSError, KeyError) as exc:
            notes.append(f"no mocap data ({exc}): the INT8 step falls back to synthetic inputs")
    carry = [args.out] if args.out.is_dir() else []
    room = LIMIT_MIB * 2**20 - travelling_bytes(carry)
    if args.wheels:
        notes += download_wheels(args.wheels, args.out / "wheels", room)
        room = LIMIT_MIB * 2**20 - travelling_bytes(carry)
    notes.append(f"travels: {(LIMIT_MIB * 2**20 - room) / 2**20:.1f} MiB of {LIMIT_MIB} MiB")
    if room < 0:
        sys.stderr.write(f"gpu_prepare: over the {LIMIT_MIB} MiB a call carries: remove wheels\n")
        return 1
    sys.stdout.write("\n".join(notes) + "\ndevice run call: " + json.dumps(device_call(carry)))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
