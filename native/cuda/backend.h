// Which compute backends this build contains and can use at run time.
#pragma once
namespace gnn {
// True when the CUDA sources were compiled into this build.
bool cudaCompiled();
// Number of CUDA devices usable now (0 without a GPU, a driver, or CUDA support).
int cudaDeviceCount();
}  // namespace gnn
