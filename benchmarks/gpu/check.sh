#!/usr/bin/env bash
# GPU check and benchmark, one script (issue 7). On a machine with an NVIDIA GPU,
# CUDA, CMake and Python (+ JAX for the peer): builds the standalone checker
# (no Node), runs the CPU-agreement checks and the benchmark, runs the JAX
# peer, and prints a side-by-side table last. Logs go to $OUT when set.
#   bash benchmarks/gpu/check.sh            (from the repository root)
# Env: GNN_GPU_BUILD (build dir, default /tmp/gnn-gpu), GNN_CUDA_ARCHS (default 90),
#      GNN_CHECK_ARGS (gnn_native_check options, e.g. --quick, --impl=ffma|tf32x3|both,
#        --breakdown, --only=MPEU:qm9:32,MPEU:qm9:128, --no-kernels/--no-grads/--no-train),
#      SKIP_JAX=1 (no JAX run; the table takes JAX numbers from JAX_PREV, default
#        benchmarks/gpu/results/jax.log, else jax_h100_first_run.txt: same card kind),
#      JAX_CONFIGS (see jax_mpeu.py --configs),
#      GNN_SANITIZE=1 (only build + compute-sanitizer memcheck of a quick check, for diagnosis).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR="${OUT:-/tmp/gnn-gpu-out}"
mkdir -p "$OUTDIR"
BUILD="${GNN_GPU_BUILD:-/tmp/gnn-gpu}"
ARCHS="${GNN_CUDA_ARCHS:-90}"
T0=$(date +%s)
say() { echo "[check.sh +$(( $(date +%s) - T0 ))s] $*"; }

say "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1 | tee "$OUTDIR/device.txt" || say "nvidia-smi not available"
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
nvcc --version 2>&1 | tail -1 || true

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
say "configure + build (archs $ARCHS) -> $BUILD"
if ! cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DGNN_CUDA=ON -DGNN_BUILD_ADDON=OFF \
     -DGNN_BUILD_TESTS=ON -DGNN_CUDA_ARCHS="$ARCHS" >"$OUTDIR/build.log" 2>&1; then
  tail -40 "$OUTDIR/build.log"; say "FAIL: cmake configure failed (log: $OUTDIR/build.log)"; exit 1
fi
if ! cmake --build "$BUILD" -j16 >>"$OUTDIR/build.log" 2>&1; then
  grep -E "error|Error" "$OUTDIR/build.log" | head -40; say "FAIL: build failed (log: $OUTDIR/build.log)"; exit 1
fi
say "build ok"

if [ "${GNN_SANITIZE:-0}" = "1" ]; then
  # Second-run diagnosis: memcheck of a quick pass (no benchmark, no JAX).
  say "compute-sanitizer memcheck (quick, no benchmark)"
  timeout 400 compute-sanitizer --tool memcheck --print-limit 20 "$BUILD/gnn_native_check" --quick --no-bench 2>&1 | tail -80 | tee "$OUTDIR/sanitizer.log"
  say "sanitizer exit ${PIPESTATUS[0]}"
  exit 0
fi
say "gnn_native_check ${GNN_CHECK_ARGS:-}"
timeout 300 "$BUILD/gnn_native_check" ${GNN_CHECK_ARGS:-} 2>&1 | tee "$OUTDIR/gpu_check.log"
CHECK_RC=${PIPESTATUS[0]}
say "gnn_native_check exit $CHECK_RC"

JAX_LOG="$OUTDIR/jax.log"
if [ "${SKIP_JAX:-0}" = "1" ]; then
  JAX_LOG="${JAX_PREV:-benchmarks/gpu/results/jax.log}"
  [ -f "$JAX_LOG" ] || JAX_LOG=benchmarks/gpu/results/jax_h100_first_run.txt
  say "JAX peer skipped (SKIP_JAX=1): previous JAX numbers from $JAX_LOG"
  JAX_RC=0
else
  say "JAX peer"
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  JAX_ARGS=()
  [ -n "${JAX_CONFIGS:-}" ] && JAX_ARGS=(--configs "$JAX_CONFIGS")
  timeout 240 python3 benchmarks/peers/jax_mpeu.py "${JAX_ARGS[@]}" 2>&1 | grep -v -E "^\s*$" | tee "$OUTDIR/jax.log"
  JAX_RC=${PIPESTATUS[0]}
  say "JAX peer exit $JAX_RC"
fi

# condensed breakdown (full tables in gpu_check.log)
grep -E "^bench \[|^  by family|^  by site|^  breakdown|FAIL" "$OUTDIR/gpu_check.log" | cut -c1-400 || true

python3 - "$OUTDIR/gpu_check.log" "$JAX_LOG" <<'PY' | tee "$OUTDIR/table.txt"
import sys
def parse(path, tag):
    rows = []
    try:
        for line in open(path, errors="replace"):
            if line.startswith(tag + " "):
                rows.append(dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv))
    except OSError:
        pass
    return rows
ours, jax = parse(sys.argv[1], "RESULT"), parse(sys.argv[2], "JAX")
def jx(model, data, B, prec):
    for r in jax:
        if r["model"] == model and r["data"] == data and r["B"] == B and r["precision"] == prec:
            return float(r["step_ms"])
    return None
f = lambda v: "-" if v is None else f"{v:.3f}"
print()
print("ours = CUDA graph replay (step_ms: device events; wall_ms: host wall per train step incl. ids upload, device pack, loss copy)")
print("jax  = jit step on device-resident inputs, wall per step with block_until_ready (default = XLA's default f32 matmul precision)")
print("vs_ffma = ffma step / this step (same run, same card); speedup = jax_def / ours_wall")
ffma = {(r["model"], r["data"], r["B"]): float(r["step_ms"]) for r in ours if r.get("impl", "ffma") == "ffma"}
print(f"{'impl':7} {'model':7} {'data':6} {'B':>4} {'N/E':>12} {'ours_step':>9} {'ours_wall':>9} {'batch':>7} {'capt_ms':>8} {'TFLOP/s':>7} {'floor':>7} {'vs_ffma':>7} {'jax_def':>8} {'jax_hi':>8} {'speedup':>7}")
for r in ours:
    step, wall = float(r["step_ms"]), float(r["wall_ms"])
    jd, jh = jx(r["model"], r["data"], r["B"], "default"), jx(r["model"], r["data"], r["B"], "highest")
    sp = f"{jd / wall:.2f}x" if jd else "-"
    tf = float(r["gflop"]) / step
    fb = ffma.get((r["model"], r["data"], r["B"]))
    vf = f"{fb / step:.2f}x" if fb else "-"
    print(f"{r.get('impl', 'ffma'):7} {r['model']:7} {r['data']:6} {r['B']:>4} {r['nodes'] + '/' + r['edges']:>12} {step:9.3f} {wall:9.3f} {float(r['batch_ms']):7.3f} {float(r['capture_ms']):8.1f} {tf:7.2f} {float(r['floor_ms']):7.3f} {vf:>7} {f(jd):>8} {f(jh):>8} {sp:>7}")
if not ours:
    print("(no RESULT lines from gnn_native_check)")
if not jax:
    print("(no JAX lines)")
PY
say "checks: gnn_native_check=$CHECK_RC jax=$JAX_RC; $(grep -h '^GPU_CHECK' "$OUTDIR/gpu_check.log" || echo 'GPU_CHECK: no verdict')"
[ "$CHECK_RC" -eq 0 ] && [ "$JAX_RC" -eq 0 ]
