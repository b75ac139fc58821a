// Dense kernels (dense.cuh; the CUDA twin of core/dense.cpp): the fused
// matrix product (ffma and tf32x3), X^T D in fixed chunks, the shifted
// softplus. Plain fp32 (FFMA) by default; every reduction runs in a fixed
// order, so results are bitwise reproducible.
#include "cuda/dense.cuh"

#include <mma.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/common.h"

namespace gnn {
namespace cu {

// ---- tiled matrix product ------------------------------------------------------
// Two implementations, chosen per launch by the process-wide gemm impl
// (GNN_CUDA_GEMM=ffma|tf32x3, default ffma; setGemmImpl):
//  * ffma:   64 x 64 output tile per 256-thread block, 4 x 4 per thread, k steps
//            of 16, two shared-memory stages with a register prefetch.
//  * tf32x3: 64 x 64 tile per 128-thread block (4 warps of 32 x 32), WMMA
//            m16n16k8 tf32 tensor-core products with the 3xTF32 split
//            (x = hi + lo, hi = tf32(x), lo = tf32(x - hi);
//            C += lo_a*hi_b + hi_a*lo_b + hi_a*hi_b), fp32-level error; k steps of
//            32, three cp.async shared-memory stages; accumulators through shared
//            memory for the same fused epilogues.
// gridDim.z > 1 splits K into chunks of kChunk; chunk z writes C + z*cStrideZ.
// onesRow >= 0: row onesRow of op(A) reads as 1 (gemmTN's bias column).
constexpr int BM = 64, BN = 64, BK = 16, NT = 256;

static int g_gemmImpl = -1;
int gemmImpl() {
  if (g_gemmImpl < 0) {
    const char* e = std::getenv("GNN_CUDA_GEMM");
    // FFMA by default: measured faster than tf32x3 on an H100 for these tall-skinny
    // products (benchmarks/gpu/results/table.txt: tf32x3 at 0.78-0.87x).
    g_gemmImpl = (e && !std::strcmp(e, "tf32x3")) ? kGemmTf32x3 : kGemmFfma;
  }
  return g_gemmImpl;
}
void setGemmImpl(int impl) { g_gemmImpl = impl == kGemmFfma ? kGemmFfma : kGemmTf32x3; }
const char* gemmImplName(int impl) { return impl == kGemmFfma ? "ffma" : "tf32x3"; }

template <int MODE>
__device__ __forceinline__ float applyEpi(float v, int gm, int gn, const Epi& ep) {
  if (MODE == kBias) v = v + ep.bias[gn];
  else if (MODE == kBiasSsp) v = sspf(v + ep.bias[gn]);
  else if (MODE == kBiasRes) v = v + (ep.bias[gn] + ep.aux[(size_t)gm * ep.ldaux + gn]);
  else if (MODE == kGatherSsp)
    v = sspf(v + ((ep.Ps[(size_t)ep.snd[gm] * ep.ldp + gn] + ep.Pr[(size_t)ep.rcv[gm] * ep.ldp + gn]) +
                  ep.bias[gn]));
  else if (MODE == kSspGrad) v = v * sspGradAct(ep.aux[(size_t)gm * ep.ldaux + gn]);
  return v;
}

template <int MODE, bool TA, bool TB>
__global__ void __launch_bounds__(NT) gemmKernel(int M, int N, int K, int kChunk,
                                                 const float* __restrict__ A, int lda,
                                                 const float* __restrict__ B, int ldb,
                                                 float* __restrict__ C, int ldc, size_t cStrideZ,
                                                 int onesRow, bool accumulate, Epi ep) {
  __shared__ __align__(16) float As[2][BK][BM + 4];
  __shared__ __align__(16) float Bs[2][BK][BN + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int kBeg = blockIdx.z * kChunk, kEnd = min(K, kBeg + kChunk);
  C += blockIdx.z * cStrideZ;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
  float ra[4], rb[4];
  auto load = [&](int k0) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int e = tid + NT * q;
      int r, c;
      if (!TA) { r = e / BK; c = e % BK; } else { r = e % BM; c = e / BM; }
      const int gm = m0 + r, gk = k0 + c;
      float v = 0.f;
      if (gm < M && gk < kEnd) {
        if (gm == onesRow) v = 1.f;
        else v = TA ? A[(size_t)gk * lda + gm] : A[(size_t)gm * lda + gk];
      }
      ra[q] = v;
      int kk, n;
      if (!TB) { kk = e / BN; n = e % BN; } else { n = e / BK; kk = e % BK; }
      const int gn = n0 + n, gk2 = k0 + kk;
      float w = 0.f;
      if (gn < N && gk2 < kEnd) w = TB ? B[(size_t)gn * ldb + gk2] : B[(size_t)gk2 * ldb + gn];
      rb[q] = w;
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int e = tid + NT * q;
      int r, c;
      if (!TA) { r = e / BK; c = e % BK; } else { r = e % BM; c = e / BM; }
      As[buf][c][r] = ra[q];
      int kk, n;
      if (!TB) { kk = e / BN; n = e % BN; } else { n = e / BK; kk = e % BK; }
      Bs[buf][kk][n] = rb[q];
    }
  };
  load(kBeg);
  store(0);
  __syncthreads();
  int buf = 0;
  for (int k0 = kBeg; k0 < kEnd; k0 += BK) {
    const bool more = k0 + BK < kEnd;
    if (more) load(k0 + BK);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&As[buf][kk][ty * 4]);
      const float4 b = *reinterpret_cast<const float4*>(&Bs[buf][kk][tx * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) store(buf ^ 1);
    __syncthreads();
    buf ^= 1;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int gm = m0 + ty * 4 + i;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int gn = n0 + tx * 4 + j;
      if (gn >= N) continue;
      const float v = applyEpi<MODE>(acc[i][j], gm, gn, ep);
      float* dst = C + (size_t)gm * ldc + gn;
      *dst = accumulate ? *dst + v : v;
    }
  }
}

