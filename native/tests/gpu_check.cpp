// Standalone GPU check and benchmark (no Node): CUDA kernels and whole
// training steps against the CPU engine, determinism, and timings on qm9-like
// and aflow-like batches. Without a CUDA device it prints "SKIP: no CUDA
// device" and exits 0. Usage: gnn_native_check [--selftest] [--quick]
//   --selftest  without a GPU: exercise the data generators, budgets, the CPU
//               packer and a few CPU engine steps (what the GPU run relies on).
//   --quick     20 training steps in (b)/(c) and 20 timed benchmark steps.
//   --no-bench  skip the benchmark (d) (e.g. under compute-sanitizer).
//   --impl=ffma|tf32x3|both  matrix-product implementation(s) to check and
//               time (default both: every gemm check, the whole-step and
//               100-step checks and the benchmark run once per implementation).
//   --breakdown after each benchmark row, one step without the CUDA graph with
//               an event after every launch: a per-kernel table (us per step).
//   --only=MPEU:qm9:32,SchNet:qm9:128  benchmark only these model:data:B rows.
//   --no-kernels / --no-grads / --no-train  skip (a) kernels / whole-step
//               grads / (b)+(c) training.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/adam.h"
#include "cuda/backend.h"
#include "cuda/cuda_api.h"
#include "core/dense.h"
#include "core/models/model.h"
#include "core/pack.h"
#include "core/segment.h"

using namespace gnn;
using Clock = std::chrono::steady_clock;

namespace {

int g_failures = 0;
std::string g_tag;  // "[impl] " prefix of check names while a gemm impl is under test
void report(const std::string& name0, double err, double tol, const std::string& extra = "") {
  const std::string name = g_tag + name0;
  const bool ok = std::isfinite(err) && err <= tol;
  if (!ok) g_failures++;
  std::printf("%-53s rel_err=%-11.3e tol=%-8.1e %s %s\n", name.c_str(), err, tol, ok ? "PASS" : "FAIL",
              extra.c_str());
  std::fflush(stdout);
}
void reportBool(const std::string& name0, bool ok, const std::string& extra = "") {
  const std::string name = g_tag + name0;
  if (!ok) g_failures++;
  std::printf("%-53s %s %s\n", name.c_str(), ok ? "PASS" : "FAIL", extra.c_str());
  std::fflush(stdout);
}

template <class A, class B>
double relErr(const A* out, const B* ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = (double)out[i] - (double)ref[i];
    if (!std::isfinite((double)out[i])) return NAN;
    num += d * d;
    den += (double)ref[i] * (double)ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::mt19937_64 g_rng(12345);
std::vector<float> randVec(size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g_rng);
  return v;
}
std::vector<double> up(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
double sspD(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))) - std::log(2.0); }

// ---- synthetic data ---------------------------------------------------------------
struct Store {
  std::vector<int32_t> nodeOffset{0}, edgeOffset{0}, senders, receivers, senderPerm;
  std::vector<uint8_t> atomicNumber;
  std::vector<float> distance;
  std::vector<double> target;
  StoreView view() const {
    StoreView s;
    s.numGraphs = (int64_t)target.size();
    s.nodeOffset = nodeOffset.data();
    s.edgeOffset = edgeOffset.data();
    s.atomicNumber = atomicNumber.data();
    s.senders = senders.data();
    s.receivers = receivers.data();
    s.distance = distance.data();
    s.senderPerm = senderPerm.data();
    s.target = target.data();
    s.numNodes = (int64_t)atomicNumber.size();
    s.numEdges = (int64_t)senders.size();
    return s;
  }
  int nodes(int g) const { return nodeOffset[g + 1] - nodeOffset[g]; }
  int edges(int g) const { return edgeOffset[g + 1] - edgeOffset[g]; }
};

// Adds one graph given its edges (sender, receiver, distance) sorted by receiver.
void addGraph(Store& s, const std::vector<uint8_t>& z, std::vector<std::array<float, 3>>& e, double target) {
  const int n = (int)z.size();
  std::stable_sort(e.begin(), e.end(), [](const auto& a, const auto& b) { return a[1] < b[1]; });
  s.atomicNumber.insert(s.atomicNumber.end(), z.begin(), z.end());
  const int ne = (int)e.size();
  std::vector<int32_t> snd(ne);
  for (int k = 0; k < ne; ++k) {
    snd[k] = (int32_t)e[k][0];
    s.senders.push_back((int32_t)e[k][0]);
    s.receivers.push_back((int32_t)e[k][1]);
    s.distance.push_back(e[k][2]);
  }
  std::vector<int32_t> perm(ne);
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) { return snd[a] < snd[b]; });
  s.senderPerm.insert(s.senderPerm.end(), perm.begin(), perm.end());
  s.nodeOffset.push_back(s.nodeOffset.back() + n);
  s.edgeOffset.push_back(s.edgeOffset.back() + ne);
  s.target.push_back(target);
}

