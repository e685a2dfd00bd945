"""Which joints of a detected person were really seen: people cut by the image border.

A keypoint network places all 17 joints of everyone it finds, also those of a person the
image border cuts at the waist beside the vehicle. Those guesses must reach the lifter as
missing joints (score 0), not as evidence: a guessed ankle would pin a waist-up person to the
ground. Three observations on real border-cut people (``test/data/eval``) give the rules:

* joints placed outside the region the network saw (the image, or a tile) are guesses;
* joints of the limbs the border cuts pile up *on* the border, a few pixels inside it;
* a guessed ankle or wrist sometimes lands inside the image with a middling score, while the
  knee or elbow that connects it to the body is unseen.
"""

from __future__ import annotations

import numpy as np

#: (joint, the joint that connects it to the body) along the COCO-17 limbs.
LIMB_CHAIN: tuple[tuple[int, int], ...] = (
    (7, 5), (8, 6), (9, 7), (10, 8),  # elbows <- shoulders, wrists <- elbows
    (13, 11), (14, 12), (15, 13), (16, 14),  # knees <- hips, ankles <- knees
)  # fmt: skip
#: A box this close to a border (fraction of its height) is cut by it, and its joints this
#: close to that border are taken as piled up on it.
BORDER_PILE_UP = 0.03


def mark_unseen(
    kp_px: np.ndarray,
    scores: np.ndarray,
    box: tuple[float, float, float, float],
    region: tuple[float, float, float, float],
    image_wh: tuple[int, int],
    min_score: float = 0.2,
) -> np.ndarray:
    """Scores (17,) float32 with the joints the image did not show set to 0.

    Args:
        kp_px: (17, 2) COCO keypoints in image pixels.
        scores: (17,) the network's joint scores.
        box: (x0, y0, x1, y1) the person's box, clipped to the image.
        region: (x0, y0, x1, y1) the part of the image the network saw.
        image_wh: the image's (width, height).
        min_score: a joint below this counts as unseen in the limb-chain rule.
    """
    x, y = kp_px[:, 0], kp_px[:, 1]
    rx0, ry0, rx1, ry1 = region
    out = np.where((x >= rx0) & (x <= rx1) & (y >= ry0) & (y <= ry1), scores, 0.0)
    w, h = image_wh
    strip = max(2.0, BORDER_PILE_UP * (box[3] - box[1]))
    cut = (box[0] <= strip, box[1] <= strip, box[2] >= w - strip, box[3] >= h - strip)
    if any(cut):
        piled = (
            (cut[0] & (x < strip))
            | (cut[1] & (y < strip))
            | (cut[2] & (x > w - strip))
            | (cut[3] & (y > h - strip))
        )
        out = np.where(piled, 0.0, out)
        for joint, parent in LIMB_CHAIN:  # in order: a cleared elbow clears its wrist
            if out[parent] < min_score:
                out[joint] = 0.0
    return out.astype(np.float32)
