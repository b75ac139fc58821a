// Segment reductions (the CUDA twin of core/segment.h): CSR row sums, one warp
// per row, lanes over columns, each row's sources in index order.
#pragma once
#include "cuda/common.cuh"

namespace gnn {
namespace cu {

// out[r,:] = sum_{k in ptr[r]..ptr[r+1]} src[perm ? perm[k] : k, :]
// (perm null: core/segment.h's segmentSumCsr; perm set: its gatherRowsBackward)
void csrRowSum(cudaStream_t s, const float* src, const int32_t* perm, const int32_t* ptr, int rows,
               int width, float* out);

}  // namespace cu
}  // namespace gnn
