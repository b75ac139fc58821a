// Shared by the model files (model.cpp, painn.cpp, forces.cpp): the opt-in
// profile's scopes, the matrix-product epilogues and the CPU executor. Internal to native/core/models.
#pragma once
#include <chrono>

#include "core/dense.h"
#include "core/models/model.h"
#include "core/models/program.h"
#include "core/models/program_painn.h"
#include "core/segment.h"
#include <cstring>

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

// PaiNN's product epilogues (program::kBiasSilu, kSiluGrad, kPainnUpdate,
// kPainnNormBwd; painn.cpp) for C [rows x N].
template <class T>
RowEpilogue<T> painnEpilogue(const program::Epi<T>& e, T* C, int64_t N);

// Voigt order xx yy zz yz xz xy: component v is the pair (kVoigtA[v], kVoigtB[v]).
inline constexpr int kVoigtA[6] = {0, 1, 2, 1, 0, 0};
inline constexpr int kVoigtB[6] = {0, 1, 2, 2, 2, 1};

// The CPU executor of the model program (program.h, program_painn.h): the kernels of dense.h
// and segment.h, each call recorded by the per-kernel profile when it is on.
// Its CUDA twin is CudaExec (native/cuda/models/exec_cuda.cuh); both record
// under the sites of model.h's kKernelSites.
// Bytes moved per product: A, W and C once, plus the epilogue's reads (bias,
// residual or activation, gathered rows and their indices), an accumulated
// output read, and the weight transpose (read + write) of W^T products.
template <class T>
struct CpuExec {
  Plan<T>& p;
  const BatchInputs<T>& b;
  double loss = 0;

  T* buf(program::Buf k) { return p.bufVec(k).data(); }
  ProfScope<T> phase(int key) { return ProfScope<T>(p, key); }

  void gemm(int site, int pass, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* W, int64_t ldw,
            bool transW, T* C, int64_t ldc, bool acc, const program::Epi<T>& e) {
    double extra = (transW ? 2.0 * (double)N * K : 0) + (acc ? (double)M * N : 0), idx = 0;
    switch (e.mode) {
      case program::kBias: case program::kBiasSsp: extra += N; break;
      case program::kBiasRes: extra += N + (double)M * N; break;
      case program::kGatherSsp: extra += 2.0 * M * N + N; idx = 8.0 * M; break;
      case program::kSspGrad: extra += (double)M * N; break;
      case program::kBiasSilu: extra += N + (double)M * N; break;    // + the activation written
      case program::kSiluGrad: extra += (double)M * N; break;
      case program::kPainnUpdate: extra += N + 14.0 / 3.0 * M * N; break;  // mix, s/v in and out (14F per row, N = 3F)
      case program::kPainnNormBwd: extra += 7.5 * M * N; break;       // mix, norms, ds and dmix read+written (15F, N = 2F)
      default: break;
    }
    KScope<T> ks(p, site, pass, M, N, K, gf(M, N, K), gb<T>(M, N, K, extra) + idx);
    const T* B = W;
    int64_t ldb = ldw;
    if (transW) {  // W stored [N x K]: W^T into the plan's transpose scratch
      transpose(W, N, K, p.wt.data());
      B = p.wt.data();
      ldb = N;
    }
    gnn::gemm<T>(M, N, K, A, lda, 1, B, ldb, C, ldc, acc, epilogue(e, C, N, ldc));
  }

