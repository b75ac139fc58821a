// Internal launchers of the CUDA kernels (see kernels.cu). Every launcher
// enqueues on the given stream, checks the launch, and adds its matrix flops
// and minimum bytes to the active cost counter (when one is set).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gnn {
namespace cu {

void checkCuda(cudaError_t e, const char* what);
#define GNN_CU(x) ::gnn::cu::checkCuda((x), #x)

struct Cost {
  double flops = 0, bytes = 0;
};
// Launchers add to *c while set (nullptr: no counting).
void setCostCounter(Cost* c);
void addCost(double flops, double bytes);

// Per-launch profiler (gnn_native_check --breakdown): while set, every launcher
// records an event on its stream after its launch, named after the kernel
// (matrix products: impl, M x N x K, transposes, epilogue). Not for capture.
struct Profiler {
  std::vector<cudaEvent_t> ev;
  std::vector<std::string> names;
};
void setProfiler(Profiler* p);
bool profiling();
void profMark(cudaStream_t s, const std::string& name);
// Spins the stream for ms milliseconds (lets the host run ahead while profiling).
void spin(cudaStream_t s, double ms);

// Matrix-product implementation used by the next launches (process-wide;
// ffma unless GNN_CUDA_GEMM=tf32x3 when first asked). A captured graph
// keeps the implementation it was captured with.
enum GemmImpl { kGemmFfma = 0, kGemmTf32x3 = 1 };
int gemmImpl();
void setGemmImpl(int impl);
const char* gemmImplName(int impl);
// One-time kernel attributes (tf32x3 dynamic shared memory), called outside
// stream capture (plan creation, test hooks).
void prepareKernels();

enum EpiMode { kPlain = 0, kBias = 1, kBiasSsp = 2, kBiasRes = 3, kGatherSsp = 4, kSspGrad = 5 };
struct Epi {
  int mode = kPlain;
  const float* bias = nullptr;   // [N]
  const float* aux = nullptr;    // residual (kBiasRes) or activation (kSspGrad), [M x ldaux]
  int ldaux = 0;
  const float* Ps = nullptr;     // kGatherSsp: C += Ps[snd[i]] + Pr[rcv[i]]
  const float* Pr = nullptr;
  int ldp = 0;
  const int32_t* snd = nullptr;
  const int32_t* rcv = nullptr;
};

// C[M x N] (+)= op(A)[M x K] op(B)[K x N], then the epilogue.
// transA: A(i,k) = A[k*lda + i]; else A[i*lda + k]. transB: B(k,n) = B[n*ldb + k].
void gemm(cudaStream_t s, int M, int N, int K, const float* A, int lda, bool transA,
          const float* B, int ldb, bool transB, float* C, int ldc, bool accumulate,
          const Epi& epi = Epi());

// G[K x N] (+)= X[M x K]^T D[M x N] and gbias (+)= colsum(D): partial products
// over fixed chunks of kTNChunk rows, then an ordered sum (deterministic).
constexpr int kTNChunk = 256;
size_t gemmTNScratchFloats(int M, int K, int N);
void gemmTN(cudaStream_t s, int M, int K, int N, const float* X, int ldx, const float* D, int ldd,
            float* G, float* gbias, bool accumulate, float* scratch);

// out[r,:] = sum_{k in ptr[r]..ptr[r+1]} src[perm ? perm[k] : k, :]
void csrRowSum(cudaStream_t s, const float* src, const int32_t* perm, const int32_t* ptr, int rows,
               int width, float* out);

void sspForward(cudaStream_t s, const float* x, int n, float* out);

struct AdamDev {  // float scalars as the CPU adamUpdate computes them
  float b1, b2, ob1, ob2, scale, eps, stepSize, invBc2, wd;
};
AdamDev adamScalars(double lr, double beta1, double beta2, double eps, double bc1, double bc2,
                    double gradScale, double weightDecay);
// hyper: device pointer to an AdamDev (read at run time, so a captured graph
// sees the values of each replay).
void adam(cudaStream_t s, float* p, const float* g, float* m, float* v, int64_t n,
          const AdamDev* hyper);

// ---- model pieces ------------------------------------------------------------
void rbf(cudaStream_t s, const float* dist, int E, int K, float gamma, float step, float* out);
void invCount(cudaStream_t s, const int32_t* recvPtr, int N, bool mean, float* out);
void embed(cudaStream_t s, const int32_t* atom, int N, int C, const float* W, const float* b,
           float* h);
// agg[r] = invCnt[r] * sum_{k in row r} f2[k] * hs[snd[k]]
void aggregate(cudaStream_t s, const int32_t* recvPtr, const int32_t* snd, const float* f2,
               const float* hs, const float* invCnt, int N, int C, float* agg);
// dA[k] = dagg[rcv[k]] * ic[rcv[k]] * hs[snd[k]] * ssp'(f2[k])
void messageBwdEdge(cudaStream_t s, const int32_t* snd, const int32_t* rcv, const float* dagg,
                    const float* invCnt, const float* hs, const float* f2, int E, int C, float* dA);
// dhs[n] = sum_{k in sender row n} dagg[r] * ic[r] * f2[e], e = sendPerm[k], r = rcv[e]
void messageBwdSender(cudaStream_t s, const int32_t* sendPtr, const int32_t* sendPerm,
                      const int32_t* rcv, const float* dagg, const float* invCnt, const float* f2,
                      int N, int C, float* dhs);
// Per-graph mean readout, masked MSE loss (double, written to lossOut) and, when
// dr2 is non-null, d loss / d r2 per node.
void readoutLoss(cudaStream_t s, const float* r2, const int32_t* nodeStart, const int32_t* nNode,
                 const float* target, const float* mask, int G, bool meanReadout, float* pred,
                 double* lossOut, float* dr2);
// dr1[n,j] = dr2[n] * w2[j] * ssp'(r1[n,j])
void readoutBwdHidden(cudaStream_t s, const float* dr2, const float* w2, const float* r1, int N,
                      int R, float* dr1);
// gW[z] = sum_{n: atom[n]==z} dh[n], gb = sum_n dh[n]: onehot(atom)^T dh through
// gemmTN (oneHot: N x classes scratch; scratch: gemmTNScratchFloats(N, classes, C)).
void embedBwd(cudaStream_t s, const int32_t* atom, const float* dh, int N, int C, int classes,
              float* gW, float* gb, float* oneHot, float* scratch);

// ---- packing -------------------------------------------------------------------
struct DevStore {
  int64_t numGraphs = 0;
  const int32_t* nodeOffset = nullptr;
  const int32_t* edgeOffset = nullptr;
  const uint8_t* atomicNumber = nullptr;
  const int32_t* senders = nullptr;
  const int32_t* receivers = nullptr;
  const float* distance = nullptr;
  const int32_t* senderPerm = nullptr;
  const float* target = nullptr;
};
struct DevBatch {
  int32_t *atom, *snd, *rcv, *nNode, *recvPtr, *sendPerm, *sendPtr, *nodeStart, *edgeStart, *meta;
  float *dist, *target, *mask;
};
// ids/count live in device memory (count at *countDev) so the launch can be
// captured once and replayed with new ids.
void pack(cudaStream_t s, const DevStore& st, const int32_t* countDev, const int32_t* idsDev,
          int N, int E, int G, const DevBatch& b);

}  // namespace cu
}  // namespace gnn
