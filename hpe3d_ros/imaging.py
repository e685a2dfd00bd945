"""``sensor_msgs/Image`` and ``CompressedImage`` payloads <-> RGB numpy arrays (ROS-free).

Our own conversion, so neither ROS 2 cv_bridge nor message classes are needed: the ROS
adapter passes the message fields in. Rows may carry ``step`` padding; YUV 4:2:2 is
converted with OpenCV. Every rejection raises :class:`ImageDecodeError` with one clear line.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Largest image accepted (pixels); a 10000x10000 header is refused before any allocation.
MAX_PIXELS = 8192 * 8192

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3}
_YUV = {
    # ROS "yuv422" is UYVY byte order (sensor_msgs/image_encodings.hpp).
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
}
_SIXTEEN_BIT = {"mono16", "16uc1", "16sc1", "rgb16", "bgr16", "rgba16", "bgra16", "32fc1"}
SUPPORTED_ENCODINGS = tuple(sorted(set(_CHANNELS) | set(_YUV)))


class ImageDecodeError(ValueError):
    """An image payload that cannot be turned into an RGB frame."""


def check_raw_header(
    width: int, height: int, encoding: str, step: int, data_len: int
) -> tuple[str, int]:
    """Validate an Image header without touching pixels (cheap: run it on arrival).

    Returns:
        (normalised encoding, bytes per pixel).

    Raises:
        ImageDecodeError: unknown or 16-bit encoding, zero or huge size, ``step`` smaller than
            a row, or fewer bytes than ``height * step``.
    """
    enc = (encoding or "").strip().lower()
    if enc in _SIXTEEN_BIT:
        raise ImageDecodeError(
            f"encoding {encoding!r} is not 8-bit colour/mono; the 2D detector needs rgb8, bgr8, "
            "mono8 or yuv422 (16-bit and float images carry depth or thermal data)"
        )
    if enc not in _CHANNELS and enc not in _YUV:
        raise ImageDecodeError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    width, height, step = int(width), int(height), int(step)
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"empty image: {width}x{height}")
    if width * height > MAX_PIXELS:
        raise ImageDecodeError(f"image {width}x{height} exceeds the {MAX_PIXELS} pixel limit")
    bpp = 2 if enc in _YUV else _CHANNELS[enc]
    row = width * bpp
    if step < row:
        raise ImageDecodeError(f"step {step} is smaller than one row ({width} px * {bpp} B)")
    if enc in _YUV and width % 2:
        raise ImageDecodeError(f"YUV 4:2:2 needs an even width, got {width}")
    need = step * (height - 1) + row
    if data_len < need:
        raise ImageDecodeError(
            f"data has {data_len} bytes, {width}x{height} {enc} with step {step} needs {need}"
        )
    return enc, bpp


def decode_raw(
    data: bytes | bytearray | memoryview | np.ndarray,
    width: int,
    height: int,
    encoding: str,
    step: int,
) -> np.ndarray:
    """Raw ``sensor_msgs/Image`` payload -> (height, width, 3) uint8 RGB (a new array).

    Raises:
        ImageDecodeError: unknown or 16-bit encoding, zero or huge size, ``step`` smaller than
            a row, or fewer bytes than ``height * step``.
    """
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    enc, bpp = check_raw_header(width, height, encoding, step, buf.size)
    width, height, step = int(width), int(height), int(step)
    row = width * bpp
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1))
    if enc in _YUV:
        return cv2.cvtColor(rows.reshape(height, width, 2), _YUV[enc])
    img = rows.reshape(height, width, bpp)
    if enc in ("rgb8", "8uc3"):
        return img.copy()
    if enc == "bgr8":
        return img[:, :, ::-1].copy()
    if enc == "rgba8":
        return img[:, :, :3].copy()
    if enc == "bgra8":
        return img[:, :, 2::-1].copy()
    return np.repeat(img, 3, axis=2)  # mono8 / 8uc1


def decode_compressed(
    data: bytes | bytearray | memoryview | np.ndarray, fmt: str = ""
) -> np.ndarray:
    """``sensor_msgs/CompressedImage`` payload (JPEG or PNG) -> (H, W, 3) uint8 RGB.

    ``fmt`` is the message's ``format`` field (e.g. ``"jpeg"``, ``"rgb8; jpeg compressed bgr8"``);
    formats that are not JPEG/PNG (e.g. ``compressedDepth``) are refused.
    """
    f = (fmt or "").lower()
    if "compresseddepth" in f or ("16" in f and "png" in f):
        raise ImageDecodeError(f"compressed format {fmt!r} is a depth image, not colour")
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if buf.size == 0:
        raise ImageDecodeError("compressed image has no data")
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageDecodeError(f"could not decode {buf.size} bytes as JPEG/PNG (format {fmt!r})")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise ImageDecodeError(f"decoded image {img.shape[1]}x{img.shape[0]} is too large")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_raw(image_rgb: np.ndarray, encoding: str = "rgb8") -> tuple[bytes, int]:
    """(H, W, 3) uint8 RGB -> (payload, step) for an ``rgb8`` or ``bgr8`` Image message."""
    img = np.ascontiguousarray(image_rgb, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ImageDecodeError(f"expected (H, W, 3) uint8, got {img.shape}")
    if encoding == "bgr8":
        img = np.ascontiguousarray(img[:, :, ::-1])
    elif encoding != "rgb8":
        raise ImageDecodeError(f"can only encode rgb8/bgr8, not {encoding!r}")
    return img.tobytes(), img.shape[1] * 3


def encode_compressed(image_rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG or PNG bytes."""
    bgr = cv2.cvtColor(np.ascontiguousarray(image_rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    ext = ".png" if fmt.lower() == "png" else ".jpg"
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise ImageDecodeError(f"could not encode image as {fmt}")
    return buf.tobytes()
