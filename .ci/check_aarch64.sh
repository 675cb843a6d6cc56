#!/usr/bin/env bash
# Syntax-checks every CPU source for aarch64 with Debian's cross compiler (g++-aarch64-linux-gnu),
# so that ARM stays compilable: x86 intrinsics must stay behind the AVX2/AVX-512 macros of the
# dispatched copies (csrc/<family>/cpu/), which an aarch64 build compiles as its only level.
set -euo pipefail
python=${1:-python}
cxx=aarch64-linux-gnu-g++
command -v "$cxx" >/dev/null || { echo "check_aarch64: $cxx not found (apt-get install g++-aarch64-linux-gnu)"; exit 1; }
torch_include=$("$python" -c "from torch.utils.cpp_extension import include_paths; print(' '.join('-I' + p for p in include_paths()))")
py_include=$("$python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
# pyconfig.h of the host Python describes x86-64 (sizes of long, etc.), which match aarch64 Linux
for source in csrc/pyprune.cpp csrc/common/*.cpp csrc/cpu/*.cpp csrc/*/cpu/*.cpp csrc/*/autograd/*.cpp; do
  echo "$cxx -fsyntax-only $source"
  "$cxx" -std=c++17 -fsyntax-only -fopenmp -w -Icsrc $torch_include -I"$py_include" "$source"
done
