"""Camera model vs OpenCV on real-looking intrinsics and lens distortion (<= 1e-6 px)."""

import cv2
import numpy as np
import pytest

from hpe3d_ros.camera import CameraModel, CameraModelError
from hpe3d_ros.frames import body_to_optical, ground_plane_optical, optical_to_body

# A 1280x720 automotive camera (values of the kind a real calibration gives).
K = np.array([[912.3, 0.0, 641.7], [0.0, 910.8, 362.4], [0.0, 0.0, 1.0]])
LENSES = {
    "plumb_bob": np.array([-0.3198, 0.1152, 0.00041, -0.00023, -0.0194]),
    "rational_polynomial": np.array([2.1, 0.9, 0.0005, -0.0004, 0.02, 2.4, 1.3, 0.1]),
}
FISHEYE_D = np.array([0.05, -0.012, 0.002, -0.0003])


@pytest.fixture
def points():
    rng = np.random.default_rng(0)
    z = rng.uniform(2.0, 40.0, 2000)
    xy = rng.uniform(-0.6, 0.6, (2000, 2)) * z[:, None]
    return np.c_[xy, z]


@pytest.mark.parametrize("model", sorted(LENSES))
def test_project_matches_opencv(model, points):
    cam = CameraModel(1280, 720, K, LENSES[model], model)
    ours = cam.project(points)
    ref = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K, LENSES[model])[0][:, 0]
    assert np.abs(ours - ref).max() <= 1e-6


def test_fisheye_project_matches_opencv(points):
    cam = CameraModel(1280, 720, K, FISHEYE_D, "equidistant")
    ref = cv2.fisheye.projectPoints(points[:, None], np.zeros(3), np.zeros(3), K, FISHEYE_D)
    assert np.abs(cam.project(points) - ref[0][:, 0]).max() <= 1e-6


@pytest.mark.parametrize("model", sorted(LENSES))
def test_undistort_matches_opencv_and_round_trips(model, points):
    cam = CameraModel(1280, 720, K, LENSES[model], model)
    px = cam.project(points)
    px = px[cam.in_image(px)]
    assert len(px) > 1000
    norm = cam.pixel_to_normalized(px)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
    ref = cv2.undistortPoints(px[:, None], K, LENSES[model], criteria=crit)[:, 0]
    # Compare in pixels of the ideal camera.
    assert np.abs((norm - ref) * K[0, 0]).max() <= 1e-6
    assert np.abs(cam.normalized_to_pixel(norm) - px).max() <= 1e-6


def test_fisheye_round_trip(points):
    cam = CameraModel(1280, 720, K, FISHEYE_D, "equidistant")
    norm = points[:, :2] / points[:, 2:]
    assert np.abs(cam.pixel_to_normalized(cam.project(points)) - norm).max() * K[0, 0] <= 1e-6


def test_pinhole_and_zero_distortion_are_the_same_camera():
    cam = CameraModel(640, 480, K, np.zeros(5), "plumb_bob")
    assert cam.distortion_model == "none" and not cam.is_distorted
    px = cam.project(np.array([1.0, -0.5, 4.0]))
    np.testing.assert_allclose(px, [K[0, 0] * 0.25 + K[0, 2], K[1, 1] * -0.125 + K[1, 2]])


def test_points_behind_camera_are_nan():
    cam = CameraModel.from_fov(640, 480, 90.0)
    px = cam.project(np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.1, 0.1, 1.0]]))
    assert np.isnan(px[:2]).all() and np.isfinite(px[2]).all()


def test_from_fov():
    cam = CameraModel.from_fov(1000, 500, 90.0)
    assert cam.fx == pytest.approx(500.0)
    np.testing.assert_allclose(cam.project(np.array([1.0, 0.0, 1.0])), [1000.0, 250.0])


def test_rays_are_unit_and_point_through_pixels():
    cam = CameraModel(1280, 720, K, LENSES["plumb_bob"], "plumb_bob")
    p = np.array([[1.0, 0.5, 8.0], [-2.0, 1.0, 12.0]])
    rays = cam.rays(cam.project(p))
    np.testing.assert_allclose(np.linalg.norm(rays, axis=-1), 1.0)
    np.testing.assert_allclose(rays, p / np.linalg.norm(p, axis=-1, keepdims=True), atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"K": np.zeros((3, 3))}, "focal lengths"),
        ({"K": np.full((3, 3), np.nan)}, "NaN"),
        ({"D": [np.nan, 0, 0, 0, 0]}, "NaN"),
        ({"distortion_model": "kannala_brandt_9"}, "unknown distortion model"),
        ({"width": 0}, "image size"),
        ({"D": np.ones(8)}, "takes 5 coefficients"),
    ],
)
def test_invalid_camera_info_is_rejected_clearly(kwargs, match):
    args = {"width": 640, "height": 480, "K": K, "D": np.zeros(5), "distortion_model": "plumb_bob"}
    args.update(kwargs)
    with pytest.raises(CameraModelError, match=match):
        CameraModel(**args)


def test_from_camera_info_fields():
    cam = CameraModel.from_camera_info_fields(
        1280, 720, K.ravel(), LENSES["plumb_bob"], "plumb_bob"
    )
    np.testing.assert_array_equal(cam.K, K)
    with pytest.raises(CameraModelError, match="9 values"):
        CameraModel.from_camera_info_fields(1280, 720, np.zeros(4), [], "plumb_bob")


def test_rep103_optical_body_frames():
    forward_body = np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(body_to_optical(forward_body), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(optical_to_body([1.0, 0.0, 0.0]), [0.0, -1.0, 0.0])  # right
    np.testing.assert_allclose(optical_to_body([0.0, 1.0, 0.0]), [0.0, 0.0, -1.0])  # down
    p = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_allclose(optical_to_body(body_to_optical(p)), p)


def test_ground_plane_of_pitched_camera():
    h, pitch = 1.5, np.radians(10.0)
    n, d = ground_plane_optical(h, pitch)
    # The optical axis hits the ground h / sin(pitch) ahead of a camera pitched down.
    hit = np.array([0.0, 0.0, h / np.sin(pitch)])
    assert n @ hit == pytest.approx(d)
    # Straight below the camera centre (in world terms) is on the plane too.
    below = h * n
    assert n @ below == pytest.approx(h)
    with pytest.raises(ValueError):
        ground_plane_optical(0.0, 0.0)
