"""Hostile camera messages for the node fuzz run (seeded, deterministic per seed).

Three streams: raw ``Image``, ``CompressedImage`` and ``CameraInfo``. Each message is of a
*kind* (round-robin over the kinds of its stream, so every kind recurs): malformed headers,
unknown encodings (a new random one each time), decompression bombs (a real deflate bomb,
frame headers patched to declare huge sizes, progressive JPEGs past the memory budget,
thousands of scans), formats OpenCV would decode but the node must not (TIFF, BMP, ...),
megabyte-long strings in every text field, invalid and extreme stamps, and valid 64x48
frames (the size of the valid CameraInfo) between them. :func:`burst_plan` decides when
messages go back to back.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

MB = 1_000_000

RAW_KINDS = (
    "unknown_encoding", "sixteen_bit", "short_step", "short_data", "zero_size", "huge_header",
    "absurd_step", "odd_yuv_width", "huge_encoding", "control_encoding", "huge_frame_id",
    "invalid_stamp", "extreme_stamp", "random_header", "valid",
)  # fmt: skip
COMPRESSED_KINDS = (
    "corrupt_jpeg", "truncated_jpeg", "bitflip_jpeg", "empty", "depth_format", "png_bomb",
    "png_header_bomb", "jpeg_header_bomb", "progressive_bomb", "scan_bomb", "other_format",
    "huge_format", "random_bytes", "valid_jpeg", "valid_png",
)  # fmt: skip
INFO_KINDS = (
    "zero_k", "nan_k", "inf_d", "unknown_model", "huge_model", "wrong_k_length",
    "huge_frame_id", "zero_size", "valid",
)  # fmt: skip
STREAMS = ("raw", "compressed", "info")
VALID_PIXELS = ("huge_frame_id", "invalid_stamp", "extreme_stamp", "valid")
SOF = (0xC0, 0xC2)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A PNG of zeros (a real deflate bomb when large), or with the given IDAT body."""
    if idat is None:
        z = zlib.compressobj(9)
        row = bytes(1 + 3 * width)
        idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def jpeg_declaring(width: int, height: int, progressive: bool) -> bytes:
    """A real 64x64 JPEG (4:4:4) whose frame header declares ``width`` x ``height``."""
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive),
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]  # fmt: skip
    data = bytearray(cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8), params)[1].tobytes())
    sof = next(
        i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2)
    )
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


