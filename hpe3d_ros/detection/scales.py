"""Which image regions, at which scales, the bottom-up network looks at: one call, every size.

A keypoint network finds people within a band of sizes *in its input*: MoveNet MultiPose
finds pedestrians from about :data:`NET_MIN_PX` input pixels tall and breaks people taller than
about :data:`NET_MAX_PX` into fragments (measured on the labelled set in ``test/data/eval``:
a 500 px waist-up person is found at a 192-256 px input and fragmented at 512). So one pass cannot
see a 60 px pedestrian and a person filling the frame beside the vehicle. The plan is a ladder:

* a **coarse** pass over the whole image with long side ``coarse_size`` (people taller than
  roughly a third of the image, including those cut by its border);
* a **fine** pass scaled so that a person ``min_person_px`` tall is ``NET_MIN_PX`` input pixels
  tall, split into overlapping tiles where the scaled image exceeds ``input_size``;
* **middle** passes, only where the coarse pass's smallest person is larger than the fine
  pass's largest (a wide image with small people), at geometric steps between the two.

Every pass is a list of regions (x0, y0, x1, y1) in image pixels, each resized so that its
long side is the pass's network input side; detections of all passes are merged afterwards
(:func:`~hpe3d_ros.detection.nms.merge_passes`).

All passes together fit a **budget** of network work per frame (:data:`DEFAULT_BUDGET` runs
of 512 x 512 input pixels; a run costs its input area, :func:`run_cost`): on a large image the
fine pass is made coarser until the plan fits, so the smallest people are given up first and
a valid 8000 x 8000 photo costs what a 1280x720 frame does, not 77 s (the plan is marked
:attr:`Plan.limited`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Network input sides must be multiples of this (MoveNet).
STRIDE = 32
#: Smallest person height, in network input pixels, that MultiPose still finds reliably.
NET_MIN_PX = 52.0
#: Largest person height, in network input pixels, before MultiPose starts to fragment people.
NET_MAX_PX = 256.0
#: Default bound on the detector's work per frame, in network runs of 512 x 512 input pixels
#: (a run's cost is its input area: 100 ms per 512 x 512 on one core, measured). 8 holds every
#: scale of a 1280x720 image (7.0); larger images give up their smallest people, not seconds.
DEFAULT_BUDGET = 8.0
#: Input pixels of one budget unit.
UNIT_PX = 512 * 512
#: Fixed cost of one network run, in budget units (2 ms of a 64 x 64 run's 3.3, one core).
RUN_OVERHEAD = 0.02

Region = tuple[int, int, int, int]


@dataclass(frozen=True)
class Pass:
    """One scale: regions of the image, each resized to ``input_px`` on its long side."""

    name: str  # "coarse", "middle", "fine"
    regions: tuple[Region, ...]
    input_px: int

    def scale(self, region: Region) -> float:
        """Network input pixels per image pixel for ``region``."""
        return self.input_px / max(region[2] - region[0], region[3] - region[1])

    @property
    def cost(self) -> float:
        """Network runs of 512 x 512 input pixels this pass costs (:func:`run_cost`)."""
        return sum(run_cost(r[2] - r[0], r[3] - r[1], self.input_px) for r in self.regions)

    @property
    def level(self) -> float:
        """Input pixels per image pixel of the pass's first region (larger = finer)."""
        return self.scale(self.regions[0])


class Plan(list):
    """The passes for one image size, coarsest first (a ``list`` of :class:`Pass`).

    ``limited``: the budget made the finest pass coarser than ``min_person_px`` asked.
    """

    limited: bool = False


