"""Build the pipeline a configuration describes: detector, tracker, lifter (ROS-free).

Loading models is the slow, failure-prone part of start-up, so it lives in one place and
fails with one clear exception naming the file or setting at fault.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hpe3d_ros.config import DetectorConfig, NodeConfig
from hpe3d_ros.pipeline import Pipeline


class ModelLoadError(RuntimeError):
    """A model file is missing, corrupt, or cannot run on the requested device."""


def model_id(path: Path) -> str:
    """``name@sha256[:8]`` of a weights file, written into every hypotheses message."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return f"{path.name}@{digest}"


def build_detector(det: DetectorConfig):
    """The 2D detector ``detector.*`` describe, on its backend.

    Raises:
        ModelLoadError: a missing or corrupt model file (the message names it).
    """
    from hpe3d_ros.backends.detector import session_opener
    from hpe3d_ros.detection import load_detector

    opener = None if det.backend == "onnxruntime-cpu" else session_opener(det.backend, det.threads)
    try:
        return load_detector(
            det.name, det.device, mode=det.mode, input_size=det.input_size, tiles=det.tiles,
            coarse_size=det.coarse_size, min_person_px=det.min_person_px, budget=det.budget,
            person_threshold=det.person_threshold, threads=det.threads,
            model_path=det.model_path or None, opener=opener,
        )  # fmt: skip
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the 2D detector: {exc}") from exc


def build_pipeline(cfg: NodeConfig) -> Pipeline:
    """Load the detector and lifter the configuration names and wire the pipeline."""
    from hpe3d_ros.backends import BackendUnavailable, load_backend_lifter
    from hpe3d_ros.detection.smoothing import KeypointSmoother
    from hpe3d_ros.detection.tracking import Tracker
    from hpe3d_ros.lifting import DEFAULT_WEIGHTS

    detector = build_detector(cfg.detector)
    weights = Path(cfg.lifter.weights) if cfg.lifter.weights else DEFAULT_WEIGHTS
    if not weights.is_file():
        raise ModelLoadError(f"lifter weights not found: {weights}")
    try:
        lf = cfg.lifter
        lifter = load_backend_lifter(weights, backend=lf.backend, device=lf.device,
                                     threads=lf.threads)  # fmt: skip
    except BackendUnavailable as exc:  # its message names each backend's file and reason
        raise ModelLoadError(f"cannot run the lifter {weights.name}: {exc}") from exc
    except Exception as exc:  # corrupt checkpoints raise many types
        raise ModelLoadError(f"cannot load lifter weights {weights}: {exc}") from exc
    tracking, smoothing = cfg.tracking, cfg.smoothing
    return Pipeline(
        detector,
        lifter,
        cfg.pipeline,
        tracker_factory=(lambda: Tracker(**vars(tracking))) if tracking else None,
        model_id=model_id(weights),
        smoother_factory=(lambda: KeypointSmoother(**vars(smoothing))) if smoothing else None,
    )