// qm9-like: 3..29 atoms (mean ~18), H/C/N/O/F, positions ~1.5 Å apart,
// fully connected (every ordered pair).
Store makeQm9(int graphs, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::normal_distribution<double> nd(17.9, 3.0);
  std::uniform_real_distribution<double> u(0, 1);
  const uint8_t elems[5] = {1, 6, 7, 8, 9};
  const double pz[5] = {0.51, 0.35, 0.06, 0.075, 0.005};
  Store s;
  for (int g = 0; g < graphs; ++g) {
    const int n = std::clamp((int)std::lround(nd(r)), 3, 29);
    std::vector<uint8_t> z(n);
    std::vector<std::array<double, 3>> x(n);
    double t = 0;
    for (int i = 0; i < n; ++i) {
      double c = u(r), acc = 0;
      int k = 0;
      for (; k < 4; ++k) { acc += pz[k]; if (c < acc) break; }
      z[i] = elems[k];
      t += 0.1 * z[i];
      // jittered cubic lattice with 1.5 Å spacing
      const int side = (int)std::ceil(std::cbrt((double)n));
      x[i] = {1.5 * (i % side) + 0.3 * (u(r) - 0.5), 1.5 * ((i / side) % side) + 0.3 * (u(r) - 0.5),
              1.5 * (i / (side * side)) + 0.3 * (u(r) - 0.5)};
    }
    std::vector<std::array<float, 3>> e;
    for (int rc = 0; rc < n; ++rc)
      for (int sn = 0; sn < n; ++sn)
        if (sn != rc) {
          const double d = std::sqrt(std::pow(x[sn][0] - x[rc][0], 2) + std::pow(x[sn][1] - x[rc][1], 2) +
                                     std::pow(x[sn][2] - x[rc][2], 2));
          e.push_back({(float)sn, (float)rc, (float)d});
        }
    addGraph(s, z, e, (t - 0.1 * 18 * 3.0) / 2.0 + 0.1 * (u(r) - 0.5));
  }
  return s;
}

// aflow-like: 2..48 atoms (mean ~17), random species, positions in a periodic
// cell; each atom receives edges from its 12 nearest neighbours over the 27
// neighbouring images (brute force).
Store makeAflow(int graphs, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Store s;
  for (int g = 0; g < graphs; ++g) {
    const int n = 2 + (int)std::floor(46.0 * u(r) * u(r));
    const double L = 2.6 * std::cbrt((double)n);
    std::vector<uint8_t> z(n);
    std::vector<std::array<double, 3>> x(n);
    double t = 0;
    for (int i = 0; i < n; ++i) {
      z[i] = (uint8_t)(1 + (int)(u(r) * 82));
      t += std::sin(0.1 * z[i]);
      x[i] = {u(r) * L, u(r) * L, u(r) * L};
    }
    std::vector<std::array<float, 3>> e;
    std::vector<std::pair<double, int>> cand;
    for (int rc = 0; rc < n; ++rc) {
      cand.clear();
      for (int sn = 0; sn < n; ++sn)
        for (int im = 0; im < 27; ++im) {
          const int a = im % 3 - 1, b = (im / 3) % 3 - 1, c = im / 9 - 1;
          if (sn == rc && a == 0 && b == 0 && c == 0) continue;
          const double dx = x[sn][0] + a * L - x[rc][0], dy = x[sn][1] + b * L - x[rc][1],
                       dz = x[sn][2] + c * L - x[rc][2];
          cand.push_back({std::sqrt(dx * dx + dy * dy + dz * dz), sn});
        }
      std::partial_sort(cand.begin(), cand.begin() + 12, cand.end());
      for (int k = 0; k < 12; ++k) e.push_back({(float)cand[k].second, (float)rc, (float)cand[k].first});
    }
    addGraph(s, z, e, t / n * 2.0 + 0.1 * (u(r) - 0.5));
  }
  return s;
}

// The study's dynamic budget over the first 1000 graphs.
PackShape budget(const Store& s, int B) {
  const int m = std::min<int>(1000, (int)s.target.size());
  double sn = 0, se = 0;
  int mn = 0, me = 0;
  for (int g = 0; g < m; ++g) {
    sn += s.nodes(g); se += s.edges(g);
    mn = std::max(mn, s.nodes(g)); me = std::max(me, s.edges(g));
  }
  auto f = [&](double mean, int mx) { return (int64_t)(64 * (1 + (int64_t)std::floor(std::max(mean * B, (double)mx) / 64))); };
  return PackShape{f(sn / m, mn), f(se / m, me), B};
}

// Greedy dynamic fill in stream order (Jraph dynamically_batch), looping over a
// shuffled stream (reshuffled each epoch).
struct Stream {
  const Store& s;
  PackShape shape;
  std::vector<int32_t> order;
  size_t pos = 0;
  std::mt19937_64 r;
  Stream(const Store& st, PackShape sh, uint64_t seed) : s(st), shape(sh), r(seed) {
    order.resize(s.target.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), r);
  }
  int32_t peek() {
    if (pos == order.size()) { std::shuffle(order.begin(), order.end(), r); pos = 0; }
    return order[pos];
  }
  std::vector<int32_t> next() {
    std::vector<int32_t> ids;
    int64_t n = 0, e = 0;
    for (;;) {
      const int32_t g = peek();
      if (n + s.nodes(g) > shape.nodes - 1 || e + s.edges(g) > shape.edges || (int64_t)ids.size() + 1 > shape.graphs - 1) break;
      ids.push_back(g);
      n += s.nodes(g); e += s.edges(g);
      pos++;
    }
    if (ids.empty()) throw std::runtime_error("graph larger than the budget");
    return ids;
  }
};

std::vector<float> initParams(const ModelConfig& c, uint64_t seed) {
  const ParamLayout L = paramLayout(c);
  std::vector<float> p((size_t)L.total);
  std::mt19937_64 r(seed);
  for (const auto& e : L.entries) {
    const bool bias = e.rows == 1;
    std::normal_distribution<float> nd(0.f, bias ? 0.05f : 1.f / std::sqrt((float)e.rows));
    for (int64_t i = 0; i < e.rows * e.cols; ++i) p[(size_t)(e.offset + i)] = nd(r);
  }
  return p;
}

