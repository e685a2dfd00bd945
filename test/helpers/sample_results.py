"""Deterministic, fully populated pipeline results for message tests."""

from __future__ import annotations

import numpy as np

from hpe3d_ros.results import Detection2D, FrameResult, Person3D
from hpe3d_ros.skeleton import COCO_JOINT_NAMES


def make_sample_result(seed: int = 7, people: int = 3, k: int = 50) -> FrameResult:
    rng = np.random.default_rng(seed)
    persons, dets = [], []
    for i in range(people):
        kp = rng.uniform(0, 640, (17, 2)).astype(np.float32)
        kp[5] = np.nan  # a missing joint travels as NaN
        conf = rng.uniform(0, 1, 17).astype(np.float32)
        conf[5] = 0.0
        root = np.array([rng.uniform(-3, 3), rng.uniform(-0.5, 1.0), rng.uniform(4, 30)])
        hyps = (root + rng.normal(0, 0.3, (k, 17, 3))).astype(np.float32)
        persons.append(
            Person3D(
                track_id=10 + i,
                detection_score=float(rng.uniform(0.3, 1.0)),
                bbox_px=np.sort(rng.uniform(0, 640, 4)).astype(np.float32),
                keypoints_px=kp,
                keypoint_conf=conf,
                root_m=root,
                root_std_m=rng.uniform(0, 1, 3).astype(np.float32),
                hypotheses_m=hyps,
            )
        )
        dets.append(
            Detection2D(
                track_id=10 + i,
                score=float(rng.uniform(0.3, 1.0)),
                bbox_px=np.sort(rng.uniform(0, 640, 4)).astype(np.float32),
                keypoints_px=rng.uniform(0, 640, (17, 2)).astype(np.float32),
                confidence=rng.uniform(0, 1, 17).astype(np.float32),
            )
        )
    return FrameResult(
        camera_name="front",
        frame_id="front_camera_optical_frame",
        stamp_ns=1_732_000_000_123_456_789,
        people=persons,
        detections=dets,
        detection_joint_names=COCO_JOINT_NAMES,
        model_id="lifter_default.pt@0123abcd",
    )
