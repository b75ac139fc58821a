#include "dense.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gnn {

// ---- SIMD configuration ------------------------------------------------------
// GCC/Clang vector extensions: the compiler maps them to AVX-512, AVX2 or SSE.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64, kMR = 6, kNV = 4;
#elif defined(__AVX__)
constexpr int kVecBytes = 32, kMR = 4, kNV = 2;
#else
constexpr int kVecBytes = 16, kMR = 4, kNV = 2;
#endif

template <class T>
struct Vec {
  typedef T V __attribute__((vector_size(kVecBytes)));
  static constexpr int L = kVecBytes / (int)sizeof(T);
  static inline V load(const T* p) { V v; std::memcpy(&v, p, sizeof(V)); return v; }
  static inline void store(T* p, const V& v) { std::memcpy(p, &v, sizeof(V)); }
};

static thread_local double t_flops = 0.0;  // see dense.h: per calling thread
DenormalGuard::DenormalGuard() {
#if defined(__SSE__)
  saved_ = _mm_getcsr();
#pragma omp parallel num_threads(numThreads())
  _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ | DAZ in every worker thread
#endif
}
DenormalGuard::~DenormalGuard() {
#if defined(__SSE__)
  // Back to IEEE semantics in the worker threads (other kernels share the
  // pool) and in the calling (Node) thread.
#pragma omp parallel num_threads(numThreads())
  _mm_setcsr(_mm_getcsr() & ~0x8040u);
  _mm_setcsr(saved_);
#endif
}

void resetFlops() { t_flops = 0.0; }
double flopsCount() { return t_flops; }
void addFlopsCount(double f) { t_flops += f; }
static inline void addFlops(double f) { t_flops += f; }

// Prefetches the element `offset` elements after p. The address may lie past
// the end of the array (the last tile's "next" rows): it is formed as an
// integer, not as a pointer, and a prefetch never faults.
template <class T>
static inline void prefetchAt(const T* p, int64_t offset) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + (uintptr_t)(offset * (int64_t)sizeof(T))), 0, 3);
}

// C[MR x NV*L] (+)= A[MR x K] B[K x NV*L]; accumulators live in registers.
// PF (row-major A, csA == 1): once per cache line of the A rows, prefetch the
// same line of the next tile's MR rows, so the streamed operand is on its way
// while this tile computes (A is the one operand a product streams from memory:
// measured on the step's shapes with A cold, 9984x64x150 113 -> 162 GFLOP/s and
// 39936x64x64 106 -> 134, same run, interleaved).
template <class T, int MR, int NV, bool PF = false>
static inline void micro(int64_t K, const T* __restrict A, int64_t rsA, int64_t csA,
                         const T* __restrict B, int64_t ldb, T* __restrict C, int64_t ldc, bool acc) {
  using VV = Vec<T>;
  using V = typename VV::V;
  constexpr int L = VV::L;
  V c[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) c[i][v] = acc ? VV::load(C + i * ldc + v * L) : V{};
  for (int64_t k = 0; k < K; ++k) {
    V b[NV];
    for (int v = 0; v < NV; ++v) b[v] = VV::load(B + k * ldb + v * L);
    const T* a = A + k * csA;
    if (PF && (k % (64 / (int64_t)sizeof(T))) == 0)
      for (int i = 0; i < MR; ++i) prefetchAt(a, (MR + i) * rsA);
    // A read across rows (gemmTN's X^T: a tile's MR values sit in row k of X):
    // the next tile's values of row k + 8, which often start a new cache line.
    if (!PF) prefetchAt(a, MR * rsA + 8 * csA);
    for (int i = 0; i < MR; ++i) {
      const T s = a[i * rsA];
      for (int v = 0; v < NV; ++v) c[i][v] += b[v] * s;
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) VV::store(C + i * ldc + v * L, c[i][v]);
}

// Scalar edge case: columns that do not fill a vector.
template <class T>
static void microScalar(int64_t rows, int64_t cols, int64_t K, const T* A, int64_t rsA, int64_t csA,
                        const T* B, int64_t ldb, T* C, int64_t ldc, bool acc) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      T s = acc ? C[i * ldc + j] : T(0);
      for (int64_t k = 0; k < K; ++k) s += A[i * rsA + k * csA] * B[k * ldb + j];
      C[i * ldc + j] = s;
    }
}

