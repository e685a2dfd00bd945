"""Bottom-up backend: MoveNet MultiPose Lightning (ONNX) over every scale of the image.

MultiPose returns at most 6 people per network input, misses pedestrians shorter than about
50 input pixels and breaks people taller than about 250 input pixels into fragments. So one
call runs several passes (:mod:`~.scales`): the whole image small, for people beside the
vehicle, and overlapping tiles large, for distant pedestrians (each tile with its own 6
slots); duplicates across tiles and scales are merged (:func:`~.nms.merge_passes`).

Network: input (1, H, W, 3) int32 RGB 0-255, H and W multiples of 32; output (1, 6, 56):
per person 17 x (y, x, score) normalised to the input, a box (ymin, xmin, ymax, xmax) and the
person score. Weights: Apache-2.0 (see ``hpe3d_ros/weights/MOVENET_LICENSE.md``).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.image import invert_points, resize_region, to_rgb8
from hpe3d_ros.detection.nms import merge_passes
from hpe3d_ros.detection.scales import (
    NET_MAX_PX,
    NET_MIN_PX,
    STRIDE,
    Pass,
    Region,
    plan_passes,
    tile_grid,
)
from hpe3d_ros.detection.session import WEIGHTS_DIR, open_session
from hpe3d_ros.detection.truncation import mark_unseen

MULTIPOSE_ONNX = WEIGHTS_DIR / "movenet_multipose_lightning.onnx"
#: People MultiPose returns per network input at most.
SLOTS = 6
#: How many times a crowded region is halved (2 = up to 4 quarters).
MAX_SPLITS = 2

__all__ = ["MULTIPOSE_ONNX", "STRIDE", "MoveNetMultiPose", "tile_grid"]


class MoveNetMultiPose:
    """Bottom-up multi-person detector over every scale (``mode="bottom_up"``).

    One call runs the passes :func:`~.scales.plan_passes` chooses for the image size: a
    coarse whole-image pass for people near the camera (also those the border cuts), tiles at
    a finer scale for the smallest person asked for, and middle scales where those two leave a
    gap; a region where all 6 MultiPose slots are taken (a crowd) is run again as two
    overlapping halves at the same scale; the people of all passes are merged
    (:func:`~.nms.merge_passes`). Joints a network
    placed outside the region it saw (beyond the image border, or a tile's) get score 0.

    Args:
        input_size: long side of each fine network input in pixels (rounded to a multiple of
            32); larger scaled images are split into tiles of this size.
        tiles: explicit (cols, rows) grid of the fine pass; None = planned from
            ``min_person_px`` and the image size.
        tile_overlap: fraction of a tile shared with its neighbour.
        person_threshold: people whose MultiPose score is below this are dropped.
        coarse_size: long side of the coarse whole-image pass; 0 = none.
        min_person_px: smallest person (image pixels tall) the fine pass is scaled for.
        model_path: ONNX file (default: the shipped MultiPose Lightning).
        device: "cpu" or "cuda".
        threads: ONNX Runtime intra-op threads.
    """

    def __init__(
        self,
        input_size: int = 512,
        tiles: tuple[int, int] | None = None,
        tile_overlap: float = 0.25,
        person_threshold: float = 0.2,
        model_path: str | Path = MULTIPOSE_ONNX,
        device: str = "cpu",
        threads: int = 2,
        coarse_size: int = 192,
        min_person_px: float = 64.0,
    ) -> None:
        if input_size < STRIDE:
            raise ValueError(f"input_size must be >= {STRIDE}, got {input_size}")
        if coarse_size and coarse_size < STRIDE:
            raise ValueError(f"coarse_size must be 0 or >= {STRIDE}, got {coarse_size}")
        self.input_size = int(round(input_size / STRIDE) * STRIDE)
        self.coarse_size = int(round(coarse_size / STRIDE) * STRIDE)
        self.tiles = None if tiles is None else (int(tiles[0]), int(tiles[1]))
        self.tile_overlap = float(tile_overlap)
        self.min_person_px = float(min_person_px)
        self.plan(64, 64)  # validates the arguments
        self.person_threshold = float(person_threshold)
        self.model_path = Path(model_path)
        self.session = open_session(model_path, device, threads)
        self._input_name = self.session.get_inputs()[0].name

    def plan(self, width: int, height: int) -> list[Pass]:
        """The passes (scales and regions) run on a ``width`` x ``height`` image."""
        return _plan(
            width,
            height,
            self.input_size,
            self.coarse_size,
            self.min_person_px,
            self.tiles,
            self.tile_overlap,
        )

    def detect(self, image_rgb: np.ndarray) -> list[Person2D]:
        """People in an RGB image (see :class:`~hpe3d_ros.detection.base.Detector`)."""
        return self.detect_candidates(image_rgb, self.person_threshold)

    def detect_candidates(self, image_rgb: np.ndarray, threshold: float) -> list[Person2D]:
        """Like :meth:`detect` with another person threshold (top-down proposals use a low one)."""
        image = to_rgb8(image_rgb)
        h, w = image.shape[:2]
        found: list[tuple[Person2D, float, Region]] = []
        runs = 0
        for p in self.plan(w, h):
            for region in p.regions:
                runs += self._run_or_split(image, region, p.scale(region), threshold, found)
        if runs == 1:
            return [person for person, _, _ in found]
        return merge_passes(found, NET_MIN_PX, NET_MAX_PX, (w, h))

    def _run_or_split(
        self,
        image: np.ndarray,
        region: Region,
        scale: float,
        threshold: float,
        found: list[tuple[Person2D, float, Region]],
        depth: int = 0,
    ) -> int:
        """Run ``region`` at ``scale``; if all of MultiPose's slots are taken (a crowd), run
        its two overlapping halves at the same scale too. Returns the number of network runs."""
        x0, y0, x1, y1 = region
        long_px = max(x1 - x0, y1 - y0)
        people = self._run_region(image, region, max(STRIDE, round(scale * long_px)), threshold)
        found.extend((person, scale, region) for person in people)
        if len(people) < SLOTS or depth >= MAX_SPLITS or scale * long_px < 4 * NET_MIN_PX:
            return 1
        cols, rows = (2, 1) if x1 - x0 >= y1 - y0 else (1, 2)
        runs = 1
        for a0, b0, a1, b1 in tile_grid(x1 - x0, y1 - y0, cols, rows, self.tile_overlap):
            half = (x0 + a0, y0 + b0, x0 + a1, y0 + b1)
            runs += self._run_or_split(image, half, scale, threshold, found, depth + 1)
        return runs

    def _run_region(
        self, image: np.ndarray, region: Region, input_px: int, threshold: float
    ) -> list[Person2D]:
        x0, y0, x1, y1 = region
        tw, th = x1 - x0, y1 - y0
        scale = input_px / max(tw, th)
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
            box = np.clip(box, [x0, y0], [x1, y1])
            scores = mark_unseen(kp, yxs[:, 2], (*box[0], *box[1]), region, self._wh(image))
            people.append(Person2D(kp, scores, (*box[0], *box[1]), float(row[55])))
        return people

    @staticmethod
    def _wh(image: np.ndarray) -> tuple[int, int]:
        return image.shape[1], image.shape[0]


@functools.lru_cache(maxsize=16)
def _plan(*args) -> list[Pass]:
    w, h, input_size, coarse_size, min_person_px, tiles, overlap = args
    return plan_passes(
        w,
        h,
        input_size=input_size,
        coarse_size=coarse_size,
        min_person_px=min_person_px,
        tiles=tiles,
        tile_overlap=overlap,
    )
