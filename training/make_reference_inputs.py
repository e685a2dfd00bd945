"""Write the lifter's shipped reference 2D inputs: ``python -m training.make_reference_inputs``.

Product code must not import :mod:`training` or read ``../shared`` (INT8 calibration of the
TensorRT engine needs inputs shaped like real detections). This writes a small, fixed set
of them into ``hpe3d_ros/weights/lifter_calibration_2d.npz``, read by
:mod:`hpe3d_ros.lifting.reference_inputs`: mocap poses of the training subjects (never the
test subjects) seen through the training data's random vehicle cameras and detector noise
(:func:`training.data.generate`), seeded, so the file is reproducible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hpe3d_ros.lifting.reference_inputs import REFERENCE_INPUTS
from training.data import DEFAULT_DATA, AugmentConfig, generate, load_mocap, split_indices


def make_reference_inputs(
    out: str | Path = REFERENCE_INPUTS,
    n: int = 512,
    seed: int = 0,
    data: str | Path = DEFAULT_DATA,
) -> Path:
    """``n`` detector-like people (kp_norm NaN where missing, conf) from training subjects."""
    rng = np.random.default_rng(seed)
    mocap = load_mocap(data)
    idx = rng.choice(split_indices(mocap["subject"], "train"), n, replace=False)
    batch = generate(mocap["poses"][np.sort(idx)], AugmentConfig(), rng)
    out = Path(out)
    np.savez_compressed(
        out,
        kp_norm=batch.kp_norm.astype(np.float32),
        conf=batch.conf.astype(np.float32),
        about=np.array(
            "CMU mocap (mocap.cs.cmu.edu, NSF EIA-0196217), training subjects, random "
            f"vehicle cameras and detector noise; python -m training.make_reference_inputs "
            f"--n {n} --seed {seed}"
        ),
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REFERENCE_INPUTS))
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    args = parser.parse_args(argv)
    print(f"wrote {make_reference_inputs(args.out, args.n, args.seed, args.data)}")


if __name__ == "__main__":
    main()
