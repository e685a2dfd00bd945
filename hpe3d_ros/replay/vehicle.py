"""The vehicle's view in a replay (``output.people``): one fuser per bag, ``~/people`` in the
output bag, and ground-truth errors in the target frame.

Per bag, :class:`BagVehicle` reads the bag's ``/tf_static`` and ``/tf`` first (a
:class:`~hpe3d_ros.fusion.buffer.TransformBuffer`; ``cameras.<name>.extrinsics`` parameters
win where given) and drives a :class:`~hpe3d_ros.fusion.driver.VehicleView` exactly as the
node does: the camera's pose at the image stamp before the frame is processed (it sets the
camera's ground plane), the processed frame into the fuser in log-time order, each people list
written as ``/hpe3d_pipeline/people`` (+ ``people_markers``) at the frame's log time.

Ground truth (the cameras' ``gt_poses`` topics or the side-car file, in each camera's optical
frame) is moved into the target frame with the same camera pose and matched to the list at the
frame's stamp (Hungarian on root distance, within :data:`MATCH_M`). ``vehicle_people.csv`` has
one row per listed person per list; ``summary["vehicle"]`` per sequence: lists, cameras' fused
and skipped frames, and with GT recall, root error, MPJPE, 90 % ellipsoid coverage, track ids
per GT person and id switches. GT identity is the GT message's per-person ``track_id``
(``hpe3d-make-bag`` writes one id per mocap person on every camera).
"""

from __future__ import annotations

import contextlib
import csv
import itertools
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from hpe3d_ros.config import NodeConfig
from hpe3d_ros.fusion.buffer import TransformBuffer
from hpe3d_ros.fusion.driver import CameraPose, VehicleView
from hpe3d_ros.replay.bagio import BagReader, BagReadError, BagWriter, deserialize, serialize_ros
from hpe3d_ros.replay.ground_truth import Sidecar, gt_from_msg
from hpe3d_ros.replay.report import fmt
from hpe3d_ros.ros.topics import PEOPLE_OUTPUTS, people_topic
from hpe3d_ros.ros.vehicle import people_messages
from hpe3d_ros.runner import Outcome
from hpe3d_ros.stamps import stamp_to_ns

TF_TYPE = "tf2_msgs/msg/TFMessage"
TF_TOPICS = {"/tf_static": True, "/tf": False}  # topic -> static
#: A listed person farther than this from every GT root is not matched (m).
MATCH_M = 1.5
CHI2_90 = 6.251
COLUMNS = (
    "sequence", "list", "camera", "stamp_ns", "track_id", "state", "views", "x_m", "y_m", "z_m",
    "std_x_m", "std_y_m", "std_z_m", "vx_mps", "vy_mps", "vz_mps", "num_hypotheses", "gt_id",
    "root_err_m", "mpjpe_mm", "inside90",
)  # fmt: skip