// CPU-side packed batch (the CPU engine's inputs).
template <class T>
struct CpuBatch {
  PackShape shape;
  std::vector<int32_t> atom, nodeGraph, snd, rcv, nNode, nEdge, recvPtr, sendPerm, sendPtr;
  std::vector<T> dist, target, mask;
  explicit CpuBatch(PackShape s)
      : shape(s), atom(s.nodes), nodeGraph(s.nodes), snd(s.edges), rcv(s.edges), nNode(s.graphs),
        nEdge(s.graphs), recvPtr(s.nodes + 1), sendPerm(s.edges), sendPtr(s.nodes + 1), dist(s.edges),
        target(s.graphs), mask(s.graphs) {}
  PackOut<T> out() {
    return PackOut<T>{atom.data(), nodeGraph.data(), snd.data(), rcv.data(), dist.data(), nNode.data(),
                      nEdge.data(), target.data(), mask.data(), recvPtr.data(), sendPerm.data(), sendPtr.data()};
  }
  BatchInputs<T> inputs() const {
    return BatchInputs<T>{shape, atom.data(), snd.data(), rcv.data(), dist.data(), nNode.data(),
                          target.data(), mask.data(), recvPtr.data(), sendPerm.data(), sendPtr.data()};
  }
};

ModelConfig modelCfg(ModelKind k) {
  ModelConfig c;
  c.kind = k;
  return c;
}
const char* kindName(ModelKind k) { return k == ModelKind::MPEU ? "MPEU" : "SchNet"; }

