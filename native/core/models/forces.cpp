// The double backward of the force pass (docs/forces.md): forward-over-reverse
// in dual numbers through the one model program, float64 reference path.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/models/forces_dual.h"
#include "core/models/model_internal.h"
#include "core/models/program.h"

namespace gnn {

// ---- Dual kernels (plain loops; fixed order: each output reduced in index order) ----

template <>
void gemm<Dual>(int64_t M, int64_t N, int64_t K, const Dual* A, int64_t rsA, int64_t csA, const Dual* B, int64_t ldb,
                Dual* C, int64_t ldc, bool accumulate, const RowEpilogue<Dual>& epi) {
  if (M <= 0 || N <= 0) return;
  const int64_t RB = 64, nb = (M + RB - 1) / RB;
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t blk = 0; blk < nb; ++blk) {
    const int64_t m0 = blk * RB, m1 = std::min(M, m0 + RB);
    for (int64_t i = m0; i < m1; ++i)
      for (int64_t j = 0; j < N; ++j) {
        Dual s = accumulate ? C[i * ldc + j] : Dual(0);
        for (int64_t k = 0; k < K; ++k) s += A[i * rsA + k * csA] * B[k * ldb + j];
        C[i * ldc + j] = s;
      }
    if (epi) epi(m0, m1);
  }
}

template <>
void gemmTN<Dual>(int64_t M, int64_t K, int64_t N, const Dual* X, int64_t ldx, const Dual* D, int64_t ldd, Dual* G,
                  Dual* gbias, bool accumulate, std::vector<Dual>&) {
  if (K <= 0 || N <= 0) return;
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) {
      Dual s = accumulate ? G[k * N + j] : Dual(0);
      for (int64_t i = 0; i < M; ++i) s += X[i * ldx + k] * D[i * ldd + j];
      G[k * N + j] = s;
    }
  if (gbias)
    for (int64_t j = 0; j < N; ++j) {
      Dual s = accumulate ? gbias[j] : Dual(0);
      for (int64_t i = 0; i < M; ++i) s += D[i * ldd + j];
      gbias[j] = s;
    }
}

template <>
void transpose<Dual>(const Dual* W, int64_t K, int64_t N, Dual* out) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) out[n * K + k] = W[k * N + n];
}

static constexpr double kLn2d = 0.6931471805599453;

// ssp(x) = log(1 + e^x) - ln 2; ssp'(x) = sigmoid(x).
template <>
void sspInPlace<Dual>(Dual* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i].v, ex = std::exp(-std::fabs(v));
    const double sig = v < 0 ? ex / (1.0 + ex) : 1.0 / (1.0 + ex);
    x[i] = Dual((v > 0 ? v : 0.0) + std::log1p(ex) - kLn2d, sig * x[i].e);
  }
}

// d *= ssp'(pre) written through the activation a = ssp(pre): 1 - exp(-(a + ln 2)).
template <>
void mulSspGradFromAct<Dual>(Dual* d, const Dual* a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double q = std::exp(-(a[i].v + kLn2d));
    d[i] *= Dual(-std::expm1(-(a[i].v + kLn2d)), q * a[i].e);
  }
}

template <>
void expNonPosInPlace<Dual>(Dual* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double ev = std::exp(x[i].v);
    x[i] = Dual(ev, ev * x[i].e);
  }
}

template <>
void segmentSumCsr<Dual>(const Dual* src, const int32_t* ptr, int64_t rows, int64_t width, Dual* out) {
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j) {
      Dual s = 0;
      for (int32_t k = ptr[r]; k < ptr[r + 1]; ++k) s += src[(int64_t)k * width + j];
      out[r * width + j] = s;
    }
}

template <>
void gatherRowsBackward<Dual>(const Dual* gradOut, const int32_t* perm, const int32_t* ptr, int64_t rows, int64_t width,
                              Dual* gradSrc) {
#pragma omp parallel for schedule(static) num_threads(numThreads())
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j) {
      Dual s = 0;
      for (int32_t k = ptr[r]; k < ptr[r + 1]; ++k) s += gradOut[(int64_t)(perm ? perm[k] : k) * width + j];
      gradSrc[r * width + j] = s;
    }
}

// ---- the double backward ----

