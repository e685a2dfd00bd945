"""Optional backend: a user-supplied YOLO-pose ONNX file (Ultralytics export format).

No such weights ship with the package: the public YOLOv8/YOLO11 pose weights are AGPL-3.0,
which an Apache-2.0 package cannot make its default. A user who accepts that licence (or has
trained their own model) exports it (``yolo export model=yolo11n-pose.pt format=onnx``) and
passes the file: ``load_detector("yolo_pose_onnx", model_path=...)``.

Expected network: input (1, 3, S, S) float32 RGB in [0, 1], letterboxed with grey 114
padding; output (1, 56, N): per candidate (cx, cy, w, h, person score, 17 x (x, y, score)) in
input pixels, scores already through a sigmoid. One-stage and multi-person; duplicates are
removed by box NMS.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hpe3d_ros.detection.base import Person2D
from hpe3d_ros.detection.image import invert_points, resize_region, to_rgb8
from hpe3d_ros.detection.session import SessionOpener, open_session
from hpe3d_ros.detection.truncation import mark_unseen

#: Letterbox padding value used by Ultralytics.
PAD_VALUE = 114


class YoloPoseOnnx:
    """Multi-person detector from a YOLO-pose ONNX file.

    Args:
        model_path: the ONNX file (required; none ships, see the module docstring).
        input_size: network input side S in pixels of a model with a dynamic input (None =
            640); a model exported with a fixed size always runs at that size. A dynamic
            model can take a larger size to see small people.
        person_threshold: minimum person score.
        iou_threshold: box IoU above which the lower-scored candidate is dropped.
        device, threads: as for the other backends.
    """

    def __init__(
        self,
        model_path: str | Path,
        input_size: int | None = None,
        person_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        device: str = "cpu",
        threads: int = 2,
        opener: SessionOpener | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.session = (opener or open_session)(model_path, device, threads)
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        static = inp.shape[2] if isinstance(inp.shape[2], int) else None
        # a fixed-size export runs at its own size only
        self.input_size = int(static or input_size or 640)
        self.person_threshold = float(person_threshold)
        self.iou_threshold = float(iou_threshold)

    def detect(self, image_rgb: np.ndarray) -> list[Person2D]:
        """People in an RGB image (see :class:`~hpe3d_ros.detection.base.Detector`)."""
        image = to_rgb8(image_rgb)
        h, w = image.shape[:2]
        s = self.input_size
        scale = s / max(w, h)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        resized, affine = resize_region(image, 0, 0, w, h, (new_w, new_h))
        left, top = (s - new_w) // 2, (s - new_h) // 2
        affine[:, 2] += (left, top)
        canvas = np.full((s, s, 3), PAD_VALUE, dtype=np.uint8)
        canvas[top : top + new_h, left : left + new_w] = resized
        blob = (canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        out = self.session.run(None, {self._input_name: blob})[0][0].T  # (N, 56)
        out = out[out[:, 4] >= self.person_threshold]
        if len(out) == 0:
            return []
        xywh = np.stack([out[:, 0] - out[:, 2] / 2, out[:, 1] - out[:, 3] / 2, *out[:, 2:4].T], 1)
        keep = cv2.dnn.NMSBoxes(
            xywh.tolist(), out[:, 4].tolist(), self.person_threshold, self.iou_threshold
        )
        people = []
        for i in np.asarray(keep, dtype=int).reshape(-1):
            row = out[i]
            kps = row[5:56].reshape(17, 3)
            kp = invert_points(affine, kps[:, :2])
            corners = invert_points(affine, xywh[i, :2] + np.array([[0, 0], xywh[i, 2:4]]))
            box = np.clip(corners, 0, [w, h])
            scores = mark_unseen(kp, kps[:, 2], (*box[0], *box[1]), (0, 0, w, h), (w, h))
            people.append(Person2D(kp, scores, (*box[0], *box[1]), float(row[4])))
        return people