// ---- (a) kernels -------------------------------------------------------------------
void checkKernels(bool gemmOnly) {
  std::printf("== (a) kernels vs CPU (float64 references, fresh random inputs, NaN-poisoned outputs) gemm impl %s\n",
              cudaGemmImpl().c_str());
  const float nan = std::nanf("");
  struct G { int M, N, K; };
  const G sizes[] = {{1000, 128, 150}, {777, 64, 64}, {513, 64, 128}, {300, 32, 64}, {301, 1, 32}, {65, 150, 17}};
  for (const G& g : sizes) {
    for (int mode = 0; mode <= 5; ++mode)
      for (int tb = 0; tb < 2; ++tb) {
        if (mode == cudatest::kGatherSsp && tb) continue;
        const int M = g.M, N = g.N, K = g.K, rows = 97;
        auto A = randVec((size_t)M * K), B = randVec((size_t)K * N), bias = randVec(N);
        auto aux = randVec((size_t)M * N, mode == cudatest::kSspGrad ? 0.f : -1.f, 1.f);
        auto Ps = randVec((size_t)rows * N), Pr = randVec((size_t)rows * N);
        std::vector<int32_t> snd(M), rcv(M);
        for (int i = 0; i < M; ++i) { snd[i] = (int)(g_rng() % rows); rcv[i] = (int)(g_rng() % rows); }
        // B as stored: [K x N], or [N x K] when transposed.
        std::vector<float> Bst = B;
        if (tb) for (int k = 0; k < K; ++k) for (int n = 0; n < N; ++n) Bst[(size_t)n * K + k] = B[(size_t)k * N + n];
        const bool acc = mode == cudatest::kPlain && tb;  // exercise accumulate once per size
        std::vector<float> C0 = acc ? randVec((size_t)M * N) : std::vector<float>((size_t)M * N, nan);
        std::vector<float> C = C0;
        cudatest::gemm(M, N, K, A.data(), false, Bst.data(), tb, C.data(), acc, mode, bias.data(), aux.data(),
                       Ps.data(), Pr.data(), rows, snd.data(), rcv.data());
        std::vector<double> ref((size_t)M * N, 0.0);
        auto Ad = up(A), Bd = up(B);
        gnn::gemm<double>(M, N, K, Ad.data(), K, 1, Bd.data(), N, ref.data(), N, false);
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < N; ++j) {
            double& v = ref[(size_t)i * N + j];
            const double a = aux[(size_t)i * N + j];
            switch (mode) {
              case cudatest::kBias: v += bias[j]; break;
              case cudatest::kBiasSsp: v = sspD(v + bias[j]); break;
              case cudatest::kBiasRes: v += bias[j] + a; break;
              case cudatest::kGatherSsp: v = sspD(v + Ps[(size_t)snd[i] * N + j] + Pr[(size_t)rcv[i] * N + j] + bias[j]); break;
              case cudatest::kSspGrad: v *= 1.0 - std::exp(-(a + std::log(2.0))); break;
              default: break;
            }
            if (acc) v += C0[(size_t)i * N + j];
          }
        char name[96];
        std::snprintf(name, sizeof name, "gemm M%d N%d K%d mode%d%s%s", M, N, K, mode, tb ? " transB" : "", acc ? " acc" : "");
        report(name, relErr(C.data(), ref.data(), ref.size()), 1e-5);
      }
    // transA (X^T D as a plain product)
    {
      const int M = g.M, N = g.N, K = g.K;
      auto At = randVec((size_t)K * M), B = randVec((size_t)K * N);
      std::vector<float> C((size_t)M * N, nan);
      cudatest::gemm(M, N, K, At.data(), true, B.data(), false, C.data(), false, 0, nullptr, nullptr, nullptr,
                     nullptr, 0, nullptr, nullptr);
      auto Ad = up(At), Bd = up(B);
      std::vector<double> ref((size_t)M * N);
      gnn::gemm<double>(M, N, K, Ad.data(), 1, M, Bd.data(), N, ref.data(), N, false);
      char name[96];
      std::snprintf(name, sizeof name, "gemm M%d N%d K%d transA", M, N, K);
      report(name, relErr(C.data(), ref.data(), ref.size()), 1e-5);
    }
  }
  const int tn[][3] = {{39936, 150, 128}, {9984, 64, 64}, {2304, 64, 128}, {575, 32, 1}, {100, 17, 33}, {0, 8, 8}};
  for (const auto& t : tn)
    for (int bias = 0; bias < 2; ++bias) {
      const int M = t[0], K = t[1], N = t[2];
      auto X = randVec((size_t)M * K), D = randVec((size_t)M * N);
      const bool acc = bias == 0;
      auto G0 = acc ? randVec((size_t)K * N) : std::vector<float>((size_t)K * N, nan);
      auto gb0 = std::vector<float>(N, nan);
      auto Gm = G0; auto gb = gb0;
      cudatest::gemmTN(M, K, N, X.data(), D.data(), Gm.data(), bias ? gb.data() : nullptr, acc);
      std::vector<double> Xd = up(X), Dd = up(D), ref((size_t)K * N, 0.0), rb(N, 0.0), scr;
      if (acc) ref = up(G0);
      gnn::gemmTN<double>(M, K, N, Xd.data(), K, Dd.data(), N, ref.data(), bias ? rb.data() : nullptr, acc, scr);
      char name[96];
      std::snprintf(name, sizeof name, "gemmTN M%d K%d N%d%s", M, K, N, bias ? " +bias" : " acc");
      const double e1 = relErr(Gm.data(), ref.data(), ref.size());
      const double e2 = bias ? relErr(gb.data(), rb.data(), N) : 0.0;
      report(name, std::max(e1, e2), 1e-5);
    }
  if (gemmOnly) return;
  // CSR reductions on random CSR structures (with empty rows).
  for (int width : {64, 128, 150}) {
    const int rows = 911;
    std::vector<int32_t> ptr(rows + 1, 0);
    for (int r = 0; r < rows; ++r) ptr[r + 1] = ptr[r] + (int)(g_rng() % 40) * ((g_rng() % 7) != 0);
    const int src = ptr[rows];
    auto S = randVec((size_t)src * width);
    std::vector<int32_t> perm(src);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), g_rng);
    std::vector<float> out((size_t)rows * width, nan), out2 = out;
    cudatest::segmentSumCsr(S.data(), ptr.data(), rows, src, width, out.data());
    cudatest::gatherRowsBackward(S.data(), perm.data(), ptr.data(), rows, src, width, out2.data());
    auto Sd = up(S);
    std::vector<double> ref((size_t)rows * width), ref2 = ref;
    gnn::segmentSumCsr<double>(Sd.data(), ptr.data(), rows, width, ref.data());
    gnn::gatherRowsBackward<double>(Sd.data(), perm.data(), ptr.data(), rows, width, ref2.data());
    report("segmentSumCsr width" + std::to_string(width), relErr(out.data(), ref.data(), ref.size()), 1e-6);
    report("gatherRowsBackward width" + std::to_string(width), relErr(out2.data(), ref2.data(), ref2.size()), 1e-6);
  }
  {
    auto x = randVec(100000, -30.f, 30.f);
    std::vector<float> y(x.size(), nan);
    cudatest::ssp(x.data(), (int)x.size(), y.data());
    std::vector<double> ref(x.size());
    for (size_t i = 0; i < x.size(); ++i) ref[i] = sspD(x[i]);
    report("ssp", relErr(y.data(), ref.data(), ref.size()), 1e-6);
  }
  {
    const int64_t n = 123457;
    auto p = randVec(n), g = randVec(n), m = randVec(n, -0.1f, 0.1f), v = randVec(n, 0.f, 0.01f);
    AdamArgs a; a.lr = 1e-3; a.bc1 = 1 - std::pow(0.9, 7); a.bc2 = 1 - std::pow(0.999, 7); a.gradScale = 0.7; a.weightDecay = 0.01;
    auto pg = p, mg = m, vg = v;
    cudatest::adam(pg.data(), g.data(), mg.data(), vg.data(), n, a);
    auto pd = up(p), gd = up(g), md = up(m), vd = up(v);
    adamUpdate<double>(pd.data(), gd.data(), md.data(), vd.data(), n, a);
    // The update (p_new - p_old) against the CPU engine's float32 Adam: both
    // round p_new to float32, so this isolates the kernel. (Against float64 the
    // float32 rounding of p_new, ~6e-8 |p|, is ~1e-4 of an update of 1e-3.)
    auto pf = p, mf = m, vf = v;
    adamUpdate<float>(pf.data(), g.data(), mf.data(), vf.data(), n, a);
    std::vector<double> du(n), dr(n), d64(n);
    for (int64_t i = 0; i < n; ++i) { du[i] = (double)pg[i] - p[i]; dr[i] = (double)pf[i] - p[i]; d64[i] = pd[i] - p[i]; }
    report("adam (update step) vs CPU f32", relErr(du.data(), dr.data(), n), 1e-5);
    report("adam (update step) vs f64", relErr(du.data(), d64.data(), n), 3e-4);
    report("adam params vs f64", relErr(pg.data(), pd.data(), n), 1e-6);
    report("adam m,v", std::max(relErr(mg.data(), md.data(), n), relErr(vg.data(), vd.data(), n)), 1e-6);
  }
}

