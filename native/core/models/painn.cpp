// PaiNN's CPU kernels (docs/painn.md): the executor ops and epilogues that
// the PaiNN model program (program_painn.h) runs on the CPU executor
// (CpuExec, model_internal.h), and its parameter layout.
//
// Evaluation order (algebraically the paper's):
//  * An edge's filter W_ij = (rbf_ij . filter/w + filter/b) * fc(d_ij) (3F
//    values per block) is recomputed from its K basis values where it is used
//    (K = 20 multiply-adds per value, the weights stay in L1), so the [E x 3F]
//    filters of a block never go to memory; edges beyond the cutoff (fc = 0)
//    are skipped outright.
//  * The message MLP runs per node (phi(s_j) depends on the sender only); the
//    per-edge product x = phi(s_j) * W_ij and the sums over incoming edges are
//    one CSR pass over receivers, so x is never written.
//  * The update block's channel mixing [V | U] is one product over the 3N
//    rows of v; its output combination runs in the epilogue of the second MLP
//    product.
//  * Backward: the message pass is one pass over senders (sendPerm), which
//    writes the gradient of phi(s_j) and the vector-feature gradient of each
//    sender without atomics, and adds each edge's filter gradient rbf x dW
//    into the partial sum of its chunk of kPainnSenderChunk senders; the chunks
//    are reduced in index order. Every reduction has a fixed order, so results
//    are bitwise identical for any thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dense.h"
#include "core/models/model.h"
#include "core/models/model_internal.h"
#include "core/models/program_painn.h"
#include "core/segment.h"

