// Our dense products against two micro-kernel libraries on the training step's
// shapes (issue 27: "evaluate a well-kept micro-kernel library against our
// own, keeping the fused gathers/epilogues; decide by measurement"). Built and
// run by `npm run bench -- microkernels` (benchmarks/microkernels.js), which
// compiles it with -O3 -march=native against native/core/dense.cpp and, when
// installed, Debian's libxsmm (libxsmm-dev, static) and BLIS (libblis-dev,
// the OpenMP build, static).
//
// Every variant computes the same float32 product with 2 threads:
//  - NN  C[M x N] = A[M x K] B[K x N] (+ bias, shifted softplus when "ssp"):
//      ours     gnn::gemm with the epilogue fused per 96-row block (the step's code)
//      libxsmm  a JIT kernel per 96-row block in our OpenMP loop, same fused epilogue
//      blis     bli_sgemm per 96-row block (1 thread each) in our loop, same epilogue
//      blis-mt  one bli_sgemm over all rows (BLIS's own 2 threads), then the epilogue
//  - TN  G[K x N] = X[M x K]^T D[M x N] (a weight gradient):
//      ours     gnn::gemmTN (fixed 512-row chunks, order independent of threads)
//      libxsmm  a JIT kernel per 512-row chunk (transposed B), the chunks' partials
//               summed in chunk order (the same determinism as ours)
//      blis-mt  one bli_sgemm with X read transposed through its strides
// "hot": operands reused (they stay in cache as far as they fit); "cold": 64 MiB
// written between calls, so the streamed operands come from memory as they do
// inside a step. Rounds interleave the variants; the figure is the median.
// Each variant's result is compared with ours (max |diff| / max |ours|).
//
// Output: one line per (shape, variant, mode): `row<TAB>json`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <omp.h>

#include "core/common.h"
#include "core/dense.h"
#ifdef GNN_HAVE_LIBXSMM
#include <libxsmm.h>
#endif
#ifdef GNN_HAVE_BLIS
#include <blis.h>
#endif

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<float> g_flush((size_t)64 << 18);  // 64 MiB
void flushCaches() {
  for (size_t i = 0; i < g_flush.size(); i += 16) g_flush[i] += 1.0f;
}

void fill(std::vector<float>& v, unsigned seed) {
  for (size_t i = 0; i < v.size(); ++i) v[i] = (float)((i * 2654435761u + seed) % 1000) / 1000.0f - 0.5f;
}

constexpr int64_t kRB = 96;  // rows per block (our gemm's row block with AVX-512)

void epilogueRows(float* C, int64_t ldc, int64_t N, const float* bias, int64_t m0, int64_t m1, bool ssp) {
  for (int64_t i = m0; i < m1; ++i) {
    float* c = C + i * ldc;
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) c[j] += bias[j];
  }
  if (ssp) gnn::sspInPlace<float>(C + m0 * ldc, (m1 - m0) * ldc);
}

struct Variant {
  std::string name;
  std::function<void()> run;
  std::vector<float>* out;
};

void measure(const std::string& kind, int64_t M, int64_t N, int64_t K, const std::string& epi,
             std::vector<Variant>& vs, int rounds) {
  const double flops = 2.0 * (double)M * (double)N * (double)K;
  for (int cold = 0; cold <= 1; ++cold) {
    std::vector<std::vector<double>> t(vs.size());
    for (auto& v : vs) v.run();  // warm-up (JIT, packing buffers, pages)
    for (int r = 0; r < rounds; ++r)
      for (size_t i = 0; i < vs.size(); ++i) {
        const size_t k = (r % 2) ? vs.size() - 1 - i : i;  // alternate the order
        if (cold) flushCaches();
        const double t0 = now();
        vs[k].run();
        t[k].push_back(now() - t0);
      }
    const std::vector<float>& ref = *vs[0].out;
    double refMax = 0;
    for (float x : ref) refMax = std::max(refMax, (double)std::fabs(x));
    for (size_t k = 0; k < vs.size(); ++k) {
      std::sort(t[k].begin(), t[k].end());
      const double med = t[k][t[k].size() / 2];
      double diff = 0;
      const std::vector<float>& o = *vs[k].out;
      for (size_t i = 0; i < ref.size(); ++i) diff = std::max(diff, (double)std::fabs(o[i] - ref[i]));
      std::printf("row\t{\"kind\":\"%s\",\"M\":%lld,\"N\":%lld,\"K\":%lld,\"epilogue\":\"%s\",\"variant\":\"%s\","
                  "\"mode\":\"%s\",\"ms\":%.5f,\"gflops\":%.2f,\"minMs\":%.5f,\"relDiff\":%.3g}\n",
                  kind.c_str(), (long long)M, (long long)N, (long long)K, epi.c_str(), vs[k].name.c_str(),
                  cold ? "cold" : "hot", med * 1e3, flops / med / 1e9, t[k][0] * 1e3, diff / (refMax + 1e-30));
    }
  }
}

