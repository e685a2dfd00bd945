#!/usr/bin/env bash
# `make demo`: real footage -> rosbag2 bag -> the node's pipeline (offline replay) -> 3D people.
#
# Footage: demo/vtest_600_750.mp4, 150 frames (15 s, 768x576, 10 fps) of OpenCV's sample video
# vtest.avi (Debian opencv-doc; Apache-2.0 AND BSD-3-Clause, see demo/LICENSE.md).
# Intrinsics: unknown for this clip, so ASSUMED: pinhole, horizontal field of view 60 deg
# (fx = fy = 665 px), principal point at the image centre, no distortion. Distances scale
# with that assumption; the clip's camera is mounted high and looks down, and the demo uses
# no ground-plane prior (placement.camera_height_m = 0, as shipped).
#
# Writes outputs/demo/: bag/ (the input bag), bags/vtest/ (the node's output topics, MCAP),
# frames.csv, people.csv, summary.json, pictures/vtest/ (overlays, 3D hypotheses, MP4).
# Everything printed is computed by this run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# the exported ONNX lifter is cached inside the checkout, not in ~/.cache
export HPE3D_ONNX_CACHE=${HPE3D_ONNX_CACHE:-$PWD/build/cache/onnx}
PY="$VENV/bin/python"
CLIP=demo/vtest_600_750.mp4
OUT=outputs/demo
HFOV_DEG=60

if [ ! -f "$CLIP" ]; then
    echo "[demo] $CLIP is missing (it ships with the repository)" >&2
    exit 1
fi
start=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"
echo "[demo] 1/2 bag from $CLIP (assumed intrinsics: ${HFOV_DEG} deg horizontal FOV, no distortion)"
"$PY" -m hpe3d_ros.replay.make_bag "$OUT/vtest" --video "$CLIP" --camera front --hfov-deg "$HFOV_DEG" \
    --compressed --storage mcap
echo "[demo] 2/2 replay through the pipeline (config/pipeline.yaml)"
"$PY" -m hpe3d_ros.replay "$OUT/vtest" --output "$OUT" --params-file config/pipeline.yaml \
    --overlays 4
echo
echo "[demo] pictures:"
find "$OUT/pictures" -type f | sort | sed 's/^/  /'
echo "[demo] done in $(( $(date +%s) - start )) s; the 3D view of one person: $(ls "$OUT"/pictures/vtest/hypotheses_*.png 2>/dev/null | head -1)"