// The rows of a block that do not fill a kMR tile, as one tile of that height
// (1 to kMR - 1 rows): each element gets the same arithmetic as in a kMR-row
// tile, but B is read once for all of them instead of once per row. Weight
// gradients have such a remainder in every call (64 = 10 x 6 + 4 rows of dW):
// 39936x64x64 X^T D 110.6 -> 121.0 GFLOP/s, 9984x64x128 120.5 -> 138.1.
template <class T, int NV, bool PF>
static inline void microRows(int64_t rows, int64_t K, const T* A, int64_t rsA, int64_t csA, const T* B, int64_t ldb,
                             T* C, int64_t ldc, bool acc) {
  static_assert(kMR <= 6, "microRows covers remainders of up to 5 rows");
  switch (rows) {
    case 1: micro<T, 1, NV, PF>(K, A, rsA, csA, B, ldb, C, ldc, acc); break;
    case 2: micro<T, 2, NV, PF>(K, A, rsA, csA, B, ldb, C, ldc, acc); break;
    case 3: micro<T, 3, NV, PF>(K, A, rsA, csA, B, ldb, C, ldc, acc); break;
    case 4: micro<T, 4, NV, PF>(K, A, rsA, csA, B, ldb, C, ldc, acc); break;
    default: micro<T, 5, NV, PF>(K, A, rsA, csA, B, ldb, C, ldc, acc); break;
  }
}

// One block of rows [m0, m1) x all columns.
template <class T, bool PF>
static void gemmBlockImpl(int64_t m0, int64_t m1, int64_t N, int64_t K, const T* A, int64_t rsA, int64_t csA,
                          const T* B, int64_t ldb, T* C, int64_t ldc, bool acc) {
  constexpr int L = Vec<T>::L;
  constexpr int PW = kNV * L;
  int64_t j0 = 0;
#if defined(__AVX512F__)
  // Row-major A: panels of 2 x PW columns (128 floats) in tiles of 3 rows x 8
  // vectors, so a row of A feeds twice the columns per load. MPEU's 128-wide
  // edge products (9984 x 128 x 64, A from memory) 0.83-0.90 -> 0.94-1.01 of
  // libxsmm's rate. Not for gemmTN's transposed A: its D rows would be read
  // once per 3 output rows instead of 6 (X^T D with N = 128 fell to 0.6-0.7).
  if constexpr (PF) {
    for (; j0 + 2 * PW <= N; j0 += 2 * PW) {
      int64_t i = m0;
      for (; i + 3 <= m1; i += 3)
        micro<T, 3, 2 * kNV, PF>(K, A + i * rsA, rsA, csA, B + j0, ldb, C + i * ldc + j0, ldc, acc);
      for (; i < m1; ++i) micro<T, 1, 2 * kNV, PF>(K, A + i * rsA, rsA, csA, B + j0, ldb, C + i * ldc + j0, ldc, acc);
    }
  }
#endif
  for (; j0 + PW <= N; j0 += PW) {
    int64_t i = m0;
    for (; i + kMR <= m1; i += kMR)
      micro<T, kMR, kNV, PF>(K, A + i * rsA, rsA, csA, B + j0, ldb, C + i * ldc + j0, ldc, acc);
    if (i < m1) microRows<T, kNV, PF>(m1 - i, K, A + i * rsA, rsA, csA, B + j0, ldb, C + i * ldc + j0, ldc, acc);
  }
  for (; j0 + L <= N; j0 += L) {
    int64_t i = m0;
    for (; i + kMR <= m1; i += kMR)
      micro<T, kMR, 1, PF>(K, A + i * rsA, rsA, csA, B + j0, ldb, C + i * ldc + j0, ldc, acc);
    if (i < m1) microRows<T, 1, PF>(m1 - i, K, A + i * rsA, rsA, csA, B + j0, ldb, C + i * ldc + j0, ldc, acc);
  }
  if (j0 < N)
    microScalar<T>(m1 - m0, N - j0, K, A + m0 * rsA, rsA, csA, B + j0, ldb, C + m0 * ldc + j0, ldc, acc);
}

// Row-major A (csA == 1) gets the next tile's rows prefetched once per cache
// line (and, under AVX-512, the 128-column panels); a transposed A (the weight
// gradients' X^T, read across rows) gets the next tile's values prefetched 8
// rows ahead (micro's !PF branch). A one-column X (ldx == 1, gemmTN with K = 1)
// looks row-major and takes the first path: the same results either way.
template <class T>
static void gemmBlock(int64_t m0, int64_t m1, int64_t N, int64_t K, const T* A, int64_t rsA, int64_t csA,
                      const T* B, int64_t ldb, T* C, int64_t ldc, bool acc) {
  if (csA == 1) gemmBlockImpl<T, true>(m0, m1, N, K, A, rsA, csA, B, ldb, C, ldc, acc);
  else gemmBlockImpl<T, false>(m0, m1, N, K, A, rsA, csA, B, ldb, C, ldc, acc);
}