// ---- tf32x3 tensor-core kernel -----------------------------------------------------
namespace tc {
constexpr int BM = 64, BN = 64, BK = 32, ST = 3, NT = 128;
constexpr int PAD = 4;
constexpr int kTileFloats = (BM * (BK + PAD) > BK * (BM + PAD)) ? BM * (BK + PAD) : BK * (BM + PAD);  // 2304
constexpr int kStageFloats = 2 * kTileFloats;
constexpr int kSmemBytes = ST * kStageFloats * 4;  // 55296
static_assert(BM * (BN + PAD) <= ST * kStageFloats, "epilogue tile must fit the pipeline buffers");

__device__ __forceinline__ void cpAsync4(float* dst, const float* src, bool valid) {
  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
  const int n = valid ? 4 : 0;  // 0: zero-fill, nothing read
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(d), "l"(src), "r"(n));
}
__device__ __forceinline__ void cpAsync16(float* dst, const float* src) {
  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src));
}
__device__ __forceinline__ void cpCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cpWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Copies an OUT x IN tile (IN contiguous in global memory and in shared memory,
// shared row stride IN + PAD) from g[(o0 + o) * ld + i0 + i]; elements outside
// (oLim, iLim) read 0; element (onesO, *) or (*, onesI) reads 1 (when inside).
// vec: ld and g are 16-byte aligned, so whole 4-groups go as one 16-byte copy.
template <int OUT, int IN>
__device__ __forceinline__ void tileLoad(float* sm, const float* __restrict__ g, int ld, int o0, int oLim,
                                         int i0, int iLim, bool vec, int onesO, int onesI, int tid) {
  constexpr int GPR = IN / 4;  // 4-groups per row
  constexpr int TOTAL = OUT * GPR;
  static_assert(TOTAL % NT == 0, "tile groups must divide the block");
#pragma unroll
  for (int q = 0; q < TOTAL / NT; ++q) {
    const int grp = tid + NT * q;
    const int o = grp / GPR, ic = (grp % GPR) * 4;
    const int go = o0 + o, gi = i0 + ic;
    float* d = sm + o * (IN + PAD) + ic;
    const bool rowOk = go < oLim;
    const bool special = go == onesO || (onesI >= gi && onesI < gi + 4);
    if (vec && rowOk && gi + 3 < iLim && !special) {
      cpAsync16(d, g + (size_t)go * ld + gi);
    } else {
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const bool ok = rowOk && gi + t < iLim;
        if (ok && (go == onesO || gi + t == onesI)) d[t] = 1.f;
        else cpAsync4(d + t, ok ? g + (size_t)go * ld + gi + t : g, ok);
      }
    }
  }
}

