// The PaiNN model program (docs/painn.md): forward and backward written once
// over executor ops, on the program's activation layout (program.h: Buf,
// painnBufElems). The CPU executor (model_internal.h, CpuExec; its PaiNN
// kernels in painn.cpp) runs it; the CUDA executor has no PaiNN kernels and
// refuses PaiNN plans (ERR_GNN_CUDA_UNSUPPORTED), so it never instantiates
// these functions.
//
// Scalar features s [N x F], vector features v [N x 3 x F] (xyz-major per
// node), T interaction blocks of message + update, a sinc radial basis with a
// cosine cutoff, SiLU. Every matrix product goes through the executor's
// gemm / gemmTN (program.h) with its kernel site; PaiNN's epilogues are
// kBiasSilu, kSiluGrad, kPainnUpdate and kPainnNormBwd. Beyond program.h's
// ops (embed, invCount, readoutLoss, readoutLossBackward, embedBwd, zero,
// copy), an executor provides:
//   painnRbf(site, E, K, cutoff, rbf, fcut)
//       rbf[k,n] = sin((n+1) pi d_k / rc) / d_k, fcut[k] = (cos(pi d_k / rc) + 1) / 2
//       inside the cutoff (both 0 beyond it and at d = 0)
//   painnMessage(site, pass, N, F, K, LF, Wf, bf, rbf, q, fcut, invCnt, sIn, vIn, sMid, vMid, hasV)
//       the per-edge-block fused filter product W_k = (rbf_k Wf + bf) fc_k
//       (Wf: this block's columns, row stride LF) and the receiver sums:
//       sMid_i = sIn_i + c_i sum_{k->i} xs_k,
//       vMid_i = vIn_i + c_i sum_{k->i} (xvv_k vIn_j + xvs_k u_k), x_k = q_j * W_k
//       (hasV false: vIn is zero, its term skipped)
//   painnNorm(site, pass, N, F, mix, sMid, nrm, ctx)
//       nrm = |V| (per feature over xyz, + 1e-8 under the root), ctx = [sMid | nrm]
//   painnReadoutDr1(site, N, R, dr2, w2, r1pre, dr1)   dr1 = dr2 w2^T * SiLU'(r1pre)
//   painnUpdateBwd(site, pass, N, F, a, mix, ds, dv, da, dmix)
//       the backward of kPainnUpdate's combination: da and dmix (overwritten)
//   painnMessageBwd(site, pass, N, F, K, LF, Wf, bf, rbf, q, fcut, invCnt, vIn, ds, dv, dq, dvIn, acc, fo,
//                   hasV, mean)
//       the sender-ordered backward of painnMessage (sendPerm, no atomics):
//       dq, dvIn = dv + the vector path's gradient, and each edge's filter
//       gradient added into its chunk's partial sums acc [(K + 1) x LF] at
//       columns fo.. (chunks of kPainnSenderChunk senders); the force pass's
//       variant below
//   painnFilterReduce(site, chunks, K, LF, acc, gW, gb)
//       gW [K x LF], gb [LF] = the chunks' partial sums, added in index order
// and, for the force pass (painnForces):
//   painnMessageBwd(..., dRbf, dFc, dU) with acc null: instead of the filter
//       gradient, adds each edge's dE/d rbf_k [K], dE/d fc_k and dE/d u_k [3]
//   painnEdgeGrad(site, E, K, cutoff, dRbf, dFc, g)
//       g [E x 3], holding dE/du_k, becomes dE/dr_k = dd u_k + (I - u_k u_k^T) g_k / d_k,
//       dd = dFc fc'(d_k) + sum_n dRbf[k,n] rbf_n'(d_k)
//   edgeForcesVec(site, N, g, F)      F[n] = sum_{k: rcv[k]=n} g_k - sum_{k: snd[k]=n} g_k
//   strainDerivativeVec(site, G, g, W) W[g] = sum_{k in g} sym(g_k (x) d_k u_k), Voigt
// Every reduction has a fixed order: bitwise identical for any thread count.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/models/program.h"
#include "core/models/program_tangent.h"

