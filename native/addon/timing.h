// The benchmark exports' one timing rule: run the body `reps` times and report
// the median seconds of one run (steady_clock around the body only; the upper
// middle element when reps is even). The median, not the mean, because these
// baselines sit beside noisy step timings in the same process.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

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

}  // namespace gnnaddon
