// The CUDA training engine behind a plain C++ interface (no CUDA types here, so
// the addon and the standalone tests include it without the CUDA toolkit).
//
//   CudaStore  device-resident copy of a GraphStore, uploaded once
//              (nodeOffset, edgeOffset, atomicNumber, senders, receivers,
//              distance, senderPerm, standardised target). The host keeps the
//              two offset arrays to validate graph ids and batch totals.
//   CudaModel  model config + flat params, grads, Adam m and v on the device.
//   CudaPlan   every device buffer of one padded shape, and the training step
//              (ids upload + device pack + forward + backward + Adam + loss
//              download) captured as CUDA graphs on first use: capture and
//              instantiation time is the plan's "compile" time.
//
// Per step the only host->device traffic is one copy of the graph ids (plus
// the step count and Adam scalars) from a pinned buffer; the only
// device->host traffic is the loss. All reductions run in a fixed order (CSR
// row reductions, fixed-chunk X^T D), so runs are bitwise reproducible.
//
// Without a CUDA build every function throws gnn::Error(ERR_GNN_NO_CUDA); with
// a CUDA build but no usable device, ERR_GNN_NO_DEVICE.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/adam.h"
#include "core/common.h"
#include "core/models/model.h"
#include "core/pack.h"

namespace gnn {

struct CudaStore;
struct CudaModel;
struct CudaPlan;

struct CudaPlanStats {
  int64_t captures = 0;        // CUDA graph captures (compile-equivalents)
  double captureSeconds = 0;   // total capture + instantiation time
  int64_t steps = 0;
  size_t deviceBytes = 0;      // device memory owned by the plan
  double flopsPerStep = 0;     // matrix-product flops of one training step
  double bytesPerStep = 0;     // lower bound of device-memory traffic per step
  // Per-step device time of the last step (CUDA events), when timing is on.
  double lastBatchMs = 0;      // ids upload + device pack
  double lastStepMs = 0;       // forward + backward + Adam + loss copy
};

// Store: validated once on the host (validateStoreFull), then uploaded. The
// target is standardised on upload: (target - targetMean) / targetScale.
std::shared_ptr<CudaStore> cudaUploadStore(const StoreView& s, double targetMean = 0.0,
                                           double targetScale = 1.0);

// Model: params (layout.total floats, host) are copied to the device; grads,
// m and v start at zero.
std::shared_ptr<CudaModel> cudaCreateModel(const ModelConfig& cfg, const float* params,
                                           int64_t count);
int64_t cudaModelParamCount(const CudaModel& m);
void cudaDownloadParams(const CudaModel& m, float* out, int64_t count);
void cudaDownloadGrads(const CudaModel& m, float* out, int64_t count);
void cudaResetAdam(CudaModel& m);
// Fills the device grads with NaN (tests: every gradient must be written by a step).
void cudaPoisonGrads(CudaModel& m);

// Plan for one padded shape (nodes, edges, graphs). `timing` records CUDA
// events around the pack and step graphs (CudaPlanStats::last*Ms).
std::shared_ptr<CudaPlan> cudaCreatePlan(std::shared_ptr<CudaStore> store,
                                         std::shared_ptr<CudaModel> model, const PackShape& shape,
                                         bool timing = false);
CudaPlanStats cudaPlanStats(const CudaPlan& p);
PackShape cudaPlanShape(const CudaPlan& p);

// One training step on graphs `ids` (count real graphs, packed into the plan's
// shape with Jraph padding; an exact shape needs no padding). Throws
// RangeError on an unknown id or a shape too small for the batch. Returns the
// masked MSE loss (standardised units) of the forward pass before the update.
double cudaTrainStep(CudaPlan& p, const int32_t* ids, int64_t count, const AdamArgs& adam);

// Forward + backward without the update (grads left in the model; download
// with cudaDownloadGrads). Not captured. Returns the loss.
double cudaComputeGrads(CudaPlan& p, const int32_t* ids, int64_t count);

// Forward only: per-graph predictions (standardised units, plan graphs long)
// into predOut when non-null; returns the loss.
double cudaPredict(CudaPlan& p, const int32_t* ids, int64_t count, float* predOut);

// Pack only (as inside a step), for tests: copies the packed batch back.
void cudaPackForTest(CudaPlan& p, const int32_t* ids, int64_t count, const PackOut<float>& out);

// Matrix-product implementation for kernels launched (and graphs captured)
// from now on: "ffma" (fp32 FFMA tiles; the default, measured faster on an
// H100) or "tf32x3" (tensor cores, 3xTF32 split, fp32-level error).
// GNN_CUDA_GEMM=tf32x3 sets the initial value; anything else means ffma.
void cudaSetGemmImpl(const std::string& name);
std::string cudaGemmImpl();

// Per-launch device times of one training step run without the CUDA graph
// (same kernels, same order; the device waits until the host has enqueued the
// whole step, so each entry is device time from the previous op's end to its
// own end). Updates the model like cudaTrainStep.
struct CudaLaunchTime {
  std::string name;  // the launch: kernel (products: impl, M x N x K, epilogue), memcpy/memset
  double ms = 0;
  // The kernel site it ran for, named as in the CPU profile (one table,
  // core/models/model.h's kKernelSites: "fwd.filter.w1_gemm", "adam", ...);
  // empty outside the model program (pack, loss copy, invCount, copy/zero).
  std::string site;
  int pass = -1;  // message pass of the site (-1: none)
};
std::vector<CudaLaunchTime> cudaProfileStep(CudaPlan& p, const int32_t* ids, int64_t count,
                                            const AdamArgs& adam);

// Device-to-device copy bandwidth in GB/s, counting bytes read plus written
// (median of a few cudaMemcpy of `bytes`), for the benchmark's floor.
double cudaMeasureCopyBandwidth(size_t bytes = size_t(1) << 30);

// ---- kernel-level test hooks (host arrays in/out; allocate, run, copy back) --
namespace cudatest {
// Epilogue modes of the fused matrix kernel.
enum EpiMode { kPlain = 0, kBias = 1, kBiasSsp = 2, kBiasRes = 3, kGatherSsp = 4, kSspGrad = 5 };
// C[MxN] (+)= op(A) op(B) + epilogue. transA: A is stored [K x M]; transB: B
// is stored [N x K]. aux = bias (N), res/act (M x N), Ps/Pr (rows x N) with
// snd/rcv (M) indices into them.
void gemm(int M, int N, int K, const float* A, bool transA, const float* B, bool transB, float* C,
          bool accumulate, int mode, const float* bias, const float* resOrAct, const float* Ps,
          const float* Pr, int psRows, const int32_t* snd, const int32_t* rcv);
// G[KxN] (+)= X[MxK]^T D[MxN], gbias (+)= colsum(D) (when non-null).
void gemmTN(int M, int K, int N, const float* X, const float* D, float* G, float* gbias,
            bool accumulate);
void segmentSumCsr(const float* src, const int32_t* ptr, int rows, int srcRows, int width,
                   float* out);
void gatherRowsBackward(const float* gradOut, const int32_t* perm, const int32_t* ptr, int rows,
                        int srcRows, int width, float* gradSrc);
void ssp(const float* x, int n, float* out);
void adam(float* p, const float* g, float* m, float* v, int64_t n, const AdamArgs& a);
}  // namespace cudatest

}  // namespace gnn
