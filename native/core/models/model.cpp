// MPEU / SchNet forward and backward (see model.h and PAPER.md).
//
// Cheaper but algebraically identical evaluation (ARCHITECTURE.md):
//  * MPEU's first edge layer on concat(h_s, h_r, e) is split as h W_s and h W_r
//    computed per node and gathered per edge inside the matrix-product epilogue,
//    plus e W_e per edge.
//  * Linear(h_sender) is computed per node and gathered per edge; the message
//    product and the mean over incoming edges are fused into one CSR reduction,
//    so the message array itself is never written.
//  * Bias, activation and gathers run as row-block epilogues of the products.
// Backward scatters to senders go through the sender permutation (no atomics).
#include "model.h"

#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <vector>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "core/dense.h"
#include "core/segment.h"
#include "core/models/weights.h"
#include "core/models/model_internal.h"

namespace gnn {

const char* const kProfileNames[kProfCount] = {
    "rbf", "embed", "edge_update", "message", "aggregate", "node_update", "readout",
    "readout_bwd", "node_update_bwd", "message_bwd", "edge_update_bwd", "embed_bwd", "adam"};

const char* const kKernelSiteNames[kSiteCount] = {
    "fwd.rbf", "fwd.embed", "fwd.edge.w1s_gemm", "fwd.edge.w1r_gemm", "fwd.edge.w1e_gemm_gather", "fwd.edge.w2_gemm",
    "fwd.filter.w1_gemm", "fwd.filter.w2_gemm", "fwd.sender.w_gemm", "fwd.aggregate_segment", "fwd.node.w1_gemm",
    "fwd.node.w2_gemm", "fwd.readout.w1_gemm", "fwd.readout.w2_gemm", "fwd.loss",
    "bwd.loss", "bwd.readout.w2_dw_gemm", "bwd.readout.dr1", "bwd.readout.w1_dw_gemm", "bwd.readout.dx_gemm",
    "bwd.node.w2_dw_gemm", "bwd.node.w2_dx_gemm", "bwd.node.w1_dw_gemm", "bwd.node.w1_dx_gemm",
    "bwd.message.df2_gather", "bwd.message.dhs_scatter", "bwd.sender.w_dw_gemm", "bwd.sender.w_dx_gemm",
    "bwd.filter.w2_dw_gemm", "bwd.filter.w2_dx_gemm", "bwd.filter.w1_dw_gemm", "bwd.filter.w1_dx_gemm",
    "bwd.edge.w2_dw_gemm", "bwd.edge.w2_dx_gemm", "bwd.edge.w1e_dw_gemm", "bwd.edge.ps_scatter",
    "bwd.edge.pr_segment", "bwd.edge.w1s_dw_gemm", "bwd.edge.w1r_dw_gemm", "bwd.edge.w1s_dx_gemm",
    "bwd.edge.w1r_dx_gemm", "bwd.edge.w1e_dx_gemm", "bwd.embed", "adam",
    "fwd.painn.rbf", "fwd.painn.message.w1_gemm", "fwd.painn.message.w2_gemm",
    "fwd.painn.message.aggregate", "fwd.painn.update.mix_gemm", "fwd.painn.update.norm", "fwd.painn.update.w1_gemm",
    "fwd.painn.update.w2_gemm_apply", "bwd.painn.update.apply", "bwd.painn.update.w2_dw_gemm",
    "bwd.painn.update.w2_dx_gemm", "bwd.painn.update.w1_dw_gemm", "bwd.painn.update.w1_dx_gemm",
    "bwd.painn.update.norm", "bwd.painn.update.mix_dw_gemm", "bwd.painn.update.mix_dx_gemm",
    "bwd.painn.message.scatter", "bwd.painn.message.w2_dw_gemm", "bwd.painn.message.w2_dx_gemm",
    "bwd.painn.message.w1_dw_gemm", "bwd.painn.message.w1_dx_gemm", "bwd.painn.filter_dw_reduce"};
const int kKernelSiteRows[kSiteCount] = {
    kRowEdge, kRowNode, kRowNode, kRowNode, kRowEdge, kRowEdge, kRowEdge, kRowEdge, kRowNode, kRowEdge, kRowNode,
    kRowNode, kRowNode, kRowNode, kRowGraph,
    kRowGraph, kRowNode, kRowNode, kRowNode, kRowNode, kRowNode, kRowNode, kRowNode, kRowNode,
    kRowEdge, kRowEdge, kRowNode, kRowNode, kRowEdge, kRowEdge, kRowEdge, kRowEdge,
    kRowEdge, kRowEdge, kRowEdge, kRowEdge, kRowEdge, kRowNode, kRowNode, kRowNode,
    kRowNode, kRowEdge, kRowNode, kRowParam,
    kRowEdge, kRowNode, kRowNode, kRowEdge, kRowNode, kRowNode, kRowNode,
    kRowNode, kRowNode, kRowNode, kRowNode, kRowNode, kRowNode,
    kRowNode, kRowNode, kRowNode,
    kRowEdge, kRowNode, kRowNode, kRowNode, kRowNode, kRowParam};
const bool kKernelSiteGemm[kSiteCount] = {
    false, false, true, true, true, true, true, true, true, false, true, true, true, true, false,
    false, true, false, true, true, true, true, true, true,
    false, false, true, true, true, true, true, true,
    true, true, true, false, false, true, true, true,
    true, true, false, false,
    false, true, true, true, true, false, true,
    true, false, true, true, true, true,
    false, true, true,
    true, true, true, true, true, false};

template <class T>
void Plan<T>::setProfiling(bool on) {
  profile = on;
  profSeconds.fill(0);
  profSteps = 0;
  profDropped = 0;
  profRecords.clear();
  if (on) profRecords.reserve(kProfileRecordCapacity);
  else profRecords.shrink_to_fit();
}

template <class T>
void Plan<T>::addRecord(int site, int pass, int64_t m, int64_t n, int64_t k, double flops, double bytes, double t0Ns,
                        double t1Ns) {
  if (profRecords.size() >= profRecords.capacity()) { ++profDropped; return; }  // never reallocate in a step
  KernelRecord r;
  r.site = site;
  r.pass = pass;
  r.m = m;
  r.n = n;
  r.k = k;
  switch (kKernelSiteRows[site]) {
    case kRowNode: r.rows = profShape.nodes; r.realRows = profReal.nodes; break;
    case kRowEdge: r.rows = profShape.edges; r.realRows = profReal.edges; break;
    case kRowGraph: r.rows = profShape.graphs; r.realRows = profReal.graphs; break;
    default: r.rows = r.realRows = m; break;
  }
  r.t0Ns = t0Ns;
  r.durNs = t1Ns - t0Ns;
  r.flops = flops;
  r.bytes = bytes;
  profRecords.push_back(r);
}

template <class T>
PackShape realCounts(const BatchInputs<T>& b) {
  PackShape r;
  for (int64_t g = 0; g < b.shape.graphs; ++g) {
    if (!(b.mask[g] > 0)) break;
    r.graphs++;
    r.nodes += b.nNode[g];
  }
  r.nodes = std::min(r.nodes, b.shape.nodes);
  r.edges = b.recvPtr[r.nodes];  // receiver-sorted: real edges end where the padding nodes' rows begin
  return r;
}

void validateConfig(const ModelConfig& c) {
  auto chk = [](bool ok, const std::string& m) { if (!ok) throwRange("model config: " + m, "ERR_GNN_CONFIG"); };
  chk(c.latent >= 1 && c.latent <= 1024, "latent must be in 1..1024, got " + std::to_string(c.latent));
  chk(c.passes >= 1 && c.passes <= 32, "passes must be in 1..32, got " + std::to_string(c.passes));
  chk(c.basis >= 1 && c.basis <= 4096, "basis must be in 1..4096, got " + std::to_string(c.basis));
  chk(c.numClasses >= 1 && c.numClasses <= 256, "numClasses must be in 1..256, got " + std::to_string(c.numClasses));
  chk(c.readoutHidden >= 1 && c.readoutHidden <= 4096, "readoutHidden must be in 1..4096");
  chk(std::isfinite(c.rbfSpacing) && c.rbfSpacing > 0, "rbfSpacing must be > 0");
  chk(std::isfinite(c.rbfGamma) && c.rbfGamma > 0, "rbfGamma must be > 0");
  chk(std::isfinite(c.cutoff) && c.cutoff > 0 && c.cutoff <= 1000, "cutoff must be in (0, 1000] \u00c5");
}

ParamLayout paramLayout(const ModelConfig& c) {
  validateConfig(c);
  if (c.kind == ModelKind::PaiNN) return detail::painnLayout(c);
  ParamLayout L;
  auto add = [&](const std::string& n, int64_t r, int64_t k) {
    L.entries.push_back({n, L.total, r, k});
    L.total += r * k;
  };
  const int64_t C = c.latent, H = 2 * C, K = c.basis, R = c.readoutHidden;
  add("embed/w", c.numClasses, C);
  add("embed/b", 1, C);
  for (int t = 0; t < c.passes; ++t) {
    const std::string p = "pass" + std::to_string(t) + "/";
    if (c.kind == ModelKind::MPEU) {
      const int64_t ein = t == 0 ? K : C;
      add(p + "edge/w1", 2 * C + ein, H);  // rows: sender C, receiver C, edge ein
      add(p + "edge/b1", 1, H);
      add(p + "edge/w2", H, C);
      add(p + "edge/b2", 1, C);
    }
    add(p + "filter/w1", c.kind == ModelKind::MPEU ? C : K, C);
    add(p + "filter/b1", 1, C);
    add(p + "filter/w2", C, C);
    add(p + "filter/b2", 1, C);
    add(p + "sender/w", C, C);
    add(p + "sender/b", 1, C);
    add(p + "node/w1", C, C);
    add(p + "node/b1", 1, C);
    add(p + "node/w2", C, C);
    add(p + "node/b2", 1, C);
  }
  add("readout/w1", C, R);
  add("readout/b1", 1, R);
  add("readout/w2", R, 1);
  add("readout/b2", 1, 1);
  return L;
}

template <class T>
size_t Plan<T>::bytes() const {
  size_t n = 0;
  for (auto* v : {&rbf, &h, &e, &a1, &f1, &f2, &hs, &agg, &u1, &r1, &r2, &pred, &invCnt, &Ps, &Pr,
                  &dh, &dhNew, &de, &dpre1, &dA, &dB, &dPs, &dPr, &dhs, &dagg, &du, &dr1, &wt,
                  &pnRbf, &pnFcut, &pnS, &pnV, &pnM1pre, &pnM1, &pnQ, &pnMix, &pnNrm, &pnCtx, &pnA1pre,
                  &pnA1, &pnA, &pnR1pre, &pnDs, &pnDv, &pnDvIn, &pnDa, &pnDa1, &pnDctx, &pnDmix, &pnDq, &pnDm1,
                  &pnFiltAcc})
    n += v->size() * sizeof(T);
  return n + graphStart.size() * sizeof(int64_t);
}

double maxPlanBytes() {
  double limit = kMaxPlanBytes;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) limit = std::min(limit, 0.5 * (double)pages * (double)page);
#endif
  return limit;
}