void nnCase(int64_t M, int64_t N, int64_t K, bool ssp, int rounds) {
  std::vector<float> A((size_t)(M * K)), B((size_t)(K * N)), bias((size_t)N);
  fill(A, 1);
  fill(B, 2);
  fill(bias, 3);
  for (float& b : B) b *= 0.25f;
  std::vector<float> Cours((size_t)(M * N)), Cx((size_t)(M * N)), Cb((size_t)(M * N)), Cbm((size_t)(M * N));
  const int64_t nb = (M + kRB - 1) / kRB;
  std::vector<Variant> vs;
  vs.push_back({"ours", [&] {
                  gnn::gemm<float>(M, N, K, A.data(), K, 1, B.data(), N, Cours.data(), N, false,
                                   [&](int64_t m0, int64_t m1) { epilogueRows(Cours.data(), N, N, bias.data(), m0, m1, ssp); });
                },
                &Cours});
#ifdef GNN_HAVE_LIBXSMM
  {
    // Column-major view: C^T (N x rows) = B^T (N x K) A^T (K x rows).
    const libxsmm_blasint m = N, k = K, lda = N, ldb = K, ldc = N;
    const float alpha = 1, beta = 0;
    const int flags = LIBXSMM_GEMM_FLAG_NONE;
    const int64_t tail = M % kRB;
    libxsmm_smmfunction full = libxsmm_smmdispatch(m, (libxsmm_blasint)kRB, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr);
    libxsmm_smmfunction part = tail ? libxsmm_smmdispatch(m, (libxsmm_blasint)tail, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr) : full;
    if (full && part)
      vs.push_back({"libxsmm", [&, full, part] {
#pragma omp parallel for schedule(static) num_threads(2)
                      for (int64_t b = 0; b < nb; ++b) {
                        const int64_t m0 = b * kRB, m1 = std::min(M, m0 + kRB);
                        (m1 - m0 == kRB ? full : part)(B.data(), A.data() + m0 * K, Cx.data() + m0 * N);
                        epilogueRows(Cx.data(), N, N, bias.data(), m0, m1, ssp);
                      }
                    },
                    &Cx});
    else
      std::printf("note\tlibxsmm: no kernel for %lldx%lldx%lld\n", (long long)M, (long long)N, (long long)K);
  }
#endif
#ifdef GNN_HAVE_BLIS
  vs.push_back({"blis", [&] {
#pragma omp parallel num_threads(2)
                  {
                    rntm_t rntm;
                    bli_rntm_init(&rntm);
                    bli_rntm_set_num_threads_only(1, &rntm);
                    float one = 1, zero = 0;
#pragma omp for schedule(static)
                    for (int64_t b = 0; b < nb; ++b) {
                      const int64_t m0 = b * kRB, m1 = std::min(M, m0 + kRB);
                      bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m1 - m0, N, K, &one, A.data() + m0 * K, K, 1,
                                   B.data(), N, 1, &zero, Cb.data() + m0 * N, N, 1, nullptr, &rntm);
                      epilogueRows(Cb.data(), N, N, bias.data(), m0, m1, ssp);
                    }
                  }
                },
                &Cb});
  vs.push_back({"blis-mt", [&] {
                  rntm_t rntm;
                  bli_rntm_init(&rntm);
                  bli_rntm_set_num_threads_only(2, &rntm);
                  float one = 1, zero = 0;
                  bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &one, A.data(), K, 1, B.data(), N, 1, &zero,
                               Cbm.data(), N, 1, nullptr, &rntm);
#pragma omp parallel for schedule(static) num_threads(2)
                  for (int64_t b = 0; b < nb; ++b) epilogueRows(Cbm.data(), N, N, bias.data(), b * kRB, std::min(M, b * kRB + kRB), ssp);
                },
                &Cbm});
#endif
  measure("NN", M, N, K, ssp ? "bias+ssp" : "none", vs, rounds);
}

