// The MPEU / SchNet model program (PAPER.md): forward and backward written
// once, as a sequence of ops over one activation layout, and run by both
// executors -- the CPU plan's CpuExec (model_internal.h) and the CUDA plan's
// CudaExec (native/cuda/models/exec_cuda.cuh) -- which supply the kernels behind
// one interface (the pytorch_scatter pattern: one definition, per-device
// kernels, one file per kernel family on each backend). Every op's `site` is
// an entry of the one kernel-site table (model.h's KernelSite, kKernelSites):
// both executors' profiles name their records by it.
//
// An executor X<T> provides:
//   T* buf(Buf b)                                   the activation buffer b
//   auto phase(int profKey)                         RAII scope of a profile phase
//   gemm(site, pass, M, N, K, A, lda, W, ldw, transW, C, ldc, accumulate, epi)
//       C[M x N] (+)= A[M x K] op(W), op(W) = W [K x N] (ldw) or, transW,
//       W^T for W stored [N x K] (ldw); then the epilogue (Epi below)
//   gemmTN(site, pass, M, K, N, X, ldx, D, ldd, G, gbias, accumulate)
//       G[K x N] (+)= X^T D, gbias (+)= colsum(D) when non-null
//   rbf(site, E, K, gamma, spacing, out)            Gaussian basis of the distances
//   invCount(N, mean, out)                          1 / in-degree (or 1)
//   embed(site, N, C, W, b, h)                      h[n] = W[z_n] + b
//   aggregate(site, pass, N, C, f2, hs, invCnt, agg)
//       agg[r] = invCnt[r] sum_{k->r} f2[k] * hs[snd[k]]
//   messageBwdEdge(site, pass, E, C, dagg, invCnt, hs, f2, dA)
//       dA[k] = dagg[r] invCnt[r] hs[snd[k]] * ssp'(f2[k]), r = rcv[k]
//   messageBwdSender(site, pass, N, C, dagg, invCnt, f2, dhs)
//       dhs[n] = sum_{k: snd[k]=n} dagg[r] invCnt[r] f2[k] (sender order)
//   csrSenders(site, pass, rows, width, src, out)   out[n] = sum_{k: snd[k]=n} src[k]
//   csrReceivers(site, pass, rows, width, src, out) out[n] = sum_{k: rcv[k]=n} src[k]
//   readoutLoss(site, r2, pred)                     pooling + masked MSE (the executor's
//                                                   loss; the CUDA one also writes dr2)
//   readoutLossBackward(site, dr2)                  d loss / d r2 per node
//   readoutBwdHidden(site, N, R, dr2, w2, r1, dr1)  dr1 = dr2 w2 * ssp'(r1)
//   copy(dst, src, n), zero(p, n)
//   embedBwd(site, N, C, classes, dh, gW, gb)       onehot(z)^T dh and colsum(dh)
// and, for the force pass (forces() below; docs/forces.md):
//   energySeed(site, dr2)                           dr2[n] = d (sum of the real graphs' energies) / d r2[n]
//   rbfBackward(site, E, K, gamma, spacing, rbf, drbf, ddist)
//       ddist[k] = sum_j drbf[k,j] rbf[k,j] (-2 gamma (d_k - spacing j))
//   edgeForces(site, N, ddist, F)                   F[n] = sum_{k: rcv[k]=n} ddist[k] u_k
//                                                         - sum_{k: snd[k]=n} ddist[k] u_k  (xyz per atom)
//   strainDerivative(site, G, ddist, W)             W[g] = sum_{k in g} ddist[k] d_k u_k (x) u_k
//                                                   (dE/d strain, Voigt xx yy zz yz xz xy)
// All reductions have a fixed order in both executors (deterministic).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/models/model.h"
#include "core/models/weights.h"