namespace gnn {
namespace detail {

namespace {

constexpr double kNormEps = 1e-8;
constexpr double kPi = 3.14159265358979323846;

template <class T>
RowEpilogue<T> biasSiluEpi(T* pre, T* act, int64_t n, const T* b) {
  return [=](int64_t m0, int64_t m1) {
    addBias(pre, m0, m1, n, b);
    siluForward(pre + m0 * n, act + m0 * n, (m1 - m0) * n);
  };
}

template <class T>
RowEpilogue<T> siluGradEpi(T* D, const T* pre, int64_t n) {
  return [=](int64_t m0, int64_t m1) { mulSiluGrad(D + m0 * n, pre + m0 * n, (m1 - m0) * n); };
}

// Senders per partial sum of the filter gradient (a fixed partition, so the
// summation order does not depend on the thread count), receivers per
// forward work unit, and edges per in-cache filter block.
constexpr int64_t kSenderChunk = program::kPainnSenderChunk;
constexpr int64_t kRecvChunk = 8;
constexpr int64_t kEdgeBlock = 128;

// Per-thread scratch of the edge passes: one block's edge ids, gathered basis
// rows, filters and filter gradients (grown once, reused every call).
template <class T>
struct EdgeScratch {
  std::vector<int32_t> ids;
  std::vector<T> rbf, w, g;
  void ensure(int64_t K, int64_t F3) {
    if ((int64_t)ids.size() < kEdgeBlock) ids.resize(kEdgeBlock);
    if ((int64_t)rbf.size() < kEdgeBlock * K) rbf.resize(kEdgeBlock * K);
    if ((int64_t)w.size() < kEdgeBlock * F3) w.resize(kEdgeBlock * F3);
    if ((int64_t)g.size() < kEdgeBlock * F3) g.resize(kEdgeBlock * F3);
  }
};
template <class T>
EdgeScratch<T>& edgeScratch() {
  static thread_local EdgeScratch<T> s;
  return s;
}

// Gathers the next block of edges inside the cutoff from order[pos..end)
// (order == nullptr: the edges pos..end themselves) and computes their filters
// W = (rbf . Wf + bf) * fc in the scratch (one serial product, L2-resident).
// Returns the block's edge count and advances pos.
template <class T>
int64_t filterBlock(const int32_t* order, int64_t& pos, int64_t end, const T* rbf, const T* fcut, int64_t K,
                    const T* Wf, int64_t LF, const T* bf, int64_t F3, EdgeScratch<T>& sc) {
  int64_t m = 0;
  for (; pos < end && m < kEdgeBlock; ++pos) {
    const int32_t e = order ? order[pos] : (int32_t)pos;
    if (fcut[e] == (T)0) continue;  // beyond the cutoff: contributes exactly zero
    sc.ids[m] = e;
    std::memcpy(sc.rbf.data() + m * K, rbf + (int64_t)e * K, sizeof(T) * K);
    ++m;
  }
  if (m == 0) return 0;
  gemmSerial<T>(m, F3, K, sc.rbf.data(), K, 1, Wf, LF, sc.w.data(), F3, false);
  for (int64_t r = 0; r < m; ++r) {
    T* __restrict row = sc.w.data() + r * F3;
    const T fc = fcut[sc.ids[r]];
#pragma omp simd
    for (int64_t c = 0; c < F3; ++c) row[c] = (row[c] + bf[c]) * fc;
  }
  return m;
}

// Forward message pass of one block over chunks of receivers:
// s_mid_i = s_i + c_i sum_k xs_k, v_mid_i = v_i + c_i sum_k (xvv_k v_j + xvs_k u_k)
// with x_k = q_j * W_k; each receiver's edges are added in edge order.
template <class T, bool hasV>
void messagePass(const BatchInputs<T>& b, int64_t N, int64_t F, int64_t K, int64_t LF, const T* Wf, const T* bf,
                 const T* rbf, const T* q, const T* fcut, const T* u, const T* ic, const T* sIn, const T* vIn, T* sMid,
                 T* vMid) {
  const int64_t F3 = 3 * F;
  const int32_t* snd = b.senders;
  const int32_t* rcv = b.receivers;
  const int64_t chunks = (N + kRecvChunk - 1) / kRecvChunk;
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t ch = 0; ch < chunks; ++ch) {
    EdgeScratch<T>& sc = edgeScratch<T>();
    sc.ensure(K, F3);
    const int64_t i0 = ch * kRecvChunk, i1 = std::min(N, i0 + kRecvChunk);
    std::memset(sMid + i0 * F, 0, sizeof(T) * (i1 - i0) * F);
    std::memset(vMid + i0 * F3, 0, sizeof(T) * (i1 - i0) * F3);
    int64_t pos = b.recvPtr[i0];
    const int64_t end = b.recvPtr[i1];
    while (pos < end) {
      const int64_t m = filterBlock<T>(nullptr, pos, end, rbf, fcut, K, Wf, LF, bf, F3, sc);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t k = sc.ids[r];
        const int64_t i = rcv[k], j = snd[k];
        const T* __restrict wk = sc.w.data() + r * F3;
        const T* __restrict qj = q + j * F3;
        const T* __restrict vj = vIn + j * F3;
        T* __restrict sm = sMid + i * F;
        T* __restrict vm = vMid + i * F3;
        const T u0 = u[k * 3], u1 = u[k * 3 + 1], u2 = u[k * 3 + 2];
#pragma omp simd
        for (int64_t f = 0; f < F; ++f) {
          sm[f] += qj[f] * wk[f];
          const T xvs = qj[2 * F + f] * wk[2 * F + f];
          if (hasV) {
            const T xvv = qj[F + f] * wk[F + f];
            vm[f] += xvs * u0 + xvv * vj[f];
            vm[F + f] += xvs * u1 + xvv * vj[F + f];
            vm[2 * F + f] += xvs * u2 + xvv * vj[2 * F + f];
          } else {
            vm[f] += xvs * u0;
            vm[F + f] += xvs * u1;
            vm[2 * F + f] += xvs * u2;
          }
        }
      }
    }
    for (int64_t i = i0; i < i1; ++i) {
      const T s = ic[i];
      T* sm = sMid + i * F;
      T* vm = vMid + i * F3;
      const T* si = sIn + i * F;
      const T* vi = vIn + i * F3;
#pragma omp simd
      for (int64_t f = 0; f < F; ++f) sm[f] = si[f] + s * sm[f];
#pragma omp simd
      for (int64_t f = 0; f < F3; ++f) vm[f] = vi[f] + s * vm[f];
    }
  }
}

// Backward of messagePass over chunks of kSenderChunk senders, the chunk's
// edges in sendPerm order: dq_j = sum_k dx_k * W_k; dv_j = dv_mid_j + sum_k
// xvv_k * c_i dv_mid_i; and the gradient of each edge's filter pre-activation
// g = dx * q_j * fc, added per block as rbf^T g (and colsum g) into the chunk's
// partial sums acc [(K + 1) x LF] (columns fo.. of this block). Every output
// row belongs to one chunk.
// The force pass's variant (force): no filter gradient; instead, with dW =
// dx * q_j the gradient of the edge's filter, adds dE/d rbf_k = fc (dW . Wf^T),
// dE/d fc_k = dW . (rbf_k Wf + bf) and dE/d u_k = c_i sum_f xvs_f dv_mid_i[:, f]
// into the edge's rows of dRbf [E x K], dFc [E], dU [E x 3] (one chunk per edge).
template <class T, bool hasV, bool mean, bool force = false>
void messageBackward(const BatchInputs<T>& b, int64_t N, int64_t F, int64_t K, int64_t LF, const T* Wf, const T* bf,
                     const T* rbf, const T* q, const T* fcut, const T* u, const T* ic, const T* vIn, const T* ds,
                     const T* dv, T* dq, T* dvIn, T* acc, int64_t fo, T* dRbf = nullptr, T* dFc = nullptr,
                     T* dU = nullptr) {
  const int64_t F3 = 3 * F;
  const int32_t* snd = b.senders;
  const int32_t* rcv = b.receivers;
  const int64_t chunks = (N + kSenderChunk - 1) / kSenderChunk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(numThreads())
  for (int64_t ch = 0; ch < chunks; ++ch) {
    EdgeScratch<T>& sc = edgeScratch<T>();
    sc.ensure(K, F3);
    T* __restrict A = force ? nullptr : acc + ch * (K + 1) * LF + fo;
    const int64_t j0 = ch * kSenderChunk, j1 = std::min(N, j0 + kSenderChunk);
    std::memset(dq + j0 * F3, 0, sizeof(T) * (j1 - j0) * F3);
    std::memcpy(dvIn + j0 * F3, dv + j0 * F3, sizeof(T) * (j1 - j0) * F3);  // residual: v_mid = v + ...
    int64_t pos = b.sendPtr[j0];
    const int64_t end = b.sendPtr[j1];
    while (pos < end) {
      const int64_t m = filterBlock<T>(b.sendPerm, pos, end, rbf, fcut, K, Wf, LF, bf, F3, sc);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t k = sc.ids[r];
        const int64_t i = rcv[k], j = snd[k];
        const T* __restrict wk = sc.w.data() + r * F3;
        T* __restrict gk = sc.g.data() + r * F3;
        const T* __restrict qj = q + j * F3;
        const T* __restrict vj = vIn + j * F3;
        T* __restrict dqj = dq + j * F3;
        T* __restrict dvj = dvIn + j * F3;
        const T si = mean ? ic[i] : (T)1;  // sum aggregation: the multiplications fold away
        const T* __restrict gs = ds + i * F;
        const T* __restrict gv = dv + i * F3;
        const T fc = force ? (T)1 : fcut[k];  // the force pass keeps dW itself
        const T u0 = u[k * 3], u1 = u[k * 3 + 1], u2 = u[k * 3 + 2];
#pragma omp simd
        for (int64_t f = 0; f < F; ++f) {
          const T g0 = si * gv[f], g1 = si * gv[F + f], g2 = si * gv[2 * F + f];
          const T dxs = si * gs[f];
          const T dxvs = g0 * u0 + g1 * u1 + g2 * u2;
          dqj[f] += dxs * wk[f];
          dqj[2 * F + f] += dxvs * wk[2 * F + f];
          gk[f] = dxs * qj[f] * fc;
          gk[2 * F + f] = dxvs * qj[2 * F + f] * fc;
          if (hasV) {
            const T dxvv = g0 * vj[f] + g1 * vj[F + f] + g2 * vj[2 * F + f];
            dqj[F + f] += dxvv * wk[F + f];
            gk[F + f] = dxvv * qj[F + f] * fc;
            const T xvv = qj[F + f] * wk[F + f];
            dvj[f] += xvv * g0;
            dvj[F + f] += xvv * g1;
            dvj[2 * F + f] += xvv * g2;
          } else {
            gk[F + f] = 0;
          }
        }
        if constexpr (force) {
          T a0 = 0, a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a0, a1, a2)
          for (int64_t f = 0; f < F; ++f) {
            const T xvs = qj[2 * F + f] * wk[2 * F + f];
            a0 += xvs * gv[f];
            a1 += xvs * gv[F + f];
            a2 += xvs * gv[2 * F + f];
          }
          dU[3 * k] += si * a0;
          dU[3 * k + 1] += si * a1;
          dU[3 * k + 2] += si * a2;
        }
      }
      if (m == 0) continue;
      if constexpr (force) {
        // With a_n = dW . Wf[n] (K dot products per edge over contiguous rows of Wf; a
        // [m x K] product with K small, which the blocked micro-kernel serves poorly):
        // dE/d rbf_k = fc a, dE/d fc_k = dW . (rbf_k Wf + bf) = rbf_k . a + dW . bf.
        for (int64_t r = 0; r < m; ++r) {
          const int64_t k = sc.ids[r];
          const T fck = fcut[k];
          const T* __restrict gk = sc.g.data() + r * F3;
          const T* __restrict rb = sc.rbf.data() + r * K;
          T* __restrict o = dRbf + k * K;
          T afc = 0;
#pragma omp simd reduction(+ : afc)
          for (int64_t c = 0; c < F3; ++c) afc += gk[c] * bf[c];
          for (int64_t n = 0; n < K; ++n) {
            const T* __restrict wn = Wf + n * LF;
            T a = 0;
#pragma omp simd reduction(+ : a)
            for (int64_t c = 0; c < F3; ++c) a += gk[c] * wn[c];
            o[n] += fck * a;
            afc += rb[n] * a;
          }
          dFc[k] += afc;
        }
        continue;
      }
      gemmTNSerial<T>(m, K, F3, sc.rbf.data(), K, sc.g.data(), F3, A, LF, true);
      T* __restrict brow = A + K * LF;
      for (int64_t r = 0; r < m; ++r) {
        const T* __restrict gk = sc.g.data() + r * F3;
#pragma omp simd
        for (int64_t c = 0; c < F3; ++c) brow[c] += gk[c];
      }
    }
  }
}

// ---- the double backward's edge passes (program_painn.h, painnForwardTangent /
// painnBackwardDual) ----

// SiLU' and SiLU'' (scalar; the tangent ops' elementwise chain rule).
template <class T>
inline void siluDerivs(T x, T& d1, T& d2) {
  const T sg = (T)1 / ((T)1 + std::exp(-x));
  d1 = sg * ((T)1 + x * ((T)1 - sg));
  d2 = sg * ((T)1 - sg) * ((T)2 + x * ((T)1 - (T)2 * sg));
}

// Per-thread scratch of the dual edge passes: a block's edge ids, gathered
// basis rows and their tangents, filters W and their tangents W', and the
// filter gradient (value and tangent) of the block's edges.
template <class T>
struct DualScratch {
  std::vector<int32_t> ids;
  std::vector<T> rbf, rbfT, w, wt, g, gt;
  void ensure(int64_t K, int64_t F3) {
    if ((int64_t)ids.size() < kEdgeBlock) ids.resize(kEdgeBlock);
    for (auto* v : {&rbf, &rbfT})
      if ((int64_t)v->size() < kEdgeBlock * K) v->resize(kEdgeBlock * K);
    for (auto* v : {&w, &wt, &g, &gt})
      if ((int64_t)v->size() < kEdgeBlock * F3) v->resize(kEdgeBlock * F3);
  }
};
template <class T>
DualScratch<T>& dualScratch() {
  static thread_local DualScratch<T> s;
  return s;
}

