// The benchmark exports' one timing rule: run the body `reps` times and report
// the median seconds of one run (steady_clock around the body only; the upper
// middle element when reps is even). The median, not the mean, because these
// baselines sit beside noisy step timings in the same process.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "args.h"

namespace gnnaddon {

template <class F>
double medianSeconds(int64_t reps, F&& body) {
  std::vector<double> t((size_t)reps);
  for (int64_t r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    t[(size_t)r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Bounds of every benchmark export (memcpyBench, copyGraphSlicesBench,
// gemmBench, streamBench), so that a typo cannot hold the process for minutes:
// at most kMaxBenchReps repetitions, and over all of them at most
// kMaxBenchBytes bytes copied (copies) or kMaxBenchFlops floating-point
// operations (gemm), each a few seconds on one core. Beyond either: RangeError
// with code ERR_GNN_RANGE naming the bound.
constexpr int64_t kMaxBenchReps = 10000;
constexpr double kMaxBenchBytes = 17179869184.0;  // 2^34 B
constexpr double kMaxBenchFlops = 549755813888.0;  // 2^39

// The repetition count of benchmark `fn`: an integer in [1, kMaxBenchReps]
// (read in a binding's first phase, with its other numbers).
inline int64_t benchRepsArg(Napi::Env env, const Napi::Value& v, const char* fn) {
  return intArg(env, v, std::string(fn) + ": reps", 1, kMaxBenchReps);
}

// Refuses `reps` repetitions that cost `workPerRep` units (bytes or flops)
// each when they exceed `maxWork` in all (pure arithmetic: runs no JS).
inline void checkBenchWork(Napi::Env env, const char* fn, int64_t reps, double workPerRep, double maxWork, const char* unit) {
  if ((double)reps * workPerRep > maxWork)
    rangeError(env, std::string(fn) + ": " + std::to_string(reps) + " repetitions of " + std::to_string((int64_t)workPerRep) + " " + unit +
                        " exceed the benchmark bound of " + std::to_string((int64_t)maxWork) + " " + unit + " in all; use fewer repetitions",
               "ERR_GNN_RANGE");
}

}  // namespace gnnaddon