namespace gnn {
namespace program {

template <class T>
struct PainnBlockW {
  T *m1, *mb1, *m2, *mb2, *mix, *u1, *ub1, *u2, *ub2;
};
template <class T>
struct PainnW {
  T *embW, *embB, *fw, *fb, *r1w, *r1b, *r2w, *r2b;
  std::vector<PainnBlockW<T>> blk;
};

// Pointers in the order of painnLayout (painn.cpp).
template <class T>
PainnW<T> bindPainn(const ModelConfig& c, const ParamLayout& L, T* base) {
  PainnW<T> w{};
  size_t i = 0;
  auto next = [&]() { return base + L.entries[i++].offset; };
  w.embW = next();
  w.embB = next();
  w.fw = next();
  w.fb = next();
  w.blk.resize(c.passes);
  for (auto& b : w.blk) {
    b.m1 = next(); b.mb1 = next(); b.m2 = next(); b.mb2 = next();
    b.mix = next();
    b.u1 = next(); b.ub1 = next(); b.u2 = next(); b.ub2 = next();
  }
  w.r1w = next(); w.r1b = next(); w.r2w = next(); w.r2b = next();
  return w;
}

template <class T>
Epi<T> biasSilu(const T* bias, T* act) {
  Epi<T> e = epi<T>(kBiasSilu, bias);
  e.val = act;
  return e;
}
template <class T>
Epi<T> siluGrad(const T* pre) {
  return epi<T>(kSiluGrad, (const T*)nullptr, pre);
}

template <class T, class X>
void painnForward(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const Shape& sh) {
  const int64_t N = sh.N, E = sh.E, F = c.latent, F3 = 3 * F, K = c.basis, R = c.readoutHidden,
                LF = F3 * (c.sharedFilters ? 1 : c.passes);
  PainnW<T> W = bindPainn<T>(c, L, const_cast<T*>(params));
  T* rbf = x.buf(kBufRbf);
  T* fcut = x.buf(kBufPFcut);
  T* S = x.buf(kBufPS);
  T* V = x.buf(kBufPV);
  T* ic = x.buf(kBufInvCnt);
  {
    auto ph = x.phase(kProfRbf);
    x.painnRbf(kSitePRbf, E, K, (T)c.cutoff, rbf, fcut);
  }
  {
    auto ph = x.phase(kProfEmbed);
    x.embed(kSiteEmbed, N, F, W.embW, W.embB, S);
    x.zero(V, N * F3);
    x.invCount(N, c.meanAggregation, ic);
  }
  for (int t = 0; t < c.passes; ++t) {
    const PainnBlockW<T>& w = W.blk[t];
    const T* sIn = S + (2 * t) * N * F;
    T* sMid = S + (2 * t + 1) * N * F;
    T* sOut = S + (2 * t + 2) * N * F;
    const T* vIn = V + (2 * t) * N * F3;
    T* vMid = V + (2 * t + 1) * N * F3;
    T* vOut = V + (2 * t + 2) * N * F3;
    T* m1pre = x.buf(kBufPM1pre) + t * N * F;
    T* m1 = x.buf(kBufPM1) + t * N * F;
    T* q = x.buf(kBufPQ) + t * N * F3;
    const int64_t fo = c.sharedFilters ? 0 : t * F3;  // this block's filter columns
    {
      auto ph = x.phase(kProfMessage);
      x.gemm(kSitePMsgW1, t, N, F, F, sIn, F, w.m1, F, false, m1pre, F, false, biasSilu<T>(w.mb1, m1));
      x.gemm(kSitePMsgW2, t, N, F3, F, m1, F, w.m2, F3, false, q, F3, false, epi<T>(kBias, w.mb2));
    }
    {
      auto ph = x.phase(kProfAggregate);
      // v = 0 before the first block.
      x.painnMessage(kSitePMsgAgg, t, N, F, K, LF, W.fw + fo, W.fb + fo, rbf, q, fcut, ic, sIn, vIn, sMid, vMid, t > 0);
    }
    {
      auto ph = x.phase(kProfNodeUpdate);
      T* mix = x.buf(kBufPMix) + t * N * 6 * F;
      T* nrm = x.buf(kBufPNrm) + t * N * F;
      T* ctx = x.buf(kBufPCtx) + t * N * 2 * F;
      T* a1pre = x.buf(kBufPA1pre) + t * N * F;
      T* a1 = x.buf(kBufPA1) + t * N * F;
      T* a = x.buf(kBufPA) + t * N * F3;
      // [V | U] for the 3N rows (node, xyz) of v.
      x.gemm(kSitePMix, t, 3 * N, 2 * F, F, vMid, F, w.mix, 2 * F, false, mix, 2 * F, false, Epi<T>());
      x.painnNorm(kSitePNorm, t, N, F, mix, sMid, nrm, ctx);
      x.gemm(kSitePUpdW1, t, N, F, 2 * F, ctx, 2 * F, w.u1, F, false, a1pre, F, false, biasSilu<T>(w.ub1, a1));
      Epi<T> up = epi<T>(kPainnUpdate, w.ub2, mix, 6 * F);
      up.sIn = sMid;
      up.vIn = vMid;
      up.sOut = sOut;
      up.vOut = vOut;
      x.gemm(kSitePUpdW2, t, N, F3, F, a1, F, w.u2, F3, false, a, F3, false, up);
    }
  }
  auto ph = x.phase(kProfReadout);
  const T* sT = S + (2 * (int64_t)c.passes) * N * F;
  T* r1pre = x.buf(kBufPR1pre);
  T* r1 = x.buf(kBufR1);
  T* r2 = x.buf(kBufR2);
  x.gemm(kSiteReadoutR1, -1, N, R, F, sT, F, W.r1w, R, false, r1pre, R, false, biasSilu<T>(W.r1b, r1));
  x.gemm(kSiteReadoutR2, -1, N, 1, R, r1, R, W.r2w, 1, false, r2, 1, false, epi<T>(kBias, W.r2b));
  x.readoutLoss(kSiteLoss, r2, x.buf(kBufPred));
}

// What one PaiNN backward computes: the loss gradient of every parameter (a
// training step: grads set, loss seed), or, for the force pass, the gradient
// of the sum of the graphs' energies to each edge's basis, cutoff and
// direction (force set: energy seed, no parameter gradient computed).
template <class T, class X>
void painnBackwardTo(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, T* grads, bool force,
                     const Shape& sh) {
  const int64_t N = sh.N, E = sh.E, F = c.latent, F3 = 3 * F, K = c.basis, R = c.readoutHidden,
                LF = F3 * (c.sharedFilters ? 1 : c.passes);
  const bool wg = grads != nullptr;  // parameter gradients wanted
  PainnW<T> W = bindPainn<T>(c, L, const_cast<T*>(params));
  PainnW<T> D = wg ? bindPainn<T>(c, L, grads) : W;  // D unused without grads
  // The force pass's per-edge outputs, summed over the blocks.
  T* dRbf = force ? x.buf(kBufDRbf) : nullptr;
  T* dFc = force ? x.buf(kBufDDist) : nullptr;
  T* dU = force ? x.buf(kBufPDu) : nullptr;
  if (force) {
    x.zero(dRbf, E * K);
    x.zero(dFc, E);
    x.zero(dU, 3 * E);
  }
  const T* S = x.buf(kBufPS);
  const T* V = x.buf(kBufPV);
  const T* rbf = x.buf(kBufRbf);
  const T* fcut = x.buf(kBufPFcut);
  const T* ic = x.buf(kBufInvCnt);
  T* ds = x.buf(kBufPDs);
  T* dv = x.buf(kBufPDv);
  T* dvIn = x.buf(kBufPDvIn);
  T* acc = wg ? x.buf(kBufPFiltAcc) : nullptr;
  const int64_t chunks = (N + kPainnSenderChunk - 1) / kPainnSenderChunk;
  if (wg) x.zero(acc, chunks * (K + 1) * LF);
  {
    auto ph = x.phase(kProfReadoutBwd);
    T* dr2 = x.buf(kBufDr2);
    T* dr1 = x.buf(kBufDr1);
    if (force) x.energySeed(kSiteForceSeed, dr2);
    else x.readoutLossBackward(kSiteLossBwd, dr2);
    if (wg) x.gemmTN(kSiteReadoutR2Dw, -1, N, R, 1, x.buf(kBufR1), R, dr2, 1, D.r2w, D.r2b, false);
    x.painnReadoutDr1(kSiteReadoutDr1, N, R, dr2, W.r2w, x.buf(kBufPR1pre), dr1);
    const T* sT = S + (2 * (int64_t)c.passes) * N * F;
    if (wg) x.gemmTN(kSiteReadoutR1Dw, -1, N, F, R, sT, F, dr1, R, D.r1w, D.r1b, false);
    x.gemm(kSiteReadoutDx, -1, N, F, R, dr1, R, W.r1w, R, true, ds, F, false, Epi<T>());
    x.zero(dv, N * F3);
  }
  for (int t = c.passes - 1; t >= 0; --t) {
    const PainnBlockW<T>& w = W.blk[t];
    const PainnBlockW<T>& dw = D.blk[t];
    const T* sIn = S + (2 * t) * N * F;
    const T* vIn = V + (2 * t) * N * F3;
    const T* vMid = V + (2 * t + 1) * N * F3;
    const T* mix = x.buf(kBufPMix) + t * N * 6 * F;
    const T* nrm = x.buf(kBufPNrm) + t * N * F;
    const T* ctx = x.buf(kBufPCtx) + t * N * 2 * F;
    const T* a1pre = x.buf(kBufPA1pre) + t * N * F;
    const T* a1 = x.buf(kBufPA1) + t * N * F;
    const T* a = x.buf(kBufPA) + t * N * F3;
    T* da = x.buf(kBufPDa);
    T* da1 = x.buf(kBufPDa1);
    T* dctx = x.buf(kBufPDctx);
    T* dmix = x.buf(kBufPDmix);
    {
      auto ph = x.phase(kProfNodeUpdateBwd);
      x.painnUpdateBwd(kSitePUpdApplyBwd, t, N, F, a, mix, ds, dv, da, dmix);
      if (wg) x.gemmTN(kSitePUpdW2Dw, t, N, F, F3, a1, F, da, F3, dw.u2, dw.ub2, false);
      x.gemm(kSitePUpdW2Dx, t, N, F, F3, da, F3, w.u2, F3, true, da1, F, false, siluGrad<T>(a1pre));
      if (wg) x.gemmTN(kSitePUpdW1Dw, t, N, 2 * F, F, ctx, 2 * F, da1, F, dw.u1, dw.ub1, false);
      // dctx = da1 W1^T; its epilogue (rows hot in cache) adds the gradients
      // it carries: ds += dctx_s, dV += d|Vv| V / |Vv|.
      Epi<T> nb = epi<T>(kPainnNormBwd, (const T*)nullptr, mix, 6 * F);
      nb.aux2 = nrm;
      nb.sOut = ds;
      nb.vOut = dmix;
      x.gemm(kSitePUpdW1Dx, t, N, 2 * F, F, da1, F, w.u1, F, true, dctx, 2 * F, false, nb);
      if (wg) x.gemmTN(kSitePMixDw, t, 3 * N, F, 2 * F, vMid, F, dmix, 2 * F, dw.mix, (T*)nullptr, false);
      x.gemm(kSitePMixDx, t, 3 * N, F, 2 * F, dmix, 2 * F, w.mix, 2 * F, true, dv, F, true, Epi<T>());
    }
    // ds, dv now hold the gradients of s_mid, v_mid.
    {
      auto ph = x.phase(kProfMessageBwd);
      const T* q = x.buf(kBufPQ) + t * N * F3;
      const T* m1pre = x.buf(kBufPM1pre) + t * N * F;
      const T* m1 = x.buf(kBufPM1) + t * N * F;
      T* dq = x.buf(kBufPDq);
      T* dm1 = x.buf(kBufPDm1);
      const int64_t fo = c.sharedFilters ? 0 : t * F3;
      x.painnMessageBwd(kSitePMsgBwd, t, N, F, K, LF, W.fw + fo, W.fb + fo, rbf, q, fcut, ic, vIn, ds, dv, dq, dvIn,
                        acc, fo, t > 0, c.meanAggregation, dRbf, dFc, dU);
      if (wg) x.gemmTN(kSitePMsgW2Dw, t, N, F, F3, m1, F, dq, F3, dw.m2, dw.mb2, false);
      x.gemm(kSitePMsgW2Dx, t, N, F, F3, dq, F3, w.m2, F3, true, dm1, F, false, siluGrad<T>(m1pre));
      if (wg) x.gemmTN(kSitePMsgW1Dw, t, N, F, F, sIn, F, dm1, F, dw.m1, dw.mb1, false);
      x.gemm(kSitePMsgW1Dx, t, N, F, F, dm1, F, w.m1, F, true, ds, F, true, Epi<T>());
    }
    std::swap(dv, dvIn);
  }
  if (!wg) return;
  {
    auto ph = x.phase(kProfEdgeUpdateBwd);
    x.painnFilterReduce(kSitePFilterDw, chunks, K, LF, acc, D.fw, D.fb);
  }
  auto ph = x.phase(kProfEmbedBwd);
  x.embedBwd(kSiteEmbedBwd, N, F, c.numClasses, ds, D.embW, D.embB);
}

template <class T, class X>
void painnBackward(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, T* grads, const Shape& s) {
  painnBackwardTo<T>(x, c, L, params, grads, false, s);
}

// PaiNN's force pass, after painnForward() on the same batch (program.h's
// forces(): F [N x 3], W [G x 6] when non-null). The energy depends on an
// edge's vector r_k (= x_snd + shift - x_rcv) through its distance d_k (the
// basis and the cutoff) and its direction u_k = r_k / d_k (the vector
// messages), so dE/dr_k = dE/dd_k u_k + (I - u_k u_k^T) dE/du_k / d_k; the
// scatter to atoms and the strain derivative take that vector per edge.
template <class T, class X>
void painnForces(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const Shape& s, T* F, T* W) {
  painnBackwardTo<T>(x, c, L, params, (T*)nullptr, true, s);
  auto ph = x.phase(kProfForces);
  T* g = x.buf(kBufPDu);
  x.painnEdgeGrad(kSiteForceRbfBwd, s.E, (int64_t)c.basis, (T)c.cutoff, x.buf(kBufDRbf), x.buf(kBufDDist), g);
  x.edgeForcesVec(kSiteForceScatter, s.N, g, F);
  if (W) x.strainDerivativeVec(kSiteForceVirial, s.G, g, W);
}

// ---- The double backward (docs/forces.md, docs/painn.md): forward-over-reverse
// with explicit tangent ops, as program_tangent.h does for MPEU and SchNet.
//
// Along x + eps w (and, with strain weights, each cell strained with its
// atoms), an edge vector changes by r'_k = w[snd] - w[rcv] - Q_g r_k; its
// distance by d' = u . r', its direction by u' = (r' - u d') / d, so the basis
// by rbf' = rbf'(d) d' and the cutoff by fc' = fc'(d) d'. PaiNN sees the
// positions through all three (the vector messages carry u), so unlike MPEU
// and SchNet the direction's tangent enters the message pass too. The
// weights have zero tangent: a product A W has the tangent A' W (the same
// product on the tangent rows), a weight gradient X^T D the tangent X'^T D +
// X^T D' (two products, fixed order), SiLU its chain rule through the stored
// pre-activation (SiLU'' for the backward's duals).
//
// The ops beyond the energy program's (CPU executor, painn.cpp):
//   painnEdgeVecTangent(site, E, w, rT)          rT[k] = w[snd] - w[rcv]
//   painnStrainTangent(site, G, q, rT)           rT[k] -= Q_g r_k (Voigt weights q_g, off-diagonals halved)
//   painnEdgeTangent(site, E, K, cutoff, uT, ddT, rbfT, fcT)
//       uT holds r'; writes d', u' (into uT), rbf', fc' (0 beyond the cutoff)
//   painnMessageTangent(site, pass, args)        sMid', vMid' (PainnDualArgs)
//   painnNormTangent(site, pass, N, F, mix, mixT, nrm, sMidT, nrmT, ctxT)
//   painnSiluTangent(site, pass, n, pre, preT, actT)      actT = SiLU'(pre) preT
//   painnUpdateTangent(site, pass, N, F, a, aT, mix, mixT, sMidT, vMidT, sOutT, vOutT)
//   painnReadoutDr1Tangent(site, N, R, dr2, dr2T, w2, r1pre, r1preT, dr1T)
//   painnUpdateBwdTangent(site, pass, N, F, a, aT, mix, mixT, ds, dsT, dv, dvT, daT, dmixT)
//   painnNormBwdTangent(site, pass, N, F, dctx, dctxT, mix, mixT, nrm, nrmT, dsT, dmixT)
//   painnSiluGradDual(site, pass, n, pre, preT, val, tan)
//       tan = tan SiLU'(pre) + val SiLU''(pre) preT, then val *= SiLU'(pre)
//   painnMessageBwdDual(site, pass, args)        dq, dvIn and their tangents, the
//       filter gradient's tangent (and its value when args.acc is set) per chunk
// and painnFilterReduce on the tangent's chunk sums. Every reduction keeps a
// fixed order (bitwise identical for any thread count).

// The message passes' operands (forward tangent and dual backward).
template <class T>
struct PainnDualArgs {
  int64_t N = 0, F = 0, K = 0, LF = 0, fo = 0;
  bool hasV = false;
  const T *Wf = nullptr, *bf = nullptr, *rbf = nullptr, *rbfT = nullptr, *fcut = nullptr, *fcT = nullptr,
          *uT = nullptr, *ic = nullptr, *q = nullptr, *qT = nullptr, *vIn = nullptr, *vInT = nullptr;
  // The forward tangent's.
  const T* sInT = nullptr;
  T *sMidT = nullptr, *vMidT = nullptr;
  // The dual backward's: the gradients of s_mid, v_mid and their tangents in;
  // dq, dvIn, their tangents, the filter gradient chunk sums (acc may be null) out.
  const T *ds = nullptr, *dsT = nullptr, *dv = nullptr, *dvT = nullptr;
  T *dq = nullptr, *dqT = nullptr, *dvIn = nullptr, *dvInT = nullptr, *acc = nullptr, *accT = nullptr;
};

// After painnForward() on the same batch: the tangents of every activation
// along w [N x 3] and, when qS [G x 6] is non-null, along the strains qS (as
// program_tangent.h's forwardTangent): the tangent of the summed energies is
// then -(w . F + qS . dE/d strain).
template <class T, class X>
void painnForwardTangent(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const Shape& sh,
                         const T* w, const T* qS = nullptr) {
  const int64_t N = sh.N, E = sh.E, F = c.latent, F3 = 3 * F, K = c.basis, R = c.readoutHidden,
                LF = F3 * (c.sharedFilters ? 1 : c.passes);
  PainnW<T> W = bindPainn<T>(c, L, const_cast<T*>(params));
  auto ph = x.phase(kProfTangentFwd);
  T* uT = x.buf(kBufPTu);
  T* rbfT = x.buf(kBufTRbf);
  T* fcT = x.buf(kBufPTFc);
  x.painnEdgeVecTangent(kSiteTanDist, E, w, uT);
  if (qS) x.painnStrainTangent(kSiteTanStrain, sh.G, qS, uT);
  x.painnEdgeTangent(kSitePTanEdge, E, K, (T)c.cutoff, uT, x.buf(kBufTDist), rbfT, fcT);
  const T* S = x.buf(kBufPS);
  const T* V = x.buf(kBufPV);
  T* ST = x.buf(kBufPTS);
  T* VT = x.buf(kBufPTV);
  x.zero(ST, N * F);  // the embedding does not depend on positions; v = 0 before the first block
  x.zero(VT, N * F3);
  for (int t = 0; t < c.passes; ++t) {
    const PainnBlockW<T>& bw = W.blk[t];
    const T* vIn = V + (2 * t) * N * F3;
    const T* sInT = ST + (2 * t) * N * F;
    T* sMidT = ST + (2 * t + 1) * N * F;
    T* sOutT = ST + (2 * t + 2) * N * F;
    const T* vInT = VT + (2 * t) * N * F3;
    T* vMidT = VT + (2 * t + 1) * N * F3;
    T* vOutT = VT + (2 * t + 2) * N * F3;
    const T* m1pre = x.buf(kBufPM1pre) + t * N * F;
    T* m1preT = x.buf(kBufPTM1pre) + t * N * F;
    T* m1T = x.buf(kBufPTM1) + t * N * F;
    T* qT = x.buf(kBufPTQ) + t * N * F3;
    x.gemm(kSiteTanNodeGemm, t, N, F, F, sInT, F, bw.m1, F, false, m1preT, F, false, Epi<T>());
    x.painnSiluTangent(kSitePTanSilu, t, N * F, m1pre, m1preT, m1T);
    x.gemm(kSiteTanNodeGemm, t, N, F3, F, m1T, F, bw.m2, F3, false, qT, F3, false, Epi<T>());
    PainnDualArgs<T> a;
    a.N = N; a.F = F; a.K = K; a.LF = LF; a.hasV = t > 0;
    a.fo = c.sharedFilters ? 0 : t * F3;
    a.Wf = W.fw + a.fo; a.bf = W.fb + a.fo;
    a.rbf = x.buf(kBufRbf); a.rbfT = rbfT; a.fcut = x.buf(kBufPFcut); a.fcT = fcT; a.uT = uT;
    a.ic = x.buf(kBufInvCnt);
    a.q = x.buf(kBufPQ) + t * N * F3; a.qT = qT;
    a.vIn = vIn; a.vInT = vInT; a.sInT = sInT; a.sMidT = sMidT; a.vMidT = vMidT;
    x.painnMessageTangent(kSitePTanMsg, t, a);
    const T* mix = x.buf(kBufPMix) + t * N * 6 * F;
    T* mixT = x.buf(kBufPTMix) + t * N * 6 * F;
    T* nrmT = x.buf(kBufPTNrm) + t * N * F;
    T* ctxT = x.buf(kBufPTCtx) + t * N * 2 * F;
    T* a1preT = x.buf(kBufPTA1pre) + t * N * F;
    T* a1T = x.buf(kBufPTA1) + t * N * F;
    T* aT = x.buf(kBufPTA) + t * N * F3;
    x.gemm(kSiteTanNodeGemm, t, 3 * N, 2 * F, F, vMidT, F, bw.mix, 2 * F, false, mixT, 2 * F, false, Epi<T>());
    x.painnNormTangent(kSitePTanNorm, t, N, F, mix, mixT, x.buf(kBufPNrm) + t * N * F, sMidT, nrmT, ctxT);
    x.gemm(kSiteTanNodeGemm, t, N, F, 2 * F, ctxT, 2 * F, bw.u1, F, false, a1preT, F, false, Epi<T>());
    x.painnSiluTangent(kSitePTanSilu, t, N * F, x.buf(kBufPA1pre) + t * N * F, a1preT, a1T);
    x.gemm(kSiteTanNodeGemm, t, N, F3, F, a1T, F, bw.u2, F3, false, aT, F3, false, Epi<T>());
    x.painnUpdateTangent(kSitePTanUpdate, t, N, F, x.buf(kBufPA) + t * N * F3, aT, mix, mixT, sMidT, vMidT, sOutT,
                         vOutT);
  }
  (void)S;
  const T* sTT = ST + (2 * (int64_t)c.passes) * N * F;
  T* r1preT = x.buf(kBufPTR1pre);
  T* r1T = x.buf(kBufTR1);
  T* r2T = x.buf(kBufTR2);
  x.gemm(kSiteTanNodeGemm, -1, N, R, F, sTT, F, W.r1w, R, false, r1preT, R, false, Epi<T>());
  x.painnSiluTangent(kSitePTanSilu, -1, N * R, x.buf(kBufPR1pre), r1preT, r1T);
  x.gemm(kSiteTanNodeGemm, -1, N, 1, R, r1T, R, W.r2w, 1, false, r2T, 1, false, Epi<T>());
  x.poolTangent(kSiteTanPool, r2T, x.buf(kBufTPred));
}

// The backward of the energy (energy seed) with tangents, after painnForward()
// and painnForwardTangent() (program_tangent.h's backwardDual for PaiNN):
// gradT = the tangent of d(sum of energies)/dtheta (+ seedScale d(loss)/dtheta
// through the seed's tangent), overwritten; gradV (may be null) =
// d(sum of energies)/dtheta.
template <class T, class X>
void painnBackwardDual(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, T* gradT, T* gradV,
                       T seedScale, const Shape& sh) {
  const int64_t N = sh.N, F = c.latent, F3 = 3 * F, K = c.basis, R = c.readoutHidden,
                LF = F3 * (c.sharedFilters ? 1 : c.passes);
  const bool vg = gradV != nullptr;
  PainnW<T> W = bindPainn<T>(c, L, const_cast<T*>(params));
  PainnW<T> DT = bindPainn<T>(c, L, gradT);
  PainnW<T> DV = vg ? bindPainn<T>(c, L, gradV) : W;  // DV unused without gradV
  auto ph = x.phase(kProfDoubleBwd);
  const T* S = x.buf(kBufPS);
  const T* V = x.buf(kBufPV);
  const T* ST = x.buf(kBufPTS);
  const T* VT = x.buf(kBufPTV);
  T* ds = x.buf(kBufPDs);
  T* dsT = x.buf(kBufPTDs);
  T* dv = x.buf(kBufPDv);
  T* dvT = x.buf(kBufPTDv);
  T* dvIn = x.buf(kBufPDvIn);
  T* dvInT = x.buf(kBufPTDvIn);
  const int64_t chunks = (N + kPainnSenderChunk - 1) / kPainnSenderChunk;
  T* acc = vg ? x.buf(kBufPFiltAcc) : nullptr;
  T* accT = x.buf(kBufPTFiltAcc);
  if (vg) x.zero(acc, chunks * (K + 1) * LF);
  x.zero(accT, chunks * (K + 1) * LF);
  {
    readoutBackwardDual<T>(x, W, DV, DT, vg, seedScale, N, F, R, S + (2 * (int64_t)c.passes) * N * F,
                           ST + (2 * (int64_t)c.passes) * N * F, ds, dsT, [&](T* dr2, T* dr2T, T* dr1, T* dr1T) {
                             x.painnReadoutDr1(kSiteReadoutDr1, N, R, dr2, W.r2w, x.buf(kBufPR1pre), dr1);
                             x.painnReadoutDr1Tangent(kSiteTanDr1, N, R, dr2, dr2T, W.r2w, x.buf(kBufPR1pre),
                                                      x.buf(kBufPTR1pre), dr1T);
                           });
    x.zero(dv, N * F3);
    x.zero(dvT, N * F3);
  }
  for (int t = c.passes - 1; t >= 0; --t) {
    const PainnBlockW<T>& w = W.blk[t];
    const PainnBlockW<T>& dw = DV.blk[t];
    const PainnBlockW<T>& dt = DT.blk[t];
    const T* sIn = S + (2 * t) * N * F;
    const T* sInT = ST + (2 * t) * N * F;
    const T* vIn = V + (2 * t) * N * F3;
    const T* vInT = VT + (2 * t) * N * F3;
    const T* vMid = V + (2 * t + 1) * N * F3;
    const T* vMidT = VT + (2 * t + 1) * N * F3;
    const T* mix = x.buf(kBufPMix) + t * N * 6 * F;
    const T* mixT = x.buf(kBufPTMix) + t * N * 6 * F;
    const T* nrm = x.buf(kBufPNrm) + t * N * F;
    const T* nrmT = x.buf(kBufPTNrm) + t * N * F;
    const T* ctx = x.buf(kBufPCtx) + t * N * 2 * F;
    const T* ctxT = x.buf(kBufPTCtx) + t * N * 2 * F;
    const T* a1pre = x.buf(kBufPA1pre) + t * N * F;
    const T* a1preT = x.buf(kBufPTA1pre) + t * N * F;
    const T* a1 = x.buf(kBufPA1) + t * N * F;
    const T* a1T = x.buf(kBufPTA1) + t * N * F;
    const T* a = x.buf(kBufPA) + t * N * F3;
    const T* aT = x.buf(kBufPTA) + t * N * F3;
    T* da = x.buf(kBufPDa);
    T* daT = x.buf(kBufPTDa);
    T* da1 = x.buf(kBufPDa1);
    T* da1T = x.buf(kBufPTDa1);
    T* dctx = x.buf(kBufPDctx);
    T* dctxT = x.buf(kBufPTDctx);
    T* dmix = x.buf(kBufPDmix);
    T* dmixT = x.buf(kBufPTDmix);
    // Update block: ds, dv hold the gradients of s_out, v_out (and their tangents).
    x.painnUpdateBwd(kSitePUpdApplyBwd, t, N, F, a, mix, ds, dv, da, dmix);
    x.painnUpdateBwdTangent(kSitePTanUpdBwd, t, N, F, a, aT, mix, mixT, ds, dsT, dv, dvT, daT, dmixT);
    if (vg) x.gemmTN(kSitePUpdW2Dw, t, N, F, F3, a1, F, da, F3, dw.u2, dw.ub2, false);
    dualGemmTN<T>(x, kSiteTanNodeDw, t, N, F, F3, a1, a1T, F, da, daT, F3, dt.u2, dt.ub2);
    x.gemm(kSitePUpdW2Dx, t, N, F, F3, da, F3, w.u2, F3, true, da1, F, false, Epi<T>());
    x.gemm(kSiteTanNodeDx, t, N, F, F3, daT, F3, w.u2, F3, true, da1T, F, false, Epi<T>());
    x.painnSiluGradDual(kSitePTanSiluDual, t, N * F, a1pre, a1preT, da1, da1T);
    if (vg) x.gemmTN(kSitePUpdW1Dw, t, N, 2 * F, F, ctx, 2 * F, da1, F, dw.u1, dw.ub1, false);
    dualGemmTN<T>(x, kSiteTanNodeDw, t, N, 2 * F, F, ctx, ctxT, 2 * F, da1, da1T, F, dt.u1, dt.ub1);
    {
      // dctx = da1 W1^T with the value's norm epilogue (ds += dctx_s, dV += d|Vv| V / |Vv|),
      // then its tangent (reads the value ds / dmix updates' inputs only).
      Epi<T> nb = epi<T>(kPainnNormBwd, (const T*)nullptr, mix, 6 * F);
      nb.aux2 = nrm;
      nb.sOut = ds;
      nb.vOut = dmix;
      x.gemm(kSitePUpdW1Dx, t, N, 2 * F, F, da1, F, w.u1, F, true, dctx, 2 * F, false, nb);
      x.gemm(kSiteTanNodeDx, t, N, 2 * F, F, da1T, F, w.u1, F, true, dctxT, 2 * F, false, Epi<T>());
      x.painnNormBwdTangent(kSitePTanNormBwd, t, N, F, dctx, dctxT, mix, mixT, nrm, nrmT, dsT, dmixT);
    }
    if (vg) x.gemmTN(kSitePMixDw, t, 3 * N, F, 2 * F, vMid, F, dmix, 2 * F, dw.mix, (T*)nullptr, false);
    dualGemmTN<T>(x, kSiteTanNodeDw, t, 3 * N, F, 2 * F, vMid, vMidT, F, dmix, dmixT, 2 * F, dt.mix, (T*)nullptr);
    x.gemm(kSitePMixDx, t, 3 * N, F, 2 * F, dmix, 2 * F, w.mix, 2 * F, true, dv, F, true, Epi<T>());
    x.gemm(kSiteTanNodeDx, t, 3 * N, F, 2 * F, dmixT, 2 * F, w.mix, 2 * F, true, dvT, F, true, Epi<T>());
    // Message: ds, dv now hold the gradients of s_mid, v_mid.
    const T* m1pre = x.buf(kBufPM1pre) + t * N * F;
    const T* m1preT = x.buf(kBufPTM1pre) + t * N * F;
    const T* m1 = x.buf(kBufPM1) + t * N * F;
    const T* m1T = x.buf(kBufPTM1) + t * N * F;
    T* dq = x.buf(kBufPDq);
    T* dqT = x.buf(kBufPTDq);
    T* dm1 = x.buf(kBufPDm1);
    T* dm1T = x.buf(kBufPTDm1);
    PainnDualArgs<T> ma;
    ma.N = N; ma.F = F; ma.K = K; ma.LF = LF; ma.hasV = t > 0;
    ma.fo = c.sharedFilters ? 0 : t * F3;
    ma.Wf = W.fw + ma.fo; ma.bf = W.fb + ma.fo;
    ma.rbf = x.buf(kBufRbf); ma.rbfT = x.buf(kBufTRbf); ma.fcut = x.buf(kBufPFcut); ma.fcT = x.buf(kBufPTFc);
    ma.uT = x.buf(kBufPTu); ma.ic = x.buf(kBufInvCnt);
    ma.q = x.buf(kBufPQ) + t * N * F3; ma.qT = x.buf(kBufPTQ) + t * N * F3;
    ma.vIn = vIn; ma.vInT = vInT;
    ma.ds = ds; ma.dsT = dsT; ma.dv = dv; ma.dvT = dvT;
    ma.dq = dq; ma.dqT = dqT; ma.dvIn = dvIn; ma.dvInT = dvInT; ma.acc = acc; ma.accT = accT;
    x.painnMessageBwdDual(kSitePTanMsgBwd, t, ma);
    if (vg) x.gemmTN(kSitePMsgW2Dw, t, N, F, F3, m1, F, dq, F3, dw.m2, dw.mb2, false);
    dualGemmTN<T>(x, kSiteTanNodeDw, t, N, F, F3, m1, m1T, F, dq, dqT, F3, dt.m2, dt.mb2);
    x.gemm(kSitePMsgW2Dx, t, N, F, F3, dq, F3, w.m2, F3, true, dm1, F, false, Epi<T>());
    x.gemm(kSiteTanNodeDx, t, N, F, F3, dqT, F3, w.m2, F3, true, dm1T, F, false, Epi<T>());
    x.painnSiluGradDual(kSitePTanSiluDual, t, N * F, m1pre, m1preT, dm1, dm1T);
    if (vg) x.gemmTN(kSitePMsgW1Dw, t, N, F, F, sIn, F, dm1, F, dw.m1, dw.mb1, false);
    dualGemmTN<T>(x, kSiteTanNodeDw, t, N, F, F, sIn, sInT, F, dm1, dm1T, F, dt.m1, dt.mb1);
    x.gemm(kSitePMsgW1Dx, t, N, F, F, dm1, F, w.m1, F, true, ds, F, true, Epi<T>());
    x.gemm(kSiteTanNodeDx, t, N, F, F, dm1T, F, w.m1, F, true, dsT, F, true, Epi<T>());
    std::swap(dv, dvIn);
    std::swap(dvT, dvInT);
  }
  if (vg) x.painnFilterReduce(kSitePFilterDw, chunks, K, LF, acc, DV.fw, DV.fb);
  x.painnFilterReduce(kSitePTanFilterDw, chunks, K, LF, accT, DT.fw, DT.fb);
  if (vg) x.embedBwd(kSiteEmbedBwd, N, F, c.numClasses, ds, DV.embW, DV.embB);
  x.embedBwd(kSiteTanEmbedBwd, N, F, c.numClasses, dsT, DT.embW, DT.embB);
}

// The programs' dispatch on the model kind (executors that run every model).
template <class T, class X>
void forwardModel(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const Shape& s) {
  if (c.kind == ModelKind::PaiNN) painnForward<T>(x, c, L, params, s);
  else forward<T>(x, c, L, params, s);
}
template <class T, class X>
void backwardModel(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, T* grads, const Shape& s) {
  if (c.kind == ModelKind::PaiNN) painnBackward<T>(x, c, L, params, grads, s);
  else backward<T>(x, c, L, params, grads, s);
}
template <class T, class X>
void forcesModel(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const Shape& s, T* F, T* W) {
  if (c.kind == ModelKind::PaiNN) painnForces<T>(x, c, L, params, s, F, W);
  else forces<T>(x, c, L, params, s, F, W);
}

}  // namespace program
}  // namespace gnn
