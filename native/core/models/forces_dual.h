// Dual numbers (value, epsilon) for the double backward of the force pass
// (docs/forces.md): the model program's forward and backward run in Dual
// arithmetic on the CPU executor, with the distances' epsilon set to their
// change along a direction of the atoms, so the epsilon part of the parameter
// gradient is the gradient of the directional derivative of the energy.
// Float64 reference path: the kernels below are plain loops (the SIMD kernels
// of dense.cpp take float and double only).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dense.h"
#include "core/models/model.h"
#include "core/segment.h"

namespace gnn {

struct Dual {
  double v = 0, e = 0;
  Dual() = default;
  constexpr Dual(double x) : v(x) {}  // NOLINT: constants and casts (T)x in the generic kernels
  constexpr Dual(double x, double eps) : v(x), e(eps) {}
  explicit constexpr operator double() const { return v; }
  Dual& operator+=(const Dual& o) { v += o.v; e += o.e; return *this; }
  Dual& operator-=(const Dual& o) { v -= o.v; e -= o.e; return *this; }
  Dual& operator*=(const Dual& o) { e = e * o.v + v * o.e; v *= o.v; return *this; }
  Dual& operator/=(const Dual& o) { *this = Dual(v / o.v, (e * o.v - v * o.e) / (o.v * o.v)); return *this; }
};
inline Dual operator+(Dual a, const Dual& b) { return a += b; }
inline Dual operator-(Dual a, const Dual& b) { return a -= b; }
inline Dual operator*(Dual a, const Dual& b) { return a *= b; }
inline Dual operator/(Dual a, const Dual& b) { return a /= b; }
inline Dual operator-(const Dual& a) { return Dual(-a.v, -a.e); }
inline bool operator<(const Dual& a, const Dual& b) { return a.v < b.v; }
inline bool operator>(const Dual& a, const Dual& b) { return a.v > b.v; }

// The dense.h / segment.h kernels the CPU executor calls, for Dual.
template <>
void gemm<Dual>(int64_t M, int64_t N, int64_t K, const Dual* A, int64_t rsA, int64_t csA, const Dual* B, int64_t ldb,
                Dual* C, int64_t ldc, bool accumulate, const RowEpilogue<Dual>& epi);
template <>
void gemmTN<Dual>(int64_t M, int64_t K, int64_t N, const Dual* X, int64_t ldx, const Dual* D, int64_t ldd, Dual* G,
                  Dual* gbias, bool accumulate, std::vector<Dual>& scratch);
template <>
void transpose<Dual>(const Dual* W, int64_t K, int64_t N, Dual* out);
template <>
void sspInPlace<Dual>(Dual* x, int64_t n);
template <>
void mulSspGradFromAct<Dual>(Dual* d, const Dual* a, int64_t n);
template <>
void expNonPosInPlace<Dual>(Dual* x, int64_t n);
template <>
void segmentSumCsr<Dual>(const Dual* src, const int32_t* ptr, int64_t rows, int64_t width, Dual* out);
template <>
void gatherRowsBackward<Dual>(const Dual* gradOut, const int32_t* perm, const int32_t* ptr, int64_t rows, int64_t width,
                              Dual* gradSrc);

}  // namespace gnn