class VehicleTable:
    """``vehicle_people.csv`` (row by row, byte-identical on a re-run) and its summary."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / "vehicle_people.csv"
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(COLUMNS)
        self.sequences: list[dict[str, Any]] = []

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._csv.writerow([fmt(row.get(c)) for c in COLUMNS])
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class BagVehicle:
    """One bag's vehicle view (see the module docstring)."""

    def __init__(
        self,
        seq: str,
        cfg: NodeConfig,
        pipeline: Any,
        reader: BagReader,
        cameras: dict[str, str | None],
        sidecar: Sidecar | None,
        table: VehicleTable,
    ) -> None:
        """``cameras``: the bag's camera names -> their ``gt_poses`` topic (None: none)."""
        self.seq, self.cfg, self.table, self.sidecar = seq, cfg, table, sidecar
        self.gt_topics = {c: t for c, t in cameras.items() if t}
        self.cameras = list(cameras)
        self.buffer, self.gt, self.notes = _read_bag(reader, set(self.gt_topics.values()))
        why = "the bag has no /tf_static or /tf" if self.buffer is None else ""
        self.view = VehicleView(cfg.vehicle, {c.name: c.extrinsics for c in cfg.cameras},
                                pipeline, self.buffer, why)  # fmt: skip
        self.lists = 0
        self.people = 0
        self.gt_rows: list[dict[str, Any]] = []  # matched and missed GT people

    def pose(self, camera: str, frame_id: str, stamp_ns: int) -> CameraPose:
        return self.view.pose(camera, frame_id, stamp_ns)

    def snapshot(self, camera: str) -> dict[str, Any]:
        return self.view.snapshot(camera)

    def frame(
        self, camera: str, out: Outcome, pose: CameraPose, log_ns: int, writer: BagWriter
    ) -> None:
        """One processed frame: fuse it, write its people list and table rows."""
        people = self.view.fuse(camera, out.result, out.camera, pose)
        if people is None:
            return
        for kind, msg in people_messages(people, self.cfg.output):
            writer.write(people_topic(kind), PEOPLE_OUTPUTS[kind], log_ns, serialize_ros(msg))
        stamp = out.frame.stamp_ns
        rows = [_person_row(p) | {"sequence": self.seq, "list": self.lists, "camera": camera,
                                  "stamp_ns": people.stamp_ns} for p in people.people]  # fmt: skip
        gt = self._gt(camera, stamp)
        if gt is not None and pose.transform is not None:
            at_frame = self.view.fuser.people(stamp)  # the list as it stood at the GT's time
            self._evaluate(pose.transform.apply(gt[0]), gt[1], at_frame, rows)
        self.table.add(rows)
        self.lists += 1
        self.people += len(people.people)

    def _gt(self, camera: str, stamp: int) -> tuple[np.ndarray, np.ndarray] | None:
        if self.sidecar is not None:
            poses = self.sidecar.lookup(camera, stamp)
            return None if poses is None else (poses, np.full(len(poses), -1))
        return self.gt.get(self.gt_topics.get(camera, ""), {}).get(stamp)

    def _evaluate(self, gt_m: np.ndarray, ids: np.ndarray, people: list, rows: list) -> None:
        """Match GT people (P, 17, 3) in the target frame to the list; fill rows' GT columns."""
        by_id = {r["track_id"]: r for r in rows}
        pairs: dict[int, int] = {}
        if len(gt_m) and people:
            pos = np.array([p.position_m for p in people])
            d = np.linalg.norm(gt_m[:, None, 0] - pos[None], axis=-1)
            r, c = linear_sum_assignment(d)
            pairs = {int(i): int(j) for i, j in zip(r, c, strict=True) if d[i, j] <= MATCH_M}
        for g in range(len(gt_m)):
            j = pairs.get(g)
            gt_row = {"gt_id": int(ids[g]), "matched": j is not None}
            if j is not None:
                p = people[j]
                e = p.position_m - gt_m[g, 0]
                mean = p.mean_pose_m.astype(np.float64)
                errs = {"gt_id": int(ids[g]), "root_err_m": float(np.linalg.norm(e)),
                        "inside90": bool(e @ np.linalg.solve(p.position_cov, e) <= CHI2_90),
                        "mpjpe_mm": 1e3 * _mpjpe(mean, gt_m[g])}  # fmt: skip
                gt_row |= errs | {"track_id": p.track_id}
                by_id.get(p.track_id, {}).update(errs)
            self.gt_rows.append(gt_row)

    def summary(self) -> dict[str, Any]:
        """This bag's entry of ``summary["vehicle"]["sequences"]``."""
        fuser = self.view.fuser
        out: dict[str, Any] = {
            "sequence": self.seq, "lists": self.lists,
            "people_per_list": self.people / self.lists if self.lists else 0.0,
            "transforms": len(self.buffer) if self.buffer is not None else 0,
            "cameras": {c: {"fused": fuser.status(c).frames,
                            "missing_transform": fuser.status(c).missing_transform,
                            "late": fuser.status(c).stale,
                            "last_problem": fuser.status(c).last_problem}
                        for c in self.cameras},
        }  # fmt: skip
        if self.notes:
            out["notes"] = self.notes
        if self.gt_rows:
            out["ground_truth"] = _gt_summary(self.gt_rows)
        return out


