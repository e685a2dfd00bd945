"""Make rosbag2 test bags: real footage + intrinsics, or mocap ground truth through a camera.

``hpe3d-make-bag OUT --video clip.mp4 --hfov-deg 60`` (or ``--images DIR``) writes what a
camera driver records: ``/<cam>/camera/image_raw`` (``sensor_msgs/Image`` rgb8, or with
``--compressed`` ``image_raw/compressed`` JPEG) and ``/<cam>/camera/camera_info`` per frame,
same stamps, frame id ``<cam>_camera_optical_frame``.

``hpe3d-make-bag OUT --mocap cmu_h36m17_30fps.npz`` writes a keypoint-level GT bag: P real
mocap people walking in front of a virtual vehicle camera (1.5 m high, level), their H36M-17
joints projected to pixels (``/<cam>/camera/keypoints``, ``Keypoints2DArray``, layout
``h36m17``; Gaussian pixel noise optional), the CameraInfo, and the true 3D poses in the
camera optical frame on ``/<cam>/camera/gt_poses`` (``PoseHypothesesArray``, K = 1).
``hpe3d-replay`` evaluates the lifter and placement on it through the same code path. With
``--rig N`` (1-4) the people walk in front of a virtual vehicle seen by N cameras, with the
extrinsics on ``/tf_static`` (:mod:`hpe3d_ros.replay.rig_bag`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hpe3d_ros.camera import CameraModel, CameraModelError
from hpe3d_ros.replay.bag_messages import (
    MOCAP_FPS,
    START_NS,
    box_of,
    camera_info_msg,
    image_msgs,
    topics,
)
from hpe3d_ros.replay.bagio import BagWriter, serialize_ros
from hpe3d_ros.replay.rig_bag import rig_scene, write_rig_bag, write_rig_sidecar
from hpe3d_ros.results import Detection2D, FrameResult, Person3D
from hpe3d_ros.skeleton import H36M_JOINT_NAMES

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
CAMERA_HEIGHT_M = 1.5


def write_image_bag(
    out: str | Path,
    frames: Iterable[np.ndarray],
    camera: CameraModel,
    *,
    camera_name: str = "front",
    fps: float = 10.0,
    start_ns: int = START_NS,
    compressed: bool = False,
    storage: str = "mcap",
    quality: int = 90,
) -> int:
    """Frames (H, W, 3) RGB -> a camera-driver-like bag; returns the number of frames."""
    t = topics(camera_name)
    frame_id = f"{camera_name}_camera_optical_frame"
    img_topic, img_type = ((t["compressed"], "sensor_msgs/msg/CompressedImage") if compressed
                           else (t["image"], "sensor_msgs/msg/Image"))  # fmt: skip
    n = 0
    with BagWriter(out, storage) as bag:
        for i, frame in enumerate(frames):
            if frame.shape[:2] != (camera.height, camera.width):
                raise ValueError(
                    f"frame {i} is {frame.shape[1]}x{frame.shape[0]}, the intrinsics are for "
                    f"{camera.width}x{camera.height}"
                )
            stamp = start_ns + round(i * 1e9 / fps)
            msg = image_msgs(frame, stamp, frame_id, compressed, quality)
            bag.write(img_topic, img_type, stamp, serialize_ros(msg))
            info = serialize_ros(camera_info_msg(camera, stamp, frame_id))
            bag.write(t["camera_info"], "sensor_msgs/msg/CameraInfo", stamp, info)
            n += 1
    return n


def read_video(path: str | Path, max_frames: int = 0, stride: int = 1) -> Iterator[np.ndarray]:
    """RGB frames of a video file (every ``stride``-th, at most ``max_frames``; 0 = all)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}")
    i = n = 0
    try:
        while not max_frames or n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % stride == 0:
                n += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def read_images(folder: str | Path, max_frames: int = 0) -> Iterator[np.ndarray]:
    """RGB images of a folder, sorted by file name."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTS)}) in {folder}")
    for p in files[: max_frames or None]:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {p}")
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------- mocap GT
@dataclass
class MocapScene:
    """People seen by a virtual camera. F frames, P people, H36M-17 joints."""

    kp_px: np.ndarray  # (F, P, 17, 2) float32 pixels, NaN where not seen
    conf: np.ndarray  # (F, P, 17) float32, 0 where not seen
    gt_m: np.ndarray  # (F, P, 17, 3) float32 optical frame, metres
    stamps_ns: np.ndarray  # (F,) int64
    sequences: list[str]  # (P,) CMU trial ids


def mocap_scene(
    npz: str | Path,
    camera: CameraModel,
    frames: int = 30,
    people: int = 3,
    seed: int = 0,
    noise_px: float = 0.0,
    start_ns: int = START_NS,
) -> MocapScene:
    """Place ``people`` mocap sequences 4-16 m in front of the camera (seeded)."""
    rng = np.random.default_rng(seed)
    with np.load(npz, allow_pickle=False) as z:
        poses, seq = z["poses"], z["sequence"].astype(str)
    starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
    ends = np.r_[starts[1:], len(seq)]
    ok = np.flatnonzero(ends - starts >= frames)
    if len(ok) < people:
        raise ValueError(f"{npz}: only {len(ok)} sequences have {frames} frames")
    picks = np.sort(rng.choice(ok, size=people, replace=False))
    gt = np.zeros((frames, people, 17, 3))
    for p, s in enumerate(picks):
        a = starts[s] + rng.integers(0, ends[s] - starts[s] - frames + 1)
        w = poses[a : a + frames].astype(np.float64)  # world, Z up
        w[..., :2] -= w[0, 0, :2]
        yaw = rng.uniform(0, 2 * np.pi)
        c, si = np.cos(yaw), np.sin(yaw)
        x, y = c * w[..., 0] - si * w[..., 1], si * w[..., 0] + c * w[..., 1]
        depth = 4.0 + 4.0 * p + rng.uniform(0, 2)
        lateral = rng.uniform(-0.3, 0.3) * depth
        gt[:, p] = np.stack([x + lateral, CAMERA_HEIGHT_M - w[..., 2], y + depth], axis=-1)
    px = camera.project(gt)
    px = px + rng.normal(0.0, noise_px, px.shape) if noise_px > 0 else px
    seen = camera.in_image(px) & (gt[..., 2] > 0.1)
    kp = np.where(seen[..., None], px, np.nan).astype(np.float32)
    conf = np.where(seen, 0.9, 0.0).astype(np.float32)
    stamps = start_ns + np.round(np.arange(frames) * 1e9 / MOCAP_FPS).astype(np.int64)
    return MocapScene(
        kp, conf, gt.astype(np.float32), stamps, [str(seq[starts[s]]) for s in picks]
    )


def write_mocap_bag(
    out: str | Path, scene: MocapScene, camera: CameraModel, *, camera_name: str = "front",
    storage: str = "mcap", source: str = "mocap",
) -> int:  # fmt: skip
    """A keypoint-level GT bag from :func:`mocap_scene`; returns the number of frames."""
    from hpe3d_ros.ros.conversions import hypotheses_to_msg, keypoints_to_msg

    t = topics(camera_name)
    frame_id = f"{camera_name}_camera_optical_frame"
    with BagWriter(out, storage) as bag:
        for f, stamp in enumerate(scene.stamps_ns.tolist()):
            res = FrameResult(camera_name, frame_id, stamp, detection_layout="h36m17",
                              detection_joint_names=tuple(H36M_JOINT_NAMES),
                              model_id=f"ground truth: {source}")  # fmt: skip
            for p in range(scene.kp_px.shape[1]):
                kp, conf, gt = scene.kp_px[f, p], scene.conf[f, p], scene.gt_m[f, p]
                box = box_of(kp)
                res.detections.append(Detection2D(p, 1.0, box, kp, conf))
                res.people.append(Person3D(p, 1.0, box, kp, conf, gt[0].astype(np.float64),
                                           np.zeros(3, np.float32), gt[None]))  # fmt: skip
            bag.write(t["camera_info"], "sensor_msgs/msg/CameraInfo", stamp,
                      serialize_ros(camera_info_msg(camera, stamp, frame_id)))  # fmt: skip
            bag.write(t["keypoints"], "hpe3d_ros/msg/Keypoints2DArray", stamp,
                      serialize_ros(keypoints_to_msg(res)))  # fmt: skip
            bag.write(t["gt"], "hpe3d_ros/msg/PoseHypothesesArray", stamp,
                      serialize_ros(hypotheses_to_msg(res)))  # fmt: skip
    return len(scene.stamps_ns)


def write_sidecar(path: str | Path, scene: MocapScene, camera_name: str = "front") -> None:
    """The scene's GT as a side-car ``.npz`` (one row per person and frame)."""
    f, p = scene.gt_m.shape[:2]
    np.savez(path, stamp_ns=np.repeat(scene.stamps_ns, p), poses_m=scene.gt_m.reshape(-1, 17, 3),
             camera=np.full(f * p, camera_name), track_id=np.tile(np.arange(p), f))  # fmt: skip


