"""Multi-camera ground-truth bags: mocap people around a virtual vehicle, 1-4 cameras.

``hpe3d-make-bag OUT --mocap cmu_h36m17_30fps.npz --rig 2`` writes what a vehicle with the
first N cameras of :func:`hpe3d_ros.fusion.rig.vehicle_rig` records while P real mocap people
walk in front of it (``base_link`` on the ground, REP-103/105):

* ``/tf_static`` (``tf2_msgs/TFMessage``, once, before the first frame): per camera
  ``base_link -> <cam>_camera_link`` (the camera body: x along the optical axis, z up) and
  ``<cam>_camera_link -> <cam>_camera_optical_frame`` (x right, y down, z forward), as a URDF
  and ``robot_state_publisher`` would;
* per camera, at 30 Hz with the rig's phase offsets (0, 11, 23, 37 ms):
  ``/<cam>/camera/keypoints`` (``Keypoints2DArray``, h36m17: the people with at least 6
  joints in the image, 2D noise optional, per-person ``track_id`` = the mocap person's index),
  ``/<cam>/camera/camera_info`` and ``/<cam>/camera/gt_poses`` (the same people's true 3D
  joints in that camera's optical frame, ``track_id`` = the person's index on every camera).

``hpe3d-replay --set output.people=true`` then fuses the cameras with the extrinsics from
``/tf_static`` and reports GT errors in ``base_link`` (:mod:`hpe3d_ros.replay.vehicle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpe3d_ros.frames import R_BODY_FROM_OPTICAL
from hpe3d_ros.fusion.rig import VEHICLE_CAMERAS, VirtualCamera, vehicle_rig, view_people
from hpe3d_ros.fusion.transforms import Transform
from hpe3d_ros.replay.bag_messages import MOCAP_FPS, START_NS, box_of, camera_info_msg, topics
from hpe3d_ros.replay.bagio import BagWriter, serialize_ros, typestore
from hpe3d_ros.results import Detection2D, FrameResult, Person3D
from hpe3d_ros.skeleton import H36M_JOINT_NAMES

TF_STATIC = "/tf_static"
TF_TYPE = "tf2_msgs/msg/TFMessage"
PHASES_S = (0.0, 0.011, 0.023, 0.037)
MIN_SEPARATION_M = 1.5


@dataclass
class RigScene:
    """P people in ``base_link`` over F frames (at 30 Hz; cameras sample it with phases)."""

    joints_m: np.ndarray  # (F + 1, P, 17, 3) base_link, metres (one extra frame to interpolate)
    sequences: list[str]  # (P,) CMU trial ids

    def at(self, t_s: float) -> np.ndarray:
        """(P, 17, 3) at ``t_s`` seconds (linear between mocap frames)."""
        x = t_s * MOCAP_FPS
        i = min(int(np.floor(x)), len(self.joints_m) - 2)
        w = x - i
        return (1 - w) * self.joints_m[i] + w * self.joints_m[i + 1]


def rig_scene(npz: str | Path, frames: int = 30, people: int = 3, seed: int = 0) -> RigScene:
    """``people`` mocap clips placed 5-14 m ahead of the vehicle, 4.5 m either side, apart by
    at least 1.5 m at the start, each turned to a random heading (seeded)."""
    rng = np.random.default_rng(seed)
    with np.load(npz, allow_pickle=False) as z:
        poses, seq = z["poses"], z["sequence"].astype(str)
    starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
    ends = np.r_[starts[1:], len(seq)]
    ok = np.flatnonzero(ends - starts >= frames + 1)
    if len(ok) < people:
        raise ValueError(f"{npz}: only {len(ok)} sequences have {frames + 1} frames")
    picks = np.sort(rng.choice(ok, size=people, replace=False))
    out = np.zeros((frames + 1, people, 17, 3))
    placed: list[np.ndarray] = []
    for p, s in enumerate(picks):
        a = starts[s] + rng.integers(0, ends[s] - starts[s] - frames)
        w = poses[a : a + frames + 1].astype(np.float64)  # world, Z up
        w[..., :2] -= w[0, 0, :2]
        # the capture's floor (z = 0) is the road: feet on it, a standing ankle ~0.1 m up
        yaw = rng.uniform(0, 2 * np.pi)
        c, si = np.cos(yaw), np.sin(yaw)
        R = np.array([[c, -si, 0.0], [si, c, 0.0], [0.0, 0.0, 1.0]])
        for _ in range(100):
            at = np.array([rng.uniform(5.0, 14.0), rng.uniform(-4.5, 4.5)])
            if all(np.linalg.norm(at - q) >= MIN_SEPARATION_M for q in placed):
                break
        placed.append(at)
        out[:, p] = w @ R.T + np.array([at[0], at[1], 0.0])
    return RigScene(out, [str(seq[starts[s]]) for s in picks])


def static_transforms(rig: list[VirtualCamera], stamp_ns: int, parent: str = "base_link"):
    """The ``/tf_static`` message of a rig (a ``rosbags`` ``tf2_msgs/TFMessage``)."""
    store = typestore()
    types = store.types
    edges = []
    for cam in rig:
        t, rpy, _, _ = VEHICLE_CAMERAS[cam.name]
        link = f"{cam.name}_camera_link"
        body = Transform.from_rpy(t, np.radians(rpy), parent, link)
        optical = Transform(R_BODY_FROM_OPTICAL, np.zeros(3), link, cam.frame_id)
        edges += [body, optical]
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    stamped = []
    for T in edges:
        q, tr = T.quaternion(), T.translation
        stamped.append(types["geometry_msgs/msg/TransformStamped"](
            header=types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                frame_id=T.parent),
            child_frame_id=T.child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](x=tr[0], y=tr[1], z=tr[2]),
                rotation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])),
        ))  # fmt: skip
    return types[TF_TYPE](transforms=stamped)


def write_rig_bag(
    out: str | Path,
    scene: RigScene,
    n_cameras: int,
    *,
    width: int = 1280,
    height: int = 720,
    noise_px: float = 0.0,
    seed: int = 0,
    storage: str = "mcap",
    source: str = "mocap",
) -> tuple[list[VirtualCamera], list[tuple[str, int, int, np.ndarray]]]:
    """Write the bag; returns the rig and the GT rows ``(camera, stamp, person, joints (17, 3)
    optical)`` of every person written on a ``gt_poses`` topic (for a side-car file)."""
    from hpe3d_ros.ros.conversions import hypotheses_to_msg, keypoints_to_msg

    rig = vehicle_rig(n_cameras, width, height)
    rng = np.random.default_rng(seed + 1)
    frames = len(scene.joints_m) - 1
    gt_rows: list[tuple[str, int, int, np.ndarray]] = []
    store = typestore()
    with BagWriter(out, storage) as bag:
        tf = static_transforms(rig, START_NS - 1)
        bag.write(TF_STATIC, TF_TYPE, START_NS - 1, bytes(store.serialize_cdr(tf, TF_TYPE)))
        for f in range(frames):
            for c, cam in enumerate(rig):
                t_s = f / MOCAP_FPS + PHASES_S[c]
                stamp = START_NS + round(t_s * 1e9)
                joints = scene.at(t_s)
                kp, conf, seen = view_people(cam, joints, rng, noise_px)
                p_opt = cam.T_base_camera.inverse().apply(joints).astype(np.float32)
                tp = topics(cam.name)
                res = FrameResult(cam.name, cam.frame_id, stamp, detection_layout="h36m17",
                                  detection_joint_names=tuple(H36M_JOINT_NAMES),
                                  model_id=f"ground truth: {source}")  # fmt: skip
                for p in np.flatnonzero(seen):
                    k, cf = kp[p].astype(np.float32), conf[p].astype(np.float32)
                    box = box_of(k)
                    res.detections.append(Detection2D(int(p), 1.0, box, k, cf))
                    root, zero = p_opt[p, 0].astype(np.float64), np.zeros(3, np.float32)
                    gt = p_opt[p][None]
                    res.people.append(Person3D(int(p), 1.0, box, k, cf, root, zero, gt))
                    gt_rows.append((cam.name, stamp, int(p), p_opt[p]))
                info = camera_info_msg(cam.model, stamp, cam.frame_id)
                bag.write(tp["camera_info"], "sensor_msgs/msg/CameraInfo", stamp,
                          serialize_ros(info))  # fmt: skip
                bag.write(tp["keypoints"], "hpe3d_ros/msg/Keypoints2DArray", stamp,
                          serialize_ros(keypoints_to_msg(res)))  # fmt: skip
                bag.write(tp["gt"], "hpe3d_ros/msg/PoseHypothesesArray", stamp,
                          serialize_ros(hypotheses_to_msg(res)))  # fmt: skip
    return rig, gt_rows


def write_rig_sidecar(path: str | Path, gt_rows: list[tuple[str, int, int, np.ndarray]]) -> None:
    """The GT of :func:`write_rig_bag` as a side-car ``.npz`` (one row per person and frame)."""
    np.savez(path, stamp_ns=np.array([r[1] for r in gt_rows], np.int64),
             poses_m=np.array([r[3] for r in gt_rows], np.float32).reshape(-1, 17, 3),
             camera=np.array([r[0] for r in gt_rows]),
             track_id=np.array([r[2] for r in gt_rows], np.int64))  # fmt: skip
