"""Build the pipeline a configuration describes: detector, tracker, lifter (ROS-free).

Loading models is the slow, failure-prone part of start-up, so it lives in one place and
fails with one clear exception naming the file or setting at fault.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hpe3d_ros.config import NodeConfig
from hpe3d_ros.pipeline import Pipeline


class ModelLoadError(RuntimeError):
    """A model file is missing, corrupt, or cannot run on the requested device."""


def model_id(path: Path) -> str:
    """``name@sha256[:8]`` of a weights file, written into every hypotheses message."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return f"{path.name}@{digest}"


def build_pipeline(cfg: NodeConfig) -> Pipeline:
    """Load the detector and lifter the configuration names and wire the pipeline."""
    from hpe3d_ros.backends import BackendUnavailable, load_backend_lifter
    from hpe3d_ros.backends.detector import use_detector_backend
    from hpe3d_ros.detection import load_detector
    from hpe3d_ros.detection.smoothing import KeypointSmoother
    from hpe3d_ros.detection.tracking import Tracker
    from hpe3d_ros.lifting import DEFAULT_WEIGHTS

    det_args = dict(cfg.detector)
    try:
        detector = load_detector(det_args.pop("name"), det_args.pop("device"), **det_args)
        detector = use_detector_backend(
            detector, cfg.values.get("detector.backend", "onnxruntime-cpu"), det_args["threads"]
        )
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the 2D detector: {exc}") from exc
    weights = Path(cfg.lifter_weights) if cfg.lifter_weights else DEFAULT_WEIGHTS
    if not weights.is_file():
        raise ModelLoadError(f"lifter weights not found: {weights}")
    try:
        lifter = load_backend_lifter(
            weights,
            backend=cfg.values.get("lifter.backend", "auto"),
            device=cfg.lifter_device,
            threads=cfg.values.get("lifter.threads", 1),
        )
    except BackendUnavailable as exc:  # its message names each backend's file and reason
        raise ModelLoadError(f"cannot run the lifter {weights.name}: {exc}") from exc
    except Exception as exc:  # corrupt checkpoints raise many types
        raise ModelLoadError(f"cannot load lifter weights {weights}: {exc}") from exc
    tracking = dict(cfg.tracking)
    smoothing = dict(cfg.smoothing)
    return Pipeline(
        detector,
        lifter,
        cfg.pipeline,
        tracker_factory=(lambda: Tracker(**tracking)) if tracking else None,
        model_id=model_id(weights),
        smoother_factory=(lambda: KeypointSmoother(**smoothing)) if smoothing else None,
    )
