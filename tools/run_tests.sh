#!/usr/bin/env bash
# Runs the test suite in the pip-world venv with the ROS environment tests need.
# Fails on any failure, and also when pytest ran no test at all (exit 5, or zero passed).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# shellcheck source=tools/ros_env.sh
source tools/ros_env.sh
mkdir -p build
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID discovery=$ROS_AUTOMATIC_DISCOVERY_RANGE"
"$VENV/bin/python" -m pytest "$@" 2>&1 | tee build/pytest.log
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 5 ]; then
    echo "[test] FAILED: pytest collected no tests" >&2
    exit 1
fi
if [ "$rc" -eq 0 ] && ! tail -n 3 build/pytest.log | grep -Eq '[1-9][0-9]* passed'; then
    echo "[test] FAILED: no test passed" >&2
    exit 1
fi
exit "$rc"
