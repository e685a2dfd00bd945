"""One input frame of a replay: deserialise, pair with its CameraInfo, decode, run the
pipeline (or the 2D->3D half for keypoint-level input), compare with GT. Never raises for
bad input: a frame that cannot be processed becomes a ``failed`` row whose ``reason`` starts
with its kind ("decode error", "missing CameraInfo", "bad CameraInfo", "size mismatch",
"bad image", "bad keypoints", "pipeline error")."""

from __future__ import annotations

from typing import Any

import numpy as np

from hpe3d_ros.bagio import deserialize
from hpe3d_ros.imaging import ImageDecodeError
from hpe3d_ros.pipeline import Pipeline, PipelineInputError
from hpe3d_ros.replay_gt import ERROR_COLUMNS, Sidecar, match_people, person_errors
from hpe3d_ros.replay_inputs import (
    KEYPOINTS,
    CameraInfoIndex,
    Stream,
    decode_image,
    lift_keypoint_msg,
)
from hpe3d_ros.report import people_rows
from hpe3d_ros.results import FrameResult
from hpe3d_ros.ros.conversions import stamp_to_ns


class _Failed(Exception):
    """A frame that cannot be processed; the message is the table's ``reason``."""


def stamp_ns(msg: Any) -> int:
    """Header stamp of a deserialised message as the node's one-to-one int64 key
    (:func:`hpe3d_ros.ros.conversions.stamp_to_ns`: nanoseconds for valid stamps; output
    messages carry back the very same ``(sec, nanosec)``)."""
    return stamp_to_ns(msg.header.stamp)


def process_frame(
    seq: str,
    s: Stream,
    index: int,
    msgtype: str,
    log_ns: int,
    raw: bytes,
    calib: CameraInfoIndex,
    pipeline: Pipeline,
    sidecar: Sidecar | None,
    gt_by_stamp: dict[int, np.ndarray],
) -> tuple[dict[str, Any], list[dict[str, Any]], FrameResult | None, np.ndarray | None]:
    """One input frame -> (frame row, people rows, result or None, RGB image or None).

    ``index`` counts the frames of stream ``s``; GT comes from ``sidecar`` when given, else
    from ``gt_by_stamp`` (stamp ns -> (P, 17, 3) metres).
    """
    row: dict[str, Any] = {"sequence": seq, "camera": s.camera, "topic": s.topic,
                           "index": index, "log_time_ns": log_ns, "status": "failed"}  # fmt: skip
    image = result = camera = None
    try:
        try:
            msg = deserialize(raw, msgtype)
        except Exception as exc:  # garbage bytes raise many types
            raise _Failed(f"decode error: cannot deserialize {msgtype}: {exc}") from exc
        stamp = row["stamp_ns"] = stamp_ns(msg)
        frame_id = row["frame_id"] = s.frame_id or msg.header.frame_id
        try:
            camera = calib.lookup(s.info_topic, stamp)
        except ValueError as exc:
            raise _Failed(str(exc)) from exc
        if msgtype == KEYPOINTS:
            try:
                result = lift_keypoint_msg(pipeline, msg, camera, s.camera, frame_id, stamp)
            except ValueError as exc:
                raise _Failed(f"bad keypoints: {exc}") from exc
        else:
            try:
                image = decode_image(msg, msgtype)
            except ImageDecodeError as exc:
                raise _Failed(f"decode error: {exc}") from exc
            try:
                result = pipeline.process(
                    image, camera, camera_name=s.camera, frame_id=frame_id, stamp_ns=stamp
                )
            except PipelineInputError as exc:
                kind = "size mismatch" if "CameraInfo says" in str(exc) else "bad image"
                raise _Failed(f"{kind}: {exc}") from exc
            except Exception as exc:  # a backend failing mid-stream
                raise _Failed(f"pipeline error: {type(exc).__name__}: {exc}") from exc
    except _Failed as exc:
        row["reason"] = str(exc)
        return row, [], None, image
    lifted = sum(p.num_hypotheses > 0 for p in result.people)
    row.update(
        status="ok",
        reason="",
        detections=len(result.detections),
        people=len(result.people),
        lifted=lifted,
    )
    people = people_rows(
        result, {"sequence": seq, "camera": s.camera, "index": index, "stamp_ns": stamp}
    )
    gt = sidecar.lookup(s.camera, stamp) if sidecar else gt_by_stamp.get(stamp)
    if gt is not None:
        pairs = match_people(result.people, gt, camera)
        row.update(gt_people=len(gt), gt_matched=len(pairs))
        errs = []
        for i, j in pairs:
            e = person_errors(result.people[i], gt[j])
            people[i].update(gt_index=j, **e)
            if people[i]["lifted"]:
                errs.append(e)
        for col in ERROR_COLUMNS:
            row[col] = float(np.mean([e[col] for e in errs])) if errs else float("nan")
    return row, people, result, image
