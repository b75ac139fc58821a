#include <atomic>

#include "common.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace gnn {
// Process-wide (docs/architecture.md): worker threads may set and read it at once.
static std::atomic<int> g_threads{0};

void setNumThreads(int n) {
  if (n < 1 || n > 1024) throwRange("thread count must be in 1..1024, got " + std::to_string(n));
  g_threads.store(n, std::memory_order_relaxed);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

int numThreads() {
#ifdef _OPENMP
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
#else
  return 1;
#endif
}
}  // namespace gnn
