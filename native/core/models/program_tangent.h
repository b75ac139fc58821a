// The double backward of the force pass (docs/forces.md), on the model
// program (program.h): forward-over-reverse written as explicit tangent ops.
//
// Along a direction w of the atoms (x + eps w), every activation a gets its
// tangent a' = da/deps (buffer kBufT<name>, the twin of kBuf<name>). The
// weights have zero tangent, so the tangent of a product A W is A' W (the
// same SIMD product on the tangent rows), of X^T D (a weight gradient) is
// X'^T D + X^T D' (two products), and of an activation layer its chain rule
// (ssp' and ssp'' through the stored activation). The backward runs with the
// energy seed (d sum of the real graphs' energies / d r2), so the tangent of
// its parameter gradient is d/dtheta (w . dE/dx) = -d(w . F)/dtheta.
//
// forceLossAndGrad also gives the seed a tangent, -energyWeight times the
// energy loss's seed: the backward is linear in its seed, so the tangent
// gradient then also carries -energyWeight d(energy loss)/dtheta, and one
// backward gives everything a training step on energies and forces needs.
//
// Executor ops beyond program.h's (CpuExec only; the CUDA executor does not
// instantiate these functions):
//   distTangent(site, E, w, ddT)                    ddT[k] = u_k . (w[snd] - w[rcv])
//   strainTangent(site, G, q, ddT)                  ddT[k] -= d_k sum_v q[g(k),v] u_a(v) u_b(v)
//   rbfTangent(site, E, K, gamma, spacing, rbf, ddT, rbfT)
//   aggregateTangent(site, pass, N, C, f2, f2T, hs, hsT, invCnt, aggT)
//   poolTangent(site, r2T, predT)
//   lossSeedTangent(site, scale, dr2T)              dr2T = scale d(loss)/d r2
//   readoutBwdHiddenTangent(site, N, R, dr2, dr2T, w2, r1, r1T, dr1T)
//   messageBwdEdgeTangent(site, pass, E, C, dagg, daggT, invCnt, hs, hsT, f2, f2T, dAT)
//   messageBwdSenderTangent(site, pass, N, C, dagg, daggT, invCnt, f2, f2T, dhsT)
// and the epilogues kGatherSspGrad and kSspGradDual. Every reduction keeps
// a fixed order (bitwise identical for any thread count).
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/models/program.h"