// ---- device pack + whole-step gradients -------------------------------------------------
void checkPackAndGrads(const Store& st, std::shared_ptr<CudaStore> ds, const char* data) {
  for (ModelKind kind : {ModelKind::MPEU, ModelKind::SchNet}) {
    const ModelConfig cfg = modelCfg(kind);
    const PackShape shape = budget(st, 32);
    Stream stream(st, shape, 99);
    auto ids = stream.next();
    auto params = initParams(cfg, 7);
    auto model = cudaCreateModel(cfg, params.data(), (int64_t)params.size());
    auto plan = cudaCreatePlan(ds, model, shape);
    if (kind == ModelKind::MPEU) {
      CpuBatch<float> cpu(shape), gpu(shape);
      packGraphs<float>(st.view(), ids.data(), (int64_t)ids.size(), shape, cpu.out());
      std::fill(gpu.snd.begin(), gpu.snd.end(), -7);
      std::fill(gpu.dist.begin(), gpu.dist.end(), std::nanf(""));
      cudaPackForTest(*plan, ids.data(), (int64_t)ids.size(), gpu.out());
      const bool same = cpu.atom == gpu.atom && cpu.snd == gpu.snd && cpu.rcv == gpu.rcv &&
                        cpu.nNode == gpu.nNode && cpu.nEdge == gpu.nEdge && cpu.recvPtr == gpu.recvPtr &&
                        cpu.sendPerm == gpu.sendPerm && cpu.sendPtr == gpu.sendPtr && cpu.nodeGraph == gpu.nodeGraph &&
                        std::memcmp(cpu.dist.data(), gpu.dist.data(), 4 * cpu.dist.size()) == 0 &&
                        std::memcmp(cpu.target.data(), gpu.target.data(), 4 * cpu.target.size()) == 0 &&
                        std::memcmp(cpu.mask.data(), gpu.mask.data(), 4 * cpu.mask.size()) == 0;
      reportBool(std::string("device pack == CPU packGraphs (") + data + ")", same,
                 "(" + std::to_string(ids.size()) + " graphs)");
    }
    // gradients of one batch vs the CPU engine in float64 (grads NaN-poisoned first)
    cudaPoisonGrads(*model);
    const double lossG = cudaComputeGrads(*plan, ids.data(), (int64_t)ids.size());
    std::vector<float> gG(params.size());
    cudaDownloadGrads(*model, gG.data(), (int64_t)gG.size());
    CpuBatch<double> cb(shape);
    packGraphs<double>(st.view(), ids.data(), (int64_t)ids.size(), shape, cb.out());
    auto cp = buildPlan<double>(cfg, shape);
    auto pd = up(params);
    std::vector<double> gD(params.size());
    const double lossD = forwardBackward<double>(*cp, pd.data(), gD.data(), cb.inputs());
    std::string nm = std::string("step grads ") + kindName(kind) + " " + data + " vs CPU f64";
    report(nm, relErr(gG.data(), gD.data(), gD.size()), 1e-4,
           "loss gpu=" + std::to_string(lossG) + " f64=" + std::to_string(lossD));
    report(std::string("step loss ") + kindName(kind) + " " + data + " vs CPU f64",
           std::fabs(lossG - lossD) / std::max(1e-30, std::fabs(lossD)), 1e-5);
    // per-tensor worst error
    const ParamLayout L = paramLayout(cfg);
    double worst = 0; std::string wn;
    for (const auto& e : L.entries) {
      const double r = relErr(gG.data() + e.offset, gD.data() + e.offset, (size_t)(e.rows * e.cols));
      if (!(r <= worst)) { worst = r; wn = e.name; }
    }
    std::printf("    worst tensor %s rel_err=%.3e\n", wn.c_str(), worst);
    std::vector<float> pred(shape.graphs);
    const double lossP = cudaPredict(*plan, ids.data(), (int64_t)ids.size(), pred.data());
    report(std::string("predict loss ") + kindName(kind) + " " + data, std::fabs(lossP - lossD) / std::max(1e-30, std::fabs(lossD)), 1e-5);
  }
}

// ---- (b) 100 steps vs CPU engine; (c) determinism -------------------------------------------
AdamArgs adamAt(int step, double lr) {
  AdamArgs a;
  a.lr = lr;
  a.bc1 = 1 - std::pow(a.beta1, step + 1);
  a.bc2 = 1 - std::pow(a.beta2, step + 1);
  return a;
}

