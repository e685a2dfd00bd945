"""Top-down backend: MultiPose proposals, each refined by MoveNet SinglePose on its own crop.

Each proposal box (MultiPose at a low person threshold) is expanded to a square, cropped and
resized to the single-person network's input (Thunder 256 px, Lightning 192 px), so a
distant 80 px pedestrian is seen at 2-3x the pixels. The refined person score is the mean of
the single-person keypoint scores, which also rejects proposals that are not people.

Network: input (1, S, S, 3) int32 RGB 0-255; output (1, 1, 17, 3): (y, x, score) normalised
to the crop. Weights: Apache-2.0 (see ``hpe3d_ros/weights/MOVENET_LICENSE.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.image import crop_affine, invert_points, to_rgb8, warp
from hpe3d_ros.detection.movenet_multipose import MoveNetMultiPose
from hpe3d_ros.detection.nms import suppress_duplicates
from hpe3d_ros.detection.scales import run_cost
from hpe3d_ros.detection.session import WEIGHTS_DIR, SessionOpener, open_session
from hpe3d_ros.detection.truncation import mark_unseen

SINGLEPOSE_ONNX: dict[str, Path] = {
    "thunder": WEIGHTS_DIR / "movenet_singlepose_thunder.onnx",
    "lightning": WEIGHTS_DIR / "movenet_singlepose_lightning.onnx",
}


class MoveNetTopDown:
    """Top-down multi-person detector (``mode="top_down"``).

    Args:
        proposer: bottom-up detector giving candidate boxes (its own ``person_threshold`` is
            not used; ``proposal_threshold`` is).
        single_model: "thunder" (more accurate) or "lightning" (about 3x faster), or a path
            to a MoveNet-SinglePose-compatible ONNX file.
        proposal_threshold: MultiPose score above which a box is refined.
        person_threshold: refined people whose mean keypoint score is below this are dropped.
        crop_scale: side of the square crop over the longer side of the proposal box.
        device, threads: as for :class:`MoveNetMultiPose`.
    """

    def __init__(
        self,
        proposer: MoveNetMultiPose,
        single_model: str | Path = "thunder",
        proposal_threshold: float = 0.1,
        person_threshold: float = 0.3,
        crop_scale: float = 1.25,
        device: str = "cpu",
        threads: int = 2,
        opener: SessionOpener | None = None,
    ) -> None:
        self.proposer = proposer
        path = SINGLEPOSE_ONNX.get(str(single_model), Path(single_model))
        self.session = (opener or open_session)(path, device, threads)
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        self.crop_px = int(inp.shape[1])
        self.proposal_threshold = float(proposal_threshold)
        self.person_threshold = float(person_threshold)
        self.crop_scale = float(crop_scale)

    def detect(self, image_rgb: np.ndarray) -> list[Person2D]:
        """People in an RGB image (see :class:`~hpe3d_ros.detection.base.Detector`)."""
        image = to_rgb8(image_rgb)
        proposals = self.proposer.detect_candidates(image, self.proposal_threshold)
        # each crop is paid from what the proposer's passes left of the budget, best first
        work = self.proposer.last_work
        crop_cost = run_cost(self.crop_px, self.crop_px, self.crop_px)
        affordable = max(0, int((work.left + 1e-9) // crop_cost))
        proposals = sorted(proposals, key=lambda p: p.score, reverse=True)
        work.skipped_crops = max(0, len(proposals) - affordable)
        proposals = proposals[:affordable]
        work.used += crop_cost * len(proposals)
        if work.skipped_crops:
            self.proposer.report_work(image.shape[1], image.shape[0])
        refined = [self.refine(image, p.box) for p in proposals]
        kept = [p for p in refined if p.score >= self.person_threshold]
        return suppress_duplicates(kept)

    def refine(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Person2D:
        """Run the single-person network on a square crop around ``box`` of an RGB uint8 image."""
        x0, y0, x1, y1 = box
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        side = max(x1 - x0, y1 - y0, 1.0) * self.crop_scale
        affine = crop_affine(centre, side, self.crop_px)
        crop = warp(image, affine, (self.crop_px, self.crop_px))
        out = self.session.run(None, {self._input_name: crop[None].astype(np.int32)})[0]
        yxs = out.reshape(17, 3)
        kp = invert_points(affine, yxs[:, 1::-1] * self.crop_px)
        h, w = image.shape[:2]
        scores = mark_unseen(kp, yxs[:, 2], box, (0, 0, w, h), (w, h))
        # the person score ranks the joints the crop could show (a truncated person is not
        # penalised for the joints outside the image)
        inside = scores > 0
        return Person2D(kp, scores, box, float(yxs[inside, 2].mean()) if inside.any() else 0.0)
