// The CUDA executor of the model program (core/models/program.h): each op one
// launcher of the kernel families (dense.cuh, segment.cuh, models/model.cuh)
// on the plan's stream, captured into the step's CUDA graph. Its CPU twin is
// CpuExec (core/models/model_internal.h); program.h lists the ops both supply.
//
// Kernel sites: every op runs inside a cu::SiteScope of the site and pass the
// program passes it, so a profiled step (cudaProfileStep) names each launch
// by the same entry of the one kernel-site table (core/models/model.h's
// KernelSite, names in kKernelSites: "fwd.filter.w1_gemm", ...) as the CPU
// profile's records. Ops the program calls without a site (invCount, copy,
// zero) are outside every site there too (the CPU profile does not record
// them): their launches carry site -1.
#pragma once
#include <cstdint>

#include "core/common.h"
#include "core/models/model.h"
#include "core/models/program.h"
#include "cuda/dense.cuh"
#include "cuda/models/model.cuh"
#include "cuda/models/plan.cuh"
#include "cuda/segment.cuh"

namespace gnn {

struct CudaExec {
  CudaPlan& p;
  bool withGrad;
  cudaStream_t s;
  const cu::DevBatch& b;
  CudaExec(CudaPlan& pl, bool grad) : p(pl), withGrad(grad), s(pl.stream), b(pl.b) {}

  struct NoPhase {};
  NoPhase phase(int) { return {}; }
  float* buf(program::Buf k) { return p.act[k]; }

