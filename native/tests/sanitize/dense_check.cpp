// Oracle test of the dense products (native/core/dense.cpp): the activation
// kernels of the epilogues against double, and gemm, gemmTN and their serial forms against a plain float64 reference, on random shapes that
// reach every code path of the micro-kernels (full tiles, the 1 to kMR-1 row
// remainders, single-vector and scalar column tails, K = 0, transposed and
// row-major A, accumulate, gemmTN's chunked reduction with fewer and more than
// 8 chunks and its column-sum bias), and the determinism contract: bitwise the
// same result with 1 and 2 threads. Built twice by scripts/sanitize.sh: with
// ASan + UBSan (portable SIMD path) and with -O3 -march=native (the machine's
// widest path, the one the addon uses).
//
// Usage: gnn_dense_check [rounds]   (default 60). Last line:
// `dense: N cases, E errors`; exit status 1 if E > 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/dense.h"
#include "rng.h"

namespace {

int64_t g_cases = 0, g_errors = 0;

using gnn_test::Rng;

void report(bool ok, const std::string& what) {
  ++g_cases;
  if (ok) return;
  ++g_errors;
  if (g_errors <= 20) std::fprintf(stderr, "dense: FAIL %s\n", what.c_str());
}

// A size that is often a multiple of a tile, often one off, sometimes small.
int64_t pickSize(Rng& r, int64_t lo, int64_t hi) {
  static const int64_t kTypical[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 16, 17, 20, 31, 32, 33, 47, 48, 63, 64, 65, 96, 97, 128, 150};
  if (r.uni() < 0.5) {
    const int64_t v = kTypical[r.range(0, (int64_t)(sizeof(kTypical) / sizeof(kTypical[0])) - 1)];
    if (v >= lo && v <= hi) return v;
  }
  return r.range(lo, hi);
}

template <class T>
void fill(Rng& r, std::vector<T>& v) {
  for (T& x : v) x = (T)(2 * r.uni() - 1);
}

// |got - want| <= tol * (sum over k of |a_k b_k| + |c0|): the bound of a dot
// product's rounding error, per element.
template <class T>
double tolFor() {
  return sizeof(T) == 4 ? 2e-6 : 1e-14;
}

template <class T>
std::string shapeText(const char* what, int64_t M, int64_t N, int64_t K, bool acc) {
  return std::string(what) + (sizeof(T) == 4 ? " float " : " double ") + std::to_string(M) + "x" + std::to_string(N) +
         "x" + std::to_string(K) + (acc ? " accumulate" : "");
}

// One gemm case. trans: A(i,k) = A[k*lda + i] (a transposed operand). pad:
// extra leading-dimension columns. Buffers are exactly as large as their
// leading dimensions require, so ASan sees a read or write past any of them.
template <class T>
void gemmCase(Rng& r, int64_t M, int64_t N, int64_t K, bool trans, bool acc, int64_t padA, int64_t padB, int64_t padC) {
  const int64_t lda = (trans ? M : K) + padA, ldb = N + padB, ldc = N + padC;
  const int64_t rsA = trans ? 1 : lda, csA = trans ? lda : 1;
  std::vector<T> A((size_t)((trans ? K : M) * lda)), B((size_t)(K * ldb)), C0((size_t)(M * ldc));
  fill(r, A);
  fill(r, B);
  fill(r, C0);
  std::vector<double> want((size_t)(M * N)), mag((size_t)(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = acc ? (double)C0[(size_t)(i * ldc + j)] : 0.0, m = std::fabs(s);
      for (int64_t k = 0; k < K; ++k) {
        const double p = (double)A[(size_t)(i * rsA + k * csA)] * (double)B[(size_t)(k * ldb + j)];
        s += p;
        m += std::fabs(p);
      }
      want[(size_t)(i * N + j)] = s;
      mag[(size_t)(i * N + j)] = m;
    }
  const std::string what = shapeText<T>(trans ? "gemm (transposed A)" : "gemm", M, N, K, acc);
  std::vector<T> out[2];
  for (int threads = 1; threads <= 2; ++threads) {
    gnn::setNumThreads(threads);
    std::vector<T> C = C0;
    gnn::gemm<T>(M, N, K, A.data(), rsA, csA, B.data(), ldb, C.data(), ldc, acc);
    out[threads - 1] = C;
  }
  bool ok = true;
  for (int64_t i = 0; i < M && ok; ++i)
    for (int64_t j = 0; j < N && ok; ++j) {
      const double got = (double)out[0][(size_t)(i * ldc + j)];
      ok = std::fabs(got - want[(size_t)(i * N + j)]) <= tolFor<T>() * (mag[(size_t)(i * N + j)] + 1e-30);
    }
  report(ok, what + " vs float64 reference");
  // Padding columns between N and ldc are never written.
  bool untouched = true;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) untouched = untouched && out[0][(size_t)(i * ldc + j)] == C0[(size_t)(i * ldc + j)];
  report(untouched, what + ": nothing written beyond N columns");
  report(out[0] == out[1], what + ": 1 and 2 threads bitwise equal");
  // The serial form computes each element in the same order.
  std::vector<T> Cs = C0;
  gnn::gemmSerial<T>(M, N, K, A.data(), rsA, csA, B.data(), ldb, Cs.data(), ldc, acc);
  report(Cs == out[0], what + ": gemmSerial bitwise equal to gemm");
}

template <class T>
void gemmTNCase(Rng& r, int64_t M, int64_t K, int64_t N, bool acc, bool bias, int64_t padX, int64_t padD) {
  const int64_t ldx = K + padX, ldd = N + padD;
  std::vector<T> X((size_t)(M * ldx)), D((size_t)(M * ldd)), G0((size_t)(K * N)), b0((size_t)N);
  fill(r, X);
  fill(r, D);
  fill(r, G0);
  fill(r, b0);
  std::vector<double> want((size_t)(K * N)), mag((size_t)(K * N)), wantB((size_t)N), magB((size_t)N);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) {
      double s = acc ? (double)G0[(size_t)(k * N + j)] : 0.0, m = std::fabs(s);
      for (int64_t i = 0; i < M; ++i) {
        const double p = (double)X[(size_t)(i * ldx + k)] * (double)D[(size_t)(i * ldd + j)];
        s += p;
        m += std::fabs(p);
      }
      want[(size_t)(k * N + j)] = s;
      mag[(size_t)(k * N + j)] = m;
    }
  for (int64_t j = 0; j < N; ++j) {
    double s = acc ? (double)b0[(size_t)j] : 0.0, m = std::fabs(s);
    for (int64_t i = 0; i < M; ++i) {
      s += (double)D[(size_t)(i * ldd + j)];
      m += std::fabs((double)D[(size_t)(i * ldd + j)]);
    }
    wantB[(size_t)j] = s;
    magB[(size_t)j] = m;
  }
  const std::string what = shapeText<T>("gemmTN", M, N, K, acc) + (bias ? " with bias" : "");
  std::vector<T> outG[2], outB[2];
  std::vector<T> scratch;
  for (int threads = 1; threads <= 2; ++threads) {
    gnn::setNumThreads(threads);
    std::vector<T> G = G0, b = b0;
    gnn::gemmTN<T>(M, K, N, X.data(), ldx, D.data(), ldd, G.data(), bias ? b.data() : nullptr, acc, scratch);
    outG[threads - 1] = G;
    outB[threads - 1] = b;
  }
  bool ok = true;
  for (int64_t e = 0; e < K * N && ok; ++e)
    ok = std::fabs((double)outG[0][(size_t)e] - want[(size_t)e]) <= tolFor<T>() * (mag[(size_t)e] + 1e-30);
  report(ok, what + " vs float64 reference");
  if (bias) {
    bool okB = true;
    for (int64_t j = 0; j < N && okB; ++j)
      okB = std::fabs((double)outB[0][(size_t)j] - wantB[(size_t)j]) <= tolFor<T>() * (magB[(size_t)j] + 1e-30);
    report(okB, what + ": bias column sums vs float64 reference");
  } else {
    report(outB[0] == b0, what + ": bias left alone when not asked");
  }
  report(outG[0] == outG[1] && outB[0] == outB[1], what + ": 1 and 2 threads bitwise equal");
  // The serial form (one pass over all rows) agrees with the reference too.
  std::vector<T> Gs = G0;
  const int64_t ldg = N;
  gnn::gemmTNSerial<T>(M, K, N, X.data(), ldx, D.data(), ldd, Gs.data(), ldg, acc);
  bool okS = true;
  for (int64_t e = 0; e < K * N && okS; ++e)
    okS = std::fabs((double)Gs[(size_t)e] - want[(size_t)e]) <= tolFor<T>() * (mag[(size_t)e] + 1e-30);
  report(okS, what + ": gemmTNSerial vs float64 reference");
}