void checkTraining(const Store& st, std::shared_ptr<CudaStore> ds, int steps, const std::vector<std::string>& impls) {
  std::printf("== (b) %d training steps GPU vs CPU engine (float32, same init, qm9-like B=32 budget)\n", steps);
  for (ModelKind kind : {ModelKind::MPEU, ModelKind::SchNet}) {
    const ModelConfig cfg = modelCfg(kind);
    const PackShape shape = budget(st, 32);
    Stream stream(st, shape, 2024);
    std::vector<std::vector<int32_t>> batches;
    for (int i = 0; i < steps; ++i) batches.push_back(stream.next());
    auto params = initParams(cfg, 11);
    const double lr = 5e-4;
    // CPU (once, shared by the GPU implementations)
    auto cp = buildPlan<float>(cfg, shape);
    std::vector<double> lc(steps);
    std::vector<float> p = params, g(params.size()), m(params.size(), 0.f), v(params.size(), 0.f);
    CpuBatch<float> cb(shape);
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) {
      packGraphs<float>(st.view(), batches[i].data(), (int64_t)batches[i].size(), shape, cb.out());
      lc[i] = forwardBackward<float>(*cp, p.data(), g.data(), cb.inputs());
      adamUpdate<float>(p.data(), g.data(), m.data(), v.data(), (int64_t)p.size(), adamAt(i, lr));
    }
    const double cpuMs = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / steps;
    for (const std::string& impl : impls) {
      cudaSetGemmImpl(impl);
      g_tag = "[" + impl + "] ";
      auto model = cudaCreateModel(cfg, params.data(), (int64_t)params.size());
      auto plan = cudaCreatePlan(ds, model, shape);
      std::vector<double> lg(steps);
      for (int i = 0; i < steps; ++i) lg[i] = cudaTrainStep(*plan, batches[i].data(), (int64_t)batches[i].size(), adamAt(i, lr));
      double maxRel = 0;
      int at = 0;
      for (int i = 0; i < steps; ++i) {
        const double r = std::fabs(lg[i] - lc[i]) / std::max(1e-30, std::fabs(lc[i]));
        if (!(r <= maxRel)) { maxRel = r; at = i; }
      }
      std::vector<float> pg(params.size());
      cudaDownloadParams(*model, pg.data(), (int64_t)pg.size());
      char extra[200];
      std::snprintf(extra, sizeof extra, "(at step %d; loss[0]=%.5f loss[%d] gpu=%.6f cpu=%.6f; final params rel=%.2e; cpu %.1f ms/step)",
                    at, lc[0], steps - 1, lg[steps - 1], lc[steps - 1], relErr(pg.data(), p.data(), p.size()), cpuMs);
      report(std::to_string(steps) + "-step losses " + kindName(kind) + " max rel diff", maxRel, 1e-3, extra);
      // (c) determinism: a second GPU run from the same init, bitwise
      auto model2 = cudaCreateModel(cfg, params.data(), (int64_t)params.size());
      auto plan2 = cudaCreatePlan(ds, model2, shape);
      std::vector<double> lg2(steps);
      for (int i = 0; i < steps; ++i) lg2[i] = cudaTrainStep(*plan2, batches[i].data(), (int64_t)batches[i].size(), adamAt(i, lr));
      std::vector<float> pg2(params.size());
      cudaDownloadParams(*model2, pg2.data(), (int64_t)pg2.size());
      const bool bitwise = std::memcmp(lg.data(), lg2.data(), 8 * lg.size()) == 0 &&
                           std::memcmp(pg.data(), pg2.data(), 4 * pg.size()) == 0;
      reportBool(std::string("(c) two GPU runs bitwise equal ") + kindName(kind), bitwise, "(losses and final params)");
      g_tag.clear();
    }
  }
}

// ---- (d) benchmark --------------------------------------------------------------------------------
bool g_breakdown = false;

// One step without the graph, an event after every launch; per kernel name
// (impl, shape, epilogue): calls and device us per step, largest first; then
// per family and per kernel site (the CPU profile's site names).
void printBreakdown(CudaPlan& plan, Stream& stream, double graphStepMs) {
  std::vector<CudaLaunchTime> t;
  for (int rep = 0; rep < 3; ++rep) {  // the last of three (the first ones warm caches and events)
    auto ids = stream.next();
    t = cudaProfileStep(plan, ids.data(), (int64_t)ids.size(), adamAt(100 + rep, 1e-4));
  }
  struct Agg { std::string name; int calls = 0; double ms = 0; };
  std::vector<Agg> agg;
  double total = 0;
  for (const auto& x : t) {
    total += x.ms;
    auto it = std::find_if(agg.begin(), agg.end(), [&](const Agg& a) { return a.name == x.name; });
    if (it == agg.end()) { agg.push_back(Agg{x.name, 0, 0}); it = agg.end() - 1; }
    it->calls++;
    it->ms += x.ms;
  }
  std::sort(agg.begin(), agg.end(), [](const Agg& a, const Agg& b) { return a.ms > b.ms; });
  std::printf("  breakdown (one step without the graph: %zu ops, %.1f us device total; graph replay step %.1f us)\n",
              t.size(), total * 1e3, graphStepMs * 1e3);
  std::printf("  %8s %6s %6s %8s  %s\n", "us/step", "share", "calls", "us/call", "kernel [impl] MxNxK");
  for (const auto& a : agg)
    std::printf("  %8.1f %5.1f%% %6d %8.2f  %s\n", a.ms * 1e3, 100.0 * a.ms / std::max(1e-12, total), a.calls,
                a.ms * 1e3 / a.calls, a.name.c_str());
  // by kernel family (name up to the first '[' or ' ')
  std::vector<Agg> fam;
  for (const auto& a : agg) {
    const std::string f = a.name.substr(0, a.name.find_first_of("[ "));
    auto it = std::find_if(fam.begin(), fam.end(), [&](const Agg& b) { return b.name == f; });
    if (it == fam.end()) { fam.push_back(Agg{f, 0, 0}); it = fam.end() - 1; }
    it->calls += a.calls;
    it->ms += a.ms;
  }
  std::sort(fam.begin(), fam.end(), [](const Agg& a, const Agg& b) { return a.ms > b.ms; });
  std::printf("  by family:");
  for (const auto& a : fam) std::printf(" %s %.0fus/%d", a.name.c_str(), a.ms * 1e3, a.calls);
  std::printf("\n");
  // by kernel site, all passes together: the CPU profile's names (kKernelSites);
  // launches outside the model program by their own name, in parentheses
  std::vector<Agg> site;
  for (const auto& x : t) {
    const std::string k = x.site.empty() ? "(" + x.name.substr(0, x.name.find_first_of("[ ")) + ")" : x.site;
    auto it = std::find_if(site.begin(), site.end(), [&](const Agg& b) { return b.name == k; });
    if (it == site.end()) { site.push_back(Agg{k, 0, 0}); it = site.end() - 1; }
    it->calls++;
    it->ms += x.ms;
  }
  std::sort(site.begin(), site.end(), [](const Agg& a, const Agg& b) { return a.ms > b.ms; });
  std::printf("  by site:");
  for (const auto& a : site) std::printf(" %s %.0fus/%d", a.name.c_str(), a.ms * 1e3, a.calls);
  std::printf("\n");
  std::fflush(stdout);
}

struct BenchRow {
  std::string impl, model, data;
  int B;
  PackShape shape;
  double realGraphs, stepMs, batchMs, wallMs, captureMs, gflop, mbytes, floorMs;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : (v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]));
}