# ------------------------------------------------------------------------- CLI
def camera_from_args(args: argparse.Namespace, width: int, height: int) -> CameraModel:
    d = [float(v) for v in args.d.split(",")] if args.d else []
    if args.fx:
        cx = args.cx if args.cx is not None else width / 2
        cy = args.cy if args.cy is not None else height / 2
        K = np.array([[args.fx, 0, cx], [0, args.fy or args.fx, cy], [0, 0, 1]])
        return CameraModel(width, height, K, np.array(d), args.distortion_model)
    return CameraModel.from_fov(width, height, args.hfov_deg, np.array(d), args.distortion_model)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hpe3d-make-bag",
        description="Write a rosbag2 bag from a video or image folder plus intrinsics, or a "
        "keypoint-level ground-truth bag from mocap through a virtual camera.",
    )
    ap.add_argument("output", type=Path, help="bag folder to create (must not exist)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", type=Path, help="video file (any format OpenCV reads)")
    src.add_argument("--images", type=Path, help="folder of images (sorted by name)")
    src.add_argument("--mocap", type=Path, help="H36M-17 mocap .npz (keypoint-level GT bag)")
    ap.add_argument("--camera", default="front", help="camera name (topic namespace)")
    ap.add_argument(
        "--hfov-deg",
        type=float,
        default=60.0,
        help="horizontal field of view when --fx is not given (assumed intrinsics)",
    )
    ap.add_argument("--fx", type=float, help="focal length, pixels")
    ap.add_argument("--fy", type=float, help="default: fx")
    ap.add_argument("--cx", type=float, help="principal point x (default: centre)")
    ap.add_argument("--cy", type=float, help="principal point y (default: centre)")
    ap.add_argument("--distortion-model", default="plumb_bob")
    ap.add_argument("--d", help="distortion coefficients, comma-separated")
    ap.add_argument("--fps", type=float, default=0.0, help="frame rate (default: video's, or 10)")
    ap.add_argument("--max-frames", type=int, default=0, help="0 = all")
    ap.add_argument("--stride", type=int, default=1, help="keep every n-th video frame")
    ap.add_argument("--compressed", action="store_true", help="JPEG CompressedImage topic")
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    ap.add_argument("--size", default="1280x720", help="--mocap: virtual image WxH")
    ap.add_argument("--people", type=int, default=3, help="--mocap: people in view")
    ap.add_argument("--noise-px", type=float, default=0.0, help="--mocap: 2D noise (pixels)")
    ap.add_argument("--seed", type=int, default=0, help="--mocap: scene seed")
    ap.add_argument("--gt-npz", type=Path, help="--mocap: also write the GT as a side-car")
    ap.add_argument(
        "--rig",
        type=int,
        choices=(1, 2, 3, 4),
        help="--mocap: N cameras of a virtual vehicle (extrinsics on /tf_static)",
    )
    args = ap.parse_args(argv)  # fmt: skip
    final = args.output
    if os.path.lexists(final):
        print(f"hpe3d-make-bag: error: {final} exists (choose a new bag folder)", file=sys.stderr)
        return 1
    # written beside its final name and renamed when complete: a failed run leaves nothing
    # behind that would block the corrected re-run
    # (in a hidden folder, under its own name: rosbags names the storage file after it)
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    try:
        partial.mkdir(parents=True)
        what = _write(args, partial / final.name)
        os.replace(partial / final.name, final)
    except (ValueError, OSError, CameraModelError) as exc:
        print(f"hpe3d-make-bag: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # rosbags WriterError and the like
        print(f"hpe3d-make-bag: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"wrote {what.format(final)}")
    return 0


def _write(args: argparse.Namespace, out: Path) -> str:
    """The bag ``args`` describe, written to ``out``; returns what was written (``{}`` where
    the bag's name goes)."""
    if args.mocap and args.rig:
        return _write_rig(args, out)
    if args.mocap:
        w, h = (int(v) for v in args.size.lower().split("x"))
        cam = camera_from_args(args, w, h)
        scene = mocap_scene(args.mocap, cam, args.max_frames or 30, args.people, args.seed,
                            args.noise_px)  # fmt: skip
        n = write_mocap_bag(out, scene, cam, camera_name=args.camera, storage=args.storage,
                            source=args.mocap.name)  # fmt: skip
        if args.gt_npz:
            write_sidecar(args.gt_npz, scene, args.camera)
    else:
        frames = (read_video(args.video, args.max_frames, args.stride) if args.video
                  else read_images(args.images, args.max_frames))  # fmt: skip
        first = next(frames, None)
        if first is None:
            raise ValueError(f"no frames in {args.video or args.images}")
        fps = args.fps or _video_fps(args.video) / args.stride
        cam = camera_from_args(args, first.shape[1], first.shape[0])
        n = write_image_bag(out, _chain(first, frames), cam, camera_name=args.camera, fps=fps,
                            compressed=args.compressed, storage=args.storage)  # fmt: skip
    return (f"{n} frames to {{}} (camera {args.camera!r}, {cam.width}x{cam.height}, "
            f"fx={cam.fx:.1f})")  # fmt: skip


def _write_rig(args: argparse.Namespace, out: Path) -> str:
    w, h = (int(v) for v in args.size.lower().split("x"))
    scene = rig_scene(args.mocap, args.max_frames or 30, args.people, args.seed)
    rig, gt_rows = write_rig_bag(out, scene, args.rig, width=w, height=h,
                                 noise_px=args.noise_px, seed=args.seed, storage=args.storage,
                                 source=args.mocap.name)  # fmt: skip
    if args.gt_npz:
        write_rig_sidecar(args.gt_npz, gt_rows)
    return (f"{len(scene.joints_m) - 1} frames x {len(rig)} cameras to {{}} "
            f"({', '.join(c.name for c in rig)}; extrinsics on /tf_static; {w}x{h})")  # fmt: skip


def _video_fps(path: Path | None) -> float:
    if path is None:
        return 10.0
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return fps if fps and 0 < fps < 1000 else 10.0


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


if __name__ == "__main__":
    sys.exit(main())