template <class Frag>
__device__ __forceinline__ void splitTf32(Frag& hi, Frag& lo) {
#pragma unroll
  for (int t = 0; t < hi.num_elements; ++t) {
    const float x = hi.x[t];
    const float h = nvcuda::wmma::__float_to_tf32(x);
    lo.x[t] = nvcuda::wmma::__float_to_tf32(x - h);
    hi.x[t] = h;
  }
}

template <int MODE, bool TA, bool TB>
__global__ void __launch_bounds__(NT) gemmTf32x3Kernel(int M, int N, int K, int kChunk,
                                                       const float* __restrict__ A, int lda,
                                                       const float* __restrict__ B, int ldb,
                                                       float* __restrict__ C, int ldc, size_t cStrideZ,
                                                       int onesRow, bool accumulate, bool vecA, bool vecB,
                                                       Epi ep) {
  using namespace nvcuda;
  extern __shared__ __align__(128) float smem[];
  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int kBeg = blockIdx.z * kChunk, kEnd = min(K, kBeg + kChunk);
  C += blockIdx.z * cStrideZ;
  const int nTiles = kEnd > kBeg ? (kEnd - kBeg + BK - 1) / BK : 0;

  // stage s: A tile at smem + s*kStageFloats, B tile after it.
  // A: !TA [BM][BK+PAD] (m rows, k contiguous); TA [BK][BM+PAD] (k rows, m contiguous).
  // B: !TB [BK][BN+PAD] (k rows, n contiguous); TB [BN][BK+PAD] (n rows, k contiguous).
  auto loadStage = [&](int tile, int stage) {
    float* sa = smem + stage * kStageFloats;
    float* sb = sa + kTileFloats;
    const int k0 = kBeg + tile * BK;
    if (!TA) tileLoad<BM, BK>(sa, A, lda, m0, M, k0, kEnd, vecA, onesRow, -1, tid);
    else tileLoad<BK, BM>(sa, A, lda, k0, kEnd, m0, M, vecA, -1, onesRow, tid);
    if (!TB) tileLoad<BK, BN>(sb, B, ldb, k0, kEnd, n0, N, vecB, -1, -1, tid);
    else tileLoad<BN, BK>(sb, B, ldb, n0, N, k0, kEnd, vecB, -1, -1, tid);
  };

  using LA = typename std::conditional<TA, wmma::col_major, wmma::row_major>::type;
  using LB = typename std::conditional<TB, wmma::col_major, wmma::row_major>::type;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.f);

#pragma unroll
  for (int s = 0; s < ST - 1; ++s) {
    if (s < nTiles) loadStage(s, s);
    cpCommit();
  }
  for (int t = 0; t < nTiles; ++t) {
    cpWait<ST - 2>();
    __syncthreads();
    if (t + ST - 1 < nTiles) loadStage(t + ST - 1, (t + ST - 1) % ST);
    cpCommit();
    const float* sa = smem + (t % ST) * kStageFloats;
    const float* sb = sa + kTileFloats;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, LA> ah[2], al[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, LB> bh[2], bl[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int m = wm + i * 16;
        if (!TA) wmma::load_matrix_sync(ah[i], sa + m * (BK + PAD) + kk, BK + PAD);
        else wmma::load_matrix_sync(ah[i], sa + kk * (BM + PAD) + m, BM + PAD);
        splitTf32(ah[i], al[i]);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int n = wn + j * 16;
        if (!TB) wmma::load_matrix_sync(bh[j], sb + kk * (BN + PAD) + n, BN + PAD);
        else wmma::load_matrix_sync(bh[j], sb + n * (BK + PAD) + kk, BK + PAD);
        splitTf32(bh[j], bl[j]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          wmma::mma_sync(acc[i][j], al[i], bh[j], acc[i][j]);
          wmma::mma_sync(acc[i][j], ah[i], bl[j], acc[i][j]);
          wmma::mma_sync(acc[i][j], ah[i], bh[j], acc[i][j]);
        }
    }
  }
  cpWait<0>();
  __syncthreads();  // pipeline buffers free: reuse them for the output tile
  float* cs = smem;  // [BM][BN+PAD]
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(cs + (wm + i * 16) * (BN + PAD) + wn + j * 16, acc[i][j], BN + PAD,
                              wmma::mem_row_major);
  __syncthreads();
  for (int e = tid; e < BM * BN; e += NT) {
    const int r = e / BN, c = e % BN;
    const int gm = m0 + r, gn = n0 + c;
    if (gm >= M || gn >= N) continue;
    const float v = applyEpi<MODE>(cs[r * (BN + PAD) + c], gm, gn, ep);
    float* dst = C + (size_t)gm * ldc + gn;
    *dst = accumulate ? *dst + v : v;
  }
}
}  // namespace tc