BenchRow bench(const Store& st, std::shared_ptr<CudaStore> ds, ModelKind kind, const char* data, int B, int warm,
               int timed, double bwGBs) {
  const ModelConfig cfg = modelCfg(kind);
  PackShape shape = budget(st, B);
  // qm9: the study's QM9 budgets (PAPER.md), the same shapes as the JAX peer.
  if (std::string(data) == "qm9" && B == 32) shape = PackShape{576, 9984, 32};
  if (std::string(data) == "qm9" && B == 128) shape = PackShape{2304, 39936, 128};
  Stream stream(st, shape, 42);
  auto params = initParams(cfg, 3);
  auto model = cudaCreateModel(cfg, params.data(), (int64_t)params.size());
  auto plan = cudaCreatePlan(ds, model, shape, true);
  std::vector<double> stepMs, batchMs, wallMs;
  double real = 0;
  for (int i = 0; i < warm + timed; ++i) {
    auto ids = stream.next();
    const auto t0 = Clock::now();
    const double loss = cudaTrainStep(*plan, ids.data(), (int64_t)ids.size(), adamAt(i, 1e-4));
    const double w = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!std::isfinite(loss)) throw std::runtime_error("non-finite loss in benchmark");
    if (i >= warm) {
      const CudaPlanStats s = cudaPlanStats(*plan);
      stepMs.push_back(s.lastStepMs);
      batchMs.push_back(s.lastBatchMs);
      wallMs.push_back(w);
      real += (double)ids.size();
    }
  }
  const CudaPlanStats s = cudaPlanStats(*plan);
  BenchRow r;
  r.impl = cudaGemmImpl(); r.model = kindName(kind); r.data = data; r.B = B; r.shape = shape;
  r.realGraphs = real / timed;
  r.stepMs = median(stepMs); r.batchMs = median(batchMs); r.wallMs = median(wallMs);
  r.captureMs = 1e3 * s.captureSeconds;
  r.gflop = s.flopsPerStep / 1e9;
  r.mbytes = s.bytesPerStep / 1e6;
  r.floorMs = std::max(s.flopsPerStep / 60e12, s.bytesPerStep / (bwGBs * 1e9)) * 1e3;
  if (s.captures != 1) { std::printf("unexpected capture count %lld\n", (long long)s.captures); g_failures++; }
  std::printf("bench [%s] %s %s B=%d: step %.3f ms (batch %.3f, wall %.3f)\n", r.impl.c_str(), r.model.c_str(), data, B,
              r.stepMs, r.batchMs, r.wallMs);
  std::fflush(stdout);
  if (g_breakdown) printBreakdown(*plan, stream, r.stepMs);
  return r;
}