// filterBlock with tangents: the next block of edges inside the cutoff, their
// filters W = pre fc and W' = (rbf' Wf) fc + pre fc' (pre = rbf Wf + bf).
template <class T>
int64_t filterBlockDual(const int32_t* order, int64_t& pos, int64_t end, const program::PainnDualArgs<T>& a,
                        DualScratch<T>& sc) {
  const int64_t K = a.K, F3 = 3 * a.F;
  int64_t m = 0;
  for (; pos < end && m < kEdgeBlock; ++pos) {
    const int32_t e = order ? order[pos] : (int32_t)pos;
    if (a.fcut[e] == (T)0) continue;  // beyond the cutoff: contributes exactly zero (and so does its tangent)
    sc.ids[m] = e;
    std::memcpy(sc.rbf.data() + m * K, a.rbf + (int64_t)e * K, sizeof(T) * K);
    std::memcpy(sc.rbfT.data() + m * K, a.rbfT + (int64_t)e * K, sizeof(T) * K);
    ++m;
  }
  if (m == 0) return 0;
  gemmSerial<T>(m, F3, K, sc.rbf.data(), K, 1, a.Wf, a.LF, sc.w.data(), F3, false);
  gemmSerial<T>(m, F3, K, sc.rbfT.data(), K, 1, a.Wf, a.LF, sc.wt.data(), F3, false);
  const T* bf = a.bf;
  for (int64_t r = 0; r < m; ++r) {
    T* __restrict row = sc.w.data() + r * F3;
    T* __restrict rt = sc.wt.data() + r * F3;
    const T fc = a.fcut[sc.ids[r]], fct = a.fcT[sc.ids[r]];
#pragma omp simd
    for (int64_t c = 0; c < F3; ++c) {
      const T pre = row[c] + bf[c];
      row[c] = pre * fc;
      rt[c] = rt[c] * fc + pre * fct;
    }
  }
  return m;
}

// The message pass's tangent over chunks of receivers (messagePass's order):
// sMid' = sIn' + c sum_k (q'_j W_k + q_j W'_k)[s],
// vMid' = vIn' + c sum_k (xvv' v_j + xvv v'_j + xvs' u_k + xvs u'_k).
template <class T, bool hasV>
void messageTangentPass(const BatchInputs<T>& b, const program::PainnDualArgs<T>& a) {
  const int64_t N = a.N, F = a.F, F3 = 3 * F;
  const int32_t* snd = b.senders;
  const int32_t* rcv = b.receivers;
  const T* u = b.direction;
  const int64_t chunks = (N + kRecvChunk - 1) / kRecvChunk;
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t ch = 0; ch < chunks; ++ch) {
    DualScratch<T>& sc = dualScratch<T>();
    sc.ensure(a.K, F3);
    const int64_t i0 = ch * kRecvChunk, i1 = std::min(N, i0 + kRecvChunk);
    std::memset(a.sMidT + i0 * F, 0, sizeof(T) * (i1 - i0) * F);
    std::memset(a.vMidT + i0 * F3, 0, sizeof(T) * (i1 - i0) * F3);
    int64_t pos = b.recvPtr[i0];
    const int64_t end = b.recvPtr[i1];
    while (pos < end) {
      const int64_t m = filterBlockDual<T>(nullptr, pos, end, a, sc);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t k = sc.ids[r];
        const int64_t i = rcv[k], j = snd[k];
        const T* __restrict wk = sc.w.data() + r * F3;
        const T* __restrict wt = sc.wt.data() + r * F3;
        const T* __restrict qj = a.q + j * F3;
        const T* __restrict qt = a.qT + j * F3;
        const T* __restrict vj = a.vIn + j * F3;
        const T* __restrict vt = a.vInT + j * F3;
        T* __restrict sm = a.sMidT + i * F;
        T* __restrict vm = a.vMidT + i * F3;
        const T u0 = u[k * 3], u1 = u[k * 3 + 1], u2 = u[k * 3 + 2];
        const T t0 = a.uT[k * 3], t1 = a.uT[k * 3 + 1], t2 = a.uT[k * 3 + 2];
#pragma omp simd
        for (int64_t f = 0; f < F; ++f) {
          sm[f] += qt[f] * wk[f] + qj[f] * wt[f];
          const T xvs = qj[2 * F + f] * wk[2 * F + f];
          const T xvsT = qt[2 * F + f] * wk[2 * F + f] + qj[2 * F + f] * wt[2 * F + f];
          if (hasV) {
            const T xvv = qj[F + f] * wk[F + f];
            const T xvvT = qt[F + f] * wk[F + f] + qj[F + f] * wt[F + f];
            vm[f] += xvsT * u0 + xvs * t0 + xvvT * vj[f] + xvv * vt[f];
            vm[F + f] += xvsT * u1 + xvs * t1 + xvvT * vj[F + f] + xvv * vt[F + f];
            vm[2 * F + f] += xvsT * u2 + xvs * t2 + xvvT * vj[2 * F + f] + xvv * vt[2 * F + f];
          } else {
            vm[f] += xvsT * u0 + xvs * t0;
            vm[F + f] += xvsT * u1 + xvs * t1;
            vm[2 * F + f] += xvsT * u2 + xvs * t2;
          }
        }
      }
    }
    for (int64_t i = i0; i < i1; ++i) {
      const T s = a.ic[i];
      T* sm = a.sMidT + i * F;
      T* vm = a.vMidT + i * F3;
      const T* si = a.sInT + i * F;
      const T* vi = a.vInT + i * F3;
#pragma omp simd
      for (int64_t f = 0; f < F; ++f) sm[f] = si[f] + s * sm[f];
#pragma omp simd
      for (int64_t f = 0; f < F3; ++f) vm[f] = vi[f] + s * vm[f];
    }
  }
}

