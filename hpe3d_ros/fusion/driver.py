"""The vehicle's view in a running system: each camera's pose, its ground plane, one fuser.

The live node and the replay drive one :class:`VehicleView` the same way, for every camera
frame in the order they process frames::

    pose = view.pose(camera, frame_id, stamp_ns)  # before the frame: sets its ground plane
    out = runner.process(...)                     # the camera's own outputs, published first
    people = view.fuse(camera, out.result, out.camera, pose)  # a PeopleList, or None

Where a camera's pose (``T_target_optical``) comes from, one path for every source:

1. its ``cameras.<name>.extrinsics`` parameters (static), chained to the target frame through
   ``transforms`` when their parent frame is another one;
2. else ``transforms`` at the image stamp for the image's frame id: a live TF buffer (the
   node with tf2_ros, :mod:`hpe3d_ros.ros.tf`) or the bag's ``/tf_static`` and ``/tf``
   (:class:`~hpe3d_ros.fusion.buffer.TransformBuffer`, the replay);
3. else none: the frame is counted as missing a transform, ``snapshot`` says why (a WARN on
   ``/diagnostics``), and the camera's own outputs go on as before.

A known pose also gives the camera its ground plane for placement (the target frame's
``z = ground_z_m``, :func:`~hpe3d_ros.fusion.extrinsics.ground_prior_from_extrinsics`),
replacing ``placement.camera_height_m``/``camera_pitch_deg`` for that camera.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpe3d_ros.camera import CameraModel
from hpe3d_ros.fusion.association import CHI2_3DOF
from hpe3d_ros.fusion.extrinsics import ground_prior_from_extrinsics
from hpe3d_ros.fusion.fuser import FuserConfig, PeopleFuser
from hpe3d_ros.fusion.tracks import PeopleList
from hpe3d_ros.fusion.transforms import Transform, TransformSource, TransformUnavailable
from hpe3d_ros.placement import ANKLE_HEIGHT_M, GROUND_WEIGHT
from hpe3d_ros.results import FrameResult
from hpe3d_ros.untrusted import one_line, show


@dataclass(frozen=True)
class VehicleConfig:
    """``target_frame``, ``output.people``, ``fusion.*`` and the ground of ``placement.*``."""

    people: bool = False  # publish ~/people (fuse every camera)
    fuser: FuserConfig = field(default_factory=FuserConfig)
    ground_z_m: float = 0.0  # the ground plane's height in the target frame (z up)
    ground_weight: float = GROUND_WEIGHT  # 0: no ground prior from the extrinsics
    tf_timeout_s: float = 0.05  # how long a live TF lookup may wait for the image stamp
    ankle_height_m: float = ANKLE_HEIGHT_M  # the lower ankle's height above the ground

    @property
    def target_frame(self) -> str:
        return self.fuser.target_frame

    @classmethod
    def from_values(cls, v: Mapping[str, Any]) -> VehicleConfig:
        """From the node's checked flat parameters (:func:`hpe3d_ros.param_schema.resolve`).

        Raises:
            ValueError: a combination the fuser refuses (e.g. an unknown gate probability).
        """
        if v["fusion.gate_probability"] not in CHI2_3DOF:
            raise ValueError(
                f"parameter 'fusion.gate_probability' must be one of "
                f"{sorted(CHI2_3DOF)}, got {v['fusion.gate_probability']!r}"
            )
        fuser = FuserConfig(
            target_frame=v["target_frame"],
            max_stamp_skew_s=v["fusion.max_stamp_skew_s"],
            gate_probability=v["fusion.gate_probability"],
            confirm_hits=v["fusion.confirm_hits"],
            tentative_timeout_s=v["fusion.tentative_timeout_s"],
            lost_after_s=v["fusion.lost_after_s"],
            delete_after_s=v["fusion.delete_after_s"],
            merge_max_distance_m=v["fusion.merge_max_distance_m"],
            output_tentative=v["fusion.output_tentative"],
            num_hypotheses=v["fusion.num_hypotheses"],
            seed=v["lifter.seed"],
        )
        return cls(v["output.people"], fuser, v["placement.ground_z_m"],
                   v["placement.ground_weight"], v["fusion.tf_timeout_s"],
                   v["placement.ankle_height_m"])  # fmt: skip


@dataclass(frozen=True)
class CameraPose:
    """One camera's pose for one frame: ``T_target_optical``, or why there is none."""

    transform: Transform | None
    reason: str = ""
    source: str = ""  # "parameters", "tf" or "" (none)


