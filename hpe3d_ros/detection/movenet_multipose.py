"""Bottom-up backend: MoveNet MultiPose Lightning (ONNX) over every scale of the image.

MultiPose as exported returns at most 6 people per network input (the shipped file is cut at
its heads and decoded here for :data:`SLOTS` people, :mod:`~.multipose_graph` and
:mod:`~.multipose_decode`), misses pedestrians shorter than about
50 input pixels and breaks people taller than about 250 input pixels into fragments. So one
call runs several passes (:mod:`~.scales`): the whole image small, for people beside the
vehicle, and overlapping tiles large, for distant pedestrians (each tile with its own
slots); duplicates across tiles and scales are merged (:func:`~.nms.merge_passes`). All of it
fits a budget of network work per frame (:mod:`~.budget`).

Network: input (1, H, W, 3) int32 RGB 0-255, H and W multiples of 32; output (1, S, 56):
per person 17 x (y, x, score) normalised to the input, a box (ymin, xmin, ymax, xmax) and the
person score. Weights: Apache-2.0 (see ``hpe3d_ros/weights/MOVENET_LICENSE.md``).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.budget import FrameWork, Notes
from hpe3d_ros.detection.image import invert_points, resize_region, to_rgb8
from hpe3d_ros.detection.multipose_decode import HEADS, decode
from hpe3d_ros.detection.multipose_graph import EXPORT_SLOTS, edited_model
from hpe3d_ros.detection.nms import merge_passes
from hpe3d_ros.detection.scales import (
    DEFAULT_BUDGET,
    NET_MAX_PX,
    NET_MIN_PX,
    STRIDE,
    Plan,
    Region,
    net_input_shape,
    plan_cost,
    plan_passes,
    run_cost,
    smallest_person_px,
    tile_grid,
)
from hpe3d_ros.detection.session import WEIGHTS_DIR, SessionOpener, open_session
from hpe3d_ros.detection.truncation import mark_unseen

LOG = logging.getLogger(__name__)
MULTIPOSE_ONNX = WEIGHTS_DIR / "movenet_multipose_lightning.onnx"
#: People decoded per network input from the shipped MultiPose (the export decodes 6;
#: :mod:`~.multipose_decode` decodes any number, over each person's box, for about 0.1 ms a
#: person). With 6, 28 of 40 frames of the 5-8 pedestrian vtest clip at 640x480 were run
#: again in halves (154 CPU ms per frame on one core, against 80 now).
SLOTS = 16
#: How many times a crowded region is halved (2 = up to 4 quarters).
MAX_SPLITS = 2

__all__ = ["MULTIPOSE_ONNX", "STRIDE", "MoveNetMultiPose", "tile_grid"]


class MoveNetMultiPose:
    """Bottom-up multi-person detector over every scale (``mode="bottom_up"``).

    One call runs the passes :func:`~.scales.plan_passes` chooses for the image size within
    ``budget``: a coarse whole-image pass for people near the camera (also those the border
    cuts), tiles at a finer scale for the smallest person asked for, and middle scales where
    those two leave a gap; a region where all MultiPose slots are taken (a crowd) is run again
    as two overlapping halves at the same scale while the budget lasts; the people of all
    passes are merged (:func:`~.nms.merge_passes`). Joints a network placed outside the
    region it saw (beyond the image border, or a tile's) get score 0. What the last frame
    cost and gave up is in ``last_work`` (:class:`~.budget.FrameWork`).

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
        budget: most network work per frame, in runs of 512 x 512 input pixels (all passes,
            crowd halves, and top-down crops); larger images give up their smallest people.
        slots: people decoded per network input from the shipped MultiPose (another file
            keeps its own 6).
        opener: opens the ONNX file on another runtime (:class:`~.session.SessionOpener`,
            e.g. :func:`hpe3d_ros.backends.detector.session_opener`); None: ONNX Runtime here.
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
        budget: float = DEFAULT_BUDGET,
        slots: int = SLOTS,
        opener: SessionOpener | None = None,
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
        self.budget = float(budget)
        self.plan(64, 64)  # validates the arguments
        self.person_threshold = float(person_threshold)
        self.model_path = Path(model_path)
        self.session, self.slots = _open_edited(self.model_path, device, threads, int(slots),
                                                opener)  # fmt: skip
        self._input_name = self.session.get_inputs()[0].name
        self.last_work = FrameWork(self.budget)
        self._notes = Notes()

    def plan(self, width: int, height: int) -> Plan:
        """The passes (scales and regions) run on a ``width`` x ``height`` image."""
        return _plan(
            width,
            height,
            self.input_size,
            self.coarse_size,
            self.min_person_px,
            self.tiles,
            self.tile_overlap,
            self.budget,
        )

    def detect(self, image_rgb: np.ndarray) -> list[Person2D]:
        """People in an RGB image (see :class:`~hpe3d_ros.detection.base.Detector`)."""
        return self.detect_candidates(image_rgb, self.person_threshold)

    def detect_candidates(self, image_rgb: np.ndarray, threshold: float) -> list[Person2D]:
        """Like :meth:`detect` with another person threshold (top-down proposals use a low one)."""
        image = to_rgb8(image_rgb)
        h, w = image.shape[:2]
        plan = self.plan(w, h)
        work = FrameWork(
            self.budget,
            planned=plan_cost(plan),
            asked_person_px=0.0 if self.tiles else self.min_person_px,
            smallest_person_px=smallest_person_px(plan),
            limited=plan.limited,
        )
        work.used = work.planned  # crowd halves are paid from what the plan leaves
        found: list[tuple[Person2D, float, Region]] = []
        runs = 0
        for p in plan:
            for region in p.regions:
                runs += self._run_or_split(image, region, p.scale(region), threshold, found, work)
        self.last_work = work
        self.report_work(w, h)
        if runs == 1:
            return [person for person, _, _ in found]
        return merge_passes(found, NET_MIN_PX, NET_MAX_PX, (w, h))

    def report_work(self, width: int, height: int) -> None:
        """Log what the last frame (``width`` x ``height``) gave up, once a minute per kind."""
        if self.last_work.gave_up:
            self._notes.report(self.last_work, (width, height))

    def _run_or_split(
        self,
        image: np.ndarray,
        region: Region,
        scale: float,
        threshold: float,
        found: list[tuple[Person2D, float, Region]],
        work: FrameWork,
        depth: int = 0,
    ) -> int:
        """Run ``region`` at ``scale``; if all of MultiPose's slots are taken (a crowd), run
        its two overlapping halves at the same scale too, when ``work`` has budget left for
        them. Returns the number of network runs."""
        x0, y0, x1, y1 = region
        people, slots = self._run_region(image, region, _input_px(region, scale), threshold)
        found.extend((person, scale, region) for person in people)
        long_px = max(x1 - x0, y1 - y0)
        if len(people) < slots or depth >= MAX_SPLITS or scale * long_px < 4 * NET_MIN_PX:
            return 1
        cols, rows = (2, 1) if x1 - x0 >= y1 - y0 else (1, 2)
        halves = [
            (x0 + a0, y0 + b0, x0 + a1, y0 + b1)
            for a0, b0, a1, b1 in tile_grid(x1 - x0, y1 - y0, cols, rows, self.tile_overlap)
        ]
        cost = sum(run_cost(r[2] - r[0], r[3] - r[1], _input_px(r, scale)) for r in halves)
        if cost > work.left + 1e-9:
            work.skipped_splits += 1
            return 1
        work.used += cost
        runs = 1
        for half in halves:
            runs += self._run_or_split(image, half, scale, threshold, found, work, depth + 1)
        return runs

    def _run_region(
        self, image: np.ndarray, region: Region, input_px: int, threshold: float
    ) -> tuple[list[Person2D], int]:
        """(people found in ``region`` run at ``input_px`` on its long side, slots the run had)."""
        x0, y0, x1, y1 = region
        out_w, out_h, pad_w, pad_h = net_input_shape(x1 - x0, y1 - y0, input_px)
        resized, affine = resize_region(image, x0, y0, x1, y1, (out_w, out_h))
        net_in = np.zeros((1, pad_h, pad_w, 3), dtype=np.int32)
        net_in[0, :out_h, :out_w] = resized
        outs = self.session.run(None, {self._input_name: net_in})
        # the shipped file runs cut at its heads, decoded here; another (or a backend's)
        # session returns the graph's own (1, slots, 56)
        out = decode(outs, self.slots) if len(outs) == len(HEADS) else outs[0][0]
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
        return people, len(out)  # a backend may run the 6-slot file (backends.detector)

    @staticmethod
    def _wh(image: np.ndarray) -> tuple[int, int]:
        return image.shape[1], image.shape[0]


def _open_edited(path: Path, device: str, threads: int, slots: int, opener=None):
    """(session, person slots per run) of MultiPose at ``path``, given ``slots`` if it is the
    shipped export (:func:`~.multipose_graph.edited_model`), else as it is. A backend's
    ``opener`` runs the file as it is (its own 6-slot decoding)."""
    if opener is not None:
        return opener(path, device, threads), EXPORT_SLOTS
    try:
        edited, n = edited_model(str(path), slots) if path.is_file() else (None, EXPORT_SLOTS)
        if edited is not None:
            return open_session(path, device, threads, model_bytes=edited), n
    except Exception as exc:  # a file onnx cannot parse: ONNX Runtime names the problem below
        LOG.debug("MultiPose graph edit skipped for %s: %s", path, exc)
    return open_session(path, device, threads), EXPORT_SLOTS


def _input_px(region: Region, scale: float) -> int:
    """Network input pixels of ``region``'s long side at ``scale``."""
    return max(STRIDE, round(scale * max(region[2] - region[0], region[3] - region[1])))


@functools.lru_cache(maxsize=16)
def _plan(*args) -> Plan:
    w, h, input_size, coarse_size, min_person_px, tiles, overlap, budget = args
    return plan_passes(
        w,
        h,
        input_size=input_size,
        coarse_size=coarse_size,
        min_person_px=min_person_px,
        tiles=tiles,
        tile_overlap=overlap,
        budget=budget,
    )