  RowEpilogue<T> epilogue(const program::Epi<T>& e, T* C, int64_t N, int64_t ldc) {
    (void)ldc;  // the programs' outputs are dense (ldc == N)
    switch (e.mode) {
      case program::kBias: return biasEpi<T>(C, N, e.bias, false);
      case program::kBiasSsp: return biasEpi<T>(C, N, e.bias, true);
      case program::kBiasRes: {
        const T* bias = e.bias;
        const T* prev = e.aux;
        const int64_t ld = e.ldaux;
        return [=](int64_t m0, int64_t m1) {
          for (int64_t i = m0; i < m1; ++i) {
            T* row = C + i * N;
            const T* pr = prev + i * ld;
#pragma omp simd
            for (int64_t j = 0; j < N; ++j) row[j] += bias[j] + pr[j];
          }
        };
      }
      case program::kGatherSsp: {
        const T* bias = e.bias;
        const T* Ps = e.Ps;
        const T* Pr = e.Pr;
        const int64_t ldp = e.ldp;
        const int32_t* snd = b.senders;
        const int32_t* rcv = b.receivers;
        return [=](int64_t m0, int64_t m1) {
          for (int64_t i = m0; i < m1; ++i) {
            T* row = C + i * N;
            const T* ps = Ps + (int64_t)snd[i] * ldp;
            const T* pr = Pr + (int64_t)rcv[i] * ldp;
#pragma omp simd
            for (int64_t j = 0; j < N; ++j) row[j] += ps[j] + pr[j] + bias[j];
          }
          sspInPlace(C + m0 * N, (m1 - m0) * N);
        };
      }
      case program::kSspGrad: return sspGradEpi<T>(C, e.aux, N);
      case program::kGatherSspGrad: {
        const T* Ps = e.Ps;
        const T* Pr = e.Pr;
        const T* act = e.aux;
        const int64_t ldp = e.ldp;
        const int32_t* snd = b.senders;
        const int32_t* rcv = b.receivers;
        return [=](int64_t m0, int64_t m1) {
          for (int64_t i = m0; i < m1; ++i) {
            T* row = C + i * N;
            const T* ps = Ps + (int64_t)snd[i] * ldp;
            const T* pr = Pr + (int64_t)rcv[i] * ldp;
#pragma omp simd
            for (int64_t j = 0; j < N; ++j) row[j] += ps[j] + pr[j];
          }
          mulSspGradFromAct(C + m0 * N, act + m0 * N, (m1 - m0) * N);
        };
      }
      case program::kSspGradDual: {
        // With s = ssp'(pre) (from the activation a) and a' = s pre':
        // Ct = Ct s + V s' pre' = s (Ct - V a') + V a' (since s' = s (1 - s)),
        // then V *= s. Two passes of the vectorised ssp' kernel, no scalar exp.
        const T* act = e.aux;
        const T* actT = e.aux2;
        T* V = e.val;
        return [=](int64_t m0, int64_t m1) {
          const int64_t n0 = m0 * N, n = (m1 - m0) * N;
#pragma omp simd
          for (int64_t i = n0; i < n0 + n; ++i) C[i] -= V[i] * actT[i];
          mulSspGradFromAct(C + n0, act + n0, n);
#pragma omp simd
          for (int64_t i = n0; i < n0 + n; ++i) C[i] += V[i] * actT[i];
          mulSspGradFromAct(V + n0, act + n0, n);
        };
      }
      case program::kBiasSilu: case program::kSiluGrad: case program::kPainnUpdate: case program::kPainnNormBwd:
        return painnEpilogue<T>(e, C, N);
      default: return nullptr;
    }
  }

  void gemmTN(int site, int pass, int64_t M, int64_t K, int64_t N, const T* X, int64_t ldx, const T* D, int64_t ldd,
              T* G, T* gbias, bool acc) {
    KScope<T> ks(p, site, pass, M, N, K, gf(M, N, K), gb<T>(M, N, K, gbias ? N : 0));
    gnn::gemmTN<T>(M, K, N, X, ldx, D, ldd, G, gbias, acc, p.tnScratch);
  }

  void rbf(int site, int64_t E, int64_t K, T gamma, T step, T* out) {
    const int64_t N = b.shape.nodes;
    KScope<T> ks(p, site, -1, E, K, 0, 4.0 * E * K + N, sizeof(T) * (E + (double)E * K + N) + 4.0 * (N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t k = 0; k < E; ++k) {
      const T d = b.distance[k];
      T* row = out + k * K;
#pragma omp simd
      for (int64_t j = 0; j < K; ++j) {
        const T x = d - step * (T)j;
        row[j] = -gamma * x * x;
      }
      expNonPosInPlace(row, K);
    }
  }

  void invCount(int64_t N, bool mean, T* out) {
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      const int32_t cnt = b.recvPtr[n + 1] - b.recvPtr[n];
      out[n] = mean ? (cnt > 0 ? (T)1 / (T)cnt : (T)0) : (T)1;
    }
  }

