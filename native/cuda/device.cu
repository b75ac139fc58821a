// CUDA device discovery. Linked with the static CUDA runtime so that the addon
// loads on machines without a driver; a missing driver reports zero devices.
#include <cuda_runtime.h>
#include "backend.h"

namespace gnn {
bool cudaCompiled() { return true; }
int cudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}
}  // namespace gnn
