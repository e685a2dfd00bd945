"""Image payload conversion: every supported encoding, step padding, and clear rejections;
decompression bombs refused from their header before the decoder runs."""

import struct
import zlib

import cv2
import numpy as np
import pytest

import hpe3d_ros.imaging as imaging
from hpe3d_ros.imaging import (
    MAX_JPEG_SCANS,
    REASONS,
    ImageDecodeError,
    compressed_header,
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
        ((b"\0" * 96, 8, 6, "16UC1", 16), "depth"),
        ((b"\0" * 96, 8, 6, "nv12", 8), "unsupported encoding"),
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
        (b"\xff\xd8\xff garbage", "jpeg", "malformed JPEG"),
        (b"\x89PNG....", "16UC1; compressedDepth png", "depth"),
    ],
)
def test_bad_compressed_images_are_refused(data, fmt, match):
    with pytest.raises(ImageDecodeError, match=match):
        decode_compressed(data, fmt)


# ------------------------------------------------------------------ bombs and odd headers
def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_bomb(width: int, height: int) -> bytes:
    """A real PNG of zeros: a few hundred KB that inflate to width * height * 3 bytes."""
    z = zlib.compressobj(9)
    row = bytes(1 + 3 * width)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _sof_offset(jpeg: bytes) -> int:
    for m in (b"\xff\xc0", b"\xff\xc2"):
        if (i := jpeg.find(m)) > 0:
            return i
    raise AssertionError("no SOF")


def jpeg_declaring(width: int, height: int, progressive: bool = False) -> bytes:
    """A small real JPEG whose frame header is patched to declare width x height."""
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive),
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]  # fmt: skip
    buf = cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8), params)[1]
    data = bytearray(buf.tobytes())
    i = _sof_offset(bytes(data))
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def no_decoder(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the decoder ran on an image its header should have refused")

    monkeypatch.setattr(imaging.cv2, "imdecode", boom)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: png_bomb(9000, 9000), "PNG 9000x9000 exceeds the 67108864 pixel limit"),
        (lambda: jpeg_declaring(65000, 65000), "JPEG 65000x65000 exceeds"),
        (lambda: jpeg_declaring(65000, 65000, progressive=True), "JPEG 65000x65000 exceeds"),
        (lambda: jpeg_declaring(8192, 8192, progressive=True), "MiB to decode"),
    ],
)
def test_decompression_bombs_are_refused_before_decoding(no_decoder, make, match):
    data = make()
    assert len(data) < 400_000
    with pytest.raises(ImageDecodeError, match=match) as err:
        decode_compressed(data, "png")
    assert err.value.reason == "size"


def test_the_png_bomb_is_small_and_really_huge():
    data = png_bomb(9000, 9000)
    assert struct.unpack_from(">II", data, 16) == (9000, 9000) and len(data) < 300_000
    assert len(zlib.decompress(data[41:-16])) == 9000 * (1 + 3 * 9000)  # 243 MB inflated


def test_jpeg_with_too_many_scans_is_refused(no_decoder):
    good = jpeg_declaring(64, 64, progressive=True)
    bomb = good[:-2] + (b"\xff\xda" + bytes(12)) * (MAX_JPEG_SCANS + 1) + b"\xff\xd9"
    with pytest.raises(ImageDecodeError, match="scans"):
        decode_compressed(bomb, "jpeg")


@pytest.mark.parametrize("ext", [".bmp", ".tiff", ".webp", ".ppm"])
def test_only_jpeg_and_png_reach_the_decoder(no_decoder, ext):
    ok, buf = cv2.imencode(ext, np.zeros((8, 8, 3), np.uint8))
    assert ok
    with pytest.raises(ImageDecodeError, match="neither JPEG nor PNG") as err:
        decode_compressed(buf.tobytes(), "jpeg")
    assert err.value.reason == "format"


def _good_jpeg() -> bytes:
    return encode_compressed(RGB, "jpeg")


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda j: j[:2] + b"\xff\xe0\x00\x02" + b"junk" + j[2:], "no marker at byte"),
        (lambda j: j[:2] + b"\xff\xda\x00\x02" + j[2:], "marker 0xDA before the frame"),
        (lambda j: j[: _sof_offset(j) + 4], "no frame header"),
        (lambda j: j[: _sof_offset(j) + 5] + b"\x00\x00" + j[_sof_offset(j) + 7 :], "DNL"),
        (lambda j: j[: _sof_offset(j) + 3] + b"\x00\x0a" + j[_sof_offset(j) + 5 :],
         "frame header"),
        (lambda j: j[:2] + (b"\xff\xfe\x00\x02") * 1001 + j[2:], "no frame header"),
    ],
)  # fmt: skip
def test_malformed_jpeg_headers_are_refused(no_decoder, mangle, match):
    with pytest.raises(ImageDecodeError, match=match):
        decode_compressed(mangle(_good_jpeg()), "jpeg")