template <class T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsA, int64_t csA, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate, const RowEpilogue<T>& epi) {
  if (M <= 0 || N <= 0) return;
  addFlops(2.0 * (double)M * (double)N * (double)K);
  const int64_t RB = kMR * 16;
  const int64_t nb = (M + RB - 1) / RB;
  const bool par = 2 * M * N * K >= kParallelMinFlops;
#pragma omp parallel for schedule(static) num_threads(numThreads()) if (par)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t m0 = b * RB, m1 = std::min(M, m0 + RB);
    if (K == 0) {  // C = 0 or C unchanged (A and B may then be empty)
      if (!accumulate)
        for (int64_t i = m0; i < m1; ++i) std::memset(C + i * ldc, 0, sizeof(T) * N);
    } else {
      gemmBlock(m0, m1, N, K, A, rsA, csA, B, ldb, C, ldc, accumulate);
    }
    if (epi) epi(m0, m1);
  }
}

template <class T>
void gemmTN(int64_t M, int64_t K, int64_t N, const T* X, int64_t ldx, const T* D, int64_t ldd,
            T* G, T* gbias, bool accumulate, std::vector<T>& scratch) {
  if (K <= 0 || N <= 0) return;
  addFlops(2.0 * (double)M * (double)N * (double)K);
  // Fixed chunking of the reduction dimension: the order of additions is the
  // same whatever the number of threads.
  const int64_t CH = 512;
  const int64_t nch = std::max<int64_t>(1, (M + CH - 1) / CH);
  const int64_t per = K * N + N;
  if ((int64_t)scratch.size() < nch * per) scratch.resize((size_t)(nch * per));
  T* P = scratch.data();
  const bool par = 2 * M * N * K >= kParallelMinFlops;
  // Tasks: (chunk, block of output rows). Blocks of KB rows (a multiple of
  // the micro-kernel's kMR) keep the micro-tiles where one call over all K
  // rows puts them, and every element's sum runs over its chunk's rows in the
  // same order: the result is the same bits as one task per chunk, for any
  // thread count. More tasks than chunks keep both threads busy where the
  // chunks are few or unequal (M = 576: 512 + 64 rows); dynamic scheduling
  // hands them out (each task writes its own rows of its chunk's partial).
  // With 8 or more chunks they balance on their own (and splitting would
  // re-read each chunk's D rows once per block): one block of all K rows.
  const int64_t KB = nch >= 8 ? K : kMR * 4;
  const int64_t nkb = (K + KB - 1) / KB;
  const int64_t tasks = nch * nkb;
#pragma omp parallel for schedule(dynamic, 1) num_threads(numThreads()) if (par)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t c = t / nkb, kb = t % nkb;
    const int64_t k0 = kb * KB, k1 = std::min(K, k0 + KB);
    const int64_t r0 = c * CH, r1 = std::min(M, r0 + CH);
    T* Pc = P + c * per;
    // Pc[k0:k1, :] = X[r0:r1, k0:k1]^T D[r0:r1]: A(i,k) = X[(r0+k)*ldx + i].
    if (r1 > r0) {
      // Each micro-tile runs over the chunk's rows at once, its accumulators in
      // registers throughout, the next tile's X lines prefetched as it goes
      // (see micro). Measured against libxsmm's JIT kernel on the same chunks
      // (`npm run bench -- microkernels`): 128-row sub-blocks and no prefetch
      // ran at 0.64-0.93 of it, this at 0.9-1.2.
      gemmBlock<T>(k0, k1, N, r1 - r0, X + r0 * ldx, 1, ldx, D + r0 * ldd, ldd, Pc, N, false);
    } else {
      std::memset(Pc + k0 * N, 0, sizeof(T) * (k1 - k0) * N);
    }
    if (kb != 0) continue;
    T* pb = Pc + K * N;
    std::memset(pb, 0, sizeof(T) * N);
    if (gbias)
      for (int64_t r = r0; r < r1; ++r) {
        const T* d = D + r * ldd;
#pragma omp simd
        for (int64_t j = 0; j < N; ++j) pb[j] += d[j];
      }
  }
  // The chunks' partials summed in chunk order, for blocks of elements at a
  // time (each chunk's block is contiguous, so the adds are vector adds; the
  // order per element is chunk 0, 1, ... as before).
  const int64_t total = K * N + (gbias ? N : 0);
  constexpr int64_t EB = 256;
  const int64_t neb = (total + EB - 1) / EB;