def net_input_shape(width: int, height: int, input_px: int) -> tuple[int, int, int, int]:
    """(resized w, resized h, padded w, padded h) of a ``width`` x ``height`` region run with
    ``input_px`` on its long side (the network needs multiples of :data:`STRIDE`)."""
    scale = input_px / max(width, height)
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    return out_w, out_h, -(-out_w // STRIDE) * STRIDE, -(-out_h // STRIDE) * STRIDE


def run_cost(width: int, height: int, input_px: int) -> float:
    """Budget units of one network run: its padded input area over 512 x 512, plus the fixed
    :data:`RUN_OVERHEAD`."""
    _, _, pad_w, pad_h = net_input_shape(width, height, input_px)
    return pad_w * pad_h / UNIT_PX + RUN_OVERHEAD


def plan_cost(passes: list[Pass]) -> float:
    """Budget units of all the passes' regions."""
    return sum(p.cost for p in passes)


def smallest_person_px(passes: list[Pass]) -> float:
    """Height in image pixels of the smallest person the finest pass is sized for."""
    return NET_MIN_PX / max(p.level for p in passes)


def tile_grid(width: int, height: int, cols: int, rows: int, overlap: float) -> list[Region]:
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


def _tiles_for_scale(width: int, height: int, scale: float, input_size: int, overlap: float):
    """Fewest tiles whose long side, times ``scale``, fits ``input_size`` (5 % slack)."""
    limit = 1.05 * input_size / scale

    def count(size: int) -> int:
        # size / (n - (n - 1) * overlap) <= limit <=> n >= (size / limit - overlap) / (1 - overlap)
        n = max(1, math.ceil((size / limit - overlap) / (1.0 - overlap) - 1e-9))
        while size / (n - (n - 1) * overlap) > limit:  # rounding
            n += 1
        return n

    return count(width), count(height)


def _pass(name: str, width: int, height: int, scale: float, input_size: int, overlap: float):
    """A whole-image pass at ``scale``, tiled when the scaled image exceeds ``input_size``."""
    long_px = scale * max(width, height)
    if long_px <= 1.05 * input_size:
        side = max(STRIDE, min(input_size, STRIDE * round(long_px / STRIDE)))
        return Pass(name, ((0, 0, width, height),), side)
    cols, rows = _tiles_for_scale(width, height, scale, input_size, overlap)
    # whole tiles rarely fit exactly: each runs at input_size, at or above the planned scale
    return Pass(name, tuple(tile_grid(width, height, cols, rows, overlap)), input_size)


def plan_passes(
    width: int,
    height: int,
    *,
    input_size: int = 512,
    coarse_size: int = 192,
    min_person_px: float = 64.0,
    tiles: tuple[int, int] | None = None,
    tile_overlap: float = 0.25,
    budget: float = DEFAULT_BUDGET,
) -> Plan:
    """The passes for a ``width`` x ``height`` image, coarsest first, within ``budget``.

    Args:
        input_size: long side of every fine (and middle) network input, pixels.
        coarse_size: long side of the whole-image coarse pass; 0 = no coarse pass.
        min_person_px: height in image pixels of the smallest person to find; sets the fine
            pass's scale (``NET_MIN_PX / min_person_px``). Ignored when ``tiles`` is given.
        tiles: explicit (cols, rows) grid of the fine pass at ``input_size`` (the layout of
            earlier versions); None = planned from ``min_person_px``.
        tile_overlap: fraction of a tile shared with its neighbour.
        budget: most work of all passes together, in network runs of 512 x 512 input pixels
            (:func:`plan_cost`). A planned fine pass that does not fit is made coarser (the
            smallest people are given up first, see :func:`smallest_person_px`) until the
            plan fits; explicit ``tiles`` are run as asked, whatever they cost.
    """
    if width < 1 or height < 1:
        raise ValueError(f"empty image {width}x{height}")
    if not budget > 0:
        raise ValueError(f"budget must be > 0, got {budget}")
    if tiles is not None:
        fine = Pass("fine", tuple(tile_grid(width, height, *tiles, tile_overlap)), input_size)
        return Plan(_ladder(width, height, fine, input_size, coarse_size, tile_overlap))
    if min_person_px <= 0:
        raise ValueError(f"min_person_px must be > 0, got {min_person_px}")
    asked = NET_MIN_PX / min_person_px
    # a fine pass at ``level`` costs about its scaled area or more: start no finer than that
    # allows (10 % slack for input sides rounded down to STRIDE)
    level = min(asked, 1.1 * math.sqrt(budget * UNIT_PX / (width * height)))
    while True:
        fine = _pass("fine", width, height, level, input_size, tile_overlap)
        plan = Plan(_ladder(width, height, fine, input_size, coarse_size, tile_overlap))
        if plan_cost(plan) <= budget or fine.input_px <= STRIDE:
            plan.limited = level < asked
            return plan
        level *= 0.9  # give up the smallest people first


def _ladder(
    width: int, height: int, fine: Pass, input_size: int, coarse_size: int, tile_overlap: float
) -> list[Pass]:
    """``fine`` with the coarse pass and the middle passes between them (coarsest first)."""
    fine_level = fine.level
    if coarse_size <= 0:
        return [fine]
    coarse_scale = coarse_size / max(width, height)
    if coarse_scale >= 0.8 * fine_level:  # the fine pass already sees the image this coarsely
        return [fine]
    passes = [_pass("coarse", width, height, coarse_scale, coarse_size, tile_overlap)]
    # middle passes while the smallest person of the last pass is clearly larger than the
    # largest the fine pass sees whole; each step keeps neighbouring bands overlapping 1.5x
    step = NET_MAX_PX / NET_MIN_PX / 1.5
    scale = coarse_scale
    while NET_MIN_PX / scale > 1.25 * NET_MAX_PX / fine.level:
        scale *= step
        passes.append(_pass("middle", width, height, scale, input_size, tile_overlap))
    passes.append(fine)
    return passes