// messageBackward with tangents over chunks of kSenderChunk senders (sendPerm
// order): the value's dq and dvIn, their tangents, and the tangent of each
// edge's filter gradient, rbf'^T g + rbf^T g' with g = dx q_j fc and g' =
// (dx' q_j + dx q'_j) fc + dx q_j fc', added into the chunk's partial sums
// accT (and the value rbf^T g into acc when set).
template <class T, bool hasV>
void messageBackwardDual(const BatchInputs<T>& b, const program::PainnDualArgs<T>& a) {
  const int64_t N = a.N, F = a.F, F3 = 3 * F, K = a.K, LF = a.LF;
  const int32_t* snd = b.senders;
  const int32_t* rcv = b.receivers;
  const T* u = b.direction;
  const int64_t chunks = (N + kSenderChunk - 1) / kSenderChunk;
  const bool vacc = a.acc != nullptr;
#pragma omp parallel for schedule(dynamic, 1) num_threads(numThreads())
  for (int64_t ch = 0; ch < chunks; ++ch) {
    DualScratch<T>& sc = dualScratch<T>();
    sc.ensure(K, F3);
    T* __restrict A = vacc ? a.acc + ch * (K + 1) * LF + a.fo : nullptr;
    T* __restrict AT = a.accT + ch * (K + 1) * LF + a.fo;
    const int64_t j0 = ch * kSenderChunk, j1 = std::min(N, j0 + kSenderChunk);
    std::memset(a.dq + j0 * F3, 0, sizeof(T) * (j1 - j0) * F3);
    std::memset(a.dqT + j0 * F3, 0, sizeof(T) * (j1 - j0) * F3);
    std::memcpy(a.dvIn + j0 * F3, a.dv + j0 * F3, sizeof(T) * (j1 - j0) * F3);  // residual
    std::memcpy(a.dvInT + j0 * F3, a.dvT + j0 * F3, sizeof(T) * (j1 - j0) * F3);
    int64_t pos = b.sendPtr[j0];
    const int64_t end = b.sendPtr[j1];
    while (pos < end) {
      const int64_t m = filterBlockDual<T>(b.sendPerm, pos, end, a, sc);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t k = sc.ids[r];
        const int64_t i = rcv[k], j = snd[k];
        const T* __restrict wk = sc.w.data() + r * F3;
        const T* __restrict wt = sc.wt.data() + r * F3;
        T* __restrict gk = sc.g.data() + r * F3;
        T* __restrict gt = sc.gt.data() + r * F3;
        const T* __restrict qj = a.q + j * F3;
        const T* __restrict qt = a.qT + j * F3;
        const T* __restrict vj = a.vIn + j * F3;
        const T* __restrict vt = a.vInT + j * F3;
        T* __restrict dqj = a.dq + j * F3;
        T* __restrict dqt = a.dqT + j * F3;
        T* __restrict dvj = a.dvIn + j * F3;
        T* __restrict dvt = a.dvInT + j * F3;
        const T si = a.ic[i];
        const T* __restrict gs = a.ds + i * F;
        const T* __restrict gsT = a.dsT + i * F;
        const T* __restrict gv = a.dv + i * F3;
        const T* __restrict gvT = a.dvT + i * F3;
        const T fc = a.fcut[k], fct = a.fcT[k];
        const T u0 = u[k * 3], u1 = u[k * 3 + 1], u2 = u[k * 3 + 2];
        const T t0 = a.uT[k * 3], t1 = a.uT[k * 3 + 1], t2 = a.uT[k * 3 + 2];
#pragma omp simd
        for (int64_t f = 0; f < F; ++f) {
          const T g0 = si * gv[f], g1 = si * gv[F + f], g2 = si * gv[2 * F + f];
          const T h0 = si * gvT[f], h1 = si * gvT[F + f], h2 = si * gvT[2 * F + f];
          const T dxs = si * gs[f], dxsT = si * gsT[f];
          const T dxvs = g0 * u0 + g1 * u1 + g2 * u2;
          const T dxvsT = h0 * u0 + h1 * u1 + h2 * u2 + (g0 * t0 + g1 * t1 + g2 * t2);
          dqj[f] += dxs * wk[f];
          dqt[f] += dxsT * wk[f] + dxs * wt[f];
          dqj[2 * F + f] += dxvs * wk[2 * F + f];
          dqt[2 * F + f] += dxvsT * wk[2 * F + f] + dxvs * wt[2 * F + f];
          const T es = dxs * qj[f], esT = dxsT * qj[f] + dxs * qt[f];
          const T ev = dxvs * qj[2 * F + f], evT = dxvsT * qj[2 * F + f] + dxvs * qt[2 * F + f];
          gk[f] = es * fc;
          gt[f] = esT * fc + es * fct;
          gk[2 * F + f] = ev * fc;
          gt[2 * F + f] = evT * fc + ev * fct;
          if (hasV) {
            const T dxvv = g0 * vj[f] + g1 * vj[F + f] + g2 * vj[2 * F + f];
            const T dxvvT = h0 * vj[f] + h1 * vj[F + f] + h2 * vj[2 * F + f] +
                            (g0 * vt[f] + g1 * vt[F + f] + g2 * vt[2 * F + f]);
            dqj[F + f] += dxvv * wk[F + f];
            dqt[F + f] += dxvvT * wk[F + f] + dxvv * wt[F + f];
            const T ew = dxvv * qj[F + f], ewT = dxvvT * qj[F + f] + dxvv * qt[F + f];
            gk[F + f] = ew * fc;
            gt[F + f] = ewT * fc + ew * fct;
            const T xvv = qj[F + f] * wk[F + f];
            const T xvvT = qt[F + f] * wk[F + f] + qj[F + f] * wt[F + f];
            dvj[f] += xvv * g0;
            dvj[F + f] += xvv * g1;
            dvj[2 * F + f] += xvv * g2;
            dvt[f] += xvvT * g0 + xvv * h0;
            dvt[F + f] += xvvT * g1 + xvv * h1;
            dvt[2 * F + f] += xvvT * g2 + xvv * h2;
          } else {
            gk[F + f] = 0;
            gt[F + f] = 0;
          }
        }
      }
      if (m == 0) continue;
      // Tangent: rbf^T g' + rbf'^T g (two products, fixed order), bias colsum(g').
      gemmTNSerial<T>(m, K, F3, sc.rbf.data(), K, sc.gt.data(), F3, AT, LF, true);
      gemmTNSerial<T>(m, K, F3, sc.rbfT.data(), K, sc.g.data(), F3, AT, LF, true);
      T* __restrict btrow = AT + K * LF;
      for (int64_t r = 0; r < m; ++r) {
        const T* __restrict g = sc.gt.data() + r * F3;
#pragma omp simd
        for (int64_t c = 0; c < F3; ++c) btrow[c] += g[c];
      }
      if (!vacc) continue;
      gemmTNSerial<T>(m, K, F3, sc.rbf.data(), K, sc.g.data(), F3, A, LF, true);
      T* __restrict brow = A + K * LF;
      for (int64_t r = 0; r < m; ++r) {
        const T* __restrict g = sc.g.data() + r * F3;
#pragma omp simd
        for (int64_t c = 0; c < F3; ++c) brow[c] += g[c];
      }
    }
  }
}

}  // namespace

ParamLayout painnLayout(const ModelConfig& c) {
  ParamLayout L;
  auto add = [&](const std::string& n, int64_t r, int64_t k) {
    L.entries.push_back({n, L.total, r, k});
    L.total += r * k;
  };
  const int64_t F = c.latent, K = c.basis, R = c.readoutHidden, Tf = c.sharedFilters ? 1 : c.passes;
  add("embed/w", c.numClasses, F);
  add("embed/b", 1, F);
  add("filter/w", K, 3 * F * Tf);
  add("filter/b", 1, 3 * F * Tf);
  for (int t = 0; t < c.passes; ++t) {
    const std::string p = "pass" + std::to_string(t) + "/";
    add(p + "message/w1", F, F);
    add(p + "message/b1", 1, F);
    add(p + "message/w2", F, 3 * F);
    add(p + "message/b2", 1, 3 * F);
    add(p + "update/mix", F, 2 * F);
    add(p + "update/w1", 2 * F, F);
    add(p + "update/b1", 1, F);
    add(p + "update/w2", F, 3 * F);
    add(p + "update/b2", 1, 3 * F);
  }
  add("readout/w1", F, R);
  add("readout/b1", 1, R);
  add("readout/w2", R, 1);
  add("readout/b2", 1, 1);
  return L;
}


// ---- the epilogues of PaiNN's products ----

