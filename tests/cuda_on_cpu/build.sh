#!/usr/bin/env bash
# Builds the CUDA kernels for the CPU under cudasim: libcuda_on_cpu.so in $1. Each
# csrc/*/cuda/*.cu is copied with its launches rewritten (`k<<<g, b, s, st>>>(args)` ->
# `k | ::cudasim::launch_config(g, b, s, st)(args)`) and its dynamic shared memory declaration
# turned into a call: the kernel code itself is compiled as written.
# MUTATE="file.cu:sed-expression" plants a bug in one kernel file (the mutation check); REUSE=dir
# takes the other objects from a clean build there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
cxx=${CXX:-g++}
flags=(-std=c++20 -O1 -g0 -fPIC -w -pthread -I"$here/sim" -I"$root/csrc")
objects=()
for cu in "$root"/csrc/*/cuda/*.cu "$here/selftest_kernels.cu"; do
  name=$(basename "$cu" .cu)
  mutated=false
  [ -n "${MUTATE:-}" ] && [ "${MUTATE%%:*}" = "$name.cu" ] && mutated=true
  if [ -n "${REUSE:-}" ] && ! $mutated; then
    objects+=("$REUSE/$name.o")
    continue
  fi
  sed -e 's/<<</ | ::cudasim::launch_config(/g' -e 's/>>>/)/g' \
      -e 's/extern __shared__ \([A-Za-z_][A-Za-z0-9_ ]*[A-Za-z0-9_]\) \([A-Za-z_][A-Za-z0-9_]*\)\[\];/\1* \2 = static_cast<\1*>(::cudasim::dynamic_shared_memory());/' \
      "$cu" > "$out/$name.cpp"
  if $mutated; then
    cp "$out/$name.cpp" "$out/$name.clean"
    sed -i -e "${MUTATE#*:}" "$out/$name.cpp"
    if cmp -s "$out/$name.clean" "$out/$name.cpp"; then echo "mutation '$MUTATE' changed nothing" >&2; exit 3; fi
  fi
  "$cxx" "${flags[@]}" -c "$out/$name.cpp" -o "$out/$name.o"
  objects+=("$out/$name.o")
done
for extra in "$here/sim/cudasim.cpp" "$here/kernels_capi.cpp"; do
  name=$(basename "$extra" .cpp)
  if [ -n "${REUSE:-}" ]; then objects+=("$REUSE/$name.o"); continue; fi
  "$cxx" "${flags[@]}" -c "$extra" -o "$out/$name.o"
  objects+=("$out/$name.o")
done
"$cxx" -shared -pthread -o "$out/libcuda_on_cpu.so" "${objects[@]}"