def test_malformed_png_headers_are_refused(no_decoder):
    png = encode_compressed(RGB, "png")
    for bad in (png[:20], png[:8] + _chunk(b"tEXt", b"a\0b") + png[8:]):
        with pytest.raises(ImageDecodeError, match="IHDR"):
            decode_compressed(bad, "png")
    zero = png[:16] + struct.pack(">II", 0, 6) + png[24:]
    with pytest.raises(ImageDecodeError, match="empty PNG"):
        decode_compressed(zero, "png")


def test_header_matches_what_the_decoder_produces():
    for fmt in ("jpeg", "png"):
        data = encode_compressed(RGB, fmt)
        head = compressed_header(data)
        assert (head.kind, head.width, head.height) == (fmt, 8, 6)
        assert decode_compressed(data, fmt).shape == (6, 8, 3)


def test_exif_orientation_does_not_rotate_the_frame():
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, 6, 0) + bytes(4)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    wide = np.zeros((6, 16, 3), np.uint8)
    jpeg = encode_compressed(wide, "jpeg")
    rotated = jpeg[:2] + app1 + jpeg[2:]
    assert cv2.imdecode(np.frombuffer(rotated, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (16, 6)
    assert decode_compressed(rotated, "jpeg").shape == (6, 16, 3)  # as the camera sent it


def test_absurd_step_is_refused_before_any_allocation():
    with pytest.raises(ImageDecodeError, match="absurdly large") as err:
        decode_raw(b"\0" * 24, 8, 1, "rgb8", 2**32 - 1)
    assert err.value.reason == "layout"


@pytest.mark.parametrize(
    "args",
    [
        (b"", 8, 6, "x" * 1_000_000, 24),
        (b"", 8, 6, "rgb8\n[FATAL] forged line", 24),
        (b"", 8, 6, "mono16" + "\x1b[2J", 16),
    ],
)
def test_outside_strings_are_cut_and_escaped_in_messages(args):
    with pytest.raises(ImageDecodeError) as err:
        decode_raw(*args)
    text = str(err.value)
    assert len(text) < 300 and "\n" not in text and "\x1b" not in text
    assert err.value.reason in REASONS


def test_long_format_strings_are_cut():
    with pytest.raises(ImageDecodeError) as err:
        decode_compressed(b"\0" * 10, "compressedDepth" + "y" * 100_000)
    assert len(str(err.value)) < 300 and err.value.reason == "depth"


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """An RGB image sampled through a Bayer colour filter (pattern: the 2x2 tile, row-major)."""
    index = {"r": 0, "g": 1, "b": 2}
    out = np.zeros(rgb.shape[:2], np.uint8)
    for k, c in enumerate(pattern):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, index[c]]
    return out


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_mosaics_are_demosaiced_with_the_right_colours(pattern):
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (220, 40, 20)  # red half, blue half
    rgb[:, 32:] = (20, 40, 220)
    raw = _mosaic(rgb, pattern)
    out = decode_raw(raw.tobytes(), 64, 48, f"bayer_{pattern}8", 64)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    inner = (slice(4, -4), slice(4, 28)), (slice(4, -4), slice(36, -4))
    red, blue = (out[i].reshape(-1, 3).mean(0) for i in inner)
    assert red[0] > 180 and red[2] < 60, red  # a swapped pattern would make red blue
    assert blue[2] > 180 and blue[0] < 60, blue


@pytest.mark.parametrize("big_endian", [False, True])
def test_sixteen_bit_mono_and_colour_are_stretched_to_8_bits(big_endian):
    ramp = np.tile(np.linspace(100, 4000, 64), (48, 1)).astype(np.uint16)  # a 12-bit sensor
    words = ramp.astype(">u2" if big_endian else "<u2")
    mono = decode_raw(words.tobytes(), 64, 48, "mono16", 128, big_endian)
    assert mono.shape == (48, 64, 3) and (mono[..., 0] == mono[..., 2]).all()
    assert mono[:, 0].max() <= 3 and mono[:, -1].min() >= 252  # the full range is used
    assert (np.diff(mono[0, :, 0].astype(int)) >= 0).all()  # order kept
    rgb16 = np.stack([ramp, ramp // 2, ramp // 4], axis=-1).astype(words.dtype)
    colour = decode_raw(rgb16.tobytes(), 64, 48, "rgb16", 64 * 6, big_endian)
    assert colour[:, -1].mean(0)[0] > colour[:, -1].mean(0)[2]  # red stays the brightest


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1", "16SC1"])
def test_depth_images_are_refused(encoding):
    with pytest.raises(ImageDecodeError) as err:
        decode_raw(b"\0" * 48 * 64 * 4, 64, 48, encoding, 256)
    assert err.value.reason == "depth"