  static cu::Epi epi(const program::Epi<float>& e, const cu::DevBatch& b) {
    cu::Epi o;
    o.mode = e.mode;  // the same closed set of epilogues (program::EpiMode == cu::EpiMode)
    o.bias = e.bias;
    o.aux = e.aux;
    o.ldaux = (int)e.ldaux;
    o.Ps = e.Ps;
    o.Pr = e.Pr;
    o.ldp = (int)e.ldp;
    if (e.mode == program::kGatherSsp) {
      o.snd = b.snd;
      o.rcv = b.rcv;
    }
    return o;
  }
  void gemm(int site, int pass, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* W,
            int64_t ldw, bool transW, float* C, int64_t ldc, bool acc, const program::Epi<float>& e) {
    cu::SiteScope sc(site, pass);
    cu::gemm(s, (int)M, (int)N, (int)K, A, (int)lda, false, W, (int)ldw, transW, C, (int)ldc, acc, epi(e, b));
  }
  void gemmTN(int site, int pass, int64_t M, int64_t K, int64_t N, const float* X, int64_t ldx, const float* D,
              int64_t ldd, float* G, float* gbias, bool acc) {
    cu::SiteScope sc(site, pass);
    cu::gemmTN(s, (int)M, (int)K, (int)N, X, (int)ldx, D, (int)ldd, G, gbias, acc, p.scratch);
  }
  void rbf(int site, int64_t E, int64_t K, float gamma, float step, float* out) {
    cu::SiteScope sc(site, -1);
    cu::rbf(s, b.dist, (int)E, (int)K, gamma, step, out);
  }
  void invCount(int64_t N, bool mean, float* out) { cu::invCount(s, b.recvPtr, (int)N, mean, out); }
  void embed(int site, int64_t N, int64_t C, const float* W, const float* bias, float* h) {
    cu::SiteScope sc(site, -1);
    cu::embed(s, b.atom, (int)N, (int)C, W, bias, h);
  }
  void aggregate(int site, int pass, int64_t N, int64_t C, const float* f2, const float* hs, const float* ic,
                 float* agg) {
    cu::SiteScope sc(site, pass);
    cu::aggregate(s, b.recvPtr, b.snd, f2, hs, ic, (int)N, (int)C, agg);
  }
  void messageBwdEdge(int site, int pass, int64_t E, int64_t C, const float* dagg, const float* ic, const float* hs,
                      const float* f2, float* dA) {
    cu::SiteScope sc(site, pass);
    cu::messageBwdEdge(s, b.snd, b.rcv, dagg, ic, hs, f2, (int)E, (int)C, dA);
  }
  void messageBwdSender(int site, int pass, int64_t N, int64_t C, const float* dagg, const float* ic,
                        const float* f2, float* dhs) {
    cu::SiteScope sc(site, pass);
    cu::messageBwdSender(s, b.sendPtr, b.sendPerm, b.rcv, dagg, ic, f2, (int)N, (int)C, dhs);
  }
  void csrSenders(int site, int pass, int64_t rows, int64_t width, const float* src, float* out) {
    cu::SiteScope sc(site, pass);
    cu::csrRowSum(s, src, b.sendPerm, b.sendPtr, (int)rows, (int)width, out);
  }
  void csrReceivers(int site, int pass, int64_t rows, int64_t width, const float* src, float* out) {
    cu::SiteScope sc(site, pass);
    cu::csrRowSum(s, src, nullptr, b.recvPtr, (int)rows, (int)width, out);
  }
  // The loss kernel also writes d loss / d r2 when the step has a backward
  // (so its launch is the CPU's two sites, kSiteLoss and kSiteLossBwd, in one:
  // it is recorded under the first; kSiteLossBwd has no launch here).
  void readoutLoss(int site, const float* r2, float* pred) {
    cu::SiteScope sc(site, -1);
    const ModelConfig& c = p.model->cfg;
    cu::readoutLoss(s, r2, b.nodeStart, b.nNode, b.target, b.mask, (int)p.shape.graphs, c.meanReadout, pred,
                    p.lossDev, withGrad ? p.act[program::kBufDr2] : nullptr);
  }
  void readoutLossBackward(int, float*) {}  // written by readoutLoss
  void readoutBwdHidden(int site, int64_t N, int64_t R, const float* dr2, const float* w2, const float* r1,
                        float* dr1) {
    cu::SiteScope sc(site, -1);
    cu::readoutBwdHidden(s, dr2, w2, r1, (int)N, (int)R, dr1);
  }
  void copy(float* dst, const float* src, int64_t n) {
    if (n <= 0) return;
    GNN_CU(cudaMemcpyAsync(dst, src, sizeof(float) * (size_t)n, cudaMemcpyDeviceToDevice, s));
    cu::profMark(s, "memcpyAsync");
  }
  void zero(float* dst, int64_t n) {
    if (n <= 0) return;
    GNN_CU(cudaMemsetAsync(dst, 0, sizeof(float) * (size_t)n, s));
    cu::profMark(s, "memsetAsync");
  }
  void embedBwd(int site, int64_t N, int64_t C, int64_t classes, const float* dh, float* gW, float* gb) {
    cu::SiteScope sc(site, -1);
    cu::embedBwd(s, b.atom, dh, (int)N, (int)C, (int)classes, gW, gb, p.oneHot, p.scratch);
  }
  // The force pass (program::forces) runs on the CPU plan only. energySeed is
  // reachable through program::backwardTo (never with the energy seed here)
  // and refuses; the other force ops (rbfBackward, edgeForces,
  // strainDerivative) are absent on purpose: program::forces instantiated
  // with CudaExec does not compile, rather than failing at run time.
  void energySeed(int, float*) {
    throw Error(ErrorKind::Generic, "ERR_GNN_UNSUPPORTED", "the force pass runs on the CPU plan only (docs/forces.md)");
  }
};
static_assert((int)program::kGatherSsp == (int)cu::kGatherSsp && (int)program::kSspGrad == (int)cu::kSspGrad &&
                  (int)program::kBiasRes == (int)cu::kBiasRes && (int)program::kBiasSsp == (int)cu::kBiasSsp &&
                  (int)program::kBias == (int)cu::kBias && (int)program::kPlain == (int)cu::kPlain,
              "the program's epilogues and the CUDA kernels' must be the same set");

}  // namespace gnn