template <class T>
void gemmRandom(Rng& r) {
  const int64_t M = pickSize(r, 0, 700), N = pickSize(r, 1, 220), K = r.uni() < 0.05 ? 0 : pickSize(r, 1, 160);
  gemmCase<T>(r, M, N, K, r.uni() < 0.4, r.uni() < 0.3, r.range(0, 3), r.range(0, 3), r.range(0, 3));
}

template <class T>
void gemmTNRandom(Rng& r) {
  // M up to 4,700 rows: 1 to 10 chunks of 512 (the task split changes at 8).
  const int64_t M = r.uni() < 0.3 ? r.range(1500, 4700) : pickSize(r, 0, 1100);
  gemmTNCase<T>(r, M, pickSize(r, 1, 150), pickSize(r, 1, 140), r.uni() < 0.3, r.uni() < 0.6, r.range(0, 3), r.range(0, 3));
}

// Every path on purpose rather than by chance: rows 0-13 (all remainders of
// 6-, 4- and 3-row tiles), column counts around a vector (L = 4, 8 or 16), a
// 64- or 16-column panel and a 128-column panel followed by each kind of tail,
// K = 0, 1 and odd; gemmTN over 0 rows, 1 chunk, exactly 1 and 2 chunks, a
// partial chunk, and 6 and 9 chunks (both task splits).
template <class T>
void sweep(Rng& r) {
  static const int64_t kN[] = {1, 3, 4, 5, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 80, 127, 128, 129, 144, 145, 192, 209};
  for (int64_t M = 0; M <= 13; ++M)
    for (int64_t N : kN)
      for (int64_t K : {0, 1, 17})
        for (int t = 0; t < 4; ++t) gemmCase<T>(r, M, N, K, t & 1, t & 2, 0, 1, 0);
  for (int64_t M : {96, 97, 191}) gemmCase<T>(r, M, 145, 64, false, true, 1, 0, 2);
  static const int64_t kM[] = {0, 1, 7, 511, 512, 513, 1024, 1100, 3000, 4609};
  for (int64_t M : kM)
    for (int64_t K : {1, 5, 6, 7, 64, 150})
      for (int64_t N : {1, 17, 64, 128, 130})
        gemmTNCase<T>(r, M, K, N, (M + K) % 3 == 0, (K + N) % 2 == 0, K % 2, N % 3);
}

