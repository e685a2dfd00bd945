"""Image payload conversion: every supported encoding, step padding, and clear rejections."""

import numpy as np
import pytest

from hpe3d_ros.imaging import (
    ImageDecodeError,
    decode_compressed,
    decode_raw,
    encode_compressed,
    encode_raw,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)


def _padded(rows: np.ndarray, pad: int) -> tuple[bytes, int]:
    h = rows.shape[0]
    flat = rows.reshape(h, -1)
    out = np.concatenate([flat, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return out.tobytes(), out.shape[1]


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[:, :, ::-1]),
        ("rgba8", np.dstack([RGB, np.full((6, 8), 7, np.uint8)])),
        ("bgra8", np.dstack([RGB[:, :, ::-1], np.full((6, 8), 7, np.uint8)])),
    ],
)
def test_colour_encodings_round_trip_with_step_padding(encoding, payload, pad):
    data, step = _padded(np.ascontiguousarray(payload), pad)
    np.testing.assert_array_equal(decode_raw(data, 8, 6, encoding, step), RGB)


def test_mono8_becomes_grey_rgb():
    grey = RGB[:, :, 0].copy()
    data, step = _padded(grey, 3)
    out = decode_raw(data, 8, 6, "mono8", step)
    assert out.shape == (6, 8, 3)
    np.testing.assert_array_equal(out[:, :, 1], grey)


def test_yuv422_is_uyvy_and_yuy2_is_yuyv():
    rng = np.random.default_rng(1)
    y = rng.integers(16, 236, (4, 8), dtype=np.uint8)
    u = rng.integers(16, 240, (4, 4), dtype=np.uint8)
    v = rng.integers(16, 240, (4, 4), dtype=np.uint8)
    uyvy = np.stack([u, y[:, 0::2], v, y[:, 1::2]], axis=-1).reshape(4, 16)
    yuyv = np.stack([y[:, 0::2], u, y[:, 1::2], v], axis=-1).reshape(4, 16)
    a = decode_raw(uyvy.tobytes(), 8, 4, "yuv422", 16)  # ROS yuv422 == UYVY byte order
    b = decode_raw(yuyv.tobytes(), 8, 4, "yuv422_yuy2", 16)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, decode_raw(uyvy.tobytes(), 8, 4, "uyvy", 16))
    grey = np.full((2, 8), 128, np.uint8)  # Y = U = V = 128 is mid grey
    assert np.abs(decode_raw(grey.tobytes(), 4, 2, "yuv422", 8).astype(int) - 128).max() <= 10


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((b"\0" * 96, 8, 6, "mono16", 16), "not 8-bit"),
        ((b"\0" * 96, 8, 6, "bayer_rggb8", 8), "unsupported encoding"),
        ((b"\0" * 96, 8, 6, "rgb8", 20), "smaller than one row"),
        ((b"\0" * 100, 8, 6, "rgb8", 24), "needs 144"),
        ((b"", 0, 0, "rgb8", 0), "empty image"),
        ((b"", 10000, 10000, "rgb8", 30000), "pixel limit"),
        ((b"\0" * 100, 7, 6, "yuv422", 14), "even width"),
    ],
)
def test_bad_raw_images_are_refused_clearly(args, match):
    with pytest.raises(ImageDecodeError, match=match):
        decode_raw(*args)


def test_encode_raw_round_trip():
    data, step = encode_raw(RGB, "bgr8")
    np.testing.assert_array_equal(decode_raw(data, 8, 6, "bgr8", step), RGB)


def test_compressed_png_is_lossless_and_jpeg_is_close():
    np.testing.assert_array_equal(decode_compressed(encode_compressed(RGB, "png"), "png"), RGB)
    ramp = np.linspace(0, 255, 64 * 48 * 3).reshape(48, 64, 3).astype(np.uint8)
    back = decode_compressed(encode_compressed(ramp, "jpeg", 95), "jpeg")
    assert back.shape == ramp.shape and np.abs(back.astype(int) - ramp).mean() < 4


@pytest.mark.parametrize(
    ("data", "fmt", "match"),
    [
        (b"", "jpeg", "no data"),
        (b"\xff\xd8\xff garbage", "jpeg", "could not decode"),
        (b"\x89PNG....", "16UC1; compressedDepth png", "depth"),
    ],
)
def test_bad_compressed_images_are_refused(data, fmt, match):
    with pytest.raises(ImageDecodeError, match=match):
        decode_compressed(data, fmt)
