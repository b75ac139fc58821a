// Fused Adam (adam.cuh; the CUDA twin of core/adam.cpp's adamUpdate).
#include "cuda/adam.cuh"

#include <algorithm>

namespace gnn {
namespace cu {

// ---- Adam --------------------------------------------------------------------------
AdamDev adamScalars(double lr, double beta1, double beta2, double eps, double bc1, double bc2,
                    double gradScale, double weightDecay) {
  AdamDev a;
  a.b1 = (float)beta1; a.b2 = (float)beta2;
  a.ob1 = (float)(1 - beta1); a.ob2 = (float)(1 - beta2);
  a.scale = (float)gradScale; a.eps = (float)eps;
  a.stepSize = (float)(lr / bc1);
  a.invBc2 = (float)(1.0 / bc2);
  a.wd = (float)(lr * weightDecay);
  return a;
}
__global__ void adamKernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                           float* __restrict__ v, int64_t n, const AdamDev* __restrict__ hp) {
  const AdamDev a = *hp;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const float gi = g[i] * a.scale;
    const float mi = a.b1 * m[i] + a.ob1 * gi;
    const float vi = a.b2 * v[i] + a.ob2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] - a.wd * p[i] - a.stepSize * mi / (sqrtf(vi * a.invBc2) + a.eps);
  }
}
void adam(cudaStream_t s, float* p, const float* g, float* m, float* v, int64_t n, const AdamDev* hp) {
  if (n <= 0) return;
  addCost(0, 4.0 * 7 * n);
  adamKernel<<<std::min(cdiv(n, 256), 4096), 256, 0, s>>>(p, g, m, v, n, hp);
  checkLaunch(s, "adamKernel");
}

}  // namespace cu
}  // namespace gnn