template <class T>
RowEpilogue<T> painnEpilogue(const program::Epi<T>& e, T* C, int64_t N) {
  switch (e.mode) {
    case program::kBiasSilu: return biasSiluEpi<T>(C, e.val, N, e.bias);
    case program::kSiluGrad: return siluGradEpi<T>(C, e.aux, N);
    case program::kPainnUpdate: {
      // C = a = [avv | asv | ass] (+ bias); v_out = v_mid + avv U,
      // s_out = s_mid + asv <U, V> + ass (N = 3F, mix rows [V | U] per xyz).
      const int64_t F = N / 3;
      const T* bias = e.bias;
      const T* mix = e.aux;
      const T* sMid = e.sIn;
      const T* vMid = e.vIn;
      T* sOut = e.sOut;
      T* vOut = e.vOut;
      return [=](int64_t m0, int64_t m1) {
        addBias(C, m0, m1, N, bias);
        for (int64_t n = m0; n < m1; ++n) {
          const T* an = C + n * N;
          const T* m = mix + n * 6 * F;
          const T* sm = sMid + n * F;
          const T* vm = vMid + n * N;
          T* so = sOut + n * F;
          T* vo = vOut + n * N;
#pragma omp simd
          for (int64_t f = 0; f < F; ++f) {
            const T avv = an[f], asv = an[F + f], ass = an[2 * F + f];
            const T V0 = m[f], V1 = m[2 * F + f], V2 = m[4 * F + f];
            const T U0 = m[F + f], U1 = m[3 * F + f], U2 = m[5 * F + f];
            vo[f] = vm[f] + avv * U0;
            vo[F + f] = vm[F + f] + avv * U1;
            vo[2 * F + f] = vm[2 * F + f] + avv * U2;
            so[f] = sm[f] + asv * (U0 * V0 + U1 * V1 + U2 * V2) + ass;
          }
        }
      };
    }
    case program::kPainnNormBwd: {
      // C = dctx [N = 2F]: ds += dctx_s (the scalar half of the context) and
      // dV += d|Vv| * V / |Vv| (the norm half).
      const int64_t F = N / 2;
      const T* mix = e.aux;
      const T* nrm = e.aux2;
      T* ds = e.sOut;
      T* dmix = e.vOut;
      return [=](int64_t m0, int64_t m1) {
        for (int64_t n = m0; n < m1; ++n) {
          const T* cx = C + n * 2 * F;
          const T* m = mix + n * 6 * F;
          const T* nr = nrm + n * F;
          T* g = ds + n * F;
          T* dm = dmix + n * 6 * F;
#pragma omp simd
          for (int64_t f = 0; f < F; ++f) {
            g[f] += cx[f];
            const T sc = cx[F + f] / nr[f];
            dm[f] += sc * m[f];
            dm[2 * F + f] += sc * m[2 * F + f];
            dm[4 * F + f] += sc * m[4 * F + f];
          }
        }
      };
    }
    default: return nullptr;
  }
}

// ---- the CPU executor's PaiNN ops (program_painn.h) ----

template <class T>
void CpuExec<T>::painnRbf(int site, int64_t E, int64_t K, T cutoff, T* rbf, T* fcut) {
  KScope<T> ks(p, site, -1, E, K, 0, (double)E * (3.0 * K + 8), sizeof(T) * ((double)E * K + 2.0 * E));
  const double rc = (double)cutoff;
  int64_t inCutoff = 0;  // the edges the message passes compute (fc != 0)
#pragma omp parallel for schedule(static) reduction(+ : inCutoff) num_threads(numThreads())
  for (int64_t k = 0; k < E; ++k) {
    const double dk = (double)b.distance[k];
    T* o = rbf + k * K;
    if (!(dk > 0)) {
      std::memset(o, 0, sizeof(T) * K);
      fcut[k] = 0;
      continue;
    }
    const double x = kPi * dk / rc;
    fcut[k] = dk < rc ? (T)(0.5 * (std::cos(x) + 1.0)) : (T)0;
    inCutoff += fcut[k] != (T)0;
    // sin(n x) by the Chebyshev recurrence sin((n+1)x) = 2 cos(x) sin(nx) - sin((n-1)x).
    const double c2 = 2.0 * std::cos(x), inv = 1.0 / dk;
    double s0 = 0, s1 = std::sin(x);
    for (int64_t n = 0; n < K; ++n) {
      o[n] = (T)(s1 * inv);
      const double s2 = c2 * s1 - s0;
      s0 = s1;
      s1 = s2;
    }
  }
  p.pnEdgesInCutoff = inCutoff;
}

template <class T>
void CpuExec<T>::painnMessage(int site, int pass, int64_t N, int64_t F, int64_t K, int64_t LF, const T* Wf,
                              const T* bf, const T* rbf, const T* q, const T* fcut, const T* ic, const T* sIn,
                              const T* vIn, T* sMid, T* vMid, bool hasV) {
  // Flops: the filters' matrix product (what the native counter adds); bytes:
  // the gathered rows, rbf, direction, the weights once.
  const int64_t E = b.shape.edges, F3 = 3 * F;
  const double Ein = (double)p.pnEdgesInCutoff, pf = gf(p.pnEdgesInCutoff, F3, K);
  addFlopsCount(pf);
  KScope<T> ks(p, site, pass, (int64_t)Ein, F3, K, pf,
               sizeof(T) * (Ein * (F3 + K + 4 + (hasV ? F3 : 0)) + (double)(K + 1) * F3 + 4.0 * N * (F + F3)) +
                   4.0 * (2.0 * E + N + 1));
  const T* u = b.direction;
  if (hasV) messagePass<T, true>(b, N, F, K, LF, Wf, bf, rbf, q, fcut, u, ic, sIn, vIn, sMid, vMid);
  else messagePass<T, false>(b, N, F, K, LF, Wf, bf, rbf, q, fcut, u, ic, sIn, vIn, sMid, vMid);
}

template <class T>
void CpuExec<T>::painnNorm(int site, int pass, int64_t N, int64_t F, const T* mix, const T* sMid, T* nrm, T* ctx) {
  KScope<T> ks(p, site, pass, N, F, 0, 6.0 * N * F, sizeof(T) * (3.0 * N * F + 2.0 * N * F + 3.0 * N * F));
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t n = 0; n < N; ++n) {
    const T* m = mix + n * 6 * F;  // rows (n, c): [V | U]
    T* cx = ctx + n * 2 * F;
    T* nr = nrm + n * F;
    const T* sm = sMid + n * F;
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) {
      const T v0 = m[f], v1 = m[2 * F + f], v2 = m[4 * F + f];
      const T r = std::sqrt(v0 * v0 + v1 * v1 + v2 * v2 + (T)kNormEps);
      nr[f] = r;
      cx[f] = sm[f];
      cx[F + f] = r;
    }
  }
}

template <class T>
void CpuExec<T>::painnReadoutDr1(int site, int64_t N, int64_t R, const T* dr2, const T* w2, const T* r1pre, T* dr1) {
  KScope<T> ks(p, site, -1, N, R, 0, 8.0 * N * R, sizeof(T) * (N + R + 2.0 * N * R));
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < R; ++j) dr1[n * R + j] = dr2[n] * w2[j];
  mulSiluGrad(dr1, r1pre, N * R);
}

template <class T>
void CpuExec<T>::painnUpdateBwd(int site, int pass, int64_t N, int64_t F, const T* a, const T* mix, const T* ds,
                                const T* dv, T* da, T* dmix) {
  const int64_t F3 = 3 * F;
  KScope<T> ks(p, site, pass, N, F, 0, 30.0 * N * F,
               sizeof(T) * ((double)N * (F + F3 + F3 + 6 * F) + (double)N * (F3 + 6 * F)));
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t n = 0; n < N; ++n) {
    const T* an = a + n * F3;
    const T* m = mix + n * 6 * F;
    const T* g = ds + n * F;
    const T* gv = dv + n * F3;
    T* dan = da + n * F3;
    T* dm = dmix + n * 6 * F;
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) {
      const T avv = an[f], asv = an[F + f];
      const T V0 = m[f], V1 = m[2 * F + f], V2 = m[4 * F + f];
      const T U0 = m[F + f], U1 = m[3 * F + f], U2 = m[5 * F + f];
      const T g0 = gv[f], g1 = gv[F + f], g2 = gv[2 * F + f], gs = g[f];
      dan[f] = g0 * U0 + g1 * U1 + g2 * U2;
      dan[F + f] = gs * (U0 * V0 + U1 * V1 + U2 * V2);
      dan[2 * F + f] = gs;
      const T ga = gs * asv;
      dm[f] = ga * U0;
      dm[2 * F + f] = ga * U1;
      dm[4 * F + f] = ga * U2;
      dm[F + f] = g0 * avv + ga * V0;
      dm[3 * F + f] = g1 * avv + ga * V1;
      dm[5 * F + f] = g2 * avv + ga * V2;
    }
  }
}