#pragma omp parallel for schedule(static) num_threads(numThreads()) if (par)
  for (int64_t eb = 0; eb < neb; ++eb) {
    const int64_t e0 = eb * EB, e1 = std::min(total, e0 + EB);
    T s[EB];
    std::memcpy(s, P + e0, sizeof(T) * (e1 - e0));
    for (int64_t c = 1; c < nch; ++c) {
      const T* pc = P + c * per + e0;
#pragma omp simd
      for (int64_t e = 0; e < e1 - e0; ++e) s[e] += pc[e];
    }
    for (int64_t e = e0; e < e1; ++e) {
      T* dst = e < K * N ? G + e : gbias + (e - K * N);
      *dst = accumulate ? *dst + s[e - e0] : s[e - e0];
    }
  }
}

template <class T>
void gemmSerial(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsA, int64_t csA, const T* B, int64_t ldb,
                T* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, sizeof(T) * N);
    return;
  }
  gemmBlock<T>(0, M, N, K, A, rsA, csA, B, ldb, C, ldc, accumulate);
}

template <class T>
void gemmTNSerial(int64_t M, int64_t K, int64_t N, const T* X, int64_t ldx, const T* D, int64_t ldd, T* G,
                  int64_t ldg, bool accumulate) {
  if (K <= 0 || N <= 0) return;
  if (M <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < K; ++i) std::memset(G + i * ldg, 0, sizeof(T) * N);
    return;
  }
  // As in gemmTN: each micro-tile over all M rows at once.
  gemmBlock<T>(0, K, N, M, X, 1, ldx, D, ldd, G, ldg, accumulate);
}

template <class T>
void transpose(const T* W, int64_t K, int64_t N, T* out) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) out[n * K + k] = W[k * N + n];
}

// ---- shifted softplus ----------------------------------------------------------
static constexpr float kLn2f = 0.6931471805599453f;
static constexpr double kLn2 = 0.6931471805599453;

// e^z for z <= 0 (float), on whole SIMD vectors: Cody-Waite reduction and a
// degree-6 polynomial (relative error ~1e-7), 2^n built from the exponent bits.
typedef float VF __attribute__((vector_size(kVecBytes)));
typedef int32_t VI __attribute__((vector_size(kVecBytes)));
constexpr int kLF = kVecBytes / (int)sizeof(float);

