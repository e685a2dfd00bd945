"""2D keypoint stage: image -> people with COCO-17 keypoints in pixels.

Use :func:`load_detector`; every backend follows :class:`~.base.Detector` and returns
:class:`~.base.Person2D`. :class:`~.tracking.Tracker` gives people identities across frames and
:class:`~.smoothing.KeypointSmoother` filters their keypoints (One-Euro).

Backends (weights ship in ``hpe3d_ros/weights``; nothing is downloaded):

* ``"movenet"`` (default), Apache-2.0 weights converted by ``tools/convert_movenet.py``:
  ``mode="bottom_up"`` runs MoveNet MultiPose Lightning over every scale (a coarse
  whole-image pass and fine tiles, :mod:`~.scales`);
  ``mode="top_down"`` refines each MultiPose proposal with MoveNet SinglePose (Thunder or
  Lightning) on its own crop.
* ``"yolo_pose_onnx"`` (optional): a user-supplied YOLO-pose ONNX file (``model_path``); no
  such weights ship because the public ones are AGPL-3.0. Uses ``input_size`` (None = the
  model's own), ``person_threshold``, ``device`` and ``threads``; ``mode`` must stay
  "bottom_up" (it is one-stage) and the scale/tiling/top-down arguments do not apply.
"""

from __future__ import annotations

from pathlib import Path

from hpe3d_ros.detection.base import Detector, Person2D
from hpe3d_ros.detection.movenet_multipose import MULTIPOSE_ONNX, SLOTS, MoveNetMultiPose
from hpe3d_ros.detection.movenet_topdown import MoveNetTopDown
from hpe3d_ros.detection.scales import DEFAULT_BUDGET
from hpe3d_ros.detection.session import SessionOpener
from hpe3d_ros.detection.yolo_pose_onnx import YoloPoseOnnx

__all__ = ["BACKENDS", "MODES", "Detector", "Person2D", "load_detector"]

BACKENDS: tuple[str, ...] = ("movenet", "yolo_pose_onnx")
MODES: tuple[str, ...] = ("bottom_up", "top_down")
DEFAULT_BACKEND = "movenet"


def load_detector(
    name: str | None = None,
    device: str = "cpu",
    *,
    mode: str = "bottom_up",
    input_size: int | None = None,
    tiles: tuple[int, int] | list[int] | None = None,
    tile_overlap: float = 0.25,
    coarse_size: int = 192,
    min_person_px: float = 64.0,
    budget: float = DEFAULT_BUDGET,
    slots: int = SLOTS,
    person_threshold: float | None = None,
    proposal_threshold: float = 0.1,
    single_model: str = "thunder",
    crop_scale: float = 1.25,
    threads: int = 2,
    model_path: str | Path | None = None,
    opener: SessionOpener | None = None,
) -> Detector:
    """Build a 2D keypoint detector; every argument can come from the node's YAML.

    Defaults (``bottom_up``: a 192 px whole-image pass plus a fine pass sized for 64 px
    people, tiled at 512 px) find people from distant pedestrians to one filling the frame,
    cut by its border; see BENCHMARKS.md, section "2D detector", and
    :mod:`hpe3d_ros.detection.scales`.

    Args:
        name: backend, one of :data:`BACKENDS`; None picks ``"movenet"``.
        device: "cpu" or "cuda" (ONNX Runtime execution provider).
        mode: "bottom_up" (MultiPose only) or "top_down" (MultiPose proposals refined by
            SinglePose crops: better keypoints on small people, slower per person).
        input_size: long side in pixels of each fine MultiPose input (multiple of 32; None =
            512; for "yolo_pose_onnx" None = the model's own input size); a fine pass larger
            than this is split into tiles.
        tiles: explicit (cols, rows) grid of the fine pass; None or (0, 0) = planned from
            the image size and ``min_person_px``.
        tile_overlap: fraction of each tile shared with its neighbour (0 <= x < 1).
        coarse_size: long side of the whole-image pass for near people (0 = none).
        min_person_px: height in pixels of the smallest person the fine pass is scaled for;
            smaller values cost more tiles.
        budget: most network work per frame, in runs of 512 x 512 input pixels (every
            pass, crowded regions run again in halves, top-down crops); images that need
            more give up their smallest people first (:mod:`~.scales`, :mod:`~.budget`).
        slots: people per MultiPose run (the shipped file is edited to have them,
            :mod:`~.multipose_graph`; 6 = the export as it is, crowds run again in halves).
        person_threshold: minimum person score; None = 0.2 (bottom_up: MultiPose score) or
            0.25 (top_down: mean SinglePose keypoint score).
        proposal_threshold: top_down only, MultiPose score of boxes worth refining.
        single_model: top_down only, "thunder" (256 px crops) or "lightning" (192 px).
        crop_scale: top_down only, crop side over the proposal box's longer side.
        threads: ONNX Runtime intra-op threads per session.
        opener: how the detector opens its ONNX files (:class:`~.session.SessionOpener`);
            None: ONNX Runtime on ``device``. A runtime is given to the detector this way,
            never swapped in afterwards.
        model_path: "movenet": override the MultiPose ONNX file; "yolo_pose_onnx": the
            user's YOLO-pose ONNX file (required).

    Raises:
        ValueError: unknown name, mode or device, or an invalid size.
        FileNotFoundError / RuntimeError: a model file is missing or cannot be loaded.
    """
    name = DEFAULT_BACKEND if name is None else name
    if name not in BACKENDS:
        raise ValueError(f"unknown detector {name!r}; available: {', '.join(BACKENDS)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    if name == "yolo_pose_onnx":
        if model_path is None:
            raise ValueError(
                "yolo_pose_onnx needs model_path: no YOLO-pose weights ship (AGPL-3.0)"
            )
        if mode != "bottom_up":
            raise ValueError("yolo_pose_onnx is one-stage: mode must be 'bottom_up'")
        return YoloPoseOnnx(
            model_path,
            input_size=input_size,
            person_threshold=0.25 if person_threshold is None else person_threshold,
            device=device,
            threads=threads,
            opener=opener,
        )
    tiles_t = None if tiles is None or tuple(tiles) == (0, 0) else (int(tiles[0]), int(tiles[1]))
    if person_threshold is None:
        person_threshold = 0.2 if mode == "bottom_up" else 0.25
    multipose = MoveNetMultiPose(
        input_size=512 if input_size is None else input_size,
        tiles=tiles_t,
        tile_overlap=tile_overlap,
        person_threshold=person_threshold,
        coarse_size=coarse_size,
        min_person_px=min_person_px,
        budget=budget,
        slots=slots,
        model_path=MULTIPOSE_ONNX if model_path is None else model_path,
        device=device,
        threads=threads,
        opener=opener,
    )
    if mode == "bottom_up":
        return multipose
    return MoveNetTopDown(
        multipose,
        single_model=single_model,
        proposal_threshold=proposal_threshold,
        person_threshold=person_threshold,
        crop_scale=crop_scale,
        device=device,
        threads=threads,
        opener=opener,
    )
