#!/usr/bin/env bash
# Syntax-checks every CPU source for aarch64 with Debian's cross compiler (g++-aarch64-linux-gnu),
# so that ARM stays compilable: x86 intrinsics must stay behind the AVX2/AVX-512 macros of the
# dispatched copies (csrc/<family>/cpu/), which an aarch64 build compiles as its only capability.
set -euo pipefail
python=${1:-python}
cxx=aarch64-linux-gnu-g++
command -v "$cxx" >/dev/null || { echo "check_aarch64: $cxx not found (apt-get install g++-aarch64-linux-gnu)"; exit 1; }
torch_include=$("$python" -c "from torch.utils.cpp_extension import include_paths; print(' '.join('-I' + p for p in include_paths()))")
py_include=$("$python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
# pyconfig.h of the host Python describes x86-64 (sizes of long, etc.), which match aarch64 Linux
for source in csrc/*.cpp csrc/*/*.cpp csrc/*/autograd/*.cpp; do
  echo "$cxx -fsyntax-only $source"
  "$cxx" -std=c++17 -fsyntax-only -fopenmp -w -Icsrc $torch_include -I"$py_include" "$source"
done
# the kernels, as setup.py compiles them there: the baseline copy only, torch-free
for source in csrc/*/cpu/*.cpp; do
  echo "$cxx -fsyntax-only -DPYPRUNE_CPU_CAPABILITY=default $source"
  "$cxx" -std=c++17 -fsyntax-only -fopenmp -w -Icsrc -DPYPRUNE_CPU_CAPABILITY=default "$source"
done