namespace gnn {
namespace program {

// Matrix-product epilogues: a closed set, so every executor can implement
// them inside its product kernel.
// kGatherSspGrad and kSspGradDual are the double backward's (program_tangent.h;
// the CPU executor only): C += Ps[snd] + Pr[rcv], then C *= ssp'(aux); and
// the tangent of a kSspGrad product, Ct = Ct ssp'(aux) + val ssp''(aux) aux2
// (aux2 the activation's tangent), then val *= ssp'(aux) (val: the value
// product, written plain before).
// kBiasSilu .. kPainnNormBwd are PaiNN's (program_painn.h; the CPU executor
// only): C = AW + bias kept, val = SiLU(C); C *= SiLU'(aux); the update's
// output combination (C = a, with bias: sOut/vOut from sIn/vIn and the mix
// aux); the context gradient's split (sOut += C's s half, vOut += its norm
// half times V / |V|, aux the mix, aux2 the norms).
enum EpiMode { kPlain = 0, kBias = 1, kBiasSsp = 2, kBiasRes = 3, kGatherSsp = 4, kSspGrad = 5, kGatherSspGrad = 6,
               kSspGradDual = 7, kBiasSilu = 8, kSiluGrad = 9, kPainnUpdate = 10, kPainnNormBwd = 11 };
template <class T>
struct Epi {
  int mode = kPlain;
  const T* bias = nullptr;  // [N]
  const T* aux = nullptr;   // residual added (kBiasRes) or activation whose ssp' multiplies (kSspGrad), [M x ldaux]
  int64_t ldaux = 0;
  const T* Ps = nullptr;    // kGatherSsp: C += Ps[snd[i]] + Pr[rcv[i]] + bias, then ssp
  const T* Pr = nullptr;
  int64_t ldp = 0;
  const int32_t* snd = nullptr;
  const int32_t* rcv = nullptr;
  const T* aux2 = nullptr;  // kSspGradDual: the activation's tangent, [M x N]
  T* val = nullptr;         // kSspGradDual: the value product, [M x N]; kBiasSilu: the activation
  const T* sIn = nullptr;   // kPainnUpdate: s_mid [M x F], v_mid [M x 3F]
  const T* vIn = nullptr;
  T* sOut = nullptr;        // kPainnUpdate: s_out, v_out; kPainnNormBwd: ds, dmix (accumulated)
  T* vOut = nullptr;
};
template <class T>
Epi<T> epi(int mode, const T* bias = nullptr, const T* aux = nullptr, int64_t ldaux = 0) {
  Epi<T> e;
  e.mode = mode;
  e.bias = bias;
  e.aux = aux;
  e.ldaux = ldaux;
  return e;
}

// The activation and scratch buffers of one plan: the one list both plans
// allocate from and the plan-size estimate sums.
enum Buf : int {
  kBufRbf, kBufH, kBufE, kBufA1, kBufF1, kBufF2, kBufHs, kBufAgg, kBufU1, kBufR1, kBufR2, kBufPred, kBufInvCnt,
  kBufPs, kBufPr, kBufDh, kBufDhNew, kBufDe, kBufDpre1, kBufDA, kBufDB, kBufDPs, kBufDPr, kBufDhs, kBufDagg,
  kBufDu, kBufDr1, kBufDr2,
  // Force pass only (plans built with forces): d energy / d rbf and / d distance.
  kBufDRbf, kBufDDist,
  // PaiNN (program_painn.h; with kBufRbf, kBufInvCnt, kBufR1, kBufR2, kBufPred,
  // kBufDr1, kBufDr2): cutoff, scalar and vector states, per-block
  // activations, backward scratch, the filter gradient's chunk partial sums.
  kBufPFcut, kBufPS, kBufPV, kBufPM1pre, kBufPM1, kBufPQ, kBufPMix, kBufPNrm, kBufPCtx, kBufPA1pre, kBufPA1, kBufPA,
  kBufPR1pre, kBufPDs, kBufPDv, kBufPDvIn, kBufPDa, kBufPDa1, kBufPDctx, kBufPDmix, kBufPDq, kBufPDm1, kBufPFiltAcc,
  // PaiNN's force pass (with kBufDRbf, kBufDDist): d energy / d u, then d energy / d r, per edge [E x 3].
  kBufPDu,
  // Double backward only (plans built with force training, program_tangent.h):
  // the tangent (the change along x + eps w) of the distances, of every forward
  // activation and of every backward buffer (the twin named after T), and the
  // forces and force-loss weights of forceLossAndGrad.
  kBufTDist, kBufTRbf, kBufTH, kBufTE, kBufTA1, kBufTF1, kBufTF2, kBufTHs, kBufTAgg, kBufTU1, kBufTR1, kBufTR2,
  kBufTPred, kBufTPs, kBufTPr, kBufTDh, kBufTDhNew, kBufTDe, kBufTDpre1, kBufTDA, kBufTDB, kBufTDPs, kBufTDPr,
  kBufTDhs, kBufTDagg, kBufTDu, kBufTDr1, kBufTDr2, kBufForceF, kBufForceW, kBufForceStrain, kBufForceQ,
  // PaiNN's double backward (program_painn.h; with kBufTDist, kBufTRbf, kBufTR1,
  // kBufTR2, kBufTPred, kBufTDr1, kBufTDr2 and the force buffers above): the
  // direction's tangent [E x 3] (first the edge vector's), the cutoff's [E],
  // and the tangent twin of every PaiNN activation and backward buffer.
  kBufPTu, kBufPTFc, kBufPTS, kBufPTV, kBufPTM1pre, kBufPTM1, kBufPTQ, kBufPTMix, kBufPTNrm, kBufPTCtx, kBufPTA1pre,
  kBufPTA1, kBufPTA, kBufPTR1pre, kBufPTDs, kBufPTDv, kBufPTDvIn, kBufPTDa, kBufPTDa1, kBufPTDctx, kBufPTDmix,
  kBufPTDq, kBufPTDm1, kBufPTFiltAcc, kBufCount
};

// Which force buffers a plan holds: none, the force pass's, or the force
// pass's and the double backward's (training on forces).
enum ForceBufs : int { kForcesNone = 0, kForcesPass = 1, kForcesTraining = 2 };

// The value buffer whose tangent a double-backward buffer is (kBufCount for
// the ones without a twin).
inline Buf tangentTwin(Buf b) {
  switch (b) {
    case kBufTRbf: return kBufRbf;
    case kBufTH: return kBufH;
    case kBufTE: return kBufE;
    case kBufTA1: return kBufA1;
    case kBufTF1: return kBufF1;
    case kBufTF2: return kBufF2;
    case kBufTHs: return kBufHs;
    case kBufTAgg: return kBufAgg;
    case kBufTU1: return kBufU1;
    case kBufTR1: return kBufR1;
    case kBufTR2: return kBufR2;
    case kBufTPred: return kBufPred;
    case kBufTPs: return kBufPs;
    case kBufTPr: return kBufPr;
    case kBufTDh: return kBufDh;
    case kBufTDhNew: return kBufDhNew;
    case kBufTDe: return kBufDe;
    case kBufTDpre1: return kBufDpre1;
    case kBufTDA: return kBufDA;
    case kBufTDB: return kBufDB;
    case kBufTDPs: return kBufDPs;
    case kBufTDPr: return kBufDPr;
    case kBufTDhs: return kBufDhs;
    case kBufTDagg: return kBufDagg;
    case kBufTDu: return kBufDu;
    case kBufTDr1: return kBufDr1;
    case kBufTDr2: return kBufDr2;
    default: return kBufCount;
  }
}

// The PaiNN buffer whose tangent a PaiNN double-backward buffer is
// (kBufCount for the ones without a PaiNN twin).
inline Buf painnTangentTwin(Buf b) {
  switch (b) {
    case kBufTRbf: return kBufRbf;
    case kBufTR1: return kBufR1;
    case kBufTR2: return kBufR2;
    case kBufTPred: return kBufPred;
    case kBufTDr1: return kBufDr1;
    case kBufTDr2: return kBufDr2;
    case kBufPTS: return kBufPS;
    case kBufPTV: return kBufPV;
    case kBufPTM1pre: return kBufPM1pre;
    case kBufPTM1: return kBufPM1;
    case kBufPTQ: return kBufPQ;
    case kBufPTMix: return kBufPMix;
    case kBufPTNrm: return kBufPNrm;
    case kBufPTCtx: return kBufPCtx;
    case kBufPTA1pre: return kBufPA1pre;
    case kBufPTA1: return kBufPA1;
    case kBufPTA: return kBufPA;
    case kBufPTR1pre: return kBufPR1pre;
    case kBufPTDs: return kBufPDs;
    case kBufPTDv: return kBufPDv;
    case kBufPTDvIn: return kBufPDvIn;
    case kBufPTDa: return kBufPDa;
    case kBufPTDa1: return kBufPDa1;
    case kBufPTDctx: return kBufPDctx;
    case kBufPTDmix: return kBufPDmix;
    case kBufPTDq: return kBufPDq;
    case kBufPTDm1: return kBufPDm1;
    case kBufPTFiltAcc: return kBufPFiltAcc;
    default: return kBufCount;
  }
}

// PaiNN's backward sums its filter gradient per chunk of this many senders.
constexpr int64_t kPainnSenderChunk = 32;

// PaiNN's buffers (docs/painn.md): F features, T blocks, Tf filter blocks.
inline double painnBufElems(const ModelConfig& c, const PackShape& cap, Buf b, int forces) {
  const double N = (double)cap.nodes, E = (double)cap.edges, G = (double)cap.graphs, F = c.latent, F3 = 3.0 * F,
               K = c.basis, R = c.readoutHidden, T = c.passes, LF = F3 * (c.sharedFilters ? 1 : c.passes);
  switch (b) {
    case kBufRbf: return E * K;
    case kBufPFcut: return E;
    case kBufPS: return (2 * T + 1) * N * F;
    case kBufPV: return (2 * T + 1) * N * F3;
    case kBufPM1pre: case kBufPM1: case kBufPNrm: case kBufPA1pre: case kBufPA1: return T * N * F;
    case kBufPQ: case kBufPA: return T * N * F3;
    case kBufPMix: return T * N * 6 * F;
    case kBufPCtx: return T * N * 2 * F;
    case kBufPR1pre: case kBufR1: case kBufDr1: return N * R;
    case kBufR2: case kBufInvCnt: case kBufDr2: return N;
    case kBufPred: return G;
    case kBufPDs: case kBufPDa1: case kBufPDm1: return N * F;
    case kBufPDv: case kBufPDvIn: case kBufPDa: case kBufPDq: return N * F3;
    case kBufPDctx: return N * 2 * F;
    case kBufPDmix: return N * 6 * F;
    case kBufPFiltAcc: return std::ceil(N / (double)kPainnSenderChunk) * (K + 1) * LF;
    case kBufDRbf: return forces >= kForcesPass ? E * K : 0;
    case kBufDDist: return forces >= kForcesPass ? E : 0;
    case kBufPDu: return forces >= kForcesPass ? 3 * E : 0;
    default: break;
  }
  // The double backward's (force-training plans only).
  if (b < kBufTDist || forces < kForcesTraining) return 0;
  switch (b) {
    case kBufTDist: case kBufPTFc: return E;
    case kBufPTu: return 3 * E;
    case kBufForceF: case kBufForceW: return 3 * N;
    case kBufForceStrain: case kBufForceQ: return 6 * G;
    default: {
      const Buf twin = painnTangentTwin(b);
      return twin == kBufCount ? 0 : painnBufElems(c, cap, twin, kForcesNone);
    }
  }
}

// Elements of buffer b for a capacity (0: not used by this model, or a force
// buffer of a plan without those force buffers; `forces` is a ForceBufs).
inline double bufElems(const ModelConfig& c, const PackShape& cap, Buf b, int forces = kForcesNone) {
  if (c.kind == ModelKind::PaiNN) return painnBufElems(c, cap, b, forces);
  if (b >= kBufTDist) {
    if (forces < kForcesTraining) return 0;
    if (b == kBufTDist) return (double)cap.edges;
    if (b == kBufForceF || b == kBufForceW) return 3.0 * (double)cap.nodes;
    if (b == kBufForceStrain || b == kBufForceQ) return 6.0 * (double)cap.graphs;
    return bufElems(c, cap, tangentTwin(b), kForcesNone);
  }
  const double N = (double)cap.nodes, E = (double)cap.edges, G = (double)cap.graphs, C = c.latent, H = 2.0 * C,
               K = c.basis, R = c.readoutHidden, T = c.passes;
  const bool mpeu = c.kind == ModelKind::MPEU;
  switch (b) {
    case kBufRbf: return E * K;
    case kBufH: return (T + 1) * N * C;
    case kBufE: return mpeu ? T * E * C : 0;
    case kBufA1: return mpeu ? T * E * H : 0;
    case kBufF1: case kBufF2: return T * E * C;
    case kBufHs: case kBufAgg: case kBufU1: return T * N * C;
    case kBufR1: case kBufDr1: return N * R;
    case kBufR2: case kBufInvCnt: case kBufDr2: return N;
    case kBufPred: return G;
    case kBufPs: case kBufPr: case kBufDPs: case kBufDPr: return mpeu ? N * H : 0;
    case kBufDh: case kBufDhNew: case kBufDhs: case kBufDagg: case kBufDu: return N * C;
    case kBufDe: return mpeu ? E * C : 0;
    case kBufDpre1: return mpeu ? E * H : 0;
    case kBufDA: case kBufDB: return E * C;
    case kBufDRbf: return forces >= kForcesPass ? E * K : 0;
    case kBufDDist: return forces >= kForcesPass ? E : 0;
    default: return 0;
  }
}
inline double activationElems(const ModelConfig& c, const PackShape& cap, int forces = kForcesNone) {
  double n = 0;
  for (int b = 0; b < kBufCount; ++b) n += bufElems(c, cap, (Buf)b, forces);
  return n;
}

// The batch as the program sees it (shape and the index arrays the ops read
// are the executor's own).
struct Shape {
  int64_t N, E, G;
};

template <class T, class X>
void forward(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const Shape& s) {
  const int64_t N = s.N, E = s.E, C = c.latent, H = 2 * C, K = c.basis, R = c.readoutHidden;
  const bool mpeu = c.kind == ModelKind::MPEU;
  ModelW<T> W = bindWeights<T>(c, L, const_cast<T*>(params));
  T* rbf = x.buf(kBufRbf);
  T* h = x.buf(kBufH);
  T* invCnt = x.buf(kBufInvCnt);
  {
    auto ph = x.phase(kProfRbf);
    x.rbf(kSiteRbf, E, K, (T)c.rbfGamma, (T)c.rbfSpacing, rbf);
    x.invCount(N, c.meanAggregation, invCnt);
  }
  {
    auto ph = x.phase(kProfEmbed);
    x.embed(kSiteEmbed, N, C, W.embW, W.embB, h);
  }
  for (int t = 0; t < c.passes; ++t) {
    const PassW<T>& w = W.pass[t];
    T* ht = h + t * N * C;
    T* hn = h + (t + 1) * N * C;
    T* f1t = x.buf(kBufF1) + t * E * C;
    T* f2t = x.buf(kBufF2) + t * E * C;
    T* hst = x.buf(kBufHs) + t * N * C;
    T* aggt = x.buf(kBufAgg) + t * N * C;
    T* u1t = x.buf(kBufU1) + t * N * C;
    const T* fin = rbf;
    int64_t Fin = K;
    if (mpeu) {
      auto ph = x.phase(kProfEdgeUpdate);
      const int64_t Ein = t == 0 ? K : C;
      const T* ein = t == 0 ? rbf : x.buf(kBufE) + (t - 1) * E * C;
      T* et1 = x.buf(kBufE) + t * E * C;
      T* a1t = x.buf(kBufA1) + t * E * H;
      T* Ps = x.buf(kBufPs);
      T* Pr = x.buf(kBufPr);
      x.gemm(kSiteEdgePs, t, N, H, C, ht, C, w.w1s, H, false, Ps, H, false, Epi<T>());
      x.gemm(kSiteEdgePr, t, N, H, C, ht, C, w.w1r, H, false, Pr, H, false, Epi<T>());
      Epi<T> g = epi<T>(kGatherSsp, w.b1);
      g.Ps = Ps;
      g.Pr = Pr;
      g.ldp = H;
      x.gemm(kSiteEdgeW1e, t, E, H, Ein, ein, Ein, w.w1e, H, false, a1t, H, false, g);
      x.gemm(kSiteEdgeW2, t, E, C, H, a1t, H, w.w2, C, false, et1, C, false, epi<T>(kBias, w.b2));
      fin = et1;
      Fin = C;
    }
    {
      auto ph = x.phase(kProfMessage);
      x.gemm(kSiteFilterW1, t, E, C, Fin, fin, Fin, w.wf1, C, false, f1t, C, false, epi<T>(kBiasSsp, w.bf1));
      x.gemm(kSiteFilterW2, t, E, C, C, f1t, C, w.wf2, C, false, f2t, C, false, epi<T>(kBiasSsp, w.bf2));
      x.gemm(kSiteSenderW, t, N, C, C, ht, C, w.wl, C, false, hst, C, false, epi<T>(kBias, w.bl));
    }
    {
      auto ph = x.phase(kProfAggregate);
      x.aggregate(kSiteAggregate, t, N, C, f2t, hst, invCnt, aggt);
    }
    {
      auto ph = x.phase(kProfNodeUpdate);
      x.gemm(kSiteNodeU1, t, N, C, C, aggt, C, w.wu1, C, false, u1t, C, false, epi<T>(kBiasSsp, w.bu1));
      x.gemm(kSiteNodeU2, t, N, C, C, u1t, C, w.wu2, C, false, hn, C, false, epi<T>(kBiasRes, w.bu2, ht, C));
    }
  }
  auto ph = x.phase(kProfReadout);
  const T* hT = h + (int64_t)c.passes * N * C;
  T* r1 = x.buf(kBufR1);
  T* r2 = x.buf(kBufR2);
  x.gemm(kSiteReadoutR1, -1, N, R, C, hT, C, W.r1w, R, false, r1, R, false, epi<T>(kBiasSsp, W.r1b));
  x.gemm(kSiteReadoutR2, -1, N, 1, R, r1, R, W.r2w, 1, false, r2, 1, false, epi<T>(kBias, W.r2b));
  x.readoutLoss(kSiteLoss, r2, x.buf(kBufPred));
}

// What one backward computes: the loss gradient of every parameter (a
// training step: grads set, loss seed), or the gradient of the sum of the
// graphs' energies to the radial basis (the force pass: dRbf set, energy
// seed, no parameter gradient computed).
template <class T>
struct BackwardTarget {
  T* grads = nullptr;
  T* dRbf = nullptr;  // [E x K], overwritten
  bool energySeed = false;
};

template <class T, class X>
void backwardTo(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const BackwardTarget<T>& tg,
                const Shape& s) {
  const int64_t N = s.N, E = s.E, C = c.latent, H = 2 * C, K = c.basis, R = c.readoutHidden;
  const bool mpeu = c.kind == ModelKind::MPEU;
  const bool wg = tg.grads != nullptr;  // parameter gradients wanted
  ModelW<T> W = bindWeights<T>(c, L, const_cast<T*>(params));
  ModelW<T> D = wg ? bindWeights<T>(c, L, tg.grads) : W;  // D unused without grads
  T* h = x.buf(kBufH);
  T* rbf = x.buf(kBufRbf);
  T* invCnt = x.buf(kBufInvCnt);
  T* dh = x.buf(kBufDh);
  T* dhNew = x.buf(kBufDhNew);
  {
    auto ph = x.phase(kProfReadoutBwd);
    T* dr2 = x.buf(kBufDr2);
    T* dr1 = x.buf(kBufDr1);
    T* r1 = x.buf(kBufR1);
    if (tg.energySeed) x.energySeed(kSiteForceSeed, dr2);
    else x.readoutLossBackward(kSiteLossBwd, dr2);
    if (wg) x.gemmTN(kSiteReadoutR2Dw, -1, N, R, 1, r1, R, dr2, 1, D.r2w, D.r2b, false);
    x.readoutBwdHidden(kSiteReadoutDr1, N, R, dr2, W.r2w, r1, dr1);
    const T* hT = h + (int64_t)c.passes * N * C;
    if (wg) x.gemmTN(kSiteReadoutR1Dw, -1, N, C, R, hT, C, dr1, R, D.r1w, D.r1b, false);
    x.gemm(kSiteReadoutDx, -1, N, C, R, dr1, R, W.r1w, R, true, dh, C, false, Epi<T>());
  }
  if (mpeu && E > 0) x.zero(x.buf(kBufDe), E * C);
  for (int t = c.passes - 1; t >= 0; --t) {
    const PassW<T>& w = W.pass[t];
    const PassW<T>& dw = D.pass[t];
    const T* ht = h + t * N * C;
    const T* f1t = x.buf(kBufF1) + t * E * C;
    const T* f2t = x.buf(kBufF2) + t * E * C;
    const T* hst = x.buf(kBufHs) + t * N * C;
    const T* aggt = x.buf(kBufAgg) + t * N * C;
    const T* u1t = x.buf(kBufU1) + t * N * C;
    T* du = x.buf(kBufDu);
    T* dagg = x.buf(kBufDagg);
    {
      auto ph = x.phase(kProfNodeUpdateBwd);
      if (wg) x.gemmTN(kSiteNodeU2Dw, t, N, C, C, u1t, C, dh, C, dw.wu2, dw.bu2, false);
      x.gemm(kSiteNodeU2Dx, t, N, C, C, dh, C, w.wu2, C, true, du, C, false, epi<T>(kSspGrad, (const T*)nullptr, u1t, C));
      if (wg) x.gemmTN(kSiteNodeU1Dw, t, N, C, C, aggt, C, du, C, dw.wu1, dw.bu1, false);
      x.gemm(kSiteNodeU1Dx, t, N, C, C, du, C, w.wu1, C, true, dagg, C, false, Epi<T>());
      x.copy(dhNew, dh, N * C);
    }
    T* dA = x.buf(kBufDA);  // d pre-activation of filter layer 2
    T* dB = x.buf(kBufDB);  // d pre-activation of filter layer 1
    T* dhs = x.buf(kBufDhs);
    {
      auto ph = x.phase(kProfMessageBwd);
      x.messageBwdEdge(kSiteMsgDf2, t, E, C, dagg, invCnt, hst, f2t, dA);
      x.messageBwdSender(kSiteMsgDhs, t, N, C, dagg, invCnt, f2t, dhs);
      if (wg) x.gemmTN(kSiteSenderDw, t, N, C, C, ht, C, dhs, C, dw.wl, dw.bl, false);
      x.gemm(kSiteSenderDx, t, N, C, C, dhs, C, w.wl, C, true, dhNew, C, true, Epi<T>());
      if (wg) x.gemmTN(kSiteFilterW2Dw, t, E, C, C, f1t, C, dA, C, dw.wf2, dw.bf2, false);
      x.gemm(kSiteFilterW2Dx, t, E, C, C, dA, C, w.wf2, C, true, dB, C, false, epi<T>(kSspGrad, (const T*)nullptr, f1t, C));
      const T* fin = mpeu ? x.buf(kBufE) + t * E * C : rbf;
      const int64_t Fin = mpeu ? C : K;
      if (wg) x.gemmTN(kSiteFilterW1Dw, t, E, Fin, C, fin, Fin, dB, C, dw.wf1, dw.bf1, false);
      // SchNet's filter input is the basis itself: its gradient summed over the passes.
      if (!mpeu && tg.dRbf)
        x.gemm(kSiteForceRbfDx, t, E, K, C, dB, C, w.wf1, C, true, tg.dRbf, K, t != c.passes - 1, Epi<T>());
    }
    if (mpeu) {
      auto ph = x.phase(kProfEdgeUpdateBwd);
      T* de = x.buf(kBufDe);
      T* dpre1 = x.buf(kBufDpre1);
      const T* a1t = x.buf(kBufA1) + t * E * H;
      const int64_t Ein = t == 0 ? K : C;
      const T* ein = t == 0 ? rbf : x.buf(kBufE) + (t - 1) * E * C;
      T* dPs = x.buf(kBufDPs);
      T* dPr = x.buf(kBufDPr);
      x.gemm(kSiteFilterW1Dx, t, E, C, C, dB, C, w.wf1, C, true, de, C, true, Epi<T>());
      if (wg) x.gemmTN(kSiteEdgeW2Dw, t, E, H, C, a1t, H, de, C, dw.w2, dw.b2, false);
      x.gemm(kSiteEdgeW2Dx, t, E, H, C, de, C, w.w2, C, true, dpre1, H, false, epi<T>(kSspGrad, (const T*)nullptr, a1t, H));
      if (wg) x.gemmTN(kSiteEdgeW1eDw, t, E, Ein, H, ein, Ein, dpre1, H, dw.w1e, dw.b1, false);
      x.csrSenders(kSiteEdgeGatherBwd, t, N, H, dpre1, dPs);
      x.csrReceivers(kSiteEdgeSegSum, t, N, H, dpre1, dPr);
      if (wg) x.gemmTN(kSiteEdgeW1sDw, t, N, C, H, ht, C, dPs, H, dw.w1s, (T*)nullptr, false);
      if (wg) x.gemmTN(kSiteEdgeW1rDw, t, N, C, H, ht, C, dPr, H, dw.w1r, (T*)nullptr, false);
      x.gemm(kSiteEdgeW1sDx, t, N, C, H, dPs, H, w.w1s, H, true, dhNew, C, true, Epi<T>());
      x.gemm(kSiteEdgeW1rDx, t, N, C, H, dPr, H, w.w1r, H, true, dhNew, C, true, Epi<T>());
      if (t > 0) x.gemm(kSiteEdgeW1eDx, t, E, Ein, H, dpre1, H, w.w1e, H, true, de, Ein, false, Epi<T>());
      else if (tg.dRbf) x.gemm(kSiteForceRbfDx, t, E, K, H, dpre1, H, w.w1e, H, true, tg.dRbf, K, false, Epi<T>());
    }
    std::swap(dh, dhNew);
  }
  if (!wg) return;
  auto ph = x.phase(kProfEmbedBwd);
  x.embedBwd(kSiteEmbedBwd, N, C, c.numClasses, dh, D.embW, D.embB);
}

template <class T, class X>
void backward(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, T* grads, const Shape& s) {
  BackwardTarget<T> tg;
  tg.grads = grads;
  backwardTo<T>(x, c, L, params, tg, s);
}

// The force pass, after forward() on the same batch: the energy backward to
// the distances (no parameter gradients), then the deterministic scatter to
// atoms, F_i = -dE/dx_i with r_k = x_snd + shift - x_rcv (the neighbour
// code's convention, u_k = r_k / d_k), and, when W is non-null, the strain
// derivative dE/d strain per graph (stress = W / volume, ASE's convention).
// F is [N x 3], W [G x 6]; both in the model's (standardised) energy units.
template <class T, class X>
void forces(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const Shape& s, T* F, T* W) {
  BackwardTarget<T> tg;
  tg.dRbf = x.buf(kBufDRbf);
  tg.energySeed = true;
  backwardTo<T>(x, c, L, params, tg, s);
  auto ph = x.phase(kProfForces);
  T* ddist = x.buf(kBufDDist);
  x.rbfBackward(kSiteForceRbfBwd, s.E, (int64_t)c.basis, (T)c.rbfGamma, (T)c.rbfSpacing, x.buf(kBufRbf), tg.dRbf, ddist);
  x.edgeForces(kSiteForceScatter, s.N, ddist, F);
  if (W) x.strainDerivative(kSiteForceVirial, s.G, ddist, W);
}

}  // namespace program
}  // namespace gnn
