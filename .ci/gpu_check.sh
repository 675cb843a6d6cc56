#!/usr/bin/env bash
# On a machine with a GPU: builds the extension with CUDA in place, runs the whole test suite
# (every CUDA op against the reference) and the CUDA bench rows. Logs go to ${1:-gpu_logs}/.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-gpu_logs}
mkdir -p "$logs"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 setup.py build_ext --inplace > "$logs/build.log" 2>&1 || { tail -60 "$logs/build.log"; exit 1; }
ldd pyprune_ext/_C*.so | grep -q libstdc++ || echo "warning: _C has no libstdc++ dependency"
python3 -m pytest -q -p no:cacheprovider tests -rfE --tb=short 2>&1 | tee "$logs/tests.log" | tail -20
tests=${PIPESTATUS[0]}
python3 -m pyprune_ext bench -k cuda 2>&1 | tee "$logs/bench.log" | tail -120
exit "$tests"
