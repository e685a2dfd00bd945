"""Regenerate ``reference_vtest_0700.npz``: the default detector's output on vtest_0700.png.

Only rerun after an intended change of the detector or weights (and say so in the commit):
``.venv/bin/python test/data/make_reference.py``. Arrays, people sorted by score:
keypoints (N, 17, 2) px, scores (N, 17), boxes (N, 4) px, person_scores (N,).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hpe3d_ros.detection import load_detector

HERE = Path(__file__).resolve().parent


def main() -> None:
    rgb = cv2.cvtColor(cv2.imread(str(HERE / "vtest_0700.png")), cv2.COLOR_BGR2RGB)
    people = sorted(load_detector().detect(rgb), key=lambda p: -p.score)
    np.savez(
        HERE / "reference_vtest_0700.npz",
        keypoints=np.stack([p.keypoints for p in people]),
        scores=np.stack([p.scores for p in people]),
        boxes=np.array([p.box for p in people], dtype=np.float32),
        person_scores=np.array([p.score for p in people], dtype=np.float32),
    )


if __name__ == "__main__":
    main()
