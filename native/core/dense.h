// Dense building blocks of the models: register-blocked SIMD matrix products
// with fused epilogues, the parameter-gradient product X^T dY with a fixed
// (thread-count independent) reduction order, and the shifted softplus.
//
// All matrices are row-major. Every routine is deterministic: results are
// bitwise identical for any thread count.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "common.h"

namespace gnn {

// Row-block callback run right after rows [m0, m1) of C are final (still hot
// in cache): the place for fused bias/activation/gather epilogues.
template <class T>
using RowEpilogue = std::function<void(int64_t m0, int64_t m1)>;

// C[M x N] (+)= A[M x K] B[K x N] where A(i,k) = A[i*rsA + k*csA], B has leading
// dimension ldb, C has leading dimension ldc. With accumulate=false C is
// overwritten. The epilogue (may be empty) is applied per row block.
template <class T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsA, int64_t csA, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate, const RowEpilogue<T>& epi = nullptr);

// G[K x N] (+)= X[M x K]^T D[M x N], reduced over M in fixed chunks (so the
// summation order does not depend on the thread count). `scratch` is grown as
// needed. Also adds colsum(D) into gbias[N] when gbias is non-null.
template <class T>
void gemmTN(int64_t M, int64_t K, int64_t N, const T* X, int64_t ldx, const T* D, int64_t ldd,
            T* G, T* gbias, bool accumulate, std::vector<T>& scratch);

// Serial forms for callers that are already inside a parallel region (one
// row block of the same micro-kernels, no OpenMP, no flop counting: the caller
// counts). gemmSerial: C[M x N] (+)= A[M x K] B[K x N] with A(i,k) =
// A[i*rsA + k*csA]. gemmTNSerial: G[K x N] (+)= X[M x K]^T D[M x N], G with
// leading dimension ldg. Each output element is reduced in a fixed order, so
// results do not depend on how rows are grouped into calls.
template <class T>
void gemmSerial(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsA, int64_t csA, const T* B, int64_t ldb,
                T* C, int64_t ldc, bool accumulate);
template <class T>
void gemmTNSerial(int64_t M, int64_t K, int64_t N, const T* X, int64_t ldx, const T* D, int64_t ldd, T* G,
                  int64_t ldg, bool accumulate);

// Out[N x K] = W[K x N]^T (small weight transposes for backward products).
template <class T>
void transpose(const T* W, int64_t K, int64_t N, T* out);

// Shifted softplus ssp(x) = ln(1 + e^x) - ln 2, in place over n values.
template <class T>
void sspInPlace(T* x, int64_t n);
// d *= ssp'(pre) given the *activation* a = ssp(pre): ssp'(pre) = sigmoid(pre)
// = 1 - exp(-(a + ln 2)).
template <class T>
void mulSspGradFromAct(T* d, const T* a, int64_t n);

// SiLU (PaiNN's activation): act = pre * sigmoid(pre) over n values (act may
// equal pre for in place).
template <class T>
void siluForward(const T* pre, T* act, int64_t n);
// d *= silu'(pre) = sigmoid(pre) * (1 + pre * (1 - sigmoid(pre))).
template <class T>
void mulSiluGrad(T* d, const T* pre, int64_t n);

// x[i] = exp(x[i]) for x[i] <= 0 (vectorised in float; std::exp in double).
template <class T>
void expNonPosInPlace(T* x, int64_t n);

// Scoped flush-to-zero/denormals-are-zero for the native worker threads: tiny
// radial-basis values would otherwise make float arithmetic ~100x slower. The
// calling thread's floating-point state is restored on exit.
class DenormalGuard {
 public:
  DenormalGuard();
  ~DenormalGuard();
 private:
  unsigned saved_ = 0;
};

// Flops counter of the calling thread: every gemm/gemmTN adds 2*M*N*K to the
// counter of the thread that called it (the OpenMP team works inside one call),
// so concurrent callers (Node worker threads, async workers) never see each
// other's work. Async workers measure their delta and credit it to the JS
// thread that started them (addFlopsCount) when their promise settles.
void resetFlops();
double flopsCount();
void addFlopsCount(double f);

}  // namespace gnn