namespace gnn {
namespace program {

// The tangent of a weight gradient G = X^T D: G' = X^T D' + X'^T D (bias:
// colsum(D')), two products in a fixed order. Shared by the tangent programs
// of every model (here and program_painn.h).
template <class T, class X>
void dualGemmTN(X& x, int site, int pass, int64_t M, int64_t Kx, int64_t Nd, const T* Xv, const T* Xt, int64_t ldx,
                const T* Dv, const T* Dt, int64_t ldd, T* G, T* gbias) {
  x.gemmTN(site, pass, M, Kx, Nd, Xv, ldx, Dt, ldd, G, gbias, false);
  x.gemmTN(site, pass, M, Kx, Nd, Xt, ldx, Dv, ldd, G, (T*)nullptr, true);
}

// After forward() on the same batch: the tangents of every activation along
// w [N x 3] (kBufTDist, kBufTRbf, kBufTH, ... kBufTPred) and, when q [G x 6]
// is non-null, along the per-graph strains q (Voigt weights of the strain
// derivative, q_g = dL/d(dE/d strain_g)): the edge vectors' tangent is then
// dr_k' = (w[snd] - w[rcv]) - Q_g r_k (Q_g symmetric with Voigt entries q_g,
// off-diagonal q_v on both entries' sum: u^T Q u = sum_v q_v u_a u_b), so
// the tangent of the summed energies is -(w . F + q . dE/d strain) and the
// dual backward's parameter gradient, negated, is d(w . F + q . W)/dtheta.
// The readout's part of a dual backward, shared by MPEU/SchNet and PaiNN: the
// energy seed and its tangent, the two readout products' weight gradients
// (values when vg, tangents always), the hidden layer's gradient and tangent
// by the model's own activation (dr1Step(dr2, dr2T, dr1, dr1T)), and the
// gradient and tangent into the top features `top` [N x F] (dTop, dTopT).
template <class T, class X, class Wt, class Dr1>
void readoutBackwardDual(X& x, const Wt& W, const Wt& DV, const Wt& DT, bool vg, T seedScale, int64_t N, int64_t F,
                         int64_t R, const T* top, const T* topT, T* dTop, T* dTopT, Dr1 dr1Step) {
  T* dr2 = x.buf(kBufDr2);
  T* dr2T = x.buf(kBufTDr2);
  T* dr1 = x.buf(kBufDr1);
  T* dr1T = x.buf(kBufTDr1);
  const T* r1 = x.buf(kBufR1);
  const T* r1T = x.buf(kBufTR1);
  x.energySeed(kSiteForceSeed, dr2);
  if (seedScale != (T)0) x.lossSeedTangent(kSiteTanSeed, seedScale, dr2T);
  else x.zero(dr2T, N);
  if (vg) x.gemmTN(kSiteReadoutR2Dw, -1, N, R, 1, r1, R, dr2, 1, DV.r2w, DV.r2b, false);
  dualGemmTN<T>(x, kSiteTanNodeDw, -1, N, R, 1, r1, r1T, R, dr2, dr2T, 1, DT.r2w, DT.r2b);
  dr1Step(dr2, dr2T, dr1, dr1T);
  if (vg) x.gemmTN(kSiteReadoutR1Dw, -1, N, F, R, top, F, dr1, R, DV.r1w, DV.r1b, false);
  dualGemmTN<T>(x, kSiteTanNodeDw, -1, N, F, R, top, topT, F, dr1, dr1T, R, DT.r1w, DT.r1b);
  x.gemm(kSiteReadoutDx, -1, N, F, R, dr1, R, W.r1w, R, true, dTop, F, false, Epi<T>());
  x.gemm(kSiteTanNodeDx, -1, N, F, R, dr1T, R, W.r1w, R, true, dTopT, F, false, Epi<T>());
}

template <class T, class X>
void forwardTangent(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const Shape& s, const T* w,
                    const T* q = nullptr) {
  const int64_t N = s.N, E = s.E, C = c.latent, H = 2 * C, K = c.basis, R = c.readoutHidden;
  const bool mpeu = c.kind == ModelKind::MPEU;
  ModelW<T> W = bindWeights<T>(c, L, const_cast<T*>(params));
  auto ph = x.phase(kProfTangentFwd);
  const T* rbf = x.buf(kBufRbf);
  T* rbfT = x.buf(kBufTRbf);
  T* ddT = x.buf(kBufTDist);
  x.distTangent(kSiteTanDist, E, w, ddT);
  if (q) x.strainTangent(kSiteTanStrain, s.G, q, ddT);
  x.rbfTangent(kSiteTanRbf, E, K, (T)c.rbfGamma, (T)c.rbfSpacing, rbf, ddT, rbfT);
  const T* h = x.buf(kBufH);
  T* hT = x.buf(kBufTH);
  const T* invCnt = x.buf(kBufInvCnt);
  x.zero(hT, N * C);  // the embedding does not depend on positions
  for (int t = 0; t < c.passes; ++t) {
    const PassW<T>& pw = W.pass[t];
    const T* htT = hT + t * N * C;
    T* hnT = hT + (t + 1) * N * C;
    const T* f1t = x.buf(kBufF1) + t * E * C;
    const T* f2t = x.buf(kBufF2) + t * E * C;
    const T* hst = x.buf(kBufHs) + t * N * C;
    const T* u1t = x.buf(kBufU1) + t * N * C;
    T* f1T = x.buf(kBufTF1) + t * E * C;
    T* f2T = x.buf(kBufTF2) + t * E * C;
    T* hsT = x.buf(kBufTHs) + t * N * C;
    T* aggT = x.buf(kBufTAgg) + t * N * C;
    T* u1T = x.buf(kBufTU1) + t * N * C;
    const T* finT = rbfT;
    int64_t Fin = K;
    if (mpeu) {
      const int64_t Ein = t == 0 ? K : C;
      const T* einT = t == 0 ? rbfT : x.buf(kBufTE) + (t - 1) * E * C;
      const T* a1t = x.buf(kBufA1) + t * E * H;
      T* a1T = x.buf(kBufTA1) + t * E * H;
      T* eT = x.buf(kBufTE) + t * E * C;
      T* PsT = x.buf(kBufTPs);
      T* PrT = x.buf(kBufTPr);
      x.gemm(kSiteTanNodeGemm, t, N, H, C, htT, C, pw.w1s, H, false, PsT, H, false, Epi<T>());
      x.gemm(kSiteTanNodeGemm, t, N, H, C, htT, C, pw.w1r, H, false, PrT, H, false, Epi<T>());
      Epi<T> g = epi<T>(kGatherSspGrad, (const T*)nullptr, a1t, H);
      g.Ps = PsT;
      g.Pr = PrT;
      g.ldp = H;
      x.gemm(kSiteTanEdgeGemm, t, E, H, Ein, einT, Ein, pw.w1e, H, false, a1T, H, false, g);
      x.gemm(kSiteTanEdgeGemm, t, E, C, H, a1T, H, pw.w2, C, false, eT, C, false, Epi<T>());
      finT = eT;
      Fin = C;
    }
    x.gemm(kSiteTanEdgeGemm, t, E, C, Fin, finT, Fin, pw.wf1, C, false, f1T, C, false, epi<T>(kSspGrad, (const T*)nullptr, f1t, C));
    x.gemm(kSiteTanEdgeGemm, t, E, C, C, f1T, C, pw.wf2, C, false, f2T, C, false, epi<T>(kSspGrad, (const T*)nullptr, f2t, C));
    x.gemm(kSiteTanNodeGemm, t, N, C, C, htT, C, pw.wl, C, false, hsT, C, false, Epi<T>());
    x.aggregateTangent(kSiteTanAggregate, t, N, C, f2t, f2T, hst, hsT, invCnt, aggT);
    x.gemm(kSiteTanNodeGemm, t, N, C, C, aggT, C, pw.wu1, C, false, u1T, C, false, epi<T>(kSspGrad, (const T*)nullptr, u1t, C));
    x.copy(hnT, htT, N * C);  // the residual
    x.gemm(kSiteTanNodeGemm, t, N, C, C, u1T, C, pw.wu2, C, false, hnT, C, true, Epi<T>());
  }
  (void)h;
  const T* hTopT = hT + (int64_t)c.passes * N * C;
  const T* r1 = x.buf(kBufR1);
  T* r1T = x.buf(kBufTR1);
  T* r2T = x.buf(kBufTR2);
  x.gemm(kSiteTanNodeGemm, -1, N, R, C, hTopT, C, W.r1w, R, false, r1T, R, false, epi<T>(kSspGrad, (const T*)nullptr, r1, R));
  x.gemm(kSiteTanNodeGemm, -1, N, 1, R, r1T, R, W.r2w, 1, false, r2T, 1, false, Epi<T>());
  x.poolTangent(kSiteTanPool, r2T, x.buf(kBufTPred));
}

// The backward of the energy (energy seed) with tangents, after forward() and
// forwardTangent(): gradT [params] = the tangent of d(sum of energies)/dtheta
// (+ seedScale d(loss)/dtheta through the seed's tangent, seedScale may be
// 0), overwritten; gradV [params] (may be null) = d(sum of energies)/dtheta.
template <class T, class X>
void backwardDual(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, T* gradT, T* gradV, T seedScale,
                  const Shape& s) {
  const int64_t N = s.N, E = s.E, C = c.latent, H = 2 * C, K = c.basis, R = c.readoutHidden;
  const bool mpeu = c.kind == ModelKind::MPEU;
  const bool vg = gradV != nullptr;
  ModelW<T> W = bindWeights<T>(c, L, const_cast<T*>(params));
  ModelW<T> DT = bindWeights<T>(c, L, gradT);
  ModelW<T> DV = vg ? bindWeights<T>(c, L, gradV) : W;  // DV unused without gradV
  // C = (D W^T) * ssp'(pre) and its tangent (act: ssp(pre), actT its tangent).
  auto dualDxSsp = [&](int siteV, int siteT, int pass, int64_t M, int64_t Nn, int64_t Kk, const T* Dv, const T* Dt,
                       int64_t ldd, const T* Wt, int64_t ldw, T* Cv, T* Ct, const T* act, const T* actT) {
    x.gemm(siteV, pass, M, Nn, Kk, Dv, ldd, Wt, ldw, true, Cv, Nn, false, Epi<T>());
    Epi<T> e = epi<T>(kSspGradDual, (const T*)nullptr, act, Nn);
    e.aux2 = actT;
    e.val = Cv;
    x.gemm(siteT, pass, M, Nn, Kk, Dt, ldd, Wt, ldw, true, Ct, Nn, false, e);
  };
  auto ph = x.phase(kProfDoubleBwd);
  const T* h = x.buf(kBufH);
  const T* hT = x.buf(kBufTH);
  const T* rbf = x.buf(kBufRbf);
  const T* rbfT = x.buf(kBufTRbf);
  const T* invCnt = x.buf(kBufInvCnt);
  T* dh = x.buf(kBufDh);
  T* dhNew = x.buf(kBufDhNew);
  T* dhT = x.buf(kBufTDh);
  T* dhNewT = x.buf(kBufTDhNew);
  {
    const T* r1 = x.buf(kBufR1);
    const T* r1T = x.buf(kBufTR1);
    readoutBackwardDual<T>(x, W, DV, DT, vg, seedScale, N, C, R, h + (int64_t)c.passes * N * C,
                           hT + (int64_t)c.passes * N * C, dh, dhT, [&](T* dr2, T* dr2T, T* dr1, T* dr1T) {
                             x.readoutBwdHidden(kSiteReadoutDr1, N, R, dr2, W.r2w, r1, dr1);
                             x.readoutBwdHiddenTangent(kSiteTanDr1, N, R, dr2, dr2T, W.r2w, r1, r1T, dr1T);
                           });
  }
  if (mpeu && E > 0) {
    x.zero(x.buf(kBufDe), E * C);
    x.zero(x.buf(kBufTDe), E * C);
  }
  for (int t = c.passes - 1; t >= 0; --t) {
    const PassW<T>& w = W.pass[t];
    const PassW<T>& dv = DV.pass[t];
    const PassW<T>& dt = DT.pass[t];
    const T* ht = h + t * N * C;
    const T* htT = hT + t * N * C;
    const T* f1t = x.buf(kBufF1) + t * E * C;
    const T* f2t = x.buf(kBufF2) + t * E * C;
    const T* hst = x.buf(kBufHs) + t * N * C;
    const T* aggt = x.buf(kBufAgg) + t * N * C;
    const T* u1t = x.buf(kBufU1) + t * N * C;
    const T* f1T = x.buf(kBufTF1) + t * E * C;
    const T* f2T = x.buf(kBufTF2) + t * E * C;
    const T* hsT = x.buf(kBufTHs) + t * N * C;
    const T* aggT = x.buf(kBufTAgg) + t * N * C;
    const T* u1T = x.buf(kBufTU1) + t * N * C;
    T* du = x.buf(kBufDu);
    T* duT = x.buf(kBufTDu);
    T* dagg = x.buf(kBufDagg);
    T* daggT = x.buf(kBufTDagg);
    // Node update.
    if (vg) x.gemmTN(kSiteNodeU2Dw, t, N, C, C, u1t, C, dh, C, dv.wu2, dv.bu2, false);
    dualGemmTN<T>(x, kSiteTanNodeDw, t, N, C, C, u1t, u1T, C, dh, dhT, C, dt.wu2, dt.bu2);
    dualDxSsp(kSiteNodeU2Dx, kSiteTanNodeDx, t, N, C, C, dh, dhT, C, w.wu2, C, du, duT, u1t, u1T);
    if (vg) x.gemmTN(kSiteNodeU1Dw, t, N, C, C, aggt, C, du, C, dv.wu1, dv.bu1, false);
    dualGemmTN<T>(x, kSiteTanNodeDw, t, N, C, C, aggt, aggT, C, du, duT, C, dt.wu1, dt.bu1);
    x.gemm(kSiteNodeU1Dx, t, N, C, C, du, C, w.wu1, C, true, dagg, C, false, Epi<T>());
    x.gemm(kSiteTanNodeDx, t, N, C, C, duT, C, w.wu1, C, true, daggT, C, false, Epi<T>());
    x.copy(dhNew, dh, N * C);
    x.copy(dhNewT, dhT, N * C);
    // Message.
    T* dA = x.buf(kBufDA);
    T* dAT = x.buf(kBufTDA);
    T* dB = x.buf(kBufDB);
    T* dBT = x.buf(kBufTDB);
    T* dhs = x.buf(kBufDhs);
    T* dhsT = x.buf(kBufTDhs);
    x.messageBwdEdge(kSiteMsgDf2, t, E, C, dagg, invCnt, hst, f2t, dA);
    x.messageBwdEdgeTangent(kSiteTanMsgDf2, t, E, C, dagg, daggT, invCnt, hst, hsT, f2t, f2T, dAT);
    x.messageBwdSender(kSiteMsgDhs, t, N, C, dagg, invCnt, f2t, dhs);
    x.messageBwdSenderTangent(kSiteTanMsgDhs, t, N, C, dagg, daggT, invCnt, f2t, f2T, dhsT);
    if (vg) x.gemmTN(kSiteSenderDw, t, N, C, C, ht, C, dhs, C, dv.wl, dv.bl, false);
    dualGemmTN<T>(x, kSiteTanNodeDw, t, N, C, C, ht, htT, C, dhs, dhsT, C, dt.wl, dt.bl);
    x.gemm(kSiteSenderDx, t, N, C, C, dhs, C, w.wl, C, true, dhNew, C, true, Epi<T>());
    x.gemm(kSiteTanNodeDx, t, N, C, C, dhsT, C, w.wl, C, true, dhNewT, C, true, Epi<T>());
    if (vg) x.gemmTN(kSiteFilterW2Dw, t, E, C, C, f1t, C, dA, C, dv.wf2, dv.bf2, false);
    dualGemmTN<T>(x, kSiteTanEdgeDw, t, E, C, C, f1t, f1T, C, dA, dAT, C, dt.wf2, dt.bf2);
    dualDxSsp(kSiteFilterW2Dx, kSiteTanEdgeDx, t, E, C, C, dA, dAT, C, w.wf2, C, dB, dBT, f1t, f1T);
    const T* fin = mpeu ? x.buf(kBufE) + t * E * C : rbf;
    const T* finT = mpeu ? x.buf(kBufTE) + t * E * C : rbfT;
    const int64_t Fin = mpeu ? C : K;
    if (vg) x.gemmTN(kSiteFilterW1Dw, t, E, Fin, C, fin, Fin, dB, C, dv.wf1, dv.bf1, false);
    dualGemmTN<T>(x, kSiteTanEdgeDw, t, E, Fin, C, fin, finT, Fin, dB, dBT, C, dt.wf1, dt.bf1);
    if (mpeu) {
      T* de = x.buf(kBufDe);
      T* deT = x.buf(kBufTDe);
      T* dpre1 = x.buf(kBufDpre1);
      T* dpre1T = x.buf(kBufTDpre1);
      const T* a1t = x.buf(kBufA1) + t * E * H;
      const T* a1T = x.buf(kBufTA1) + t * E * H;
      const int64_t Ein = t == 0 ? K : C;
      const T* ein = t == 0 ? rbf : x.buf(kBufE) + (t - 1) * E * C;
      const T* einT = t == 0 ? rbfT : x.buf(kBufTE) + (t - 1) * E * C;
      T* dPs = x.buf(kBufDPs);
      T* dPr = x.buf(kBufDPr);
      T* dPsT = x.buf(kBufTDPs);
      T* dPrT = x.buf(kBufTDPr);
      x.gemm(kSiteFilterW1Dx, t, E, C, C, dB, C, w.wf1, C, true, de, C, true, Epi<T>());
      x.gemm(kSiteTanEdgeDx, t, E, C, C, dBT, C, w.wf1, C, true, deT, C, true, Epi<T>());
      if (vg) x.gemmTN(kSiteEdgeW2Dw, t, E, H, C, a1t, H, de, C, dv.w2, dv.b2, false);
      dualGemmTN<T>(x, kSiteTanEdgeDw, t, E, H, C, a1t, a1T, H, de, deT, C, dt.w2, dt.b2);
      dualDxSsp(kSiteEdgeW2Dx, kSiteTanEdgeDx, t, E, H, C, de, deT, C, w.w2, C, dpre1, dpre1T, a1t, a1T);
      if (vg) x.gemmTN(kSiteEdgeW1eDw, t, E, Ein, H, ein, Ein, dpre1, H, dv.w1e, dv.b1, false);
      dualGemmTN<T>(x, kSiteTanEdgeDw, t, E, Ein, H, ein, einT, Ein, dpre1, dpre1T, H, dt.w1e, dt.b1);
      x.csrSenders(kSiteEdgeGatherBwd, t, N, H, dpre1, dPs);
      x.csrReceivers(kSiteEdgeSegSum, t, N, H, dpre1, dPr);
      x.csrSenders(kSiteTanCsr, t, N, H, dpre1T, dPsT);
      x.csrReceivers(kSiteTanCsr, t, N, H, dpre1T, dPrT);
      if (vg) x.gemmTN(kSiteEdgeW1sDw, t, N, C, H, ht, C, dPs, H, dv.w1s, (T*)nullptr, false);
      if (vg) x.gemmTN(kSiteEdgeW1rDw, t, N, C, H, ht, C, dPr, H, dv.w1r, (T*)nullptr, false);
      dualGemmTN<T>(x, kSiteTanNodeDw, t, N, C, H, ht, htT, C, dPs, dPsT, H, dt.w1s, (T*)nullptr);
      dualGemmTN<T>(x, kSiteTanNodeDw, t, N, C, H, ht, htT, C, dPr, dPrT, H, dt.w1r, (T*)nullptr);
      x.gemm(kSiteEdgeW1sDx, t, N, C, H, dPs, H, w.w1s, H, true, dhNew, C, true, Epi<T>());
      x.gemm(kSiteEdgeW1rDx, t, N, C, H, dPr, H, w.w1r, H, true, dhNew, C, true, Epi<T>());
      x.gemm(kSiteTanNodeDx, t, N, C, H, dPsT, H, w.w1s, H, true, dhNewT, C, true, Epi<T>());
      x.gemm(kSiteTanNodeDx, t, N, C, H, dPrT, H, w.w1r, H, true, dhNewT, C, true, Epi<T>());
      if (t > 0) {
        x.gemm(kSiteEdgeW1eDx, t, E, Ein, H, dpre1, H, w.w1e, H, true, de, Ein, false, Epi<T>());
        x.gemm(kSiteTanEdgeDx, t, E, Ein, H, dpre1T, H, w.w1e, H, true, deT, Ein, false, Epi<T>());
      }
    }
    std::swap(dh, dhNew);
    std::swap(dhT, dhNewT);
  }
  if (vg) x.embedBwd(kSiteEmbedBwd, N, C, c.numClasses, dh, DV.embW, DV.embB);
  x.embedBwd(kSiteTanEmbedBwd, N, C, c.numClasses, dhT, DT.embW, DT.embB);
}

}  // namespace program
}  // namespace gnn
