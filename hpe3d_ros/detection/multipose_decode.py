"""MultiPose's person decoding in NumPy, over each person's box only, for any number of people.

The exported graph decodes its people from six heads at a quarter of the input resolution
(grid H x W): person centres, per-centre joint regressions, joint heatmaps, joint offsets,
box sizes and box offsets. For every decoded person and joint it weights the whole joint
heatmap by a Gaussian around the regressed joint, masks it to the person's box and takes the
arg-max: (H * W) x people x 17 exponentials per run, a fifth of a 512x384 run's time for 6
people and more for each extra slot. Outside the person's box the masked weight is 0, so the
arg-max is found over the box alone; :func:`decode` does that and returns the graph's own
output, row for row, for ``slots`` people (the graph cut at its heads is
:func:`~.multipose_graph.heads_model`).

Rules of the export, kept: centres are local maxima of the centre heatmap (5 x 5); a
person's box is its centre plus the box offset, half its size each way, clipped to the grid;
the Gaussian's variance is 0.3 x min(H, W) grid cells (``exp(-d^2 / var)``); a joint's score
is the highest weight any decoded person puts at the joint's arg-max; the person score is
the centre score times the mean of the joint scores above 0.127.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Head tensors of the export, in the order :func:`decode` takes them.
HEADS = (
    "Sigmoid_208:0",  # (1, 1, H, W) person centres
    "Transpose_150:0",  # (H, W, 34) joint regression from the centre, (dy, dx) per joint
    "Transpose_162:0",  # (H, W, 17) joint heatmaps
    "Transpose_155:0",  # (1, H, W, 34) joint offsets within a cell, (dy, dx) per joint
    "Conv_311:0",  # (1, 2, H, W) box size (h, w)
    "Conv_333:0",  # (1, 2, H, W) box offset from the centre (dy, dx)
)
_VARIANCE = np.float32(0.300048828125)  # x min(H, W); the export's fp16 0.3
_PEAK_TOL = np.float32(1.0132789611816406e-06)
_GOOD_JOINT = np.float32(0.126953125)
_STRIDE = 4  # input pixels per grid cell


def decode(heads: list[np.ndarray], slots: int) -> np.ndarray:
    """(slots, 56) people as the exported graph outputs them, from its six head tensors.

    Per person: 17 x (y, x, score) normalised to the network input, the box (ymin, xmin,
    ymax, xmax) normalised, and the person score; rows sorted by centre score.
    """
    centre_map, regress, heat, offsets, box_size, box_off = heads
    centre = centre_map[0, 0].astype(np.float32)
    h, w = centre.shape
    regress = regress.reshape(h, w, 17, 2)
    offsets = offsets.reshape(h, w, 17, 2)
    peaks = np.where(np.abs(centre - cv2.dilate(centre, np.ones((5, 5), np.uint8))) < _PEAK_TOL,
                     centre, np.float32(0))  # fmt: skip
    flat = peaks.ravel()
    order = np.argsort(-flat, kind="stable")[:slots]
    rows, cols = order // w, order % w
    n = len(order)
    var = _VARIANCE * np.float32(min(h, w))
    # regressed joints (n, 17) in grid cells
    reg_y = rows[:, None].astype(np.float32) + regress[rows, cols, :, 0]
    reg_x = cols[:, None].astype(np.float32) + regress[rows, cols, :, 1]
    half = np.maximum(box_size[0][:, rows, cols], 0) * np.float32(0.5)  # (2, n): h/2, w/2
    cy = rows.astype(np.float32) + box_off[0][0, rows, cols]
    cx = cols.astype(np.float32) + box_off[0][1, rows, cols]
    y0, y1 = np.clip(cy - half[0], 0, h), np.clip(cy + half[0], 0, h)
    x0, x1 = np.clip(cx - half[1], 0, w), np.clip(cx + half[1], 0, w)
    best = np.zeros((n, 17, 2), np.int64)  # arg-max cell (y, x) per person and joint
    for i in range(n):
        ya, yb = int(np.ceil(y0[i])), int(np.ceil(y1[i]))  # cells with y0 <= y < y1
        xa, xb = int(np.ceil(x0[i])), int(np.ceil(x1[i]))
        if ya >= yb or xa >= xb:
            continue  # an empty box: the export's arg-max of zeros is cell (0, 0)
        gy = np.arange(ya, yb, dtype=np.float32)[:, None, None]
        gx = np.arange(xa, xb, dtype=np.float32)[None, :, None]
        d2 = (gx - reg_x[i]) ** 2 + (gy - reg_y[i]) ** 2
        weight = heat[ya:yb, xa:xb] * np.exp(-d2 / var)  # (by, bx, 17)
        flat_w = weight.reshape(-1, 17)
        arg = flat_w.argmax(axis=0)
        arg = np.where(flat_w[arg, np.arange(17)] > 0, arg, -1)
        bw = xb - xa
        best[i, :, 0] = np.where(arg >= 0, ya + arg // bw, 0)
        best[i, :, 1] = np.where(arg >= 0, xa + arg % bw, 0)
    # a joint's score: the highest weight any decoded person puts at that cell
    by, bx = best[..., 0], best[..., 1]  # (n, 17)
    joint = np.arange(17)
    d2_all = (bx[None].astype(np.float32) - reg_x[:, None]) ** 2 + (
        by[None].astype(np.float32) - reg_y[:, None]
    ) ** 2  # (n' other, n, 17)
    inside = (
        (bx[None] >= x0[:, None, None])
        & (bx[None] < x1[:, None, None])
        & (by[None] >= y0[:, None, None])
        & (by[None] < y1[:, None, None])
    )
    all_w = heat[by, bx, joint][None] * np.exp(-d2_all / var) * inside
    score = all_w.max(axis=0) if n else np.zeros((0, 17), np.float32)
    good = score > _GOOD_JOINT
    person = centre.ravel()[order] * (score * good).sum(1) / np.maximum(good.sum(1), 1)
    in_h, in_w = h * _STRIDE, w * _STRIDE
    out = np.zeros((n, 56), np.float32)
    kp = out[:, :51].reshape(n, 17, 3)
    kp[..., 0] = (by + offsets[by, bx, joint, 0]) * (_STRIDE / in_h)
    kp[..., 1] = (bx + offsets[by, bx, joint, 1]) * (_STRIDE / in_w)
    kp[..., 2] = score
    box = np.stack([y0, x0, y1, x1], axis=-1) * _STRIDE / np.array([in_h, in_w, in_h, in_w])
    out[:, 51:55] = np.clip(box, 0.0, 1.0)
    out[:, 55] = person
    return out
