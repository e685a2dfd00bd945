"""Bottom-up backend: MoveNet MultiPose Lightning (ONNX), optionally over a grid of tiles.

MultiPose returns at most 6 people per network input and misses pedestrians shorter than
about 100 input pixels. Both limits are lifted by giving it more pixels: ``input_size`` sets
the long side of each network input (the image, or each tile, is resized to it), and
``tiles=(cols, rows)`` splits the image into overlapping tiles, each with its own 6 slots.
Duplicates from overlapping tiles are suppressed (:func:`~.nms.suppress_duplicates`).

Network: input (1, H, W, 3) int32 RGB 0-255, H and W multiples of 32; output (1, 6, 56):
per person 17 x (y, x, score) normalised to the input, a box (ymin, xmin, ymax, xmax) and the
person score. Weights: Apache-2.0 (see ``hpe3d_ros/weights/MOVENET_LICENSE.md``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.image import invert_points, resize_region, to_rgb8
from hpe3d_ros.detection.nms import suppress_duplicates
from hpe3d_ros.detection.session import WEIGHTS_DIR, open_session

MULTIPOSE_ONNX = WEIGHTS_DIR / "movenet_multipose_lightning.onnx"
#: Network input sides must be multiples of this.
STRIDE = 32


def tile_grid(
    width: int, height: int, cols: int, rows: int, overlap: float
) -> list[tuple[int, int, int, int]]:
    """Integer (x0, y0, x1, y1) tiles covering the image, neighbours overlapping by ``overlap``.

    Each tile spans ``size / (n - (n - 1) * overlap)`` along an axis with ``n`` tiles.
    """
    if cols < 1 or rows < 1 or not 0.0 <= overlap < 1.0:
        raise ValueError(f"bad tiling {cols}x{rows} overlap {overlap}")

    def spans(size: int, n: int) -> list[tuple[int, int]]:
        if n == 1:
            return [(0, size)]
        span = size / (n - (n - 1) * overlap)
        step = (size - span) / (n - 1)
        starts = [min(round(i * step), size - 1) for i in range(n)]
        return [(a, max(a + 1, min(size, round(i * step + span)))) for i, a in enumerate(starts)]

    return [(x0, y0, x1, y1) for y0, y1 in spans(height, rows) for x0, x1 in spans(width, cols)]


class MoveNetMultiPose:
    """Bottom-up multi-person detector (``mode="bottom_up"``).

    Args:
        input_size: long side of each network input in pixels (rounded to a multiple of 32).
            On 768x576 footage with ~80 px pedestrians, 768 (native) finds most people; 256
            finds almost none.
        tiles: (cols, rows) grid of overlapping tiles; (1, 1) runs the whole image once.
        tile_overlap: fraction of a tile shared with its neighbour.
        person_threshold: people whose MultiPose score is below this are dropped.
        model_path: ONNX file (default: the shipped MultiPose Lightning).
        device: "cpu" or "cuda".
        threads: ONNX Runtime intra-op threads.
    """

    def __init__(
        self,
        input_size: int = 768,
        tiles: tuple[int, int] = (1, 1),
        tile_overlap: float = 0.25,
        person_threshold: float = 0.2,
        model_path: str | Path = MULTIPOSE_ONNX,
        device: str = "cpu",
        threads: int = 2,
    ) -> None:
        if input_size < STRIDE:
            raise ValueError(f"input_size must be >= {STRIDE}, got {input_size}")
        self.input_size = int(round(input_size / STRIDE) * STRIDE)
        self.tiles = (int(tiles[0]), int(tiles[1]))
        self.tile_overlap = float(tile_overlap)
        tile_grid(64, 64, *self.tiles, self.tile_overlap)  # validates the tiling
        self.person_threshold = float(person_threshold)
        self.session = open_session(model_path, device, threads)
        self._input_name = self.session.get_inputs()[0].name

    def detect(self, image_rgb: np.ndarray) -> list[Person2D]:
        """People in an RGB image (see :class:`~hpe3d_ros.detection.base.Detector`)."""
        return self.detect_candidates(image_rgb, self.person_threshold)

    def detect_candidates(self, image_rgb: np.ndarray, threshold: float) -> list[Person2D]:
        """Like :meth:`detect` with another person threshold (top-down proposals use a low one)."""
        image = to_rgb8(image_rgb)
        h, w = image.shape[:2]
        people: list[Person2D] = []
        for x0, y0, x1, y1 in tile_grid(w, h, *self.tiles, self.tile_overlap):
            people.extend(self._run_tile(image, x0, y0, x1, y1, threshold))
        if self.tiles != (1, 1):
            people = suppress_duplicates(people)
        return people

    def _run_tile(
        self, image: np.ndarray, x0: int, y0: int, x1: int, y1: int, threshold: float
    ) -> list[Person2D]:
        tw, th = x1 - x0, y1 - y0
        scale = self.input_size / max(tw, th)
        out_w, out_h = max(1, round(tw * scale)), max(1, round(th * scale))
        resized, affine = resize_region(image, x0, y0, x1, y1, (out_w, out_h))
        pad_w, pad_h = math.ceil(out_w / STRIDE) * STRIDE, math.ceil(out_h / STRIDE) * STRIDE
        net_in = np.zeros((1, pad_h, pad_w, 3), dtype=np.int32)
        net_in[0, :out_h, :out_w] = resized
        out = self.session.run(None, {self._input_name: net_in})[0][0]
        people = []
        for row in out[out[:, 55] >= threshold]:
            yxs = row[:51].reshape(17, 3)
            kp_in = np.stack([yxs[:, 1] * pad_w, yxs[:, 0] * pad_h], axis=1)
            kp = invert_points(affine, kp_in)
            corners = np.array(
                [[row[52] * pad_w, row[51] * pad_h], [row[54] * pad_w, row[53] * pad_h]]
            )
            box = invert_points(affine, corners)
            box = np.clip(box, 0, [image.shape[1], image.shape[0]])
            people.append(Person2D(kp, yxs[:, 2], (*box[0], *box[1]), float(row[55])))
        return people
