"""``sensor_msgs/Image`` and ``CompressedImage`` payloads <-> RGB numpy arrays (ROS-free).

Our own conversion, so neither ROS 2 cv_bridge nor message classes are needed: the ROS
adapter passes the message fields in. Rows may carry ``step`` padding; YUV 4:2:2 and Bayer
mosaics are converted with OpenCV, 16-bit mono and colour stretched to 8 bits; depth
encodings (16UC1, 32FC1) are refused. Every rejection raises :class:`ImageDecodeError` with
one clear line and a ``reason`` from a small fixed set (warnings are throttled per reason,
not per text).

Nothing is allocated for an image before its declared size has been checked: raw headers
against the data length, compressed images from their own header (JPEG SOFn, PNG IHDR),
read here before the decoder runs, so a 400 KB PNG that declares 100,000 x 100,000 pixels
costs nothing. Only JPEG and PNG reach the decoder (OpenCV would also take TIFF, WebP, ...).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from hpe3d_ros.untrusted import show

#: Largest image accepted (pixels); checked on the header, before any allocation.
MAX_PIXELS = 8192 * 8192
#: Most memory a compressed image may make the decoder allocate (measured: twice the RGB
#: output, plus the whole image's DCT coefficients for a progressive JPEG): an 8192 x 8192
#: PNG or baseline JPEG fits, so does a progressive 4:2:0 one (4:4:4 needs about 800 MiB).
MAX_DECODE_BYTES = 640 * 2**20
#: Most scans a JPEG may have: each progressive scan is one pass over the whole image, so a
#: small file of thousands of scans would take minutes (ordinary encoders write about 10).
MAX_JPEG_SCANS = 100
_MAX_JPEG_SEGMENTS = 1000  # before the frame header; real files have a few dozen

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3}
_YUV = {
    # ROS "yuv422" is UYVY byte order (sensor_msgs/image_encodings.hpp).
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
}
#: Bayer mosaics (ROS names) -> the OpenCV conversion to RGB. OpenCV names a pattern by its
#: second row's first two pixels, so ROS rggb is OpenCV "BG" (as cv_bridge maps them).
_BAYER = {
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}
#: 16-bit colour/mono (any bit depth up to 16, e.g. 12-bit sensors): channels per pixel.
_SIXTEEN = {"mono16": 1, "rgb16": 3, "bgr16": 3, "rgba16": 4, "bgra16": 4}
#: Depth and other non-intensity images: refused (a 16UC1 image is, by convention, depth).
_DEPTH = {"16uc1", "16sc1", "32fc1", "32sc1", "64fc1"}
SUPPORTED_ENCODINGS = tuple(sorted(set(_CHANNELS) | set(_YUV) | set(_BAYER) | set(_SIXTEEN)))
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length field

#: Every ``ImageDecodeError.reason``.
REASONS = ("encoding", "depth", "size", "layout", "short", "format", "corrupt")


class ImageDecodeError(ValueError):
    """An image payload that cannot be turned into an RGB frame.

    ``reason`` is one of :data:`REASONS` (what kind of problem, for throttling and counting).
    """

    def __init__(self, message: str, reason: str = "corrupt") -> None:
        super().__init__(message)
        self.reason = reason


def _check_size(width: int, height: int, what: str = "image") -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"empty {what}: {width}x{height}", "size")
    if width * height > MAX_PIXELS:
        raise ImageDecodeError(
            f"{what} {width}x{height} exceeds the {MAX_PIXELS} pixel limit", "size"
        )


def check_raw_header(
    width: int, height: int, encoding: str, step: int, data_len: int
) -> tuple[str, int]:
    """Validate an Image header without touching pixels (cheap: run it on arrival).

    Returns:
        (normalised encoding, bytes per pixel).

    Raises:
        ImageDecodeError: unknown or 16-bit encoding, zero or huge size, ``step`` smaller than
            a row or absurdly large, or fewer bytes than ``height * step``.
    """
    enc = (encoding or "")[:32].strip().lower()
    if enc in _DEPTH:
        raise ImageDecodeError(
            f"encoding {show(encoding)} carries depth or other non-intensity data, not an image "
            "the 2D detector can use (colour, mono, bayer, yuv422; 8 or 16 bit)",
            "depth",
        )
    if enc not in _CHANNELS and enc not in _YUV and enc not in _BAYER and enc not in _SIXTEEN:
        raise ImageDecodeError(
            f"unsupported encoding {show(encoding)}; supported: {', '.join(SUPPORTED_ENCODINGS)}",
            "encoding",
        )
    width, height, step = int(width), int(height), int(step)
    _check_size(width, height)
    if enc in _YUV:
        bpp = 2
    elif enc in _BAYER:
        bpp = 1
    elif enc in _SIXTEEN:
        bpp = 2 * _SIXTEEN[enc]
    else:
        bpp = _CHANNELS[enc]
    row = width * bpp
    if step < row:
        raise ImageDecodeError(
            f"step {step} is smaller than one row ({width} px * {bpp} B)", "layout"
        )
    if step * height > 4 * MAX_PIXELS:  # no camera pads rows that much; step is untrusted
        raise ImageDecodeError(f"step {step} x height {height} is absurdly large", "layout")
    if enc in _YUV and width % 2:
        raise ImageDecodeError(f"YUV 4:2:2 needs an even width, got {width}", "layout")
    if enc in _BAYER and (width < 2 or height < 2):
        raise ImageDecodeError(f"a Bayer mosaic needs 2x2 pixels, got {width}x{height}", "size")
    need = step * (height - 1) + row
    if data_len < need:
        raise ImageDecodeError(
            f"data has {data_len} bytes, {width}x{height} {enc} with step {step} needs {need}",
            "short",
        )
    return enc, bpp


def decode_raw(
    data: bytes | bytearray | memoryview | np.ndarray,
    width: int,
    height: int,
    encoding: str,
    step: int,
    big_endian: bool = False,
) -> np.ndarray:
    """Raw ``sensor_msgs/Image`` payload -> (height, width, 3) uint8 RGB (a new array).

    Bayer mosaics are demosaiced (OpenCV, bilinear). 16-bit images (``big_endian``: the
    message's ``is_bigendian``) are stretched to 8 bits between their 0.5th and 99.5th
    percentiles, frame by frame: a 12-bit or 16-bit sensor, dim or bright, gives the detector
    a well-exposed picture (the 2D keypoints do not depend on the absolute intensity).

    Raises:
        ImageDecodeError: unknown or depth encoding, zero or huge size, ``step`` smaller than
            a row, or fewer bytes than ``height * step``.
    """
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    enc, bpp = check_raw_header(width, height, encoding, step, buf.size)
    width, height, step = int(width), int(height), int(step)
    row = width * bpp
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1))
    if enc in _YUV:
        return cv2.cvtColor(rows.reshape(height, width, 2), _YUV[enc])
    if enc in _BAYER:
        return cv2.cvtColor(np.ascontiguousarray(rows), _BAYER[enc])
    if enc in _SIXTEEN:
        channels = _SIXTEEN[enc]
        words = np.ascontiguousarray(rows).view(">u2" if big_endian else "<u2")
        img = _stretch_to_8bit(words.reshape(height, width, channels))
        enc = {"mono16": "mono8", "rgb16": "rgb8", "bgr16": "bgr8", "rgba16": "rgba8",
               "bgra16": "bgra8"}[enc]  # fmt: skip
    else:
        img = rows.reshape(height, width, bpp)
    if enc in ("rgb8", "8uc3"):
        return img.copy()
    if enc == "bgr8":
        return img[:, :, ::-1].copy()
    if enc == "rgba8":
        return img[:, :, :3].copy()
    if enc == "bgra8":
        return img[:, :, 2::-1].copy()
    return np.repeat(img[:, :, :1], 3, axis=2)  # mono8 / 8uc1


def _stretch_to_8bit(img16: np.ndarray) -> np.ndarray:
    """(H, W, C) 16-bit -> uint8, its 0.5-99.5 percentile range mapped onto 0-255."""
    sample = img16[:: max(1, img16.shape[0] // 256), :: max(1, img16.shape[1] // 256)]
    lo, hi = np.percentile(sample, (0.5, 99.5))
    scale = 255.0 / max(float(hi - lo), 1.0)
    out = (img16.astype(np.float32) - float(lo)) * scale
    return np.clip(out, 0.0, 255.0).astype(np.uint8)


@dataclass(frozen=True)
class CompressedHeader:
    """What a compressed image declares about itself, read without decoding it."""

    kind: str  # "jpeg" | "png"
    width: int
    height: int
    decode_bytes: int  # most memory the decoder will allocate for it


def _jpeg_header(buf: bytes) -> CompressedHeader:
    """Walk the JPEG's marker segments up to its frame header (SOFn); strict, so a stream
    that libjpeg would read differently (garbage between segments) is refused instead."""
    i, n = 2, len(buf)
    for _ in range(_MAX_JPEG_SEGMENTS):
        if i >= n or buf[i] != 0xFF:
            raise ImageDecodeError(f"malformed JPEG: no marker at byte {i} before the frame "
                                   "header")  # fmt: skip
        while i < n and buf[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = buf[i]
        i += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0x00, 0xD8, 0xD9, 0xDA):
            raise ImageDecodeError(f"malformed JPEG: marker 0x{marker:02X} before the frame "
                                   "header")  # fmt: skip
        if i + 2 > n or (length := buf[i] << 8 | buf[i + 1]) < 2 or i + length > n:
            break
        if marker in _JPEG_SOF:
            if length < 8:
                break
            height, width = struct.unpack_from(">HH", buf, i + 3)
            ncomp = buf[i + 7]
            if height == 0:
                raise ImageDecodeError("JPEG height 0 (defined later by DNL) is not supported")
            _check_size(width, height, "JPEG")
            factors = [buf[i + 9 + 3 * c] for c in range(ncomp) if i + 10 + 3 * c <= n]
            if (
                not 1 <= ncomp <= 4
                or length != 8 + 3 * ncomp
                or len(factors) != ncomp
                or not all(f >> 4 and f & 15 for f in factors)
            ):
                raise ImageDecodeError(f"malformed JPEG frame header ({ncomp} components)")
            need = 6 * width * height  # OpenCV holds the decoded frame twice for a moment
            if marker in _JPEG_PROGRESSIVE:  # every DCT coefficient is kept until the end
                hmax, vmax = max(f >> 4 for f in factors), max(f & 15 for f in factors)
                for f in factors:
                    bw = -(-width * (f >> 4) // (8 * hmax)) + (f >> 4)
                    bh = -(-height * (f & 15) // (8 * vmax)) + (f & 15)
                    need += 128 * bw * bh
            return CompressedHeader("jpeg", width, height, need)
        i += length
    raise ImageDecodeError("malformed JPEG: no frame header (SOF) found")


def _png_header(buf: bytes) -> CompressedHeader:
    if len(buf) < 33 or buf[12:16] != b"IHDR" or buf[8:12] != b"\x00\x00\x00\x0d":
        raise ImageDecodeError("malformed PNG: IHDR is not the first chunk")
    width, height = struct.unpack_from(">II", buf, 16)
    _check_size(width, height, "PNG")
    return CompressedHeader("png", width, height, 6 * width * height)


def compressed_header(data: bytes | bytearray | memoryview | np.ndarray) -> CompressedHeader:
    """Kind and declared size of a JPEG or PNG payload, from its header alone.

    Raises:
        ImageDecodeError: not JPEG or PNG, a malformed header, or a declared size, memory
            need or (JPEG) scan count over the limits.
    """
    buf = bytes(memoryview(data).cast("B"))
    if buf.startswith(b"\xff\xd8\xff"):
        head = _jpeg_header(buf)
        scans = buf.count(b"\xff\xda")  # SOS; 0xFF in entropy-coded data is 0xFF00-stuffed
        if scans > MAX_JPEG_SCANS:
            raise ImageDecodeError(
                f"JPEG has {scans} scans, more than {MAX_JPEG_SCANS} (decoding would take "
                "minutes)",
                "size",
            )
    elif buf.startswith(_PNG_SIGNATURE):
        head = _png_header(buf)
    else:
        raise ImageDecodeError(
            f"compressed image is neither JPEG nor PNG (starts with {buf[:8].hex(' ')})",
            "format",
        )
    if head.decode_bytes > MAX_DECODE_BYTES:
        raise ImageDecodeError(
            f"{head.kind.upper()} {head.width}x{head.height} would need "
            f"{head.decode_bytes / 2**20:.0f} MiB to decode, over the "
            f"{MAX_DECODE_BYTES / 2**20:.0f} MiB limit",
            "size",
        )
    return head


def check_compressed(
    data: bytes | bytearray | memoryview | np.ndarray, fmt: str = ""
) -> CompressedHeader:
    """Everything :func:`decode_compressed` checks before decoding (cheap: run it on arrival).

    Raises:
        ImageDecodeError: a depth format, no data, or what :func:`compressed_header` refuses.
    """
    f = (fmt or "")[:256].lower()
    if "compresseddepth" in f or ("16" in f and "png" in f):
        raise ImageDecodeError(f"compressed format {show(fmt)} is a depth image, not colour",
                               "depth")  # fmt: skip
    if len(memoryview(data).cast("B")) == 0:
        raise ImageDecodeError("compressed image has no data", "short")
    return compressed_header(data)


def decode_compressed(
    data: bytes | bytearray | memoryview | np.ndarray, fmt: str = ""
) -> np.ndarray:
    """``sensor_msgs/CompressedImage`` payload (JPEG or PNG) -> (H, W, 3) uint8 RGB.

    ``fmt`` is the message's ``format`` field (e.g. ``"jpeg"``, ``"rgb8; jpeg compressed bgr8"``);
    formats that are not JPEG/PNG (e.g. ``compressedDepth``) are refused. The declared size
    is checked (:func:`compressed_header`) before the decoder runs; EXIF orientation is
    ignored, so pixels stay where the camera's CameraInfo expects them.
    """
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    head = check_compressed(buf, fmt)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise ImageDecodeError(
            f"could not decode {buf.size} bytes as {head.kind.upper()} (format {show(fmt)})"
        )
    if img.shape[:2] != (head.height, head.width):
        raise ImageDecodeError(
            f"decoded {img.shape[1]}x{img.shape[0]} differs from the declared "
            f"{head.width}x{head.height}"
        )
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img)  # in place: no second full frame


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
