// Fused Adam (the CUDA twin of core/adam.h's adamUpdate).
#pragma once
#include "cuda/common.cuh"

namespace gnn {
namespace cu {

struct AdamDev {  // float scalars as the CPU adamUpdate computes them
  float b1, b2, ob1, ob2, scale, eps, stepSize, invBc2, wd;
};
AdamDev adamScalars(double lr, double beta1, double beta2, double eps, double bc1, double bc2,
                    double gradScale, double weightDecay);
// hyper: device pointer to an AdamDev (read at run time, so a captured graph
// sees the values of each replay).
void adam(cudaStream_t s, float* p, const float* g, float* m, float* v, int64_t n,
          const AdamDev* hyper);

}  // namespace cu
}  // namespace gnn