void tnCase(int64_t M, int64_t K, int64_t N, int rounds) {
  std::vector<float> X((size_t)(M * K)), D((size_t)(M * N));
  fill(X, 4);
  fill(D, 5);
  std::vector<float> Gours((size_t)(K * N)), Gx((size_t)(K * N)), Gbm((size_t)(K * N)), scratch;
  std::vector<Variant> vs;
  vs.push_back({"ours", [&] { gnn::gemmTN<float>(M, K, N, X.data(), K, D.data(), N, Gours.data(), nullptr, false, scratch); }, &Gours});
#ifdef GNN_HAVE_LIBXSMM
  {
    // Column-major view: G^T (N x K) = D^T (N x rows) X (rows x K), X stored as X^T: transposed B.
    constexpr int64_t CH = 512;
    const int64_t nch = (M + CH - 1) / CH, tail = M % CH;
    const libxsmm_blasint m = N, n = K, lda = N, ldb = K, ldc = N;
    const float alpha = 1, beta = 0;
    const int flags = LIBXSMM_GEMM_FLAG_TRANS_B;
    libxsmm_smmfunction full = libxsmm_smmdispatch(m, n, (libxsmm_blasint)CH, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr);
    libxsmm_smmfunction part = tail ? libxsmm_smmdispatch(m, n, (libxsmm_blasint)tail, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr) : full;
    auto partials = std::make_shared<std::vector<float>>((size_t)(nch * K * N));
    if (full && part)
      vs.push_back({"libxsmm", [&, full, part, partials, nch] {
                      float* P = partials->data();
#pragma omp parallel num_threads(2)
                      {
#pragma omp for schedule(dynamic, 1)
                        for (int64_t c = 0; c < nch; ++c) {
                          const int64_t r0 = c * CH, r1 = std::min(M, r0 + CH);
                          (r1 - r0 == CH ? full : part)(D.data() + r0 * N, X.data() + r0 * K, P + c * K * N);
                        }
#pragma omp for schedule(static)
                        for (int64_t e0 = 0; e0 < K * N; e0 += 256) {
                          const int64_t e1 = std::min(K * N, e0 + 256);
                          for (int64_t e = e0; e < e1; ++e) Gx[(size_t)e] = P[e];
                          for (int64_t c = 1; c < nch; ++c)
#pragma omp simd
                            for (int64_t e = e0; e < e1; ++e) Gx[(size_t)e] += P[c * K * N + e];
                        }
                      }
                    },
                    &Gx});
    else
      std::printf("note\tlibxsmm: no transposed-B kernel for %lldx%lldx%lld\n", (long long)N, (long long)K, (long long)CH);
  }
#endif
#ifdef GNN_HAVE_BLIS
  vs.push_back({"blis-mt", [&] {
                  rntm_t rntm;
                  bli_rntm_init(&rntm);
                  bli_rntm_set_num_threads_only(2, &rntm);
                  float one = 1, zero = 0;
                  // A = X^T: element (k, i) = X[i*K + k] -> row stride 1, column stride K.
                  bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, K, N, M, &one, X.data(), 1, K, D.data(), N, 1, &zero,
                               Gbm.data(), N, 1, nullptr, &rntm);
                },
                &Gbm});
#endif
  measure("TN", M, N, K, "none", vs, rounds);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
  gnn::setNumThreads(2);
  omp_set_num_threads(2);
  gnn::DenormalGuard guard;
#ifdef GNN_HAVE_LIBXSMM
  libxsmm_init();
  std::printf("lib\tlibxsmm %s\n", LIBXSMM_VERSION);
#endif
#ifdef GNN_HAVE_BLIS
  std::printf("lib\tblis %s (%s)\n", bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()));
#endif
  // The step's products at B = 32 (E = 9,984 padded edges, N = 576 nodes) and
  // B = 128 (E = 39,936): SchNet's filter network (K = 150 basis, then 64),
  // MPEU's edge MLP (128 wide), a node product; and their weight gradients
  // (MPEU's edge-MLP gradients are 150 x 128 and 64 x 128).
  nnCase(9984, 64, 150, true, rounds);
  nnCase(9984, 64, 64, true, rounds);
  nnCase(9984, 128, 64, false, rounds);
  nnCase(9984, 64, 128, false, rounds);
  nnCase(39936, 64, 64, true, rounds);
  nnCase(39936, 64, 150, true, rounds);
  nnCase(576, 64, 64, true, rounds);
  tnCase(9984, 150, 64, rounds);
  tnCase(9984, 64, 64, rounds);
  tnCase(9984, 128, 64, rounds);
  tnCase(9984, 150, 128, rounds);
  tnCase(9984, 64, 128, rounds);
  tnCase(39936, 64, 64, rounds);
  tnCase(39936, 150, 64, rounds);
  tnCase(576, 64, 64, rounds);
#ifdef GNN_HAVE_LIBXSMM
  libxsmm_finalize();
#endif
  return 0;
}
