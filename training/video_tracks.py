"""2D tracks of real footage from the pipeline's own detector and tracker (self-supervised
adaptation, issue 17).

``python -m training.video_tracks VIDEO OUT.npz --hfov-deg 60 [--first N --last M]``

Runs the detector and tracker of ``config/pipeline.yaml`` (or ``--params-file``) over every
frame and stores, per detected person, the frame index and time, the track id, the H36M-17
keypoints in pixels and normalised camera coordinates (pinhole with the given horizontal
field of view, principal point at the centre: the footage has no calibration), the
confidences, the box and the detector's keypoint noise std (the one the pipeline passes
to noise-aware lifters). :func:`load_tracks` turns the file into per-track arrays.

The bundled clip ``demo/vtest_600_750.mp4`` is frames 600-749 of OpenCV's ``vtest.avi``
(Debian ``opencv-doc``, Apache-2.0 AND BSD-3-Clause, see ``demo/LICENSE.md``); the whole
795-frame video gives ``training/data/vtest_tracks.npz``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.lifting.noise import detector_noise_std
from hpe3d_ros.lifting.temporal_runtime import TrackInput


def detect_video(video, params_file, hfov_deg, first=0, last=None, threads=1, log=print):
    """Per-detection arrays of ``video`` (module docstring), a dict."""
    import cv2

    from hpe3d_ros.build import build_detector
    from hpe3d_ros.config import load_config
    from hpe3d_ros.detection.tracking import Tracker

    cfg = load_config(params_file, **{"detector.threads": threads})
    detector = build_detector(cfg.detector)
    tracker = Tracker(**vars(cfg.tracking))
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    camera = CameraModel.from_fov(w, h, hfov_deg, np.zeros(5), "plumb_bob")
    rows: dict[str, list] = {k: [] for k in ("frame", "track", "kp_px", "conf", "box")}
    index = 0
    while True:
        ok, bgr = cap.read()
        if not ok or (last is not None and index >= last):
            break
        if index >= first:
            people = tracker.update(detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            for p in people:
                kp, conf = p.to_h36m()
                rows["frame"].append(index)
                rows["track"].append(p.track_id)
                rows["kp_px"].append(np.asarray(kp, np.float64))
                rows["conf"].append(np.asarray(conf, np.float64))
                rows["box"].append(np.asarray(p.box, np.float64))
            if index % 50 == 0:
                log(f"frame {index}: {len(people)} people")
        index += 1
    out = {
        k: np.asarray(v, np.float32 if k in ("kp_px", "conf", "box") else np.int32)
        for k, v in rows.items()
    }
    out.update(K=camera.K, size=np.array([w, h]), fps=np.float64(fps))
    return out


def normalised(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """kp_norm (N, 17, 2), noise std (N, 17) (the detector's, as the pipeline passes it) and
    stamps (N,) seconds of a :func:`detect_video` dict (pinhole camera ``K``)."""
    w, h = (int(v) for v in data["size"])
    camera = CameraModel(w, h, data["K"], np.zeros(5), "plumb_bob")
    kp = camera.pixel_to_normalized(data["kp_px"].astype(np.float64))
    noise = detector_noise_std(kp, data["conf"].astype(np.float64), camera.fx)
    return kp, noise, data["frame"] / float(data["fps"])


def load_tracks(path, frames=None, min_frames=10) -> list[TrackInput]:
    """Tracks of a :func:`detect_video` file with at least ``min_frames`` frames, keeping
    only frames in ``frames`` (a (first, last) range, last excluded) when given."""
    with np.load(path) as d:
        data = {k: d[k] for k in d.files}
    kp_norm, noise, stamps = normalised(data)
    keep = np.ones(len(data["frame"]), bool)
    if frames is not None:
        keep = (data["frame"] >= frames[0]) & (data["frame"] < frames[1])
    out = []
    for tid in np.unique(data["track"][keep]):
        sel = np.flatnonzero(keep & (data["track"] == tid))
        sel = sel[np.argsort(stamps[sel])]
        if len(sel) >= min_frames and tid >= 0:
            out.append(TrackInput(stamps[sel], kp_norm[sel], data["conf"][sel], noise[sel]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("out")
    parser.add_argument("--hfov-deg", type=float, default=60.0)
    parser.add_argument("--params-file", default="config/pipeline.yaml")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--last", type=int)
    parser.add_argument("--threads", type=int, default=1, help="detector threads")
    args = parser.parse_args(argv)
    out = detect_video(
        args.video, args.params_file, args.hfov_deg, args.first, args.last, args.threads
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(
        f"wrote {args.out}: {len(out['frame'])} detections, {len(np.unique(out['track']))} tracks"
    )


if __name__ == "__main__":
    main()
