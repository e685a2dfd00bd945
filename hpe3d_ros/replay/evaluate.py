"""One replayed frame as table rows: its outcome, its people and, with ground truth, their errors.

The frame itself was run by the camera's :class:`~hpe3d_ros.runner.CameraRunner` (as on the
vehicle); this adds what only an offline evaluation has: the row of ``frames.csv`` (status,
the failure's reason, counts), the rows of ``people.csv`` and, where GT exists for the frame
(:mod:`hpe3d_ros.replay.ground_truth`), matching and errors per person.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpe3d_ros.replay.ground_truth import ERROR_COLUMNS, match_people, person_errors
from hpe3d_ros.replay.report import people_rows
from hpe3d_ros.runner import Outcome


def frame_rows(
    base: dict[str, Any], out: Outcome, gt_m: np.ndarray | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(frame row, people rows) of one outcome.

    ``base``: the columns that place the frame (sequence, camera, topic, index, log time);
    ``gt_m``: (P, 17, 3) true poses in the camera's optical frame, metres, or None.
    """
    frame = out.frame
    row = {**base, "status": "ok" if out.ok else "failed", "reason": out.reason,
           "stamp_ns": None if frame is None else frame.stamp_ns,
           "frame_id": None if frame is None else (out.result.frame_id if out.ok
                                                   else frame.frame_id)}  # fmt: skip
    if not out.ok:
        return row, []
    result = out.result
    row.update(detections=len(result.detections), people=len(result.people),
               lifted=sum(p.num_hypotheses > 0 for p in result.people))  # fmt: skip
    people = people_rows(result, {k: base[k] for k in ("sequence", "camera", "index")}
                         | {"stamp_ns": frame.stamp_ns})  # fmt: skip
    if gt_m is None:
        return row, people
    pairs = match_people(result.people, gt_m, out.camera)
    row.update(gt_people=len(gt_m), gt_matched=len(pairs))
    errs = []
    for i, j in pairs:
        e = person_errors(result.people[i], gt_m[j])
        people[i].update(gt_index=j, **e)
        if people[i]["lifted"]:
            errs.append(e)
    for col in ERROR_COLUMNS:
        row[col] = float(np.mean([e[col] for e in errs])) if errs else float("nan")
    return row, people
