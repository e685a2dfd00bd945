"""Rebuild the labelled near/far evaluation set (test/data/eval) from its permissive sources.

Every person was counted and boxed by eye on the source images (boxes below, in source
pixels); each derived frame is a crop of a source, resized (up-scaled for near people), and
its boxes are the source boxes mapped through the same crop and scale, clipped to the frame.
A person is ``truncated`` when the frame border cuts their box (or the source's border already
did) and ``half_visible`` unless listed in ``LESS_THAN_HALF``. Sources and licences: LICENSE.md.

Usage (sources as the Debian/PyPI packages ship them)::

    .venv/bin/python test/data/eval/make_eval.py \\
        --opencv-data /usr/share/doc/opencv-doc/examples/data \\
        --skimage-data <site-packages>/skimage/data \\
        --matplotlib-data <site-packages>/matplotlib/mpl-data/sample_data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent
Box = tuple[float, float, float, float]

#: Source image -> people boxed by eye: (x0, y0, x1, y1, truncated by the source's border).
SOURCE_PEOPLE: dict[str, list[tuple[float, float, float, float, bool]]] = {
    "vtest_0040": [
        (375, 178, 402, 257, False), (396, 184, 423, 261, False), (438, 194, 460, 272, False),
        (567, 235, 605, 328, False), (599, 232, 634, 325, False), (737, 281, 768, 396, True),
    ],
    "vtest_0260": [
        (320, 213, 364, 303, False), (38, 176, 62, 245, False), (531, 247, 569, 341, False),
        (619, 126, 645, 192, False), (162, 146, 188, 218, False), (485, 177, 510, 249, False),
        (639, 131, 661, 195, False),
    ],
    "vtest_0480": [
        (462, 238, 509, 329, False), (578, 248, 613, 339, False), (609, 268, 643, 387, False),
        (405, 218, 431, 287, False),  # behind the sign: legs and one arm
    ],
    "vtest_0600": [
        (455, 302, 505, 420, False), (189, 144, 215, 215, False), (568, 199, 596, 288, False),
        (669, 208, 708, 297, False), (640, 304, 670, 412, False), (284, 433, 330, 576, False),
    ],
    "vtest_0700": [
        (366, 170, 397, 255, False), (184, 166, 212, 238, False), (280, 209, 308, 294, False),
        (102, 287, 143, 398, False), (474, 136, 496, 201, False), (681, 211, 727, 306, False),
        (520, 165, 547, 234, False), (404, 153, 426, 220, False),
    ],
    "basketball1": [(35, 80, 165, 478, False), (432, 20, 640, 480, True)],
    "astronaut": [(15, 10, 360, 512, True)],
    "camera": [(3, 60, 320, 512, True)],
    "grace_hopper": [(15, 20, 512, 600, True)],
}  # fmt: skip

#: (source, person index) pairs of which less than half of the body can be seen, in every
#: frame made from that source, and (frame, person index) pairs where a crop hides the rest.
LESS_THAN_HALF = {("vtest_0480", 3), ("grace_hopper", 0), ("basketball1_cut_right", 1)}

#: Frame name -> (source, crop (x0, y0, x1, y1) in source pixels or None = whole, out (w, h)).
FRAMES: dict[str, tuple[str, Box | None, tuple[int, int] | None]] = {
    # far: the real frames as recorded (vtest 0040/0260/0480/0700 are test/data's own files)
    "vtest_0600": ("vtest_0600", None, None),
    # mid: real frames up-scaled 2-2.5x (people 140-240 px)
    "vtest_0700_mid": ("vtest_0700", (80, 140, 400, 380), (640, 480)),
    "vtest_0260_mid": ("vtest_0260", (290, 110, 610, 350), (640, 480)),
    "vtest_0040_mid": ("vtest_0040", (360, 165, 616, 357), (640, 480)),
    "basketball1_small": ("basketball1", None, (320, 240)),
    # near: real frames and people cropped and up-scaled until they fill the frame
    "basketball1": ("basketball1", None, None),
    "astronaut": ("astronaut", None, None),
    "camera": ("camera", None, None),
    "grace_hopper": ("grace_hopper", None, None),
    "vtest_0600_near": ("vtest_0600", (386, 290, 575, 432), (640, 480)),
    "vtest_0600_near_woman": ("vtest_0600", (205, 424, 408, 576), (640, 480)),
    "vtest_0700_near": ("vtest_0700", (39, 280, 206, 405), (640, 480)),
    "vtest_0260_near": ("vtest_0260", (480, 245, 620, 350), (640, 480)),
    "vtest_0600_waist_up": ("vtest_0600", (436, 296, 524, 362), (640, 480)),
    "vtest_0600_one_side": ("vtest_0600", (296, 426, 496, 576), (640, 480)),
    "vtest_0600_head_missing": ("vtest_0600", (226, 455, 387, 576), (640, 480)),
    "basketball1_waist_up": ("basketball1", (0, 0, 640, 360), (1280, 720)),
    "basketball1_cut_right": ("basketball1", (0, 0, 560, 420), (640, 480)),
    "camera_waist_up": ("camera", (0, 40, 400, 340), (640, 480)),
    "camera_head_missing": ("camera", (0, 175, 448, 511), (640, 480)),
}
#: The four vtest frames already in test/data (labels only).
EXISTING = {
    "vtest_0040": "vtest_0040.jpg",
    "vtest_0260": "vtest_0260.jpg",
    "vtest_0480": "vtest_0480.jpg",
    "vtest_0700": "vtest_0700.png",
}
VTEST_FRAMES = (40, 260, 480, 600, 700)


def load_sources(opencv: Path, skimage: Path, mpl: Path) -> dict[str, np.ndarray]:
    """BGR source images by name (vtest frames decoded from the video)."""
    src: dict[str, np.ndarray] = {}
    cap = cv2.VideoCapture(str(opencv / "vtest.avi"))
    i = 0
    while i <= max(VTEST_FRAMES):
        ok, bgr = cap.read()
        if not ok:
            raise SystemExit(f"cannot decode frame {i} of {opencv / 'vtest.avi'}")
        if i in VTEST_FRAMES:
            src[f"vtest_{i:04d}"] = bgr
        i += 1
    paths = {
        "basketball1": opencv / "basketball1.png",
        "astronaut": skimage / "astronaut.png",
        "camera": skimage / "camera.png",
        "grace_hopper": mpl / "grace_hopper.jpg",
    }
    for name, path in paths.items():
        img = cv2.imread(str(path))
        if img is None:
            raise SystemExit(f"cannot read {path}")
        src[name] = img
    return src


def map_people(frame: str, source: str, crop: Box, out_wh: tuple[int, int]) -> list[dict]:
    """Source people through ``crop`` resized to ``out_wh``; those left in the frame."""
    x0, y0, x1, y1 = crop
    sx, sy = out_wh[0] / (x1 - x0), out_wh[1] / (y1 - y0)
    people = []
    for i, (a, b, c, d, cut) in enumerate(SOURCE_PEOPLE[source]):
        box = np.array([(a - x0) * sx, (b - y0) * sy, (c - x0) * sx, (d - y0) * sy])
        clipped = np.clip(box, 0, [out_wh[0], out_wh[1], out_wh[0], out_wh[1]])
        w, h = clipped[2] - clipped[0], clipped[3] - clipped[1]
        if w < 0.1 * (box[2] - box[0]) or h < 0.1 * (box[3] - box[1]) or min(w, h) < 4:
            continue  # (almost) all outside
        people.append(
            {
                "box": [round(float(v), 1) for v in clipped],
                "truncated": bool(cut or np.abs(clipped - box).max() > 1.0),
                "half_visible": not {(source, i), (frame, i)} & LESS_THAN_HALF,
                "source_index": i,
            }
        )
    return people


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opencv-data", type=Path, required=True)
    parser.add_argument("--skimage-data", type=Path, required=True)
    parser.add_argument("--matplotlib-data", type=Path, required=True)
    args = parser.parse_args(argv)
    src = load_sources(args.opencv_data, args.skimage_data, args.matplotlib_data)
    frames = []
    for source, file in EXISTING.items():
        h, w = src[source].shape[:2]
        frames.append({"file": file, "source": source, "crop": None, "size": [w, h],
                       "people": map_people(source, source, (0, 0, w, h), (w, h))})  # fmt: skip
    for name, (source, crop, out_wh) in FRAMES.items():
        img = src[source]
        h, w = img.shape[:2]
        crop = crop or (0, 0, w, h)
        out_wh = out_wh or (w, h)
        x0, y0, x1, y1 = (int(v) for v in crop)
        region = img[y0:y1, x0:x1]
        up = out_wh[0] > region.shape[1]
        frame = cv2.resize(region, out_wh, interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA)
        file = f"eval/{name}.jpg"
        cv2.imwrite(str(OUT / f"{name}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        frames.append({"file": file, "source": source, "crop": list(crop), "size": list(out_wh),
                       "people": map_people(name, source, crop, out_wh)})  # fmt: skip
    doc = {
        "description": "People boxed by eye (visible extent); see make_eval.py and LICENSE.md",
        "frames": frames,
    }
    (OUT / "labels.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    n = sum(len(f["people"]) for f in frames)
    sys.stdout.write(f"{len(frames)} frames, {n} people -> {OUT / 'labels.json'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
