"""The lifter's mocap: both shared CMU files, the thorax repair, and the subject splits.

Files (``../shared/data``, see its README):

* ``cmu_h36m17_30fps.npz``: 19,202 frames, 14 subjects, 91 % on two retargeted rigs (one
  fixed Daz body, one fixed iClone CC body); subjects 16 and 131 on their own CMU skeletons
  but converted from BVH files that dropped the CMU thorax bone, so their whole upper body
  sits 0.11-0.12 m low on the pelvis;
* ``cmu_orig_h36m17_30fps.npz``: 2,268 frames of 8 subjects on their own CMU skeletons
  (ASF/AMC, thorax bone kept): 1, 2, 7, 9, 11, 35, 131, 135.

:func:`load_all_mocap` merges them, tags every row with its body (``rig_daz``, ``rig_cc``,
``real``) and repairs the thorax of the defective rows (:func:`repair_thorax`).

Splits (:data:`SPLITS`): ``v1`` is the split of the first file used until lifter v1 (test 8,
13, 16, 131; validation 9, 14). ``v2`` shows generalisation across *bodies*: validation and
test both hold real skeletons never trained on (validation 11 and 35, test 16, 131 and
135), beside rig subjects whose motions are unseen (validation 14, test 8 and 13). The
training real skeletons (1, 2, 7, 9) are the only ones whose proportions the body sampler
(:mod:`training.bodies`) may read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATA = DATA_DIR / "cmu_h36m17_30fps.npz"
ORIG_DATA = DATA_DIR / "cmu_orig_h36m17_30fps.npz"

#: split name -> (validation subjects, test subjects); everything else trains.
SPLITS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "v1": ((9, 14), (8, 13, 16, 131)),
    "v2": ((11, 14, 35), (8, 13, 16, 131, 135)),
}
#: The CMU thorax bone the BVH conversions of subjects 16 and 131 dropped (metres). 131's is
#: measured: its ASF/AMC rows (second file) minus its BVH rows, median pelvis-thorax
#: distance; 16 has no ASF rows here, so it gets the README's "about 0.11-0.12 m".
THORAX_BONE_M = {131: 0.112, 16: 0.115}
_DEFECT_SOURCES = ("przestr_cmu_orig", "koyama_cmu_orig")
_UPPER_BODY = np.arange(8, 17)


def body_kind(source: np.ndarray) -> np.ndarray:
    """(N,) ``source`` tags -> (N,) ``rig_daz`` | ``rig_cc`` | ``real`` (own CMU skeleton)."""
    source = np.asarray(source).astype(str)
    kind = np.full(source.shape, "real", dtype="<U7")
    kind[np.char.startswith(source, "przestr_daz")] = "rig_daz"
    kind[np.char.startswith(source, "iclone_cc")] = "rig_cc"
    return kind


def repair_thorax(poses: np.ndarray, length_m: float) -> np.ndarray:
    """Put a dropped thorax bone back: (N, 17, 3) -> (N, 17, 3) float32.

    Thorax, neck, head, shoulders and arms move by ``length_m`` along pelvis -> thorax (the
    missing bone's own direction is not in the data; on these upright motions the spine is
    close to straight, so the error is a few millimetres); spine = mid(pelvis, thorax).
    """
    p = np.asarray(poses, dtype=np.float64).copy()
    up = p[:, 8] - p[:, 0]
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    p[:, _UPPER_BODY] += length_m * up[:, None, :]
    p[:, 7] = 0.5 * (p[:, 0] + p[:, 8])
    return p.astype(np.float32)


def load_mocap(path: str | Path = DEFAULT_DATA) -> dict[str, np.ndarray]:
    """One mocap npz as a dict: ``poses`` (N, 17, 3) metres Z up, ``subject``, ``sequence``,
    ``source`` (no repair; :func:`load_all_mocap` is what training reads)."""
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in ("poses", "subject", "sequence", "source")}


def load_all_mocap(
    path: str | Path = DEFAULT_DATA, orig_path: str | Path | None = ORIG_DATA
) -> dict[str, np.ndarray]:
    """Both files merged (``orig_path`` None or "": the first only), thorax repaired.

    Extra keys: ``body`` (:func:`body_kind`), ``repaired`` (N,) bool: the row had its
    thorax bone put back (:data:`THORAX_BONE_M`).
    """
    parts = [load_mocap(path)]
    if orig_path:
        parts.append(load_mocap(orig_path))
    m = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    m["subject"] = m["subject"].astype(np.int16)
    m["sequence"] = m["sequence"].astype(str)
    m["source"] = m["source"].astype(str)
    m["body"] = body_kind(m["source"])
    m["repaired"] = np.zeros(len(m["poses"]), dtype=bool)
    for subject, length in THORAX_BONE_M.items():
        rows = (m["subject"] == subject) & np.isin(m["source"], _DEFECT_SOURCES)
        m["poses"][rows] = repair_thorax(m["poses"][rows], length)
        m["repaired"] |= rows
    return m


def split_indices(subject: np.ndarray, part: str, split: str = "v1") -> np.ndarray:
    """Row indices of ``part`` in {"train", "val", "train_all", "test"} of ``split``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {sorted(SPLITS)}")
    val_subjects, test_subjects = SPLITS[split]
    test = np.isin(subject, test_subjects)
    val = np.isin(subject, val_subjects)
    masks = {"test": test, "val": val, "train": ~test & ~val, "train_all": ~test}
    if part not in masks:
        raise ValueError(f"unknown split part {part!r}")
    return np.flatnonzero(masks[part])