template <class T>
std::unique_ptr<Plan<T>> buildPlan(const ModelConfig& cfg, const PackShape& cap) {
  validateConfig(cfg);
  if (cap.nodes < 0 || cap.edges < 0 || cap.graphs < 0) throwRange("plan capacity must be non-negative");
  {
    // Refuse a capacity whose buffers could not exist before touching memory
    // (value-initialising tens of GB would be killed by the OS, not caught).
    // Mirrors the resizes below (every buffer, graph-sized ones included).
    const double C = cfg.latent, H = 2.0 * C, K = cfg.basis, R = cfg.readoutHidden, TT = cfg.passes;
    const double N = (double)cap.nodes, E = (double)cap.edges, G = (double)cap.graphs;
    const double elems =
        cfg.kind == ModelKind::PaiNN
            ? detail::painnPlanElems(cfg, cap)
            : E * K + (TT + 1) * N * C + 2 * TT * E * C + 3 * TT * N * C + 2 * N * R + 2 * N + G + 6 * N * C + 2 * E * C +
                  (cfg.kind == ModelKind::MPEU ? TT * E * C + TT * E * H + 4 * N * H + E * C + E * H : 0);
    const double bytes = elems * sizeof(T) + 8 * (G + 1);  // + graphStart (int64)
    const double limit = maxPlanBytes();
    if (bytes > limit)
      throwRange("plan capacity {nodes: " + std::to_string(cap.nodes) + ", edges: " + std::to_string(cap.edges) +
                     ", graphs: " + std::to_string(cap.graphs) + "} needs about " + std::to_string((int64_t)(bytes / (1 << 20))) +
                     " MiB of buffers, more than the " + std::to_string((int64_t)(limit / (1 << 20))) + " MiB limit",
                 "ERR_GNN_PLAN_TOO_LARGE");
  }
  auto p = std::make_unique<Plan<T>>();
  p->cfg = cfg;
  p->layout = paramLayout(cfg);
  p->cap = cap;
  if (cfg.kind == ModelKind::PaiNN) {
    detail::painnAllocate(*p);
    return p;
  }
  const size_t N = cap.nodes, E = cap.edges, G = cap.graphs, C = cfg.latent, H = 2 * C,
               K = cfg.basis, R = cfg.readoutHidden, TT = cfg.passes;
  const bool mpeu = cfg.kind == ModelKind::MPEU;
  p->rbf.resize(E * K);
  p->h.resize((TT + 1) * N * C);
  p->f1.resize(TT * E * C);
  p->f2.resize(TT * E * C);
  p->hs.resize(TT * N * C);
  p->agg.resize(TT * N * C);
  p->u1.resize(TT * N * C);
  p->r1.resize(N * R);
  p->r2.resize(N);
  p->pred.resize(G);
  p->invCnt.resize(N);
  p->graphStart.resize(G + 1);
  p->dh.resize(N * C);
  p->dhNew.resize(N * C);
  p->dA.resize(E * C);
  p->dB.resize(E * C);
  p->dhs.resize(N * C);
  p->dagg.resize(N * C);
  p->du.resize(N * C);
  p->dr1.resize(N * R);
  p->wt.resize(std::max({K * H, K * C, H * C, C * R, C * C}));
  if (mpeu) {
    p->e.resize(TT * E * C);
    p->a1.resize(TT * E * H);
    p->Ps.resize(N * H);
    p->Pr.resize(N * H);
    p->de.resize(E * C);
    p->dpre1.resize(E * H);
    p->dPs.resize(N * H);
    p->dPr.resize(N * H);
  }
  return p;
}