class VehicleView:
    """Camera poses, per-camera ground planes and the fuser of one node or one replayed bag.

    Args:
        config: :class:`VehicleConfig`.
        extrinsics: camera name -> ``T_parent_optical`` from its parameters (None: none given).
        pipeline: whose per-camera ground planes the poses set (anything with
            ``set_ground(camera_name, GroundPrior | None)``); None sets none.
        transforms: a TF buffer or a bag's transforms (None: there is none).
        no_transforms: why there is none (says it in every "no pose" reason).
    """

    def __init__(
        self,
        config: VehicleConfig,
        extrinsics: Mapping[str, Transform | None],
        pipeline: Any = None,
        transforms: TransformSource | None = None,
        no_transforms: str = "no TF",
    ) -> None:
        self.config = config
        self.extrinsics = {k: v for k, v in extrinsics.items() if v is not None}
        self.pipeline = pipeline
        self.transforms = transforms
        self.no_transforms = no_transforms
        self.fuser = PeopleFuser(config.fuser) if config.people else None
        self._problem: dict[str, str] = {}
        self._grounds: dict[str, tuple] = {}
        for name, T in self.extrinsics.items():
            if T.parent == config.target_frame:  # static: the ground is known before any frame
                self._set_ground(name, T)

    def reset(self) -> None:
        """Forget every track (a new bag)."""
        if self.fuser is not None:
            self.fuser = PeopleFuser(self.config.fuser)
        self._problem.clear()

    # ------------------------------------------------------------------ poses
    def pose(self, camera: str, frame_id: str, stamp_ns: int) -> CameraPose:
        """The camera's optical frame in the target frame at the image stamp; a pose found
        sets the camera's ground plane in the pipeline before its frame is processed."""
        pose = self._lookup(camera, frame_id, int(stamp_ns))
        self._problem[camera] = pose.reason
        if pose.transform is not None:
            self._set_ground(camera, pose.transform)
        return pose

    def _lookup(self, camera: str, frame_id: str, stamp_ns: int) -> CameraPose:
        target = self.config.target_frame
        T = self.extrinsics.get(camera)
        if T is not None:
            T = Transform(T.rotation, T.translation, T.parent, frame_id or T.child)
            if T.parent == target:
                return CameraPose(T, source="parameters")
            if self.transforms is None:
                return CameraPose(None, f"cameras.{camera}.extrinsics.parent_frame "
                                        f"{show(T.parent)} is not {show(target)} and there is "
                                        f"no TF to connect them "
                                        f"({self.no_transforms})")  # fmt: skip
            try:
                up = self.transforms.lookup(target, T.parent, stamp_ns)
            except TransformUnavailable as exc:
                return CameraPose(None, f"{show(target)} <- {show(T.parent)}: {exc}")
            return CameraPose(up.compose(T), source="parameters")
        if self.transforms is None:
            return CameraPose(None, f"no pose: cameras.{camera}.extrinsics not given and "
                                    f"{self.no_transforms}")  # fmt: skip
        if not frame_id:
            return CameraPose(None, "the image has no frame_id to look up in TF")
        try:
            return CameraPose(self.transforms.lookup(target, frame_id, stamp_ns), source="tf")
        except TransformUnavailable as exc:
            return CameraPose(None, f"no transform {show(target)} <- {show(frame_id)}: {exc}")

    def _set_ground(self, camera: str, T: Transform) -> None:
        if self.pipeline is None or self.config.ground_weight <= 0:
            return
        key = (T.rotation.tobytes(), T.translation.tobytes())
        if self._grounds.get(camera) == key:
            return
        self._grounds[camera] = key
        try:
            ground = ground_prior_from_extrinsics(T, self.config.ground_z_m,
                                                  self.config.ground_weight,
                                                  self.config.ankle_height_m)  # fmt: skip
        except ValueError:  # the camera is not above the ground: no prior for it
            ground = None
        self.pipeline.set_ground(camera, ground)

    # ------------------------------------------------------------------ fusion
    def fuse(
        self,
        camera: str,
        result: FrameResult | None,
        camera_model: CameraModel | None,
        pose: CameraPose,
    ) -> PeopleList | None:
        """Feed one processed frame to the fuser; the people list to publish, or None (no
        ``output.people``, a failed frame, no pose, or a frame too late to fuse)."""
        if self.fuser is None or result is None or camera_model is None:
            return None
        self.fuser.update(camera, result, camera_model, pose.transform, reason=pose.reason)
        if pose.transform is None or self.fuser.status(camera).last_problem:
            return None
        return self.fuser.people_list(self.fuser.latest_ns)

    def snapshot(self, camera: str) -> dict[str, Any]:
        """``/diagnostics`` values of one camera (``pose_problem`` non-empty: WARN)."""
        if self.fuser is None:
            return {}
        st = self.fuser.status(camera)
        return {"people_frames": st.frames, "missing_transform": st.missing_transform,
                "late_for_fusion": st.stale,
                "pose_problem": one_line(self._problem.get(camera, ""), 200)}  # fmt: skip