// The activation kernels (the products' epilogues) against double: e^x for
// x <= 0, the shifted softplus and its derivative from the activation, SiLU
// and its derivative, in float on a grid over [-100, 40] (every length's tail).
void activations() {
  std::vector<float> xs;
  for (double x = -100; x <= 40; x += 0.01) xs.push_back((float)x);
  for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, -87.0f, -87.5f, -88.0f, -103.0f, 88.0f}) xs.push_back(x);
  const int64_t n = (int64_t)xs.size();
  auto close = [](double got, double want, double tol) { return std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want)); };
  for (int64_t len : {n, (int64_t)1, (int64_t)15, (int64_t)17}) {
    std::vector<float> e(xs.begin(), xs.begin() + len), sp = e, d1(len, 1.0f), sl(len), d2(len, 1.0f);
    for (float& v : e) v = std::min(v, 0.0f);
    std::vector<float> e0 = e;
    gnn::expNonPosInPlace<float>(e.data(), len);
    gnn::sspInPlace<float>(sp.data(), len);
    gnn::mulSspGradFromAct<float>(d1.data(), sp.data(), len);
    gnn::siluForward<float>(xs.data(), sl.data(), len);
    gnn::mulSiluGrad<float>(d2.data(), xs.data(), len);
    bool okE = true, okS = true, okG = true, okL = true, okLG = true;
    for (int64_t i = 0; i < len; ++i) {
      const double x = xs[(size_t)i];
      // e^x below e^-87 is flushed to 0 (subnormal range): an absolute 1e-37.
      okE = okE && std::fabs(e[(size_t)i] - std::exp((double)e0[(size_t)i])) <= 4e-7 * std::exp((double)e0[(size_t)i]) + 1e-37;
      const double ssp = std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))) - std::log(2.0);
      okS = okS && close(sp[(size_t)i], ssp, 4e-7);
      okG = okG && close(d1[(size_t)i], 1.0 / (1.0 + std::exp(-x)), 1e-6);
      const double sg = 1.0 / (1.0 + std::exp(-x));
      okL = okL && close(sl[(size_t)i], x * sg, 4e-7);
      okLG = okLG && close(d2[(size_t)i], sg * (1.0 + x * (1.0 - sg)), 1e-6);
    }
    const std::string at = " (" + std::to_string(len) + " values)";
    report(okE, "expNonPosInPlace vs double" + at);
    report(okS, "sspInPlace vs double" + at);
    report(okG, "mulSspGradFromAct vs the logistic function" + at);
    report(okL, "siluForward vs double" + at);
    report(okLG, "mulSiluGrad vs double" + at);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 60;
  gnn::DenormalGuard guard;
  activations();
  Rng sr(12345);
  sweep<float>(sr);
  sweep<double>(sr);
  for (int round = 0; round < rounds; ++round) {
    Rng r((uint64_t)round + 1);
    gemmRandom<float>(r);
    gemmRandom<double>(r);
    gemmTNRandom<float>(r);
    gemmTNRandom<double>(r);
  }
  std::printf("dense: %lld cases, %lld errors\n", (long long)g_cases, (long long)g_errors);
  return g_errors == 0 ? 0 : 1;
}
