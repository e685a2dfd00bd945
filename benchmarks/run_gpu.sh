#!/usr/bin/env bash
# Every GPU figure in one command (issue 20); results, tables and log land in $OUT.
#
#   bash benchmarks/run_gpu.sh [--budget-s 300] [gpu_run.py options]
#
# On the device machine: prepare here first (python benchmarks/gpu_prepare.py), then make ONE
# device call: command "bash benchmarks/run_gpu.sh --budget-s 300", timeout_s 360, carry
# ["build/gpu_carry"]. The budget leaves time for one re-run inside the 15 minutes of device
# time. Rehearse the whole run on the CPU with: python benchmarks/gpu_run.py --dry-run
# PYTHON=... chooses the interpreter (default python3: on the device, the one with CUDA torch).
set -u
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/gpu_run.py "$@"