def _read_bag(reader: BagReader, gt_topics: set[str]):
    """(TransformBuffer or None, GT topic -> stamp -> (poses, ids), notes) of one bag."""
    tf_topics = {t for t in TF_TOPICS if reader.topics.get(t) == TF_TYPE}
    buffer = TransformBuffer() if tf_topics else None
    gts: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    refused, notes = 0, []
    wanted = tf_topics | {t for t in gt_topics if t in reader.topics}
    if not wanted:
        return buffer, gts, notes
    try:
        for topic, msgtype, _, raw in reader.messages(wanted):
            try:
                msg = deserialize(raw, msgtype)
            except Exception:  # an unreadable message: none of it is used
                refused += 1
                continue
            if topic in tf_topics:
                refused += buffer.add_message(msg, TF_TOPICS[topic])
                continue
            with contextlib.suppress(Exception):  # an unreadable GT message: no GT there
                ids = np.array([int(p.track_id) for p in msg.people], dtype=np.int64)
                gts.setdefault(topic, {})[stamp_to_ns(msg.header.stamp)] = (gt_from_msg(msg), ids)
    except BagReadError as exc:
        notes.append(f"transforms and GT read up to the damage: {exc}")
    if refused:
        notes.append(f"{refused} transforms or messages refused (NaN, loops, unreadable)")
    return buffer, gts, notes


def _person_row(p) -> dict[str, Any]:
    std = np.sqrt(np.clip(np.diag(p.position_cov), 0.0, None))
    return {
        "track_id": p.track_id, "state": p.state,
        "views": "+".join(v.camera_name for v in p.views),
        **{f"{a}_m": float(v) for a, v in zip("xyz", p.position_m, strict=True)},
        **{f"std_{a}_m": float(v) for a, v in zip("xyz", std, strict=True)},
        **{f"v{a}_mps": float(v) for a, v in zip("xyz", p.velocity_mps, strict=True)},
        "num_hypotheses": p.num_hypotheses,
    }  # fmt: skip


def _mpjpe(pose: np.ndarray, gt: np.ndarray) -> float:
    """Root-relative mean joint error (m); NaN for a pose without hypotheses."""
    rel, gt_rel = pose - pose[:1], gt - gt[:1]
    return float(np.linalg.norm(rel - gt_rel, axis=-1).mean())


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {}
    return {"mean": float(v.mean()), "p50": float(np.median(v)),
            "p95": float(np.percentile(v, 95)), "n": int(v.size)}  # fmt: skip


def _gt_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    matched = [r for r in rows if r["matched"]]
    ids: dict[int, list[int]] = {}
    for r in matched:
        if r["gt_id"] >= 0:
            ids.setdefault(r["gt_id"], []).append(r["track_id"])
    switches = sum(int(a != b) for seq in ids.values() for a, b in itertools.pairwise(seq))
    return {
        "gt_people": len(rows), "matched": len(matched),
        "recall": len(matched) / len(rows),
        "root_err_m": _stats([r["root_err_m"] for r in matched]),
        "mpjpe_mm": _stats([r["mpjpe_mm"] for r in matched]),
        "coverage90": float(np.mean([r["inside90"] for r in matched])) if matched else None,
        "gt_ids": len(ids),
        "track_ids_per_gt_person": {str(g): len(set(t)) for g, t in sorted(ids.items())},
        "id_switches": switches,
    }  # fmt: skip


def format_vehicle(summary: dict[str, Any]) -> str:
    """The printed people table of ``summary["vehicle"]`` ("" without one)."""
    v = summary.get("vehicle")
    if not v:
        return ""
    lines = ["", f"~/people in {v['target_frame']}",
             f"{'sequence':<20}{'lists':>7}{'people':>8}{'GT':>6}{'recall':>8}{'root m':>8}"
             f"{'p95 m':>7}{'MPJPE':>7}{'cov90':>7}{'ids/GT':>8}{'switch':>7}"]  # fmt: skip
    for s in v["sequences"]:
        g = s.get("ground_truth")
        head = f"{s['sequence']:<20}{s['lists']:>7}{s['people_per_list']:>8.2f}"
        if not g:
            lines.append(head)
        else:
            per = list(g["track_ids_per_gt_person"].values())
            lines.append(
                head + f"{g['gt_people']:>6}{100 * g['recall']:>7.1f}%"
                f"{g['root_err_m'].get('p50', float('nan')):>8.3f}"
                f"{g['root_err_m'].get('p95', float('nan')):>7.3f}"
                f"{g['mpjpe_mm'].get('mean', float('nan')):>7.1f}"
                f"{100 * (g['coverage90'] or 0):>6.1f}%"
                f"{(np.mean(per) if per else float('nan')):>8.2f}{g['id_switches']:>7}"
            )
        for cam, c in s["cameras"].items():
            if c["missing_transform"] or c["late"]:
                lines.append(f"    {cam}: {c['fused']} fused, {c['missing_transform']} without a "
                             f"pose, {c['late']} too late ({c['last_problem']})")  # fmt: skip
    return "\n".join(lines)