template <class T>
void validateBatch(const Plan<T>& p, const BatchInputs<T>& b) {
  const auto& s = b.shape;
  if (s.nodes > p.cap.nodes || s.edges > p.cap.edges || s.graphs > p.cap.graphs || s.nodes < 0 ||
      s.edges < 0 || s.graphs < 0)
    throwRange("batch shape {nodes: " + std::to_string(s.nodes) + ", edges: " + std::to_string(s.edges) +
                   ", graphs: " + std::to_string(s.graphs) + "} exceeds the plan capacity {" +
                   std::to_string(p.cap.nodes) + ", " + std::to_string(p.cap.edges) + ", " +
                   std::to_string(p.cap.graphs) + "}",
               "ERR_GNN_SHAPE");
  const int64_t N = s.nodes, E = s.edges, G = s.graphs;
  if (p.cfg.kind == ModelKind::PaiNN && E > 0 && !b.direction)
    throwRange("PaiNN needs the edges' direction vectors (inputs.direction, [edges x 3]): build the graph store with "
               "directions",
               "ERR_GNN_DATA_DIRECTIONS");
  checkIndices(b.atomicNumber, N, p.cfg.numClasses, "atomicNumber");
  checkIndices(b.senders, E, N, "senders");
  checkIndices(b.receivers, E, N, "receivers");
  checkIndices(b.sendPerm, E, E, "sendPerm");
  checkRowPtr(b.recvPtr, N, E, "recvPtr");
  checkRowPtr(b.sendPtr, N, E, "sendPtr");
  // The kernels reduce over recvPtr rows and scatter through sendPerm/sendPtr,
  // so these must describe receivers and senders exactly (O(N + E), once per
  // call): row n of recvPtr holds exactly the edges received by n (so the
  // receivers are sorted), and sendPerm is a permutation whose row n under
  // sendPtr lists exactly the edges sent by n.
  for (int64_t n = 0; n < N; ++n)
    for (int32_t k = b.recvPtr[n]; k < b.recvPtr[n + 1]; ++k)
      if (b.receivers[k] != n)
        throwRange("recvPtr does not describe receivers: edge " + std::to_string(k) + " has receiver " +
                       std::to_string(b.receivers[k]) + " but lies in row " + std::to_string(n) +
                       " (receivers must be sorted, recvPtr their row pointers)",
                   "ERR_GNN_BATCH");
  {
    static thread_local std::vector<uint8_t> seen;
    seen.assign((size_t)E, 0);
    for (int64_t n = 0; n < N; ++n)
      for (int32_t k = b.sendPtr[n]; k < b.sendPtr[n + 1]; ++k) {
        const int32_t e = b.sendPerm[k];  // range-checked above
        if (seen[(size_t)e] || b.senders[e] != n)
          throwRange("sendPerm/sendPtr do not describe senders: sendPerm[" + std::to_string(k) + "]=" + std::to_string(e) +
                         (seen[(size_t)e] ? " repeats an edge" : " is an edge of sender " + std::to_string(b.senders[e]) + ", not " + std::to_string(n)),
                     "ERR_GNN_BATCH");
        seen[(size_t)e] = 1;
      }
  }
  int64_t total = 0;
  for (int64_t g = 0; g < G; ++g) {
    if (b.nNode[g] < 0) throwRange("nNode[" + std::to_string(g) + "] is negative");
    total += b.nNode[g];
  }
  if (total != N)
    throwRange("nNode sums to " + std::to_string(total) + " but the batch has " + std::to_string(N) + " nodes");
}

