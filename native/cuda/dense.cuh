// Dense kernels (the CUDA twin of core/dense.h): the fused matrix product in
// two implementations (ffma, tf32x3), the parameter-gradient product X^T D
// with a fixed reduction order, and the shifted softplus.
#pragma once
#include "cuda/common.cuh"

namespace gnn {
namespace cu {

// Shifted softplus ssp(x) = ln(1 + e^x) - ln 2, and ssp'(pre) from the
// activation a = ssp(pre) (as core/dense.h's mulSspGradFromAct). Device code.
__device__ __forceinline__ float sspf(float x) {
  return fmaxf(x, 0.f) + log1pf(expf(-fabsf(x))) - 0.6931471805599453f;
}
__device__ __forceinline__ float sspGradAct(float a) { return 1.f - expf(-(a + 0.6931471805599453f)); }

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

void sspForward(cudaStream_t s, const float* x, int n, float* out);

}  // namespace cu
}  // namespace gnn
