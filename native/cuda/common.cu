// The shared pieces of the CUDA kernel families (common.cuh): CUDA error
// checks, the per-launch profiler and the cost counter.
#include "cuda/common.cuh"

#include <string>

#include "core/common.h"

namespace gnn {
namespace cu {

void checkCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  throw Error(ErrorKind::Generic, "ERR_GNN_CUDA",
              std::string("CUDA error in ") + what + ": " + cudaGetErrorName(e) + " (" +
                  cudaGetErrorString(e) + ")");
}
// ---- per-launch profiler (--breakdown): an event after every enqueued op ----
static Profiler* g_prof = nullptr;
void setProfiler(Profiler* p) { g_prof = p; }
bool profiling() { return g_prof != nullptr; }
void profMark(cudaStream_t s, const std::string& name) {
  if (!g_prof) return;
  cudaEvent_t e = nullptr;
  checkCuda(cudaEventCreate(&e), "cudaEventCreate (profiler)");
  checkCuda(cudaEventRecord(e, s), "cudaEventRecord (profiler)");
  g_prof->ev.push_back(e);
  g_prof->names.push_back(name);
  g_prof->sites.push_back(g_prof->site);
  g_prof->passes.push_back(g_prof->pass);
}
SiteScope::SiteScope(int site, int pass) {
  if (!g_prof) return;
  prevSite = g_prof->site;
  prevPass = g_prof->pass;
  g_prof->site = site;
  g_prof->pass = pass;
}
SiteScope::~SiteScope() {
  if (!g_prof) return;
  g_prof->site = prevSite;
  g_prof->pass = prevPass;
}
// A kernel that spins for ns nanoseconds (profiler: lets the host enqueue a
// whole step before the device starts, so the gaps are device time only).
__global__ void spinKernel(long long ns) {
  long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}
void spin(cudaStream_t s, double ms) {
  spinKernel<<<1, 1, 0, s>>>((long long)(ms * 1e6));
  checkCuda(cudaGetLastError(), "spinKernel");
}

static Cost* g_cost = nullptr;
void setCostCounter(Cost* c) { g_cost = c; }
void addCost(double flops, double bytes) {
  if (g_cost) { g_cost->flops += flops; g_cost->bytes += bytes; }
}

}  // namespace cu
}  // namespace gnn
