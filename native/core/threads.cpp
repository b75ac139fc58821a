#include "common.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace gnn {
static int g_threads = 0;

void setNumThreads(int n) {
  if (n < 1 || n > 1024) throwRange("thread count must be in 1..1024, got " + std::to_string(n));
  g_threads = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

int numThreads() {
#ifdef _OPENMP
  return g_threads > 0 ? g_threads : omp_get_max_threads();
#else
  return 1;
#endif
}
}  // namespace gnn