template <class T>
void CpuExec<T>::painnMessageBwd(int site, int pass, int64_t N, int64_t F, int64_t K, int64_t LF, const T* Wf,
                                 const T* bf, const T* rbf, const T* q, const T* fcut, const T* ic, const T* vIn,
                                 const T* ds, const T* dv, T* dq, T* dvIn, T* acc, int64_t fo, bool hasV, bool mean,
                                 T* dRbf, T* dFc, T* dU) {
  // Flops: the filters' recomputation and their gradient product (the native
  // counter's two matrix products).
  const int64_t E = b.shape.edges, F3 = 3 * F, chunks = (N + kSenderChunk - 1) / kSenderChunk;
  const double Ein = (double)p.pnEdgesInCutoff, pf = 2 * gf(p.pnEdgesInCutoff, F3, K);
  addFlopsCount(pf);
  KScope<T> ks(p, site, pass, (int64_t)Ein, F3, K, pf,
               sizeof(T) * (Ein * (K + 4 + F + F3 + (hasV ? F3 : 0)) + (double)chunks * (K + 1) * F3 * 2 +
                            (double)N * (F3 + F3 + F3)) +
                   4.0 * (3.0 * E + N + 1));
  if (dRbf) {  // the force pass
    auto bwd = hasV ? (mean ? messageBackward<T, true, true, true> : messageBackward<T, true, false, true>)
                    : (mean ? messageBackward<T, false, true, true> : messageBackward<T, false, false, true>);
    bwd(b, N, F, K, LF, Wf, bf, rbf, q, fcut, b.direction, ic, vIn, ds, dv, dq, dvIn, acc, fo, dRbf, dFc, dU);
    return;
  }
  auto bwd = hasV ? (mean ? messageBackward<T, true, true> : messageBackward<T, true, false>)
                  : (mean ? messageBackward<T, false, true> : messageBackward<T, false, false>);
  bwd(b, N, F, K, LF, Wf, bf, rbf, q, fcut, b.direction, ic, vIn, ds, dv, dq, dvIn, acc, fo, nullptr, nullptr, nullptr);
}

template <class T>
void CpuExec<T>::painnEdgeGrad(int site, int64_t E, int64_t K, T cutoff, const T* dRbf, const T* dFc, T* g) {
  KScope<T> ks(p, site, -1, E, K, 0, (double)E * (10.0 * K + 30), sizeof(T) * ((double)E * K + 8.0 * E));
  const double rc = (double)cutoff, w = kPi / rc;
  const T* fcut = buf(program::kBufPFcut);
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t k = 0; k < E; ++k) {
    T* gk = g + 3 * k;  // holds dE/du_k
    const double d = (double)b.distance[k];
    if (!(d > 0) || fcut[k] == (T)0) {  // beyond the cutoff or padding: no contribution
      gk[0] = gk[1] = gk[2] = 0;
      continue;
    }
    // fc = (cos(w d) + 1) / 2, rbf_n = sin(n w d) / d (n = 1..K):
    // fc' = -w sin(w d) / 2, rbf_n' = (n w cos(n w d) - rbf_n) / d.
    const double sx = std::sin(w * d), cx = std::cos(w * d), inv = 1.0 / d;
    double dd = (double)dFc[k] * (-0.5 * w * sx);
    double sn = sx, cn = cx;
    const T* dr = dRbf + k * K;
    for (int64_t n = 0; n < K; ++n) {
      dd += (double)dr[n] * (((double)(n + 1) * w * cn - sn * inv) * inv);
      const double s2 = sn * cx + cn * sx, c2 = cn * cx - sn * sx;
      sn = s2;
      cn = c2;
    }
    const T* uk = b.direction + 3 * k;
    const T ud = uk[0] * gk[0] + uk[1] * gk[1] + uk[2] * gk[2];
    const T ddT = (T)dd, invT = (T)inv;
    for (int a = 0; a < 3; ++a) gk[a] = ddT * uk[a] + (gk[a] - ud * uk[a]) * invT;
  }
}

template <class T>
void CpuExec<T>::painnFilterReduce(int site, int64_t chunks, int64_t K, int64_t LF, const T* acc, T* gW, T* gb) {
  // Chunk partial sums in index order: rows 0..K-1 the weight, row K the bias.
  KScope<T> ks(p, site, -1, chunks, (K + 1) * LF, 0, (double)chunks * (K + 1) * LF,
               sizeof(T) * ((double)chunks + 1) * (K + 1) * LF);
  const int64_t cols = (K + 1) * LF;
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t c0 = 0; c0 < cols; c0 += 256) {
    const int64_t c1 = std::min(cols, c0 + 256);
    for (int64_t c = c0; c < c1; ++c) {
      T sum = 0;
      for (int64_t ch = 0; ch < chunks; ++ch) sum += acc[ch * cols + c];
      if (c < K * LF) gW[c] = sum;
      else gb[c - K * LF] = sum;
    }
  }
}


// ---- the CPU executor's ops of PaiNN's double backward (program_painn.h) ----

template <class T>
void CpuExec<T>::painnEdgeVecTangent(int site, int64_t E, const T* w, T* rT) {
  KScope<T> ks(p, site, -1, E, 3, 0, 3.0 * E, sizeof(T) * (9.0 * E) + 8.0 * E);
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t k = 0; k < E; ++k) {
    const T* ws = w + 3 * (int64_t)b.senders[k];
    const T* wr = w + 3 * (int64_t)b.receivers[k];
    for (int c = 0; c < 3; ++c) rT[3 * k + c] = ws[c] - wr[c];
  }
}

template <class T>
void CpuExec<T>::painnStrainTangent(int site, int64_t G, const T* q, T* rT) {
  // r_k -> (I + eps Q_g) r_k: rT[k] -= Q_g r_k, Q_g symmetric with diagonal
  // q_xx, q_yy, q_zz and off-diagonal entries q_v / 2 (program_tangent.h's
  // strainTangent, as a vector). One thread per graph, receiver order.
  const int64_t E = b.shape.edges;
  KScope<T> ks(p, site, -1, E, 6, 0, 18.0 * E, sizeof(T) * (10.0 * E + 6.0 * G) + 8.0 * G);
  const T* u = b.direction;
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t g = 0; g < G; ++g) {
    const T* qg = q + 6 * g;
    if (qg[0] == (T)0 && qg[1] == (T)0 && qg[2] == (T)0 && qg[3] == (T)0 && qg[4] == (T)0 && qg[5] == (T)0) continue;
    const T h = (T)0.5;
    const T Q[3][3] = {{qg[0], h * qg[5], h * qg[4]}, {h * qg[5], qg[1], h * qg[3]}, {h * qg[4], h * qg[3], qg[2]}};
    const int64_t k0 = b.recvPtr[p.graphStart[g]], k1 = b.recvPtr[p.graphStart[g + 1]];
    for (int64_t k = k0; k < k1; ++k) {
      const T d = b.distance[k];
      const T* uk = u + 3 * k;
      for (int r = 0; r < 3; ++r) rT[3 * k + r] -= d * (Q[r][0] * uk[0] + Q[r][1] * uk[1] + Q[r][2] * uk[2]);
    }
  }
}

