#!/usr/bin/env bash
# Runs every CUDA kernel on the CPU under CUDA's block and warp rules (tests/cuda_on_cpu, cudasim)
# against the reference, with one OS thread and with four, plus the mutation check that plants
# typical kernel bugs and shows each is caught. Needs only g++ (C++20) and the package installed.
set -euo pipefail
python=${1:-python}
cd "$(dirname "$0")/.."
"$python" -m pytest -q -p no:cacheprovider tests/test_cuda_on_cpu.py
