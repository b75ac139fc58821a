// Segment reductions (segment.cuh; the CUDA twin of core/segment.cpp).
#include "cuda/segment.cuh"

namespace gnn {
namespace cu {

// ---- CSR reductions: one warp per row, lanes over columns, rows in order -------
__global__ void csrRowSumKernel(const float* __restrict__ src, const int32_t* __restrict__ perm,
                                const int32_t* __restrict__ ptr, int rows, int width,
                                float* __restrict__ out) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int k0 = ptr[row], k1 = ptr[row + 1];
  for (int j = lane; j < width; j += 32) {
    float acc = 0.f;
#pragma unroll 4  // one accumulator, edges in order: same sums; loads issued ahead
    for (int k = k0; k < k1; ++k) {
      const int e = perm ? perm[k] : k;
      acc += src[(size_t)e * width + j];
    }
    out[(size_t)row * width + j] = acc;
  }
}
void csrRowSum(cudaStream_t s, const float* src, const int32_t* perm, const int32_t* ptr, int rows,
               int width, float* out) {
  if (rows <= 0) return;
  csrRowSumKernel<<<cdiv(rows, 8), 256, 0, s>>>(src, perm, ptr, rows, width, out);
  checkLaunch(s, "csrRowSumKernel");
}

}  // namespace cu
}  // namespace gnn