template <class T>
void CpuExec<T>::painnEdgeTangent(int site, int64_t E, int64_t K, T cutoff, T* uT, T* ddT, T* rbfT, T* fcT) {
  KScope<T> ks(p, site, -1, E, K, 0, (double)E * (8.0 * K + 30), sizeof(T) * ((double)E * K + 9.0 * E));
  const double rc = (double)cutoff, w = kPi / rc;
  const T* fcut = buf(program::kBufPFcut);
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t k = 0; k < E; ++k) {
    T* ut = uT + 3 * k;  // holds r'_k
    T* o = rbfT + k * K;
    const double d = (double)b.distance[k];
    if (!(d > 0) || fcut[k] == (T)0) {  // beyond the cutoff or padding: no contribution
      ut[0] = ut[1] = ut[2] = 0;
      ddT[k] = 0;
      fcT[k] = 0;
      std::memset(o, 0, sizeof(T) * K);
      continue;
    }
    const T* uk = b.direction + 3 * k;
    const T dd = uk[0] * ut[0] + uk[1] * ut[1] + uk[2] * ut[2];
    const T invT = (T)(1.0 / d);
    for (int c = 0; c < 3; ++c) ut[c] = (ut[c] - uk[c] * dd) * invT;
    ddT[k] = dd;
    // fc' = -w sin(w d) / 2, rbf_n' = (n w cos(n w d) - rbf_n) / d (painnEdgeGrad's).
    const double sx = std::sin(w * d), cx = std::cos(w * d), inv = 1.0 / d, ddd = (double)dd;
    fcT[k] = (T)(-0.5 * w * sx * ddd);
    double sn = sx, cn = cx;
    for (int64_t n = 0; n < K; ++n) {
      o[n] = (T)((((double)(n + 1) * w * cn - sn * inv) * inv) * ddd);
      const double s2 = sn * cx + cn * sx, c2 = cn * cx - sn * sx;
      sn = s2;
      cn = c2;
    }
  }
}

template <class T>
void CpuExec<T>::painnMessageTangent(int site, int pass, const program::PainnDualArgs<T>& a) {
  // Flops: the filters' two products (W and W', the native counter's).
  const int64_t F3 = 3 * a.F;
  const double Ein = (double)p.pnEdgesInCutoff, pf = 2 * gf(p.pnEdgesInCutoff, F3, a.K);
  addFlopsCount(pf);
  KScope<T> ks(p, site, pass, (int64_t)Ein, F3, a.K, pf,
               sizeof(T) * (Ein * (2 * a.K + 2 * F3 + 8 + (a.hasV ? 2 * F3 : 0)) + (double)(a.K + 1) * F3 +
                            4.0 * a.N * (a.F + F3)) +
                   4.0 * (2.0 * b.shape.edges + a.N + 1));
  if (a.hasV) messageTangentPass<T, true>(b, a);
  else messageTangentPass<T, false>(b, a);
}

template <class T>
void CpuExec<T>::painnNormTangent(int site, int pass, int64_t N, int64_t F, const T* mix, const T* mixT, const T* nrm,
                                  const T* sMidT, T* nrmT, T* ctxT) {
  KScope<T> ks(p, site, pass, N, F, 0, 7.0 * N * F, sizeof(T) * (6.0 * N * F + 2.0 * N * F + 3.0 * N * F));
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t n = 0; n < N; ++n) {
    const T* m = mix + n * 6 * F;
    const T* mt = mixT + n * 6 * F;
    const T* nr = nrm + n * F;
    const T* sm = sMidT + n * F;
    T* nt = nrmT + n * F;
    T* cx = ctxT + n * 2 * F;
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) {
      const T r = (m[f] * mt[f] + m[2 * F + f] * mt[2 * F + f] + m[4 * F + f] * mt[4 * F + f]) / nr[f];
      nt[f] = r;
      cx[f] = sm[f];
      cx[F + f] = r;
    }
  }
}

template <class T>
void CpuExec<T>::painnSiluTangent(int site, int pass, int64_t n, const T* pre, const T* preT, T* actT) {
  KScope<T> ks(p, site, pass, n, 1, 0, 8.0 * n, sizeof(T) * 3.0 * n);
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t i = 0; i < n; ++i) {
    T d1, d2;
    siluDerivs<T>(pre[i], d1, d2);
    actT[i] = d1 * preT[i];
  }
}

template <class T>
void CpuExec<T>::painnUpdateTangent(int site, int pass, int64_t N, int64_t F, const T* a, const T* aT, const T* mix,
                                    const T* mixT, const T* sMidT, const T* vMidT, T* sOutT, T* vOutT) {
  const int64_t F3 = 3 * F;
  KScope<T> ks(p, site, pass, N, F, 0, 30.0 * N * F, sizeof(T) * ((double)N * (6 * F + 12 * F + 8 * F)));
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t n = 0; n < N; ++n) {
    const T* an = a + n * F3;
    const T* at = aT + n * F3;
    const T* m = mix + n * 6 * F;
    const T* mt = mixT + n * 6 * F;
    const T* sm = sMidT + n * F;
    const T* vm = vMidT + n * F3;
    T* so = sOutT + n * F;
    T* vo = vOutT + n * F3;
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) {
      const T avv = an[f], asv = an[F + f];
      const T avvT = at[f], asvT = at[F + f], assT = at[2 * F + f];
      const T V0 = m[f], V1 = m[2 * F + f], V2 = m[4 * F + f];
      const T U0 = m[F + f], U1 = m[3 * F + f], U2 = m[5 * F + f];
      const T V0t = mt[f], V1t = mt[2 * F + f], V2t = mt[4 * F + f];
      const T U0t = mt[F + f], U1t = mt[3 * F + f], U2t = mt[5 * F + f];
      vo[f] = vm[f] + avvT * U0 + avv * U0t;
      vo[F + f] = vm[F + f] + avvT * U1 + avv * U1t;
      vo[2 * F + f] = vm[2 * F + f] + avvT * U2 + avv * U2t;
      const T uv = U0 * V0 + U1 * V1 + U2 * V2;
      const T uvT = (U0t * V0 + U1t * V1 + U2t * V2) + (U0 * V0t + U1 * V1t + U2 * V2t);
      so[f] = sm[f] + asvT * uv + asv * uvT + assT;
    }
  }
}

template <class T>
void CpuExec<T>::painnReadoutDr1Tangent(int site, int64_t N, int64_t R, const T* dr2, const T* dr2T, const T* w2,
                                        const T* r1pre, const T* r1preT, T* dr1T) {
  KScope<T> ks(p, site, -1, N, R, 0, 16.0 * N * R, sizeof(T) * (2.0 * N + R + 3.0 * N * R));
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < R; ++j) {
      T d1, d2;
      siluDerivs<T>(r1pre[n * R + j], d1, d2);
      dr1T[n * R + j] = dr2T[n] * w2[j] * d1 + dr2[n] * w2[j] * d2 * r1preT[n * R + j];
    }
}

template <class T>
void CpuExec<T>::painnUpdateBwdTangent(int site, int pass, int64_t N, int64_t F, const T* a, const T* aT,
                                       const T* mix, const T* mixT, const T* ds, const T* dsT, const T* dv,
                                       const T* dvT, T* daT, T* dmixT) {
  const int64_t F3 = 3 * F;
  KScope<T> ks(p, site, pass, N, F, 0, 60.0 * N * F, sizeof(T) * ((double)N * (2 * F3 + 12 * F + 2 * F + 2 * F3 + F3 + 6 * F)));
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t n = 0; n < N; ++n) {
    const T* an = a + n * F3;
    const T* at = aT + n * F3;
    const T* m = mix + n * 6 * F;
    const T* mt = mixT + n * 6 * F;
    const T* g = ds + n * F;
    const T* gt = dsT + n * F;
    const T* gv = dv + n * F3;
    const T* gvt = dvT + n * F3;
    T* dan = daT + n * F3;
    T* dm = dmixT + n * 6 * F;
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) {
      const T avv = an[f], asv = an[F + f];
      const T avvT = at[f], asvT = at[F + f];
      const T V0 = m[f], V1 = m[2 * F + f], V2 = m[4 * F + f];
      const T U0 = m[F + f], U1 = m[3 * F + f], U2 = m[5 * F + f];
      const T V0t = mt[f], V1t = mt[2 * F + f], V2t = mt[4 * F + f];
      const T U0t = mt[F + f], U1t = mt[3 * F + f], U2t = mt[5 * F + f];
      const T g0 = gv[f], g1 = gv[F + f], g2 = gv[2 * F + f], gs = g[f];
      const T h0 = gvt[f], h1 = gvt[F + f], h2 = gvt[2 * F + f], hs = gt[f];
      dan[f] = (h0 * U0 + h1 * U1 + h2 * U2) + (g0 * U0t + g1 * U1t + g2 * U2t);
      const T uv = U0 * V0 + U1 * V1 + U2 * V2;
      const T uvT = (U0t * V0 + U1t * V1 + U2t * V2) + (U0 * V0t + U1 * V1t + U2 * V2t);
      dan[F + f] = hs * uv + gs * uvT;
      dan[2 * F + f] = hs;
      const T ga = gs * asv, gaT = hs * asv + gs * asvT;
      dm[f] = gaT * U0 + ga * U0t;
      dm[2 * F + f] = gaT * U1 + ga * U1t;
      dm[4 * F + f] = gaT * U2 + ga * U2t;
      dm[F + f] = h0 * avv + g0 * avvT + gaT * V0 + ga * V0t;
      dm[3 * F + f] = h1 * avv + g1 * avvT + gaT * V1 + ga * V1t;
      dm[5 * F + f] = h2 * avv + g2 * avvT + gaT * V2 + ga * V2t;
    }
  }
}