// e^z = 2^n e^r with r = z - n ln 2 (Cody-Waite, two parts): e^r by the
// polynomial, given n (as floats) and z.
static inline VF expReduced(VF z, VF n) {
  VF r = z - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  VF p = VF{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}

static inline VF vexpNonPos(VF z) {
  z = z < -87.0f ? VF{} - 87.0f : z;
#if defined(__AVX512F__)
  // AVX-512: n by one rounding instruction and 2^n applied by scalef (exact,
  // like building the exponent bits) in place of the floor emulation and the
  // bit arithmetic below; the same reduction and polynomial. Same results on
  // a 600,000-point grid over [-30, 30]; ssp 0.691 -> 0.578 ns per value,
  // its derivative 0.351 -> 0.265 (one core, values in L1).
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps((__m512)z, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const VF out = (VF)_mm512_scalef_ps((__m512)expReduced(z, (VF)n), n);
#else
  const VF t = z * 1.44269504088896341f + 0.5f;
  const VI ti = __builtin_convertvector(t, VI);  // truncates toward zero
  VF n = __builtin_convertvector(ti, VF);
  n = n > t ? n - 1.0f : n;                      // floor
  const VI bits = (__builtin_convertvector(n, VI) + 127) << 23;
  const VF out = expReduced(z, n) * (VF)bits;
#endif
  return z <= -87.0f ? VF{} : out;  // flush what would be subnormal
}

// ln(1 + t) for t in [0, 1] via s = t / (2 + t) and the atanh series
// (truncation error < 2e-8 relative).
static inline VF vlog1pUnit(VF t) {
  const VF s = t / (2.0f + t);
  const VF s2 = s * s;
  VF p = VF{} + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

static inline VF vssp(VF v) {
  const VF a = v < 0 ? -v : v;
  const VF pos = v > 0 ? v : VF{};
  return pos + vlog1pUnit(vexpNonPos(-a)) - kLn2f;
}

// Applies f to whole vectors and to a zero-padded copy of the tail.
template <class F>
static inline void mapFloat(float* x, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kLF <= n; i += kLF) {
    VF v;
    std::memcpy(&v, x + i, sizeof(VF));
    v = f(v, i);
    std::memcpy(x + i, &v, sizeof(VF));
  }
  if (i < n) {
    float tmp[kLF] = {};
    std::memcpy(tmp, x + i, sizeof(float) * (n - i));
    VF v;
    std::memcpy(&v, tmp, sizeof(VF));
    v = f(v, i);
    std::memcpy(tmp, &v, sizeof(VF));
    std::memcpy(x + i, tmp, sizeof(float) * (n - i));
  }
}

static inline VF loadTail(const float* p, int64_t i, int64_t n) {
  VF v;
  if (i + kLF <= n) {
    std::memcpy(&v, p + i, sizeof(VF));
  } else {
    float tmp[kLF] = {};
    std::memcpy(tmp, p + i, sizeof(float) * (n - i));
    std::memcpy(&v, tmp, sizeof(VF));
  }
  return v;
}

template <>
void sspInPlace<float>(float* x, int64_t n) {
  mapFloat(x, n, [](VF v, int64_t) { return vssp(v); });
}
template <>
void sspInPlace<double>(double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    x[i] = (v > 0 ? v : 0.0) + std::log1p(std::exp(-std::fabs(v))) - kLn2;
  }
}
template <>
void mulSspGradFromAct<float>(float* d, const float* a, int64_t n) {
  mapFloat(d, n, [=](VF v, int64_t i) {
    const VF av = loadTail(a, i, n);
    return v * (1.0f - vexpNonPos(-(av + kLn2f)));
  });
}
template <>
void mulSspGradFromAct<double>(double* d, const double* a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] *= -std::expm1(-(a[i] + kLn2));
}

// sigmoid(v) from e = exp(-|v|): 1 / (1 + e) for v >= 0, e / (1 + e) otherwise.
static inline VF vsigmoid(VF v) {
  const VF a = v < 0 ? -v : v;
  const VF e = vexpNonPos(-a);
  const VF r = 1.0f / (1.0f + e);
  return v < 0 ? e * r : r;
}
static inline double sigmoidD(double v) {
  const double e = std::exp(-std::fabs(v));
  return v < 0 ? e / (1.0 + e) : 1.0 / (1.0 + e);
}

template <>
void siluForward<float>(const float* pre, float* act, int64_t n) {
  if (act != pre && n > 0) std::memcpy(act, pre, sizeof(float) * n);
  mapFloat(act, n, [](VF v, int64_t) { return v * vsigmoid(v); });
}
template <>
void siluForward<double>(const double* pre, double* act, int64_t n) {
  for (int64_t i = 0; i < n; ++i) act[i] = pre[i] * sigmoidD(pre[i]);
}
template <>
void mulSiluGrad<float>(float* d, const float* pre, int64_t n) {
  mapFloat(d, n, [=](VF v, int64_t i) {
    const VF x = loadTail(pre, i, n);
    const VF sg = vsigmoid(x);
    return v * (sg * (1.0f + x * (1.0f - sg)));
  });
}
template <>
void mulSiluGrad<double>(double* d, const double* pre, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double sg = sigmoidD(pre[i]);
    d[i] *= sg * (1.0 + pre[i] * (1.0 - sg));
  }
}

template <>
void expNonPosInPlace<float>(float* x, int64_t n) {
  mapFloat(x, n, [](VF v, int64_t) { return vexpNonPos(v); });
}
template <>
void expNonPosInPlace<double>(double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

#define GNN_INST(T)                                                                              \
  template void gemm<T>(int64_t, int64_t, int64_t, const T*, int64_t, int64_t, const T*, int64_t, \
                        T*, int64_t, bool, const RowEpilogue<T>&);                               \
  template void gemmTN<T>(int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t, T*, T*, \
                          bool, std::vector<T>&);                                                \
  template void transpose<T>(const T*, int64_t, int64_t, T*);                                     \
  template void gemmSerial<T>(int64_t, int64_t, int64_t, const T*, int64_t, int64_t, const T*, int64_t, T*, \
                              int64_t, bool);                                                     \
  template void gemmTNSerial<T>(int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t, T*, int64_t, bool);
GNN_INST(float)
GNN_INST(double)
#undef GNN_INST

}  // namespace gnn
