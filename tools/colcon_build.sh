#!/usr/bin/env bash
# Builds this package exactly as a ROS 2 workspace does (`colcon build`), against the ROS 2
# wheels in the venv instead of /opt/ros/<distro>. Output: build/colcon/{build,install,log}.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=${COLCON_OUT:-build/colcon}
venv_abs=$(cd "$VENV" && pwd)
export AMENT_PREFIX_PATH="$venv_abs" CMAKE_PREFIX_PATH="$venv_abs"
export PATH="$venv_abs/bin:$PATH" COLCON_HOME="$PWD/$OUT/colcon_home"
# A workspace of its own: CMake refuses exported include paths (the venv's numpy headers)
# that lie inside the package's source folder, which they would if the checkout were built
# in place, since .venv sits in it. A real workspace has /opt/ros and no such overlap.
src="$OUT/src/hpe3d_ros"
rm -rf "$src" && mkdir -p "$src"
cp -r package.xml CMakeLists.txt setup.py README.md LICENSE msg hpe3d_ros launch config scripts \
    "$src"/ 2>/dev/null || true
find "$src" -name __pycache__ -prune -exec rm -rf {} +
"$venv_abs/bin/colcon" --log-base "$OUT/log" build --base-paths "$OUT/src" \
    --build-base "$OUT/build" --install-base "$OUT/install" \
    --cmake-args -DBUILD_TESTING=OFF "-DPython3_EXECUTABLE=$venv_abs/bin/python" -Wno-dev \
    --event-handlers console_direct- summary+