template <class T>
void CpuExec<T>::painnNormBwdTangent(int site, int pass, int64_t N, int64_t F, const T* dctx, const T* dctxT,
                                     const T* mix, const T* mixT, const T* nrm, const T* nrmT, T* dsT, T* dmixT) {
  // Value: ds += dctx_s, dV_c += (dctx_n / |V|) V_c. Tangent: dsT += dctxT_s,
  // dV'_c += (dctxT_n / |V| - dctx_n |V|' / |V|^2) V_c + (dctx_n / |V|) V'_c.
  KScope<T> ks(p, site, pass, N, F, 0, 16.0 * N * F, sizeof(T) * ((double)N * (4 * F + 12 * F + 2 * F + 2 * F + 6 * F)));
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t n = 0; n < N; ++n) {
    const T* cx = dctx + n * 2 * F;
    const T* ct = dctxT + n * 2 * F;
    const T* m = mix + n * 6 * F;
    const T* mt = mixT + n * 6 * F;
    const T* nr = nrm + n * F;
    const T* nt = nrmT + n * F;
    T* g = dsT + n * F;
    T* dm = dmixT + n * 6 * F;
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) {
      g[f] += ct[f];
      const T sc = cx[F + f] / nr[f];
      const T scT = ct[F + f] / nr[f] - sc * nt[f] / nr[f];
      dm[f] += scT * m[f] + sc * mt[f];
      dm[2 * F + f] += scT * m[2 * F + f] + sc * mt[2 * F + f];
      dm[4 * F + f] += scT * m[4 * F + f] + sc * mt[4 * F + f];
    }
  }
}

template <class T>
void CpuExec<T>::painnSiluGradDual(int site, int pass, int64_t n, const T* pre, const T* preT, T* val, T* tan) {
  KScope<T> ks(p, site, pass, n, 1, 0, 14.0 * n, sizeof(T) * 6.0 * n);
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t i = 0; i < n; ++i) {
    T d1, d2;
    siluDerivs<T>(pre[i], d1, d2);
    tan[i] = tan[i] * d1 + val[i] * d2 * preT[i];
    val[i] *= d1;
  }
}

template <class T>
void CpuExec<T>::painnMessageBwdDual(int site, int pass, const program::PainnDualArgs<T>& a) {
  // Flops: the filters' two products, the tangent gradient's two and the
  // value gradient's one (when wanted): the native counter's.
  const int64_t F3 = 3 * a.F, chunks = (a.N + kSenderChunk - 1) / kSenderChunk;
  const double Ein = (double)p.pnEdgesInCutoff, pf = (a.acc ? 5 : 4) * gf(p.pnEdgesInCutoff, F3, a.K);
  addFlopsCount(pf);
  KScope<T> ks(p, site, pass, (int64_t)Ein, F3, a.K, pf,
               sizeof(T) * (Ein * (2 * a.K + 10 + 2 * a.F + 4 * F3 + (a.hasV ? 2 * F3 : 0)) +
                            (double)chunks * (a.K + 1) * F3 * (a.acc ? 4 : 2) + (double)a.N * 8 * F3) +
                   4.0 * (3.0 * b.shape.edges + a.N + 1));
  if (a.hasV) messageBackwardDual<T, true>(b, a);
  else messageBackwardDual<T, false>(b, a);
}

#define GNN_INST(T)                                                                                \
  template RowEpilogue<T> painnEpilogue<T>(const program::Epi<T>&, T*, int64_t);                   \
  template void CpuExec<T>::painnRbf(int, int64_t, int64_t, T, T*, T*);                            \
  template void CpuExec<T>::painnMessage(int, int, int64_t, int64_t, int64_t, int64_t, const T*, const T*, const T*, \
                                         const T*, const T*, const T*, const T*, const T*, T*, T*, bool); \
  template void CpuExec<T>::painnNorm(int, int, int64_t, int64_t, const T*, const T*, T*, T*);    \
  template void CpuExec<T>::painnReadoutDr1(int, int64_t, int64_t, const T*, const T*, const T*, T*); \
  template void CpuExec<T>::painnUpdateBwd(int, int, int64_t, int64_t, const T*, const T*, const T*, const T*, T*, T*); \
  template void CpuExec<T>::painnMessageBwd(int, int, int64_t, int64_t, int64_t, int64_t, const T*, const T*,      \
                                            const T*, const T*, const T*, const T*, const T*, const T*, const T*, \
                                            T*, T*, T*, int64_t, bool, bool, T*, T*, T*);          \
  template void CpuExec<T>::painnFilterReduce(int, int64_t, int64_t, int64_t, const T*, T*, T*);                  \
  template void CpuExec<T>::painnEdgeGrad(int, int64_t, int64_t, T, const T*, const T*, T*);                      \
  template void CpuExec<T>::painnEdgeVecTangent(int, int64_t, const T*, T*);                                    \
  template void CpuExec<T>::painnStrainTangent(int, int64_t, const T*, T*);                                     \
  template void CpuExec<T>::painnEdgeTangent(int, int64_t, int64_t, T, T*, T*, T*, T*);                         \
  template void CpuExec<T>::painnMessageTangent(int, int, const program::PainnDualArgs<T>&);                    \
  template void CpuExec<T>::painnNormTangent(int, int, int64_t, int64_t, const T*, const T*, const T*, const T*, T*, T*); \
  template void CpuExec<T>::painnSiluTangent(int, int, int64_t, const T*, const T*, T*);                        \
  template void CpuExec<T>::painnUpdateTangent(int, int, int64_t, int64_t, const T*, const T*, const T*, const T*, \
                                               const T*, const T*, T*, T*);                                     \
  template void CpuExec<T>::painnReadoutDr1Tangent(int, int64_t, int64_t, const T*, const T*, const T*, const T*, \
                                                   const T*, T*);                                               \
  template void CpuExec<T>::painnUpdateBwdTangent(int, int, int64_t, int64_t, const T*, const T*, const T*, const T*, \
                                                  const T*, const T*, const T*, const T*, T*, T*);              \
  template void CpuExec<T>::painnNormBwdTangent(int, int, int64_t, int64_t, const T*, const T*, const T*, const T*, \
                                                const T*, const T*, T*, T*);                                    \
  template void CpuExec<T>::painnSiluGradDual(int, int, int64_t, const T*, const T*, T*, T*);                   \
  template void CpuExec<T>::painnMessageBwdDual(int, int, const program::PainnDualArgs<T>&);
GNN_INST(float)
GNN_INST(double)
#undef GNN_INST

}  // namespace detail
}  // namespace gnn