namespace {

using namespace detail;

template <class T>
double forwardImpl(Plan<T>& p, const T* params, const BatchInputs<T>& b) {
  const ModelConfig& c = p.cfg;
  const int64_t N = b.shape.nodes, E = b.shape.edges, G = b.shape.graphs;
  const int64_t C = c.latent, H = 2 * C, K = c.basis, R = c.readoutHidden;
  const bool mpeu = c.kind == ModelKind::MPEU;
  ModelW<T> W = bindWeights<T>(c, p.layout, const_cast<T*>(params));
  const int32_t* snd = b.senders;
  const int32_t* rcv = b.receivers;
  {
    ProfScope<T> ps(p, kProfRbf);
    KScope<T> ks(p, kSiteRbf, -1, E, K, 0, 4.0 * E * K + N,
                 sizeof(T) * (E + (double)E * K + N) + 4.0 * (N + 1));
    const T gamma = (T)c.rbfGamma, step = (T)c.rbfSpacing;
    T* rbf = p.rbf.data();
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t k = 0; k < E; ++k) {
      const T d = b.distance[k];
      T* row = rbf + k * K;
#pragma omp simd
      for (int64_t j = 0; j < K; ++j) {
        const T x = d - step * (T)j;
        row[j] = -gamma * x * x;
      }
      expNonPosInPlace(row, K);
    }
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      const int32_t cnt = b.recvPtr[n + 1] - b.recvPtr[n];
      p.invCnt[n] = c.meanAggregation ? (cnt > 0 ? (T)1 / (T)cnt : (T)0) : (T)1;
    }
  }
  {
    ProfScope<T> ps(p, kProfEmbed);
    KScope<T> ks(p, kSiteEmbed, -1, N, C, 0, (double)N * C, sizeof(T) * (2.0 * N * C + C) + 4.0 * N);
    T* h0 = p.h.data();
#pragma omp parallel for schedule(static) num_threads(numThreads())
    for (int64_t n = 0; n < N; ++n) {
      const T* w = W.embW + (int64_t)b.atomicNumber[n] * C;
      T* o = h0 + n * C;
      for (int64_t j = 0; j < C; ++j) o[j] = w[j] + W.embB[j];
    }
  }
  for (int t = 0; t < c.passes; ++t) {
    const PassW<T>& w = W.pass[t];
    T* ht = p.h.data() + t * N * C;
    T* hn = p.h.data() + (t + 1) * N * C;
    T* f1t = p.f1.data() + t * E * C;
    T* f2t = p.f2.data() + t * E * C;
    T* hst = p.hs.data() + t * N * C;
    T* aggt = p.agg.data() + t * N * C;
    T* u1t = p.u1.data() + t * N * C;
    const T* fin = p.rbf.data();
    int64_t Fin = K;
    if (mpeu) {
      ProfScope<T> ps(p, kProfEdgeUpdate);
      const int64_t Ein = t == 0 ? K : C;
      const T* ein = t == 0 ? p.rbf.data() : p.e.data() + (t - 1) * E * C;
      T* et1 = p.e.data() + t * E * C;
      T* a1t = p.a1.data() + t * E * H;
      T* Ps = p.Ps.data();
      T* Pr = p.Pr.data();
      { KScope<T> ks(p, kSiteEdgePs, t, N, H, C, gf(N, H, C), gb<T>(N, H, C));
        gemm<T>(N, H, C, ht, C, 1, w.w1s, H, Ps, H, false); }
      { KScope<T> ks(p, kSiteEdgePr, t, N, H, C, gf(N, H, C), gb<T>(N, H, C));
        gemm<T>(N, H, C, ht, C, 1, w.w1r, H, Pr, H, false); }
      const T* b1 = w.b1;
      { KScope<T> ks(p, kSiteEdgeW1e, t, E, H, Ein, gf(E, H, Ein), gb<T>(E, H, Ein, 2.0 * E * H + H) + 8.0 * E);
      gemm<T>(E, H, Ein, ein, Ein, 1, w.w1e, H, a1t, H, false, [=](int64_t m0, int64_t m1) {
        for (int64_t i = m0; i < m1; ++i) {
          T* row = a1t + i * H;
          const T* ps = Ps + (int64_t)snd[i] * H;
          const T* pr = Pr + (int64_t)rcv[i] * H;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) row[j] += ps[j] + pr[j] + b1[j];
        }
        sspInPlace(a1t + m0 * H, (m1 - m0) * H);
      }); }
      { KScope<T> ks(p, kSiteEdgeW2, t, E, C, H, gf(E, C, H), gb<T>(E, C, H, C));
        gemm<T>(E, C, H, a1t, H, 1, w.w2, C, et1, C, false, biasEpi<T>(et1, C, w.b2, false)); }
      fin = et1;
      Fin = C;
    }
    {
      ProfScope<T> ps(p, kProfMessage);
      { KScope<T> ks(p, kSiteFilterW1, t, E, C, Fin, gf(E, C, Fin), gb<T>(E, C, Fin, C));
        gemm<T>(E, C, Fin, fin, Fin, 1, w.wf1, C, f1t, C, false, biasEpi<T>(f1t, C, w.bf1, true)); }
      { KScope<T> ks(p, kSiteFilterW2, t, E, C, C, gf(E, C, C), gb<T>(E, C, C, C));
        gemm<T>(E, C, C, f1t, C, 1, w.wf2, C, f2t, C, false, biasEpi<T>(f2t, C, w.bf2, true)); }
      { KScope<T> ks(p, kSiteSenderW, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, C));
        gemm<T>(N, C, C, ht, C, 1, w.wl, C, hst, C, false, biasEpi<T>(hst, C, w.bl, false)); }
    }
    {
      ProfScope<T> ps(p, kProfAggregate);
      KScope<T> ks(p, kSiteAggregate, t, E, C, 0, 2.0 * E * C + (double)N * C,
                   sizeof(T) * (2.0 * E * C + (double)N * C + N) + 4.0 * (E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
      for (int64_t r = 0; r < N; ++r) {
        T* o = aggt + r * C;
        std::memset(o, 0, sizeof(T) * C);
        for (int32_t k = b.recvPtr[r]; k < b.recvPtr[r + 1]; ++k) {
          const T* f = f2t + (int64_t)k * C;
          const T* hsr = hst + (int64_t)snd[k] * C;
#pragma omp simd
          for (int64_t j = 0; j < C; ++j) o[j] += f[j] * hsr[j];
        }
        const T ic = p.invCnt[r];
#pragma omp simd
        for (int64_t j = 0; j < C; ++j) o[j] *= ic;
      }
    }
    {
      ProfScope<T> ps(p, kProfNodeUpdate);
      { KScope<T> ks(p, kSiteNodeU1, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, C));
        gemm<T>(N, C, C, aggt, C, 1, w.wu1, C, u1t, C, false, biasEpi<T>(u1t, C, w.bu1, true)); }
      const T* bu2 = w.bu2;
      KScope<T> ks(p, kSiteNodeU2, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, C + (double)N * C));
      gemm<T>(N, C, C, u1t, C, 1, w.wu2, C, hn, C, false, [=](int64_t m0, int64_t m1) {
        for (int64_t i = m0; i < m1; ++i) {
          T* row = hn + i * C;
          const T* prev = ht + i * C;
#pragma omp simd
          for (int64_t j = 0; j < C; ++j) row[j] += bu2[j] + prev[j];
        }
      });
    }
  }
  ProfScope<T> ps(p, kProfReadout);
  const T* hT = p.h.data() + (int64_t)c.passes * N * C;
  { KScope<T> ks(p, kSiteReadoutR1, -1, N, R, C, gf(N, R, C), gb<T>(N, R, C, R));
    gemm<T>(N, R, C, hT, C, 1, W.r1w, R, p.r1.data(), R, false, biasEpi<T>(p.r1.data(), R, W.r1b, true)); }
  { KScope<T> ks(p, kSiteReadoutR2, -1, N, 1, R, gf(N, 1, R), gb<T>(N, 1, R, 1));
    gemm<T>(N, 1, R, p.r1.data(), R, 1, W.r2w, 1, p.r2.data(), 1, false, biasEpi<T>(p.r2.data(), 1, W.r2b, false)); }
  KScope<T> ksLoss(p, kSiteLoss, -1, G, 1, 0, (double)N + 4.0 * G, sizeof(T) * ((double)N + 3.0 * G) + 4.0 * G);
  return poolLoss(p, b);
}