double forceGrad(Plan<double>& p, const double* params, const BatchInputs<double>& b, const double* w, double* grad,
                 double* energyGrad) {
  if (p.cfg.kind == ModelKind::PaiNN)
    throw Error(ErrorKind::Generic, "ERR_GNN_UNSUPPORTED", "the force pass runs MPEU and SchNet; PaiNN has none yet (docs/forces.md)");
  if (!p.forces)
    throwRange("this plan was built without forces: create it with { forces: true } to run forceGrad", "ERR_GNN_FORCES_PLAN");
  validateBatch(p, b);
  const int64_t N = b.shape.nodes, E = b.shape.edges, G = b.shape.graphs, P = p.layout.total;
  if (E > 0 && !b.direction)
    throwRange("forces need the edges' direction vectors (inputs.direction, [edges x 3]): build the graph store with "
               "directions",
               "ERR_GNN_DATA_DIRECTIONS");
  // A plan of the same capacity in Dual arithmetic (one activation layout; no
  // force buffers: the backward stops at the parameters).
  Plan<Dual> q;
  q.cfg = p.cfg;
  q.layout = p.layout;
  q.cap = p.cap;
  for (int k = 0; k < program::kBufCount; ++k)
    q.bufVec((program::Buf)k).resize((size_t)program::bufElems(q.cfg, q.cap, (program::Buf)k, false));
  q.graphStart.resize((size_t)p.cap.graphs + 1);
  {
    const size_t C = q.cfg.latent, H = 2 * C, K = q.cfg.basis, R = q.cfg.readoutHidden;
    q.wt.resize(std::max({K * H, K * C, H * C, C * R, C * C}));
  }
  // Inputs: the distances' epsilon is their change along x + eps w:
  // d(d_k) = u_k . (w_snd - w_rcv).
  std::vector<Dual> dist((size_t)E), target((size_t)G), mask((size_t)G), dir((size_t)(3 * E)), prm((size_t)P),
      grd((size_t)P);
  for (int64_t k = 0; k < E; ++k) {
    const double* u = b.direction + 3 * k;
    const double* ws = w + 3 * (int64_t)b.senders[k];
    const double* wr = w + 3 * (int64_t)b.receivers[k];
    dist[(size_t)k] = Dual(b.distance[k], u[0] * (ws[0] - wr[0]) + u[1] * (ws[1] - wr[1]) + u[2] * (ws[2] - wr[2]));
    for (int a = 0; a < 3; ++a) dir[(size_t)(3 * k + a)] = Dual(u[a]);
  }
  for (int64_t g = 0; g < G; ++g) target[(size_t)g] = Dual(b.target[g]), mask[(size_t)g] = Dual(b.mask[g]);
  for (int64_t i = 0; i < P; ++i) prm[(size_t)i] = Dual(params[i]);
  BatchInputs<Dual> bd;
  bd.shape = b.shape;
  bd.atomicNumber = b.atomicNumber;
  bd.senders = b.senders;
  bd.receivers = b.receivers;
  bd.distance = dist.data();
  bd.nNode = b.nNode;
  bd.target = target.data();
  bd.mask = mask.data();
  bd.recvPtr = b.recvPtr;
  bd.sendPerm = b.sendPerm;
  bd.sendPtr = b.sendPtr;
  bd.direction = dir.data();
  detail::CpuExec<Dual> x{q, bd};
  const program::Shape s{N, E, G};
  program::forward<Dual>(x, q.cfg, q.layout, prm.data(), s);
  program::BackwardTarget<Dual> tg;
  tg.grads = grd.data();
  tg.energySeed = true;
  program::backwardTo<Dual>(x, q.cfg, q.layout, prm.data(), tg, s);
  // d(w . F)/d theta = -d/d theta (w . dE/dx) = -epsilon(d E / d theta).
  for (int64_t i = 0; i < P; ++i) grad[i] = -grd[(size_t)i].e;
  if (energyGrad)
    for (int64_t i = 0; i < P; ++i) energyGrad[i] = grd[(size_t)i].v;
  double wF = 0;
  for (int64_t g = 0; g < G; ++g)
    if (b.mask[g] > 0) wF -= q.pred[(size_t)g].e;
  return wF;
}

}  // namespace gnn
