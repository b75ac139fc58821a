// Shared by the model files (model.cpp, painn.cpp): the opt-in profile's
// scopes and the matrix-product epilogues. Internal to native/core/models.
#pragma once
#include <chrono>

#include "core/dense.h"
#include "core/models/model.h"

namespace gnn {
namespace detail {

using Clock = std::chrono::steady_clock;

template <class T>
struct ProfScope {
  Plan<T>& p;
  int key;
  Clock::time_point t0;
  ProfScope(Plan<T>& pl, int k) : p(pl), key(k) { if (p.profile) t0 = Clock::now(); }
  ~ProfScope() {
    if (p.profile) p.profSeconds[key] += std::chrono::duration<double>(Clock::now() - t0).count();
  }
};

inline double nowNs() { return (double)std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

// One kernel call of the per-kernel profile: with profiling off, one branch in
// the constructor and one in the destructor (the arguments are a few integer
// products, no allocation).
template <class T>
struct KScope {
  Plan<T>& p;
  int site, pass;
  int64_t m, n, k;
  double flops, bytes, t0 = 0;
  KScope(Plan<T>& pl, int s, int ps, int64_t m_, int64_t n_, int64_t k_, double f, double by)
      : p(pl), site(s), pass(ps), m(m_), n(n_), k(k_), flops(f), bytes(by) {
    if (p.profile) t0 = nowNs();
  }
  ~KScope() {
    if (p.profile) p.addRecord(site, pass, m, n, k, flops, bytes, t0, nowNs());
  }
};
// Matrix-product flops (what dense.cpp's counter adds) and bytes (A, B, C once
// each, plus `extra` elements read by the epilogue or an accumulated output).
inline double gf(int64_t M, int64_t N, int64_t K) { return 2.0 * (double)M * (double)N * (double)K; }
template <class T>
inline double gb(int64_t M, int64_t N, int64_t K, double extra = 0) {
  return (double)sizeof(T) * ((double)M * K + (double)K * N + (double)M * N + extra);
}

template <class T>
inline void addBias(T* C, int64_t m0, int64_t m1, int64_t n, const T* b) {
  for (int64_t i = m0; i < m1; ++i) {
    T* r = C + i * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) r[j] += b[j];
  }
}

template <class T>
RowEpilogue<T> biasEpi(T* C, int64_t n, const T* b, bool act) {
  return [=](int64_t m0, int64_t m1) {
    addBias(C, m0, m1, n, b);
    if (act) sspInPlace(C + m0 * n, (m1 - m0) * n);
  };
}

template <class T>
RowEpilogue<T> sspGradEpi(T* D, const T* act, int64_t n) {
  return [=](int64_t m0, int64_t m1) { mulSspGradFromAct(D + m0 * n, act + m0 * n, (m1 - m0) * n); };
}

// Pools the per-node outputs p.r2 into per-graph predictions p.pred (sum, or
// mean over the graph's nodes) and returns the masked MSE loss; fills
// p.graphStart.
template <class T>
double poolLoss(Plan<T>& p, const BatchInputs<T>& b) {
  const int64_t G = b.shape.graphs;
  p.graphStart[0] = 0;
  for (int64_t g = 0; g < G; ++g) p.graphStart[g + 1] = p.graphStart[g] + b.nNode[g];
  double loss = 0, nreal = 0;
  for (int64_t g = 0; g < G; ++g) {
    T s = 0;
    for (int64_t n = p.graphStart[g]; n < p.graphStart[g + 1]; ++n) s += p.r2[n];
    const int32_t nn = b.nNode[g];
    p.pred[g] = p.cfg.meanReadout ? (nn > 0 ? s / (T)nn : (T)0) : s;
    const double d = (double)p.pred[g] - (double)b.target[g];
    loss += (double)b.mask[g] * d * d;
    nreal += (double)b.mask[g];
  }
  return nreal > 0 ? loss / nreal : 0.0;
}

// Backward of poolLoss: dr2[n] = dLoss/d r2[n].
template <class T>
void poolLossBackward(const Plan<T>& p, const BatchInputs<T>& b, T* dr2) {
  const int64_t G = b.shape.graphs;
  double nreal = 0;
  for (int64_t g = 0; g < G; ++g) nreal += (double)b.mask[g];
  for (int64_t g = 0; g < G; ++g) {
    const T dp = nreal > 0 ? (T)(2.0 * (double)b.mask[g] * ((double)p.pred[g] - (double)b.target[g]) / nreal) : (T)0;
    const int32_t nn = b.nNode[g];
    const T v = p.cfg.meanReadout ? (nn > 0 ? dp / (T)nn : (T)0) : dp;
    for (int64_t n = p.graphStart[g]; n < p.graphStart[g + 1]; ++n) dr2[n] = v;
  }
}

// PaiNN (painn.cpp).
ParamLayout painnLayout(const ModelConfig& c);
// Elements of every buffer a PaiNN plan of this capacity allocates (estimate
// made before allocating).
double painnPlanElems(const ModelConfig& c, const PackShape& cap);
template <class T>
void painnAllocate(Plan<T>& p);
template <class T>
double painnForward(Plan<T>& p, const T* params, const BatchInputs<T>& b);
template <class T>
void painnBackward(Plan<T>& p, const T* params, T* grads, const BatchInputs<T>& b);

}  // namespace detail
}  // namespace gnn