template <class T>
void backwardImpl(Plan<T>& p, const T* params, T* grads, const BatchInputs<T>& b) {
  const ModelConfig& c = p.cfg;
  const int64_t N = b.shape.nodes, E = b.shape.edges, G = b.shape.graphs;
  const int64_t C = c.latent, H = 2 * C, K = c.basis, R = c.readoutHidden;
  const bool mpeu = c.kind == ModelKind::MPEU;
  ModelW<T> W = bindWeights<T>(c, p.layout, const_cast<T*>(params));
  ModelW<T> D = bindWeights<T>(c, p.layout, grads);
  const int32_t* snd = b.senders;
  const int32_t* rcv = b.receivers;
  std::vector<T>& scr = p.tnScratch;
  T* wt = p.wt.data();
  T* dh = p.dh.data();
  T* dhNew = p.dhNew.data();
  {
    ProfScope<T> ps(p, kProfReadoutBwd);
    T* dr2 = p.r2.data();  // dr2 reuses r2's storage (r2 is not needed any more).
    {
      KScope<T> ks(p, kSiteLossBwd, -1, G, 1, 0, 5.0 * G, sizeof(T) * (3.0 * G + N) + 4.0 * G);
      poolLossBackward(p, b, dr2);
    }
    { KScope<T> ks(p, kSiteReadoutR2Dw, -1, N, R, 1, gf(N, R, 1), gb<T>(N, R, 1, 1));
      gemmTN<T>(N, R, 1, p.r1.data(), R, dr2, 1, D.r2w, D.r2b, false, scr); }
    T* dr1 = p.dr1.data();
    const T* r1 = p.r1.data();
    {
      KScope<T> ks(p, kSiteReadoutDr1, -1, N, R, 0, 3.0 * N * R, sizeof(T) * (N + R + 2.0 * N * R));
#pragma omp parallel for schedule(static) num_threads(numThreads())
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < R; ++j) dr1[n * R + j] = dr2[n] * W.r2w[j];
      mulSspGradFromAct(dr1, r1, N * R);
    }
    const T* hT = p.h.data() + (int64_t)c.passes * N * C;
    { KScope<T> ks(p, kSiteReadoutR1Dw, -1, N, R, C, gf(N, R, C), gb<T>(N, R, C, R));
      gemmTN<T>(N, C, R, hT, C, dr1, R, D.r1w, D.r1b, false, scr); }
    { KScope<T> ks(p, kSiteReadoutDx, -1, N, C, R, gf(N, C, R), gb<T>(N, C, R, (double)C * R));
      transpose(W.r1w, C, R, wt);
      gemm<T>(N, C, R, dr1, R, 1, wt, C, dh, C, false); }
  }
  if (mpeu && E > 0) std::memset(p.de.data(), 0, sizeof(T) * E * C);  // E == 0: no buffer (memset(nullptr) is UB)
  for (int t = c.passes - 1; t >= 0; --t) {
    const PassW<T>& w = W.pass[t];
    const PassW<T>& dw = D.pass[t];
    const T* ht = p.h.data() + t * N * C;
    const T* f1t = p.f1.data() + t * E * C;
    const T* f2t = p.f2.data() + t * E * C;
    const T* hst = p.hs.data() + t * N * C;
    const T* aggt = p.agg.data() + t * N * C;
    const T* u1t = p.u1.data() + t * N * C;
    T* du = p.du.data();
    T* dagg = p.dagg.data();
    {
      ProfScope<T> ps(p, kProfNodeUpdateBwd);
      { KScope<T> ks(p, kSiteNodeU2Dw, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, C));
        gemmTN<T>(N, C, C, u1t, C, dh, C, dw.wu2, dw.bu2, false, scr); }
      { KScope<T> ks(p, kSiteNodeU2Dx, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, 2.0 * C * C + (double)N * C));
        transpose(w.wu2, C, C, wt);
        gemm<T>(N, C, C, dh, C, 1, wt, C, du, C, false, sspGradEpi<T>(du, u1t, C)); }
      { KScope<T> ks(p, kSiteNodeU1Dw, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, C));
        gemmTN<T>(N, C, C, aggt, C, du, C, dw.wu1, dw.bu1, false, scr); }
      { KScope<T> ks(p, kSiteNodeU1Dx, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, 2.0 * C * C + 2.0 * N * C));
        transpose(w.wu1, C, C, wt);
        gemm<T>(N, C, C, du, C, 1, wt, C, dagg, C, false);
        if (N > 0) std::memcpy(dhNew, dh, sizeof(T) * N * C); }
    }
    T* dA = p.dA.data();  // d pre-activation of filter layer 2
    T* dB = p.dB.data();  // d pre-activation of filter layer 1
    T* dhs = p.dhs.data();
    {
      ProfScope<T> ps(p, kProfMessageBwd);
      const T* ic = p.invCnt.data();
      {
      KScope<T> ks(p, kSiteMsgDf2, t, E, C, 0, 3.0 * E * C,
                   sizeof(T) * (4.0 * E * C + (double)N * C + N) + 4.0 * (E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
      for (int64_t r = 0; r < N; ++r) {
        const T* g = dagg + r * C;
        const T s = ic[r];
        for (int32_t k = b.recvPtr[r]; k < b.recvPtr[r + 1]; ++k) {
          T* o = dA + (int64_t)k * C;
          const T* hsr = hst + (int64_t)snd[k] * C;
#pragma omp simd
          for (int64_t j = 0; j < C; ++j) o[j] = g[j] * s * hsr[j];
        }
        const int64_t k0 = b.recvPtr[r], k1 = b.recvPtr[r + 1];
        if (k1 > k0) mulSspGradFromAct(dA + k0 * C, f2t + k0 * C, (k1 - k0) * C);
      }
      }
      {
      KScope<T> ks(p, kSiteMsgDhs, t, E, C, 0, 3.0 * E * C,
                   sizeof(T) * (2.0 * E * C + E + (double)N * C) + 4.0 * (3.0 * E + N + 1));
#pragma omp parallel for schedule(static) num_threads(numThreads())
      for (int64_t n = 0; n < N; ++n) {
        T* o = dhs + n * C;
        std::memset(o, 0, sizeof(T) * C);
        for (int32_t k = b.sendPtr[n]; k < b.sendPtr[n + 1]; ++k) {
          const int32_t e = b.sendPerm[k];
          const int32_t r = rcv[e];
          const T* g = dagg + (int64_t)r * C;
          const T s = ic[r];
          const T* f = f2t + (int64_t)e * C;
#pragma omp simd
          for (int64_t j = 0; j < C; ++j) o[j] += g[j] * s * f[j];
        }
      }
      }
      { KScope<T> ks(p, kSiteSenderDw, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, C));
        gemmTN<T>(N, C, C, ht, C, dhs, C, dw.wl, dw.bl, false, scr); }
      { KScope<T> ks(p, kSiteSenderDx, t, N, C, C, gf(N, C, C), gb<T>(N, C, C, 2.0 * C * C + (double)N * C));
        transpose(w.wl, C, C, wt);
        gemm<T>(N, C, C, dhs, C, 1, wt, C, dhNew, C, true); }
      { KScope<T> ks(p, kSiteFilterW2Dw, t, E, C, C, gf(E, C, C), gb<T>(E, C, C, C));
        gemmTN<T>(E, C, C, f1t, C, dA, C, dw.wf2, dw.bf2, false, scr); }
      { KScope<T> ks(p, kSiteFilterW2Dx, t, E, C, C, gf(E, C, C), gb<T>(E, C, C, 2.0 * C * C + (double)E * C));
        transpose(w.wf2, C, C, wt);
        gemm<T>(E, C, C, dA, C, 1, wt, C, dB, C, false, sspGradEpi<T>(dB, f1t, C)); }
      const T* fin = mpeu ? p.e.data() + t * E * C : p.rbf.data();
      const int64_t Fin = mpeu ? C : K;
      { KScope<T> ks(p, kSiteFilterW1Dw, t, E, C, Fin, gf(E, C, Fin), gb<T>(E, C, Fin, C));
        gemmTN<T>(E, Fin, C, fin, Fin, dB, C, dw.wf1, dw.bf1, false, scr); }
    }
    if (mpeu) {
      ProfScope<T> ps(p, kProfEdgeUpdateBwd);
      T* de = p.de.data();
      T* dpre1 = p.dpre1.data();
      const T* a1t = p.a1.data() + t * E * H;
      const int64_t Ein = t == 0 ? K : C;
      const T* ein = t == 0 ? p.rbf.data() : p.e.data() + (t - 1) * E * C;
      { KScope<T> ks(p, kSiteFilterW1Dx, t, E, C, C, gf(E, C, C), gb<T>(E, C, C, 2.0 * C * C + (double)E * C));
        transpose(w.wf1, C, C, wt);
        gemm<T>(E, C, C, dB, C, 1, wt, C, de, C, true); }
      { KScope<T> ks(p, kSiteEdgeW2Dw, t, E, H, C, gf(E, H, C), gb<T>(E, H, C, C));
        gemmTN<T>(E, H, C, a1t, H, de, C, dw.w2, dw.b2, false, scr); }
      { KScope<T> ks(p, kSiteEdgeW2Dx, t, E, H, C, gf(E, H, C), gb<T>(E, H, C, 2.0 * H * C + (double)E * H));
        transpose(w.w2, H, C, wt);
        gemm<T>(E, H, C, de, C, 1, wt, H, dpre1, H, false, sspGradEpi<T>(dpre1, a1t, H)); }
      { KScope<T> ks(p, kSiteEdgeW1eDw, t, E, H, Ein, gf(E, H, Ein), gb<T>(E, H, Ein, H));
        gemmTN<T>(E, Ein, H, ein, Ein, dpre1, H, dw.w1e, dw.b1, false, scr); }
      T* dPs = p.dPs.data();
      T* dPr = p.dPr.data();
      { KScope<T> ks(p, kSiteEdgeGatherBwd, t, E, H, 0, (double)E * H, sizeof(T) * ((double)E * H + (double)N * H) + 4.0 * (E + N + 1));
        gatherRowsBackward<T>(dpre1, b.sendPerm, b.sendPtr, N, H, dPs); }
      { KScope<T> ks(p, kSiteEdgeSegSum, t, E, H, 0, (double)E * H, sizeof(T) * ((double)E * H + (double)N * H) + 4.0 * (N + 1));
        segmentSumCsr<T>(dpre1, b.recvPtr, N, H, dPr); }
      { KScope<T> ks(p, kSiteEdgeW1sDw, t, N, H, C, gf(N, H, C), gb<T>(N, H, C));
        gemmTN<T>(N, C, H, ht, C, dPs, H, dw.w1s, nullptr, false, scr); }
      { KScope<T> ks(p, kSiteEdgeW1rDw, t, N, H, C, gf(N, H, C), gb<T>(N, H, C));
        gemmTN<T>(N, C, H, ht, C, dPr, H, dw.w1r, nullptr, false, scr); }
      { KScope<T> ks(p, kSiteEdgeW1sDx, t, N, C, H, gf(N, C, H), gb<T>(N, C, H, 2.0 * C * H + (double)N * C));
        transpose(w.w1s, C, H, wt);
        gemm<T>(N, C, H, dPs, H, 1, wt, C, dhNew, C, true); }
      { KScope<T> ks(p, kSiteEdgeW1rDx, t, N, C, H, gf(N, C, H), gb<T>(N, C, H, 2.0 * C * H + (double)N * C));
        transpose(w.w1r, C, H, wt);
        gemm<T>(N, C, H, dPr, H, 1, wt, C, dhNew, C, true); }
      if (t > 0) {
        KScope<T> ks(p, kSiteEdgeW1eDx, t, E, Ein, H, gf(E, Ein, H), gb<T>(E, Ein, H, 2.0 * Ein * H));
        transpose(w.w1e, Ein, H, wt);
        gemm<T>(E, Ein, H, dpre1, H, 1, wt, Ein, de, Ein, false);
      }
    }
    std::swap(dh, dhNew);
  }
  ProfScope<T> ps(p, kProfEmbedBwd);
  KScope<T> ks(p, kSiteEmbedBwd, -1, N, C, 0, 2.0 * N * C,
               sizeof(T) * ((double)N * C + 2.0 * c.numClasses * C + 2.0 * C) + 4.0 * N);
  std::memset(D.embW, 0, sizeof(T) * (size_t)c.numClasses * C);
  std::memset(D.embB, 0, sizeof(T) * C);
  for (int64_t n = 0; n < N; ++n) {
    T* o = D.embW + (int64_t)b.atomicNumber[n] * C;
    const T* g = dh + n * C;
    for (int64_t j = 0; j < C; ++j) { o[j] += g[j]; D.embB[j] += g[j]; }
  }
}

}  // namespace