static const char* modeName(int m) {
  switch (m) {
    case kPlain: return "plain";
    case kBias: return "bias";
    case kBiasSsp: return "bias+ssp";
    case kBiasRes: return "bias+res";
    case kGatherSsp: return "gather+ssp";
    case kSspGrad: return "ssp'";
    default: return "?";
  }
}
static inline bool aligned16(const void* p, int ld) {
  return ((uintptr_t)p % 16) == 0 && ld % 4 == 0;
}

// Raises the dynamic shared-memory limit of one tf32x3 instantiation (once).
template <int MODE, bool TA, bool TB>
static void tcAttr() {
  static bool done = false;
  if (done) return;
  checkCuda(cudaFuncSetAttribute(tc::gemmTf32x3Kernel<MODE, TA, TB>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 tc::kSmemBytes),
            "cudaFuncSetAttribute(gemmTf32x3Kernel)");
  done = true;
}
void prepareKernels() {  // outside any capture: every instantiation gemm() may launch
  tcAttr<kPlain, true, false>();
#define GNN_A(MODE) tcAttr<MODE, false, false>(); tcAttr<MODE, false, true>();
  GNN_A(kPlain) GNN_A(kBias) GNN_A(kBiasSsp) GNN_A(kBiasRes) GNN_A(kGatherSsp) GNN_A(kSspGrad)
#undef GNN_A
}

template <int MODE, bool TA, bool TB>
static void launchGemm(cudaStream_t s, int M, int N, int K, int kChunk, int chunks, const float* A,
                       int lda, const float* B, int ldb, float* C, int ldc, size_t strideZ,
                       int onesRow, bool acc, const Epi& ep, const char* what) {
  const int impl = gemmImpl();
  if (impl == kGemmFfma) {
    dim3 grid(cdiv(M, BM), cdiv(N, BN), chunks);
    gemmKernel<MODE, TA, TB><<<grid, NT, 0, s>>>(M, N, K, kChunk, A, lda, B, ldb, C, ldc, strideZ,
                                                 onesRow, acc, ep);
  } else {
    tcAttr<MODE, TA, TB>();  // normally done already by prepareKernels()
    dim3 grid(cdiv(M, tc::BM), cdiv(N, tc::BN), chunks);
    tc::gemmTf32x3Kernel<MODE, TA, TB><<<grid, tc::NT, tc::kSmemBytes, s>>>(
        M, N, K, kChunk, A, lda, B, ldb, C, ldc, strideZ, onesRow, acc, aligned16(A, lda),
        aligned16(B, ldb), ep);
  }
  checkCuda(cudaGetLastError(), what);
  if (profiling()) {
    char nm[160];
    std::snprintf(nm, sizeof nm, "%s[%s] %dx%dx%d%s%s %s%s", what, gemmImplName(impl), M, N, K,
                  TA ? " tA" : "", TB ? " tB" : "", modeName(MODE), acc ? " acc" : "");
    profMark(s, nm);
  }
}