int selftest() {
  std::printf("selftest (CPU only): generators, budgets, packer, CPU engine\n");
  Store q = makeQm9(1200, 1), a = makeAflow(600, 2);
  validateStoreFull(q.view());
  validateStoreFull(a.view());
  for (int B : {32, 128}) {
    PackShape sq = budget(q, B), sa = budget(a, B);
    std::printf("  qm9 B=%d budget %lld/%lld/%lld   aflow B=%d budget %lld/%lld/%lld\n", B, (long long)sq.nodes,
                (long long)sq.edges, (long long)sq.graphs, B, (long long)sa.nodes, (long long)sa.edges, (long long)sa.graphs);
    Stream sqs(q, sq, 1);
    double real = 0;
    for (int i = 0; i < 20; ++i) {
      auto ids = sqs.next();
      CpuBatch<float> cb(sq);
      packGraphs<float>(q.view(), ids.data(), (int64_t)ids.size(), sq, cb.out());
      real += ids.size();
    }
    std::printf("  qm9 B=%d mean real graphs per batch %.1f\n", B, real / 20);
  }
  for (ModelKind kind : {ModelKind::MPEU, ModelKind::SchNet}) {
    const ModelConfig cfg = modelCfg(kind);
    PackShape sh = budget(q, 32);
    Stream s(q, sh, 5);
    auto cp = buildPlan<float>(cfg, sh);
    auto params = initParams(cfg, 11);
    std::vector<float> g(params.size()), m(params.size()), v(params.size());
    CpuBatch<float> cb(sh);
    for (int i = 0; i < 5; ++i) {
      auto ids = s.next();
      packGraphs<float>(q.view(), ids.data(), (int64_t)ids.size(), sh, cb.out());
      const double l = forwardBackward<float>(*cp, params.data(), g.data(), cb.inputs());
      adamUpdate<float>(params.data(), g.data(), m.data(), v.data(), (int64_t)params.size(), adamAt(i, 5e-4));
      std::printf("  %s step %d loss %.5f\n", kindName(kind), i, l);
    }
  }
  std::printf("selftest done\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, self = false, noBench = false, noKernels = false, noGrads = false, noTrain = false;
  std::string implArg = "both", only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--selftest") self = true;
    else if (a == "--no-bench") noBench = true;
    else if (a == "--no-kernels") noKernels = true;
    else if (a == "--no-grads") noGrads = true;
    else if (a == "--no-train") noTrain = true;
    else if (a == "--breakdown") g_breakdown = true;
    else if (a.rfind("--impl=", 0) == 0) implArg = a.substr(7);
    else if (a.rfind("--only=", 0) == 0) only = a.substr(7);
    else { std::printf("unknown option %s\n", a.c_str()); return 2; }
  }
  std::printf("gnn_native_check: CUDA compiled: %s, devices: %d\n", cudaCompiled() ? "yes" : "no", cudaDeviceCount());
  if (cudaDeviceCount() == 0) {
    if (self) selftest();
    std::printf("SKIP: no CUDA device\n");
    return 0;
  }
  std::vector<std::string> impls;
  if (implArg == "both") impls = {"ffma", "tf32x3"};
  else impls = {implArg};
  for (const auto& im : impls) {
    if (im != "ffma" && im != "tf32x3") { std::printf("unknown --impl %s\n", im.c_str()); return 2; }
  }
  auto wanted = [&](const char* model, const char* data, int B) {
    if (only.empty()) return true;
    const std::string key = std::string(model) + ":" + data + ":" + std::to_string(B);
    size_t pos = 0;
    while (pos <= only.size()) {
      const size_t e = only.find(',', pos);
      const std::string item = only.substr(pos, e == std::string::npos ? std::string::npos : e - pos);
      if (item == key) return true;
      if (e == std::string::npos) break;
      pos = e + 1;
    }
    return false;
  };
  // Each section runs on its own: an exception is reported and the next runs.
  auto section = [](const char* name, const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      std::printf("FATAL in %s%s: %s\n", g_tag.c_str(), name, e.what());
      std::fflush(stdout);
      g_failures++;
    }
  };
  const auto tStart = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - tStart).count(); };
  if (!noKernels) {
    for (size_t k = 0; k < impls.size(); ++k) {
      cudaSetGemmImpl(impls[k]);
      g_tag = "[" + impls[k] + "] ";
      section("kernels", [&] { checkKernels(k + 1 < impls.size()); });  // the non-gemm kernels once
      g_tag.clear();
    }
    std::printf("(a) done at %.1f s\n", elapsed());
  }
  Store q = makeQm9(4000, 1);
  Store a = makeAflow(3000, 2);
  std::shared_ptr<CudaStore> dq, da;
  section("upload", [&] { dq = cudaUploadStore(q.view()); da = cudaUploadStore(a.view()); });
  if (!dq || !da) {
    std::printf("\nGPU_CHECK: FAIL (store upload failed)\n");
    return 1;
  }
  if (!noGrads) {
    std::printf("== whole step: device pack, gradients and loss vs the CPU engine (float64)\n");
    for (const auto& im : impls) {
      cudaSetGemmImpl(im);
      g_tag = "[" + im + "] ";
      section("pack+grads qm9", [&] { checkPackAndGrads(q, dq, "qm9"); });
      section("pack+grads aflow", [&] { checkPackAndGrads(a, da, "aflow"); });
      g_tag.clear();
    }
    std::printf("grads done at %.1f s\n", elapsed());
  }
  if (!noTrain) {
    section("training", [&] { checkTraining(q, dq, quick ? 20 : 100, impls); });
    g_tag.clear();
    std::printf("(b)(c) done at %.1f s\n", elapsed());
  }
  std::vector<BenchRow> rows;
  if (!noBench) {
    std::printf("== (d) benchmark\n");
    double bw = 2500;
    section("bandwidth", [&] { bw = cudaMeasureCopyBandwidth(); });
    std::printf("device-to-device copy bandwidth: %.0f GB/s (read+write)\n", bw);
    const int warm = 5, timed = quick ? 20 : 50;
    for (ModelKind k : {ModelKind::MPEU, ModelKind::SchNet})
      for (int B : {32, 128})
        for (const char* data : {"qm9", "aflow"}) {
          if (!wanted(kindName(k), data, B)) continue;
          for (const auto& im : impls) {  // implementations side by side, same stream seed
            cudaSetGemmImpl(im);
            section("bench", [&] { rows.push_back(bench(std::string(data) == "qm9" ? q : a, std::string(data) == "qm9" ? dq : da,
                                                         k, data, B, warm, timed, bw)); });
          }
        }
    std::printf("(d) done at %.1f s\n", elapsed());
  }
  for (const auto& r : rows)
    std::printf("RESULT impl=%s model=%s data=%s B=%d nodes=%lld edges=%lld graphs=%lld real_graphs=%.1f step_ms=%.4f "
                "batch_ms=%.4f wall_ms=%.4f capture_ms=%.1f gflop=%.3f mbytes=%.1f gflops=%.0f floor_ms=%.4f\n",
                r.impl.c_str(), r.model.c_str(), r.data.c_str(), r.B, (long long)r.shape.nodes, (long long)r.shape.edges,
                (long long)r.shape.graphs, r.realGraphs, r.stepMs, r.batchMs, r.wallMs, r.captureMs, r.gflop,
                r.mbytes, r.gflop / r.stepMs * 1e3, r.floorMs);
  if (!rows.empty()) {
    std::printf("\n%-7s %-7s %-6s %4s %12s %9s %9s %9s %10s %8s %8s %9s\n", "impl", "model", "data", "B", "shape(N/E)",
                "step_ms", "batch_ms", "wall_ms", "capture_ms", "GFLOP", "TFLOP/s", "floor_ms");
    for (const auto& r : rows) {
      char shp[32];
      std::snprintf(shp, sizeof shp, "%lld/%lld", (long long)r.shape.nodes, (long long)r.shape.edges);
      std::printf("%-7s %-7s %-6s %4d %12s %9.3f %9.3f %9.3f %10.1f %8.2f %8.2f %9.3f\n", r.impl.c_str(), r.model.c_str(),
                  r.data.c_str(), r.B, shp, r.stepMs, r.batchMs, r.wallMs, r.captureMs, r.gflop, r.gflop / r.stepMs,
                  r.floorMs);
    }
  }
  std::printf("\nGPU_CHECK: %s (%d failures, %.1f s)\n", g_failures ? "FAIL" : "PASS", g_failures, elapsed());
  return g_failures ? 1 : 0;
}