template <class T>
double forward(Plan<T>& p, const T* params, const BatchInputs<T>& b, T* pred) {
  validateBatch(p, b);
  if (p.profile) { p.profShape = b.shape; p.profReal = realCounts(b); }
  DenormalGuard ftz;
  const double loss = p.cfg.kind == ModelKind::PaiNN ? detail::painnForward(p, params, b) : forwardImpl(p, params, b);
  if (pred && b.shape.graphs > 0) std::memcpy(pred, p.pred.data(), sizeof(T) * b.shape.graphs);
  return loss;
}

template <class T>
double forwardBackward(Plan<T>& p, const T* params, T* grads, const BatchInputs<T>& b) {
  validateBatch(p, b);
  if (p.profile) { p.profShape = b.shape; p.profReal = realCounts(b); }
  DenormalGuard ftz;
  double loss;
  if (p.cfg.kind == ModelKind::PaiNN) {
    loss = detail::painnForward(p, params, b);
    detail::painnBackward(p, params, grads, b);
  } else {
    loss = forwardImpl(p, params, b);
    backwardImpl(p, params, grads, b);
  }
  if (p.profile) p.profSteps++;
  return loss;
}

#define GNN_INST(T)                                                                        \
  template struct Plan<T>;                                                                 \
  template std::unique_ptr<Plan<T>> buildPlan<T>(const ModelConfig&, const PackShape&);    \
  template void validateBatch<T>(const Plan<T>&, const BatchInputs<T>&);                   \
  template PackShape realCounts<T>(const BatchInputs<T>&);                                 \
  template double forward<T>(Plan<T>&, const T*, const BatchInputs<T>&, T*);               \
  template double forwardBackward<T>(Plan<T>&, const T*, T*, const BatchInputs<T>&);
GNN_INST(float)
GNN_INST(double)
#undef GNN_INST

}  // namespace gnn