class Fuzzer:
    """Makes the ``i``-th message of each stream; heavy payloads are built once."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        noise = self.rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        self.jpeg = cv2.imencode(".jpg", noise)[1].tobytes()
        self.png = cv2.imencode(".png", noise)[1].tobytes()
        self.payloads = {
            "png_bomb": png(9000, 9000),  # ~240 KB that inflate to 243 MB
            "png_header_bomb": png(100_000, 100_000, idat=zlib.compress(bytes(10_000))),
            "jpeg_header_bomb": jpeg_declaring(65_000, 65_000, progressive=False),
            "progressive_bomb": jpeg_declaring(8192, 8192, progressive=True),
            "scan_bomb": self.jpeg[:-2] + (b"\xff\xda" + bytes(12)) * 5000 + b"\xff\xd9",
        }
        self.others = [cv2.imencode(ext, noise)[1].tobytes()
                       for ext in (".tiff", ".bmp", ".webp", ".ppm", ".sr")]  # fmt: skip
        self.counts: dict[str, int] = {}

    def _word(self, lo: int = 3, hi: int = 12) -> str:
        letters = self.rng.integers(97, 123, int(self.rng.integers(lo, hi)))
        return "".join(map(chr, letters))

    def _stamp(self, msg, stamp_ns: int, frame: str) -> None:
        msg.header.stamp = Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        msg.header.frame_id = frame

    def message(self, stream: str, i: int, stamp_ns: int, frame: str):
        """(kind, message) for the ``i``-th message of ``stream``."""
        kinds = {"raw": RAW_KINDS, "compressed": COMPRESSED_KINDS, "info": INFO_KINDS}[stream]
        kind = kinds[i % len(kinds)]
        make = {"raw": self.raw, "compressed": self.compressed, "info": self.info}[stream]
        msg = make(kind, stamp_ns, frame)
        key = f"{stream}/{kind}"
        self.counts[key] = self.counts.get(key, 0) + 1
        return kind, msg

    # -------------------------------------------------------------------- streams
    def raw(self, kind: str, stamp_ns: int, frame: str) -> Image:
        rng = self.rng
        w, h = int(rng.integers(16, 321)), int(rng.integers(12, 241))
        if kind in VALID_PIXELS:  # the size of the valid CameraInfo: these get processed
            w, h = 64, 48
        data = rng.integers(0, 256, w * h * 3, dtype=np.uint8).tobytes()
        msg = Image(width=w, height=h, encoding="rgb8", step=w * 3, data=data)
        self._stamp(msg, stamp_ns, frame)
        if kind == "unknown_encoding":
            msg.encoding = self._word()  # a new one every time
        elif kind == "sixteen_bit":
            msg.encoding = str(rng.choice(["16UC1", "16SC1", "32FC1", "rgb16", "bgra16"]))
        elif kind == "short_step":
            msg.step = int(rng.integers(0, w * 3))
        elif kind == "short_data":
            msg.data = data[: int(rng.integers(0, len(data) - 1))]
        elif kind == "zero_size":
            msg.width, msg.height, msg.step, msg.data = 0, int(rng.integers(0, 9)), 0, b""
        elif kind == "huge_header":
            msg.width, msg.height, msg.step = 100_000, 100_000, 300_000
        elif kind == "absurd_step":
            msg.height, msg.step = 2, 2**32 - 1
        elif kind == "odd_yuv_width":
            msg.encoding, msg.width, msg.step = "yuv422", 63, 126
        elif kind == "huge_encoding":
            msg.encoding = "e" * MB
        elif kind == "control_encoding":
            msg.encoding = f"rgb8\n[FATAL] [0.0] [hpe3d_pipeline]: {self._word()}\x1b[2J"
        elif kind == "huge_frame_id":
            msg.header.frame_id = "f" * MB  # valid pixels: processed, frame id warned
        elif kind == "invalid_stamp":
            msg.header.stamp = Time(sec=int(rng.integers(0, 2**31)),
                                    nanosec=int(rng.integers(10**9, 2**32)))  # fmt: skip
        elif kind == "extreme_stamp":
            sec = int(rng.choice([-(2**31), 2**31 - 1, -1]))
            msg.header.stamp = Time(sec=sec, nanosec=int(rng.choice([0, 999_999_999, 2**32 - 1])))
        elif kind == "random_header":
            msg.width, msg.height = int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32))
            msg.step = int(rng.integers(0, 2**32))
            msg.encoding = str(rng.choice(["rgb8", "bgr8", "mono8", "yuv422", "bgra8"]))
        elif kind == "valid":
            enc = str(rng.choice(["rgb8", "bgr8", "mono8", "rgba8"]))
            bpp = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4}[enc]
            msg.encoding, msg.step = enc, w * bpp
            msg.data = rng.integers(0, 256, w * h * bpp, dtype=np.uint8).tobytes()
        return msg

    def compressed(self, kind: str, stamp_ns: int, frame: str) -> CompressedImage:
        rng = self.rng
        msg = CompressedImage(
            format=str(rng.choice(["jpeg", "png", "rgb8; jpeg compressed bgr8"]))
        )
        self._stamp(msg, stamp_ns, frame)
        if kind == "corrupt_jpeg":
            data = b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
        elif kind == "truncated_jpeg":
            data = self.jpeg[: int(rng.integers(3, len(self.jpeg) - 1))]
        elif kind == "bitflip_jpeg":
            buf = bytearray(self.jpeg)
            pos = int(rng.integers(2, min(len(buf), 700)))
            buf[pos] ^= 1 << int(rng.integers(0, 8))
            data = bytes(buf)
        elif kind == "empty":
            data = b""
        elif kind == "depth_format":
            msg.format, data = "16UC1; compressedDepth png", self.png
        elif kind in self.payloads:
            data = self.payloads[kind]
        elif kind == "other_format":
            data = self.others[int(rng.integers(0, len(self.others)))]
        elif kind == "huge_format":
            msg.format, data = "jpeg" + "x" * MB, self.jpeg
        elif kind == "random_bytes":
            data = rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()
        elif kind == "valid_png":
            data = self.png
        else:  # valid_jpeg
            data = self.jpeg
        msg.data = data
        return msg

    def info(self, kind: str, stamp_ns: int, frame: str) -> CameraInfo:
        rng = self.rng
        msg = CameraInfo(width=64, height=48, distortion_model="plumb_bob", d=[0.0] * 5)
        msg.k = [60.0, 0.0, 32.0, 0.0, 60.0, 24.0, 0.0, 0.0, 1.0]
        self._stamp(msg, stamp_ns, frame)
        if kind == "zero_k":
            msg.k = [0.0] * 9
        elif kind == "nan_k":
            msg.k = [float("nan")] * 9
        elif kind == "inf_d":
            msg.d = [float("inf"), 0.0, 0.0, 0.0, 0.0]
        elif kind == "unknown_model":
            msg.distortion_model = self._word()
        elif kind == "huge_model":
            msg.distortion_model = "m" * MB
        elif kind == "wrong_k_length":
            msg.k = [1.0] * 9
            msg.k[0] = float(rng.choice([-1.0, 0.0]))
        elif kind == "huge_frame_id":
            msg.header.frame_id = "i" * MB
        elif kind == "zero_size":
            msg.width = msg.height = 0
        return msg


def burst_plan(i: int, every: int = 2000, length: int = 500) -> bool:
    """True when message ``i`` belongs to a burst (sent back to back, no pacing)."""
    return i % every < length
