// Fallback used when the build has no CUDA sources (GNN_HAS_CUDA undefined).
#include "backend.h"
#ifndef GNN_HAS_CUDA
namespace gnn {
bool cudaCompiled() { return false; }
int cudaDeviceCount() { return 0; }
}  // namespace gnn
#endif