  void embed(int site, int64_t N, int64_t C, const T* W, const T* bias, T* h) {
    KScope<T> ks(p, site, -1, N, C, 0, (double)N * C, sizeof(T) * (2.0 * N * C + C) + 4.0 * N);
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      const T* w = W + (int64_t)b.atomicNumber[n] * C;
      T* o = h + n * C;
      for (int64_t j = 0; j < C; ++j) o[j] = w[j] + bias[j];
    }
  }

  void aggregate(int site, int pass, int64_t N, int64_t C, const T* f2, const T* hs, const T* ic, T* agg) {
    const int64_t E = b.shape.edges;
    const int32_t* snd = b.senders;
    KScope<T> ks(p, site, pass, E, C, 0, 2.0 * E * C + (double)N * C,
                 sizeof(T) * (2.0 * E * C + (double)N * C + N) + 4.0 * (E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t r = 0; r < N; ++r) {
      T* o = agg + r * C;
      std::memset(o, 0, sizeof(T) * C);
      for (int32_t k = b.recvPtr[r]; k < b.recvPtr[r + 1]; ++k) {
        const T* f = f2 + (int64_t)k * C;
        const T* hsr = hs + (int64_t)snd[k] * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) o[j] += f[j] * hsr[j];
      }
      const T s = ic[r];
#pragma omp simd
      for (int64_t j = 0; j < C; ++j) o[j] *= s;
    }
  }

  void messageBwdEdge(int site, int pass, int64_t E, int64_t C, const T* dagg, const T* ic, const T* hs, const T* f2,
                      T* dA) {
    const int64_t N = b.shape.nodes;
    const int32_t* snd = b.senders;
    KScope<T> ks(p, site, pass, E, C, 0, 3.0 * E * C, sizeof(T) * (4.0 * E * C + (double)N * C + N) + 4.0 * (E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t r = 0; r < N; ++r) {
      const T* g = dagg + r * C;
      const T s = ic[r];
      for (int32_t k = b.recvPtr[r]; k < b.recvPtr[r + 1]; ++k) {
        T* o = dA + (int64_t)k * C;
        const T* hsr = hs + (int64_t)snd[k] * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) o[j] = g[j] * s * hsr[j];
      }
      const int64_t k0 = b.recvPtr[r], k1 = b.recvPtr[r + 1];
      if (k1 > k0) mulSspGradFromAct(dA + k0 * C, f2 + k0 * C, (k1 - k0) * C);
    }
  }

  void messageBwdSender(int site, int pass, int64_t N, int64_t C, const T* dagg, const T* ic, const T* f2, T* dhs) {
    const int64_t E = b.shape.edges;
    const int32_t* rcv = b.receivers;
    KScope<T> ks(p, site, pass, E, C, 0, 3.0 * E * C, sizeof(T) * (2.0 * E * C + E + (double)N * C) + 4.0 * (3.0 * E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      T* o = dhs + n * C;
      std::memset(o, 0, sizeof(T) * C);
      for (int32_t k = b.sendPtr[n]; k < b.sendPtr[n + 1]; ++k) {
        const int32_t e = b.sendPerm[k];
        const int32_t r = rcv[e];
        const T* g = dagg + (int64_t)r * C;
        const T s = ic[r];
        const T* f = f2 + (int64_t)e * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) o[j] += g[j] * s * f[j];
      }
    }
  }

  void csrSenders(int site, int pass, int64_t rows, int64_t width, const T* src, T* out) {
    const int64_t E = b.shape.edges;
    KScope<T> ks(p, site, pass, E, width, 0, (double)E * width,
                 sizeof(T) * ((double)E * width + (double)rows * width) + 4.0 * (E + rows + 1));
    gatherRowsBackward<T>(src, b.sendPerm, b.sendPtr, rows, width, out);
  }

  void csrReceivers(int site, int pass, int64_t rows, int64_t width, const T* src, T* out) {
    const int64_t E = b.shape.edges;
    KScope<T> ks(p, site, pass, E, width, 0, (double)E * width,
                 sizeof(T) * ((double)E * width + (double)rows * width) + 4.0 * (rows + 1));
    segmentSumCsr<T>(src, b.recvPtr, rows, width, out);
  }

  void readoutLoss(int site, const T* r2, T* pred) {
    (void)r2;
    (void)pred;  // poolLoss reads p.r2 and writes p.pred (the same buffers)
    const int64_t N = b.shape.nodes, G = b.shape.graphs;
    KScope<T> ks(p, site, -1, G, 1, 0, (double)N + 4.0 * G, sizeof(T) * ((double)N + 3.0 * G) + 4.0 * G);
    loss = poolLoss(p, b);
  }

  void readoutLossBackward(int site, T* dr2) {
    const int64_t N = b.shape.nodes, G = b.shape.graphs;
    KScope<T> ks(p, site, -1, G, 1, 0, 5.0 * G, sizeof(T) * (3.0 * G + N) + 4.0 * G);
    poolLossBackward(p, b, dr2);
  }

  void readoutBwdHidden(int site, int64_t N, int64_t R, const T* dr2, const T* w2, const T* r1, T* dr1) {
    KScope<T> ks(p, site, -1, N, R, 0, 3.0 * N * R, sizeof(T) * (N + R + 2.0 * N * R));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < R; ++j) dr1[n * R + j] = dr2[n] * w2[j];
    mulSspGradFromAct(dr1, r1, N * R);
  }

  void copy(T* dst, const T* src, int64_t n) {
    if (n > 0) std::memcpy(dst, src, sizeof(T) * n);
  }
  void zero(T* dst, int64_t n) {
    if (n > 0) std::memset(dst, 0, sizeof(T) * n);
  }

  void embedBwd(int site, int64_t N, int64_t C, int64_t classes, const T* dh, T* gW, T* gb) {
    KScope<T> ks(p, site, -1, N, C, 0, 2.0 * N * C, sizeof(T) * ((double)N * C + 2.0 * classes * C + 2.0 * C) + 4.0 * N);
    std::memset(gW, 0, sizeof(T) * (size_t)classes * C);
    std::memset(gb, 0, sizeof(T) * C);
    for (int64_t n = 0; n < N; ++n) {
      T* o = gW + (int64_t)b.atomicNumber[n] * C;
      const T* g = dh + n * C;
      for (int64_t j = 0; j < C; ++j) { o[j] += g[j]; gb[j] += g[j]; }
    }
  }

  // ---- PaiNN (program_painn.h; the kernels are in painn.cpp) ----
  void painnRbf(int site, int64_t E, int64_t K, T cutoff, T* rbf, T* fcut);
  void painnMessage(int site, int pass, int64_t N, int64_t F, int64_t K, int64_t LF, const T* Wf, const T* bf,
                    const T* rbf, const T* q, const T* fcut, const T* ic, const T* sIn, const T* vIn, T* sMid, T* vMid,
                    bool hasV);
  void painnNorm(int site, int pass, int64_t N, int64_t F, const T* mix, const T* sMid, T* nrm, T* ctx);
  void painnReadoutDr1(int site, int64_t N, int64_t R, const T* dr2, const T* w2, const T* r1pre, T* dr1);
  void painnUpdateBwd(int site, int pass, int64_t N, int64_t F, const T* a, const T* mix, const T* ds, const T* dv,
                      T* da, T* dmix);
  void painnMessageBwd(int site, int pass, int64_t N, int64_t F, int64_t K, int64_t LF, const T* Wf, const T* bf,
                       const T* rbf, const T* q, const T* fcut, const T* ic, const T* vIn, const T* ds, const T* dv,
                       T* dq, T* dvIn, T* acc, int64_t fo, bool hasV, bool mean, T* dRbf, T* dFc, T* dU);
  void painnEdgeGrad(int site, int64_t E, int64_t K, T cutoff, const T* dRbf, const T* dFc, T* g);
  void painnFilterReduce(int site, int64_t chunks, int64_t K, int64_t LF, const T* acc, T* gW, T* gb);
  // PaiNN's double backward (program_painn.h's painnForwardTangent / painnBackwardDual).
  void painnEdgeVecTangent(int site, int64_t E, const T* w, T* rT);
  void painnStrainTangent(int site, int64_t G, const T* q, T* rT);
  void painnEdgeTangent(int site, int64_t E, int64_t K, T cutoff, T* uT, T* ddT, T* rbfT, T* fcT);
  void painnMessageTangent(int site, int pass, const program::PainnDualArgs<T>& a);
  void painnNormTangent(int site, int pass, int64_t N, int64_t F, const T* mix, const T* mixT, const T* nrm,
                        const T* sMidT, T* nrmT, T* ctxT);
  void painnSiluTangent(int site, int pass, int64_t n, const T* pre, const T* preT, T* actT);
  void painnUpdateTangent(int site, int pass, int64_t N, int64_t F, const T* a, const T* aT, const T* mix,
                          const T* mixT, const T* sMidT, const T* vMidT, T* sOutT, T* vOutT);
  void painnReadoutDr1Tangent(int site, int64_t N, int64_t R, const T* dr2, const T* dr2T, const T* w2,
                              const T* r1pre, const T* r1preT, T* dr1T);
  void painnUpdateBwdTangent(int site, int pass, int64_t N, int64_t F, const T* a, const T* aT, const T* mix,
                             const T* mixT, const T* ds, const T* dsT, const T* dv, const T* dvT, T* daT, T* dmixT);
  void painnNormBwdTangent(int site, int pass, int64_t N, int64_t F, const T* dctx, const T* dctxT, const T* mix,
                           const T* mixT, const T* nrm, const T* nrmT, T* dsT, T* dmixT);
  void painnSiluGradDual(int site, int pass, int64_t n, const T* pre, const T* preT, T* val, T* tan);
  void painnMessageBwdDual(int site, int pass, const program::PainnDualArgs<T>& a);

  // ---- the force pass (program::forces) ----

  // dr2[n] = d (sum over real graphs of pred[g]) / d r2[n]: 1 (sum readout) or
  // 1 / nodes (mean readout) for the nodes of graphs with mask > 0, else 0.
  // Reads p.graphStart (filled by the forward's readoutLoss).
  void energySeed(int site, T* dr2) {
    const int64_t N = b.shape.nodes, G = b.shape.graphs;
    KScope<T> ks(p, site, -1, G, 1, 0, (double)G, sizeof(T) * ((double)G + N) + 4.0 * G);
    for (int64_t g = 0; g < G; ++g) {
      const int32_t nn = b.nNode[g];
      const T v = !(b.mask[g] > 0) ? (T)0 : p.cfg.meanReadout ? (nn > 0 ? (T)1 / (T)nn : (T)0) : (T)1;
      for (int64_t n = p.graphStart[g]; n < p.graphStart[g + 1]; ++n) dr2[n] = v;
    }
  }

  void rbfBackward(int site, int64_t E, int64_t K, T gamma, T step, const T* rbf, const T* drbf, T* ddist) {
    KScope<T> ks(p, site, -1, E, K, 0, 5.0 * E * K, sizeof(T) * (2.0 * E * K + 2.0 * E));
    const T m2g = (T)-2 * gamma;
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t k = 0; k < E; ++k) {
      const T d = b.distance[k];
      const T* r = rbf + k * K;
      const T* g = drbf + k * K;
      T acc = 0;
      for (int64_t j = 0; j < K; ++j) acc += g[j] * r[j] * (d - step * (T)j);
      ddist[k] = m2g * acc;
    }
  }

  // F[n] = sum over received edges of ddist u - sum over sent edges (sender
  // order of sendPerm): two CSR sums per atom, fixed order, no atomics.
  void edgeForces(int site, int64_t N, const T* ddist, T* F) {
    const int64_t E = b.shape.edges;
    KScope<T> ks(p, site, -1, N, 3, 0, 12.0 * E, sizeof(T) * (8.0 * E + 3.0 * N) + 4.0 * (3.0 * E + 2.0 * N + 2));
    const T* u = b.direction;
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      T ar[3] = {0, 0, 0}, as[3] = {0, 0, 0};
      for (int32_t k = b.recvPtr[n]; k < b.recvPtr[n + 1]; ++k)
        for (int a = 0; a < 3; ++a) ar[a] += ddist[k] * u[3 * (int64_t)k + a];
      for (int32_t q = b.sendPtr[n]; q < b.sendPtr[n + 1]; ++q) {
        const int64_t k = b.sendPerm[q];
        for (int a = 0; a < 3; ++a) as[a] += ddist[k] * u[3 * k + a];
      }
      for (int a = 0; a < 3; ++a) F[3 * n + a] = ar[a] - as[a];
    }
  }

  // The same scatter for a vector gradient per edge: g [E x 3] = dE/dr_k (PaiNN).
  void edgeForcesVec(int site, int64_t N, const T* g, T* F) {
    const int64_t E = b.shape.edges;
    KScope<T> ks(p, site, -1, N, 3, 0, 6.0 * E, sizeof(T) * (6.0 * E + 3.0 * N) + 4.0 * (2.0 * E + 2.0 * N + 2));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      T ar[3] = {0, 0, 0}, as[3] = {0, 0, 0};
      for (int32_t k = b.recvPtr[n]; k < b.recvPtr[n + 1]; ++k)
        for (int a = 0; a < 3; ++a) ar[a] += g[3 * (int64_t)k + a];
      for (int32_t q = b.sendPtr[n]; q < b.sendPtr[n + 1]; ++q) {
        const int64_t k = b.sendPerm[q];
        for (int a = 0; a < 3; ++a) as[a] += g[3 * k + a];
      }
      for (int a = 0; a < 3; ++a) F[3 * n + a] = ar[a] - as[a];
    }
  }

  // W[g] = sum over the graph's edges (receiver order) of sym(g_k (x) r_k),
  // r_k = d_k u_k, Voigt (PaiNN; the scalar case below is its g = ddist u).
  void strainDerivativeVec(int site, int64_t G, const T* g, T* W) {
    const int64_t E = b.shape.edges;
    KScope<T> ks(p, site, -1, E, 6, 0, 24.0 * E, sizeof(T) * (7.0 * E + 6.0 * G) + 8.0 * G);
    const T* u = b.direction;
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t gr = 0; gr < G; ++gr) {
      T acc[6] = {0, 0, 0, 0, 0, 0};
      const int64_t k0 = b.recvPtr[p.graphStart[gr]], k1 = b.recvPtr[p.graphStart[gr + 1]];
      for (int64_t k = k0; k < k1; ++k) {
        const T d = b.distance[k];
        const T* uk = u + 3 * k;
        const T* gk = g + 3 * k;
        for (int v = 0; v < 6; ++v) acc[v] += (T)0.5 * d * (gk[kVoigtA[v]] * uk[kVoigtB[v]] + gk[kVoigtB[v]] * uk[kVoigtA[v]]);
      }
      for (int v = 0; v < 6; ++v) W[6 * gr + v] = acc[v];
    }
  }

  // W[g] = sum over the graph's edges (receiver order) of ddist d u (x) u, Voigt.
  void strainDerivative(int site, int64_t G, const T* ddist, T* W) {
    const int64_t E = b.shape.edges;
    KScope<T> ks(p, site, -1, E, 6, 0, 14.0 * E, sizeof(T) * (5.0 * E + 6.0 * G) + 8.0 * G);
    const T* u = b.direction;
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t g = 0; g < G; ++g) {
      T acc[6] = {0, 0, 0, 0, 0, 0};
      const int64_t k0 = b.recvPtr[p.graphStart[g]], k1 = b.recvPtr[p.graphStart[g + 1]];
      for (int64_t k = k0; k < k1; ++k) {
        const T s = ddist[k] * b.distance[k];
        const T* uk = u + 3 * k;
        for (int v = 0; v < 6; ++v) acc[v] += s * uk[kVoigtA[v]] * uk[kVoigtB[v]];
      }
      for (int v = 0; v < 6; ++v) W[6 * g + v] = acc[v];
    }
  }

  // ---- the double backward (program_tangent.h): tangent versions of the ops ----

  // ddT[k] = u_k . (w[snd] - w[rcv]): the change of d_k along x + eps w.
  void distTangent(int site, int64_t E, const T* w, T* ddT) {
    KScope<T> ks(p, site, -1, E, 3, 0, 6.0 * E, sizeof(T) * (7.0 * E) + 8.0 * E);
    const T* u = b.direction;
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t k = 0; k < E; ++k) {
      const T* ws = w + 3 * (int64_t)b.senders[k];
      const T* wr = w + 3 * (int64_t)b.receivers[k];
      const T* uk = u + 3 * k;
      ddT[k] = uk[0] * (ws[0] - wr[0]) + uk[1] * (ws[1] - wr[1]) + uk[2] * (ws[2] - wr[2]);
    }
  }

  // The stress part of the distances' tangent: each graph's cell strained
  // with its atoms (r_k -> (I + eps Q_g) r_k, Q_g symmetric with Voigt
  // entries q[g]) changes d_k by eps d_k u_k^T Q_g u_k; the tangent of
  // q . (dE/d strain) is that change, so (program_tangent.h's sign) ddT[k] -=
  // d_k sum_v q[g,v] u_a(v) u_b(v), over the graph's edges (receiver order;
  // one thread per graph, fixed order). Padding edges (d = 0, u = 0) get 0.
  void strainTangent(int site, int64_t G, const T* q, T* ddT) {
    const int64_t E = b.shape.edges;
    KScope<T> ks(p, site, -1, E, 6, 0, 14.0 * E, sizeof(T) * (6.0 * E + 6.0 * G) + 8.0 * G);
    const T* u = b.direction;
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t g = 0; g < G; ++g) {
      const T* qg = q + 6 * g;
      if (qg[0] == (T)0 && qg[1] == (T)0 && qg[2] == (T)0 && qg[3] == (T)0 && qg[4] == (T)0 && qg[5] == (T)0) continue;
      const int64_t k0 = b.recvPtr[p.graphStart[g]], k1 = b.recvPtr[p.graphStart[g + 1]];
      for (int64_t k = k0; k < k1; ++k) {
        const T* uk = u + 3 * k;
        T s = 0;
        for (int v = 0; v < 6; ++v) s += qg[v] * uk[kVoigtA[v]] * uk[kVoigtB[v]];
        ddT[k] -= b.distance[k] * s;
      }
    }
  }

  // rbfT[k,j] = rbf[k,j] (-2 gamma (d_k - spacing j)) ddT[k].
  void rbfTangent(int site, int64_t E, int64_t K, T gamma, T step, const T* rbf, const T* ddT, T* rbfT) {
    KScope<T> ks(p, site, -1, E, K, 0, 4.0 * E * K, sizeof(T) * (2.0 * E * K + 2.0 * E));
    const T m2g = (T)-2 * gamma;
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t k = 0; k < E; ++k) {
      const T d = b.distance[k], s = m2g * ddT[k];
      const T* r = rbf + k * K;
      T* o = rbfT + k * K;
#pragma omp simd
      for (int64_t j = 0; j < K; ++j) o[j] = r[j] * s * (d - step * (T)j);
    }
  }

  // aggT[r] = invCnt[r] sum_{k->r} (f2T[k] hs[snd] + f2[k] hsT[snd]).
  void aggregateTangent(int site, int pass, int64_t N, int64_t C, const T* f2, const T* f2T, const T* hs, const T* hsT,
                        const T* ic, T* aggT) {
    const int64_t E = b.shape.edges;
    const int32_t* snd = b.senders;
    KScope<T> ks(p, site, pass, E, C, 0, 4.0 * E * C + (double)N * C,
                 sizeof(T) * (4.0 * E * C + (double)N * C + N) + 4.0 * (E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t r = 0; r < N; ++r) {
      T* o = aggT + r * C;
      std::memset(o, 0, sizeof(T) * C);
      for (int32_t k = b.recvPtr[r]; k < b.recvPtr[r + 1]; ++k) {
        const T* f = f2 + (int64_t)k * C;
        const T* ft = f2T + (int64_t)k * C;
        const T* h = hs + (int64_t)snd[k] * C;
        const T* ht = hsT + (int64_t)snd[k] * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) o[j] += ft[j] * h[j] + f[j] * ht[j];
      }
      const T s = ic[r];
#pragma omp simd
      for (int64_t j = 0; j < C; ++j) o[j] *= s;
    }
  }

  // predT[g]: the pooling (sum or mean over the graph's nodes) of r2T.
  void poolTangent(int site, const T* r2T, T* predT) {
    const int64_t N = b.shape.nodes, G = b.shape.graphs;
    KScope<T> ks(p, site, -1, G, 1, 0, (double)N, sizeof(T) * ((double)N + G) + 4.0 * G);
    for (int64_t g = 0; g < G; ++g) {
      T s = 0;
      for (int64_t n = p.graphStart[g]; n < p.graphStart[g + 1]; ++n) s += r2T[n];
      const int32_t nn = b.nNode[g];
      predT[g] = p.cfg.meanReadout ? (nn > 0 ? s / (T)nn : (T)0) : s;
    }
  }

  // dr2T = scale * d(masked MSE)/d r2 (the tangent seed of forceLossAndGrad).
  void lossSeedTangent(int site, T scale, T* dr2T) {
    const int64_t N = b.shape.nodes, G = b.shape.graphs;
    KScope<T> ks(p, site, -1, G, 1, 0, 5.0 * G + N, sizeof(T) * (3.0 * G + 2.0 * N) + 4.0 * G);
    poolLossBackward(p, b, dr2T);
    for (int64_t n = 0; n < N; ++n) dr2T[n] *= scale;
  }

  // dr1 = dr2 w2 * ssp'(r1) differentiated: dr1T = s (dr2T w2 - dr2 w2 r1T) + dr2 w2 r1T.
  void readoutBwdHiddenTangent(int site, int64_t N, int64_t R, const T* dr2, const T* dr2T, const T* w2, const T* r1,
                               const T* r1T, T* dr1T) {
    KScope<T> ks(p, site, -1, N, R, 0, 8.0 * N * R, sizeof(T) * (2.0 * N + R + 3.0 * N * R));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      T* o = dr1T + n * R;
      const T* at = r1T + n * R;
      for (int64_t j = 0; j < R; ++j) o[j] = dr2T[n] * w2[j] - dr2[n] * w2[j] * at[j];
      mulSspGradFromAct(o, r1 + n * R, R);
      for (int64_t j = 0; j < R; ++j) o[j] += dr2[n] * w2[j] * at[j];
    }
  }

  // dA = dagg[r] ic[r] hs[snd] * ssp'(f2) differentiated (value parts read):
  // x = ic (daggT hs + dagg hsT), y = ic dagg hs f2T, dAT = s (x - y) + y.
  void messageBwdEdgeTangent(int site, int pass, int64_t E, int64_t C, const T* dagg, const T* daggT, const T* ic,
                             const T* hs, const T* hsT, const T* f2, const T* f2T, T* dAT) {
    const int64_t N = b.shape.nodes;
    const int32_t* snd = b.senders;
    KScope<T> ks(p, site, pass, E, C, 0, 10.0 * E * C,
                 sizeof(T) * (6.0 * E * C + 2.0 * N * C + N) + 4.0 * (E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t r = 0; r < N; ++r) {
      const T* g = dagg + r * C;
      const T* gt = daggT + r * C;
      const T s = ic[r];
      const int64_t k0 = b.recvPtr[r], k1 = b.recvPtr[r + 1];
      for (int64_t k = k0; k < k1; ++k) {
        T* o = dAT + k * C;
        const T* h = hs + (int64_t)snd[k] * C;
        const T* ht = hsT + (int64_t)snd[k] * C;
        const T* ft = f2T + k * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) o[j] = s * (gt[j] * h[j] + g[j] * ht[j]) - s * g[j] * h[j] * ft[j];
      }
      if (k1 > k0) mulSspGradFromAct(dAT + k0 * C, f2 + k0 * C, (k1 - k0) * C);
      for (int64_t k = k0; k < k1; ++k) {
        T* o = dAT + k * C;
        const T* h = hs + (int64_t)snd[k] * C;
        const T* ft = f2T + k * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) o[j] += s * g[j] * h[j] * ft[j];
      }
    }
  }

  // dhsT[n] = sum_{k: snd[k]=n} ic[r] (daggT[r] f2[k] + dagg[r] f2T[k]) (sender order).
  void messageBwdSenderTangent(int site, int pass, int64_t N, int64_t C, const T* dagg, const T* daggT, const T* ic,
                               const T* f2, const T* f2T, T* dhsT) {
    const int64_t E = b.shape.edges;
    const int32_t* rcv = b.receivers;
    KScope<T> ks(p, site, pass, E, C, 0, 5.0 * E * C,
                 sizeof(T) * (4.0 * E * C + E + (double)N * C) + 4.0 * (3.0 * E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      T* o = dhsT + n * C;
      std::memset(o, 0, sizeof(T) * C);
      for (int32_t q = b.sendPtr[n]; q < b.sendPtr[n + 1]; ++q) {
        const int32_t e = b.sendPerm[q];
        const int32_t r = rcv[e];
        const T* g = dagg + (int64_t)r * C;
        const T* gt = daggT + (int64_t)r * C;
        const T s = ic[r];
        const T* f = f2 + (int64_t)e * C;
        const T* ft = f2T + (int64_t)e * C;
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) o[j] += s * (gt[j] * f[j] + g[j] * ft[j]);
      }
    }
  }

  // The stress loss of forceLossAndGrad: sigma_g = W_g / V_g (W: the strain
  // derivative), loss = sum over real graphs with c_g > 0 of c_g |sigma_g -
  // sigma*_g|^2 (6 Voigt components) and the strain weights q_g = dL/dW_g =
  // 2 c_g (sigma_g - sigma*_g) / V_g (0 elsewhere); sigmaOut (optional) gets
  // sigma of the real graphs with a volume, else 0. Fixed order, one thread: O(G).
  double stressLoss(int site, int64_t G, const T* W, const double* vol, const T* target, const T* c, T* sigmaOut, T* q) {
    KScope<T> ks(p, site, -1, G, 6, 0, 30.0 * G, sizeof(T) * (31.0 * G) + 8.0 * G);
    double loss = 0;
    for (int64_t g = 0; g < G; ++g) {
      const bool real = b.mask[g] > 0;
      const double V = real && vol ? vol[g] : 0;
      const bool scored = real && c && c[g] > (T)0 && V > 0;
      for (int v = 0; v < 6; ++v) {
        const T sg = V > 0 ? (T)((double)W[6 * g + v] / V) : (T)0;
        if (sigmaOut) sigmaOut[6 * g + v] = sg;
        if (scored) {
          const T d = sg - target[6 * g + v];
          loss += (double)c[g] * (double)d * (double)d;
          q[6 * g + v] = (T)(2.0 * (double)c[g] * (double)d / V);
        } else {
          q[6 * g + v] = (T)0;
        }
      }
    }
    return loss;
  }

  // Strain weights from stress weights: q_g = s_g / V_g for the real graphs
  // (0 for the others). O(G).
  void strainWeights(int site, int64_t G, const T* s, const double* vol, T* q) {
    KScope<T> ks(p, site, -1, G, 6, 0, 6.0 * G, sizeof(T) * (12.0 * G) + 8.0 * G);
    for (int64_t g = 0; g < G; ++g) {
      const bool real = b.mask[g] > 0 && vol[g] > 0;
      for (int v = 0; v < 6; ++v) q[6 * g + v] = real ? (T)((double)s[6 * g + v] / vol[g]) : (T)0;
    }
  }

  // The force loss of forceLossAndGrad: sum_i a_i |F_i - F*_i|^2 over the
  // real atoms (the first `real` nodes; padding atoms get w = 0) and its
  // gradient w = 2 a_i (F_i - F*_i) (fixed order, one thread: O(N)).
  double forceLoss(int site, int64_t N, int64_t real, const T* F, const T* target, const T* a, T* w) {
    KScope<T> ks(p, site, -1, N, 3, 0, 12.0 * N, sizeof(T) * (10.0 * N));
    double loss = 0;
    for (int64_t n = real; n < N; ++n) w[3 * n] = w[3 * n + 1] = w[3 * n + 2] = (T)0;
    for (int64_t n = 0; n < real; ++n)
      for (int c = 0; c < 3; ++c) {
        const T d = F[3 * n + c] - target[3 * n + c];
        loss += (double)a[n] * (double)d * (double)d;
        w[3 * n + c] = (T)2 * a[n] * d;
      }
    return loss;
  }
};

// PaiNN (painn.cpp): its parameter layout.
ParamLayout painnLayout(const ModelConfig& c);

}  // namespace detail
}  // namespace gnn
