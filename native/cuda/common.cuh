// What every CUDA kernel family shares (no CPU twin beyond core/common.h):
// error checks, device allocations, the cost counter the launchers add to
// while a step is captured, and the per-launch profiler. The kernels
// themselves live one file per family, as on the CPU (docs/architecture.md,
// "Native kernels"):
//
//   CPU (native/core)                   CUDA (native/cuda)
//   dense.h/.cpp                        dense.cuh/.cu      products, ssp
//   segment.h/.cpp                      segment.cuh/.cu    CSR row sums
//   adam.h/.cpp                         adam.cuh/.cu       fused Adam
//   pack.h/.cpp                         pack.cuh/.cu       batch packing
//   models/model_internal.h (CpuExec)   models/model.cuh/.cu  MPEU/SchNet pieces
//   models/model_internal.h (CpuExec)   models/exec_cuda.cuh  the executor
//
// Every launcher enqueues on the given stream, checks the launch, and adds
// its matrix flops and minimum bytes to the active cost counter (when one is
// set).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gnn {
namespace cu {

void checkCuda(cudaError_t e, const char* what);
#define GNN_CU(x) ::gnn::cu::checkCuda((x), #x)

struct Cost {
  double flops = 0, bytes = 0;
};
// Launchers add to *c while set (nullptr: no counting).
void setCostCounter(Cost* c);
void addCost(double flops, double bytes);

// Per-launch profiler (gnn_native_check --breakdown): while set, every launcher
// records an event on its stream after its launch, named after the kernel
// (matrix products: impl, M x N x K, transposes, epilogue), together with the
// kernel site (core/models/model.h's KernelSite, the CPU profile's table) and
// pass the executor is enqueueing (SiteScope), -1 outside the model program.
// Not for capture.
struct Profiler {
  std::vector<cudaEvent_t> ev;
  std::vector<std::string> names;
  std::vector<int> sites, passes;  // one per event
  int site = -1, pass = -1;        // of the launches being enqueued now
};
void setProfiler(Profiler* p);
bool profiling();
void profMark(cudaStream_t s, const std::string& name);
// While it lives, the profiler (when set) records the launches under this
// kernel site and pass; restores the previous ones on exit.
struct SiteScope {
  int prevSite = -1, prevPass = -1;
  SiteScope(int site, int pass);
  ~SiteScope();
  SiteScope(const SiteScope&) = delete;
  SiteScope& operator=(const SiteScope&) = delete;
};
// Spins the stream for ms milliseconds (lets the host run ahead while profiling).
void spin(cudaStream_t s, double ms);

// After a launch: checks it, and marks it for the profiler.
inline void checkLaunch(cudaStream_t s, const char* what) {
  checkCuda(cudaGetLastError(), what);
  if (profiling()) profMark(s, what);
}

inline int cdiv(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

// Owns device allocations; frees them in reverse order.
struct DevMem {
  std::vector<void*> ptrs;
  size_t bytes = 0;
  DevMem() = default;
  DevMem(const DevMem&) = delete;
  DevMem& operator=(const DevMem&) = delete;
  template <class T>
  T* alloc(size_t n) {
    void* p = nullptr;
    const size_t b = std::max<size_t>(1, n) * sizeof(T);
    GNN_CU(cudaMalloc(&p, b));
    ptrs.push_back(p);
    bytes += b;
    return (T*)p;
  }
  ~DevMem() {
    for (auto it = ptrs.rbegin(); it != ptrs.rend(); ++it) cudaFree(*it);
  }
};

template <class T>
void upload(T* dst, const T* src, size_t n) {
  if (n) GNN_CU(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyHostToDevice));
}

}  // namespace cu
}  // namespace gnn
