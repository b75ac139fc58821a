#!/usr/bin/env bash
# Sanitizer run of the native core (issue 14): configures and builds
# native/tests/sanitize (ASan + UBSan, every report fatal, no Node, no CUDA)
# under the shared build lock, then runs its driver. The last line reads
# `sanitize: N cases, E errors`; the exit status is non-zero on any sanitizer
# report or failed case.
#   GNN_SANITIZE_ROUNDS   random rounds of the driver (default 40)
#   GNN_DENSE_ROUNDS      random rounds of the dense oracle test (default 60)
#   GNN_SANITIZE_BUILD    build directory (default native-build/sanitize, git-ignored)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GNN_SANITIZE_BUILD:-$root/native-build/sanitize}"
rounds="${GNN_SANITIZE_ROUNDS:-40}"
lock=/tmp/gnn-build.lock

for lib in libasan libubsan; do
  if ! "${CXX:-c++}" -print-file-name="$lib.so" | grep -q /; then
    echo "sanitize: $lib not found for ${CXX:-c++} (install the compiler's sanitizer runtime, e.g. gcc's libasan)" >&2
    exit 2
  fi
done

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
flock "$lock" cmake -S "$root/native/tests/sanitize" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
flock "$lock" cmake --build "$build" --parallel "${GNN_SANITIZE_JOBS:-2}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# The dense products against their float64 oracle: sanitized (portable SIMD,
# then the machine's own), then as the addon builds them (-O3 -march=native).
# A failure here still lets the driver below print the summary line.
dense=0
for check in gnn_dense_check_san gnn_dense_check_san_native gnn_dense_check_native; do
  "$build/$check" "${GNN_DENSE_ROUNDS:-60}" || dense=1
done
"$build/gnn_sanitize" "$rounds"
if [[ $dense -ne 0 ]]; then
  echo "sanitize: the dense oracle test failed (see above)" >&2
  exit 1
fi