void gemm(cudaStream_t s, int M, int N, int K, const float* A, int lda, bool transA, const float* B,
          int ldb, bool transB, float* C, int ldc, bool acc, const Epi& ep) {
  if (M <= 0 || N <= 0) return;
  double extra = 0;
  if (ep.mode == kBiasRes || ep.mode == kSspGrad || ep.mode == kGatherSsp) extra = (double)M * N;
  if (ep.mode == kGatherSsp) extra *= 2;
  addCost(2.0 * M * N * K, 4.0 * ((double)M * K + (double)K * N + (double)M * N * (acc ? 2 : 1) + extra));
  const int kc = std::max(K, 1);
#define GNN_G(MODE, TA, TB) \
  launchGemm<MODE, TA, TB>(s, M, N, K, kc, 1, A, lda, B, ldb, C, ldc, 0, -1, acc, ep, "gemm")
  if (transA) {
    if (ep.mode != kPlain || transB) throw Error(ErrorKind::Generic, "ERR_GNN_CUDA", "gemm: unsupported transA combination");
    GNN_G(kPlain, true, false);
    return;
  }
  switch (ep.mode) {
    case kPlain: if (transB) GNN_G(kPlain, false, true); else GNN_G(kPlain, false, false); break;
    case kBias: if (transB) GNN_G(kBias, false, true); else GNN_G(kBias, false, false); break;
    case kBiasSsp: if (transB) GNN_G(kBiasSsp, false, true); else GNN_G(kBiasSsp, false, false); break;
    case kBiasRes: if (transB) GNN_G(kBiasRes, false, true); else GNN_G(kBiasRes, false, false); break;
    case kGatherSsp: if (transB) GNN_G(kGatherSsp, false, true); else GNN_G(kGatherSsp, false, false); break;
    case kSspGrad: if (transB) GNN_G(kSspGrad, false, true); else GNN_G(kSspGrad, false, false); break;
    default: throw Error(ErrorKind::Generic, "ERR_GNN_CUDA", "gemm: unknown epilogue mode");
  }
#undef GNN_G
}


size_t gemmTNScratchFloats(int M, int K, int N) {
  const int chunks = std::max(1, cdiv(M, kTNChunk));
  return (size_t)chunks * (size_t)(K + 1) * (size_t)N;
}

__global__ void chunkSumKernel(const float* __restrict__ P, int chunks, size_t per, int KN, int total,
                               float* __restrict__ G, float* __restrict__ gbias, bool acc) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= total) return;
  float s = P[e];
  for (int c = 1; c < chunks; ++c) s += P[(size_t)c * per + e];
  float* dst = e < KN ? G + e : gbias + (e - KN);
  *dst = acc ? *dst + s : s;
}

void gemmTN(cudaStream_t s, int M, int K, int N, const float* X, int ldx, const float* D, int ldd,
            float* G, float* gbias, bool acc, float* scratch) {
  if (K <= 0 || N <= 0) return;
  const int chunks = std::max(1, cdiv(M, kTNChunk));
  const int rows = K + (gbias ? 1 : 0);
  const size_t per = (size_t)rows * N;
  addCost(2.0 * M * N * rows, 4.0 * ((double)M * K + (double)M * N + (double)K * N));
  // Partial products: out rows = K columns of X (+ a virtual ones column for
  // the bias), reduction over the M rows of X and D, one chunk per grid z.
  launchGemm<kPlain, true, false>(s, rows, N, M, kTNChunk, chunks, X, ldx, D, ldd, scratch, N, per,
                                  gbias ? K : -1, false, Epi(), "gemmTN.part");
  const int total = (int)per;
  chunkSumKernel<<<cdiv(total, 256), 256, 0, s>>>(scratch, chunks, per, K * N, total, G, gbias, acc);
  checkLaunch(s, "gemmTN.sum");
}

// ---- shifted softplus ------------------------------------------------------------
__global__ void sspKernel(const float* x, int n, float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = sspf(x[i]);
}
void sspForward(cudaStream_t s, const float* x, int n, float* out) {
  if (n <= 0) return;
  sspKernel<<<cdiv(n, 256), 256, 0, s>>>(x, n, out);
  checkLaunch(s, "sspKernel");
}

}  // namespace cu
}  // namespace gnn
