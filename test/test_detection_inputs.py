"""Odd inputs, missing models and bad arguments give results or one clear error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hpe3d_ros.detection import Detector, load_detector
from hpe3d_ros.detection.image import to_rgb8
from hpe3d_ros.detection.movenet_multipose import tile_grid

FRAME = Path(__file__).resolve().parent / "data" / "vtest_0480.jpg"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector()


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)


def test_grayscale_and_rgba_frames_find_people(detector: Detector, rgb: np.ndarray) -> None:
    n_rgb = len(detector.detect(rgb))
    assert n_rgb >= 3
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert len(detector.detect(rgba)) == n_rgb
    assert len(detector.detect(rgb.astype(np.float32))) == n_rgb
    # Colour helps a little: grey frames may lose one of the four.
    assert n_rgb - 1 <= len(detector.detect(gray)) <= n_rgb
    assert len(detector.detect(gray[:, :, None])) == len(detector.detect(gray))


@pytest.mark.parametrize("shape", [(8, 8, 3), (1, 1), (2000, 3), (5, 600, 4)])
def test_tiny_and_thin_images_return_a_list(detector: Detector, shape: tuple[int, ...]) -> None:
    people = detector.detect(np.zeros(shape, np.uint8))
    assert people == []


def test_scene_without_people(detector: Detector, rgb: np.ndarray) -> None:
    # The grass in the lower half of the frame is empty.
    assert detector.detect(rgb[400:, :]) == []


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 10), (10, 0, 3)])
def test_empty_image_raises_clear_value_error(detector: Detector, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="empty image"):
        detector.detect(np.zeros(shape, np.uint8))


def test_bad_channel_count_raises() -> None:
    with pytest.raises(ValueError, match="image"):
        to_rgb8(np.zeros((4, 4, 2), np.uint8))


def test_missing_model_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match=r"nope\.onnx"):
        load_detector(model_path=missing)


def test_corrupt_model_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"this is not an onnx file")
    with pytest.raises(RuntimeError, match=r"corrupt\.onnx"):
        load_detector(model_path=bad)


@pytest.mark.parametrize(
    "kwargs",
    [{"name": "yolo"}, {"mode": "sideways"}, {"device": "tpu"}, {"input_size": 8},
     {"tiles": (0, 1)}],
)  # fmt: skip
def test_bad_arguments_raise_value_error(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        load_detector(**kwargs)


def test_threads_parameter_reaches_onnxruntime() -> None:
    det = load_detector(threads=1, input_size=256, tiles=(1, 1))
    assert det.session.get_session_options().intra_op_num_threads == 1


@pytest.mark.parametrize("size", [1, 2, 3, 7, 768])
@pytest.mark.parametrize("grid", [(1, 1), (2, 1), (3, 3)])
def test_tiles_are_never_empty_and_cover_the_image(size: int, grid: tuple[int, int]) -> None:
    tiles = tile_grid(size, size, *grid, 0.25)
    assert len(tiles) == grid[0] * grid[1]
    assert all(x1 > x0 and y1 > y0 for x0, y0, x1, y1 in tiles)
    assert min(t[0] for t in tiles) == 0 and max(t[2] for t in tiles) == size


def test_cuda_request_without_cuda_falls_back_to_cpu(caplog: pytest.LogCaptureFixture) -> None:
    import onnxruntime as ort

    det = load_detector(device="cuda", input_size=256, tiles=(1, 1))
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert det.session.get_providers()[0] == "CUDAExecutionProvider"
    else:
        assert det.session.get_providers() == ["CPUExecutionProvider"]
        assert "running on CPU" in caplog.text
