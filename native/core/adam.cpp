#include "adam.h"
#include "common.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace gnn {

template <class T>
double sumSquares(const T* g, int64_t n) {
  const int64_t CH = 4096;
  const int64_t nch = (n + CH - 1) / CH;
  std::vector<double> part((size_t)nch, 0.0);
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t c = 0; c < nch; ++c) {
    double s = 0;
    const int64_t e = std::min(n, (c + 1) * CH);
    for (int64_t i = c * CH; i < e; ++i) s += (double)g[i] * (double)g[i];
    part[(size_t)c] = s;
  }
  double s = 0;
  for (double v : part) s += v;
  return s;
}

template <class T>
void adamUpdate(T* p, const T* g, T* m, T* v, int64_t n, const AdamArgs& a) {
  const T b1 = (T)a.beta1, b2 = (T)a.beta2, ob1 = (T)(1 - a.beta1), ob2 = (T)(1 - a.beta2);
  const T scale = (T)a.gradScale, eps = (T)a.eps;
  const T stepSize = (T)(a.lr / a.bc1);
  const T invBc2 = (T)(1.0 / a.bc2);
  const T wd = (T)(a.lr * a.weightDecay);
#pragma omp parallel for simd schedule(static) num_threads(numThreads())
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] * scale;
    const T mi = b1 * m[i] + ob1 * gi;
    const T vi = b2 * v[i] + ob2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] - wd * p[i] - stepSize * mi / (std::sqrt(vi * invBc2) + eps);
  }
}

template <class T>
double adamStep(T* p, const T* g, T* m, T* v, int64_t n, AdamArgs a) {
  const double norm = std::sqrt(sumSquares(g, n));
  if (a.clipNorm > 0 && norm > a.clipNorm) a.gradScale *= a.clipNorm / norm;
  adamUpdate(p, g, m, v, n, a);
  return norm;
}

template double adamStep<float>(float*, const float*, float*, float*, int64_t, AdamArgs);
template double adamStep<double>(double*, const double*, double*, double*, int64_t, AdamArgs);
template double sumSquares<float>(const float*, int64_t);
template double sumSquares<double>(const double*, int64_t);
template void adamUpdate<float>(float*, const float*, float*, float*, int64_t, const AdamArgs&);
template void adamUpdate<double>(double*, const double*, double*, double*, int64_t, const AdamArgs&);

}  // namespace gnn
