"""The optional YOLO-pose ONNX backend decodes the Ultralytics output format correctly.

No YOLO weights ship (AGPL-3.0), so the test builds a tiny ONNX graph that ignores its input
and returns fixed candidates in the export's (1, 56, N) layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hpe3d_ros.detection import load_detector

S = 640


def candidate(cx: float, cy: float, score: float) -> np.ndarray:
    """One (56,) candidate: an 80x160 px box at (cx, cy), joints on a vertical line."""
    kps = np.zeros((17, 3), np.float32)
    kps[:, 0] = cx + np.linspace(-10, 10, 17)
    kps[:, 1] = cy + np.linspace(-70, 70, 17)
    kps[:, 2] = 0.9
    return np.concatenate([[cx, cy, 80, 160, score], kps.ravel()]).astype(np.float32)


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cands = np.stack(
        [
            candidate(320, 320, 0.9),
            candidate(324, 322, 0.8),  # duplicate of the first: NMS drops it
            candidate(150, 300, 0.7),
            candidate(500, 300, 0.1),  # below the person threshold
        ],
        axis=1,
    )[None]  # (1, 56, 4)
    const = numpy_helper.from_array(cands, "cands")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["cands", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fake_yolo_pose",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, S, S])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 56, 4])],
        [const, numpy_helper.from_array(np.zeros((), np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("yolo") / "fake_pose.onnx"
    onnx.save(model, str(path))
    return path


def test_decodes_letterbox_and_suppresses_duplicates(fake_model: Path) -> None:
    det = load_detector("yolo_pose_onnx", model_path=fake_model)
    assert det.input_size == S
    people = det.detect(np.zeros((576, 768, 3), np.uint8))
    assert len(people) == 2
    # 768x576 -> 640x480 (scale 5/6), padded 80 px top: input (320, 320) -> image (384, 288).
    first = max(people, key=lambda p: p.score)
    assert first.score == pytest.approx(0.9)
    np.testing.assert_allclose(first.keypoints[8], [384, 288], atol=0.01)
    np.testing.assert_allclose(first.box, [336, 192, 432, 384], atol=0.01)
    np.testing.assert_allclose(first.scores, 0.9, atol=1e-6)


def test_requires_a_model_path_and_bottom_up() -> None:
    with pytest.raises(ValueError, match="model_path"):
        load_detector("yolo_pose_onnx")
    with pytest.raises(ValueError, match="bottom_up"):
        load_detector("yolo_pose_onnx", model_path="x.onnx", mode="top_down")


def test_reachable_from_the_config_with_a_user_weights_path(fake_model: Path) -> None:
    """detector.name + detector.model_path build this backend through the node's builder."""
    from hpe3d_ros.build import build_detector
    from hpe3d_ros.config import ConfigError, load_config
    from hpe3d_ros.detection.yolo_pose_onnx import YoloPoseOnnx

    cfg = load_config(
        None, **{"detector.name": "yolo_pose_onnx", "detector.model_path": str(fake_model)}
    )
    det = build_detector(cfg.detector)
    assert isinstance(det, YoloPoseOnnx) and det.input_size == S  # the file's own size
    assert len(det.detect(np.zeros((480, 640, 3), np.uint8))) == 2
    # another runtime opens the user's file, not the shipped MoveNet one
    cuda = load_config(
        None,
        **{
            "detector.name": "yolo_pose_onnx",
            "detector.backend": "onnxruntime-cuda",
            "detector.model_path": str(fake_model),
        },
    )
    moved = build_detector(cuda.detector)
    assert moved.session.get_inputs()[0].shape == [1, 3, S, S]
    with pytest.raises(ConfigError, match="model_path"):
        load_config(None, **{"detector.name": "yolo_pose_onnx"})
