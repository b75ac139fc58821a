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
#include "core/models/program.h"
#include "core/models/program_painn.h"

namespace gnn {

const char* const kProfileNames[kProfCount] = {
    "rbf", "embed", "edge_update", "message", "aggregate", "node_update", "readout",
    "readout_bwd", "node_update_bwd", "message_bwd", "edge_update_bwd", "embed_bwd", "adam", "forces",
    "tangent_forward", "double_backward"};

// Every kernel call site of the per-kernel profile, in KernelSite order: its
// name, what its rows are, and whether it is a matrix product (one table, so
// a site cannot be added to one column and not another).
const KernelSiteInfo kKernelSites[] = {
    {"fwd.rbf", kRowEdge, false},
    {"fwd.embed", kRowNode, false},
    {"fwd.edge.w1s_gemm", kRowNode, true},
    {"fwd.edge.w1r_gemm", kRowNode, true},
    {"fwd.edge.w1e_gemm_gather", kRowEdge, true},
    {"fwd.edge.w2_gemm", kRowEdge, true},
    {"fwd.filter.w1_gemm", kRowEdge, true},
    {"fwd.filter.w2_gemm", kRowEdge, true},
    {"fwd.sender.w_gemm", kRowNode, true},
    {"fwd.aggregate_segment", kRowEdge, false},
    {"fwd.node.w1_gemm", kRowNode, true},
    {"fwd.node.w2_gemm", kRowNode, true},
    {"fwd.readout.w1_gemm", kRowNode, true},
    {"fwd.readout.w2_gemm", kRowNode, true},
    {"fwd.loss", kRowGraph, false},
    {"bwd.loss", kRowGraph, false},
    {"bwd.readout.w2_dw_gemm", kRowNode, true},
    {"bwd.readout.dr1", kRowNode, false},
    {"bwd.readout.w1_dw_gemm", kRowNode, true},
    {"bwd.readout.dx_gemm", kRowNode, true},
    {"bwd.node.w2_dw_gemm", kRowNode, true},
    {"bwd.node.w2_dx_gemm", kRowNode, true},
    {"bwd.node.w1_dw_gemm", kRowNode, true},
    {"bwd.node.w1_dx_gemm", kRowNode, true},
    {"bwd.message.df2_gather", kRowEdge, false},
    {"bwd.message.dhs_scatter", kRowEdge, false},
    {"bwd.sender.w_dw_gemm", kRowNode, true},
    {"bwd.sender.w_dx_gemm", kRowNode, true},
    {"bwd.filter.w2_dw_gemm", kRowEdge, true},
    {"bwd.filter.w2_dx_gemm", kRowEdge, true},
    {"bwd.filter.w1_dw_gemm", kRowEdge, true},
    {"bwd.filter.w1_dx_gemm", kRowEdge, true},
    {"bwd.edge.w2_dw_gemm", kRowEdge, true},
    {"bwd.edge.w2_dx_gemm", kRowEdge, true},
    {"bwd.edge.w1e_dw_gemm", kRowEdge, true},
    {"bwd.edge.ps_scatter", kRowEdge, false},
    {"bwd.edge.pr_segment", kRowEdge, false},
    {"bwd.edge.w1s_dw_gemm", kRowNode, true},
    {"bwd.edge.w1r_dw_gemm", kRowNode, true},
    {"bwd.edge.w1s_dx_gemm", kRowNode, true},
    {"bwd.edge.w1r_dx_gemm", kRowNode, true},
    {"bwd.edge.w1e_dx_gemm", kRowEdge, true},
    {"bwd.embed", kRowNode, false},
    {"adam", kRowParam, false},
    {"fwd.painn.rbf", kRowEdge, false},
    {"fwd.painn.message.w1_gemm", kRowNode, true},
    {"fwd.painn.message.w2_gemm", kRowNode, true},
    {"fwd.painn.message.aggregate", kRowComputed, true},
    {"fwd.painn.update.mix_gemm", kRowNode, true},
    {"fwd.painn.update.norm", kRowNode, false},
    {"fwd.painn.update.w1_gemm", kRowNode, true},
    {"fwd.painn.update.w2_gemm_apply", kRowNode, true},
    {"bwd.painn.update.apply", kRowNode, false},
    {"bwd.painn.update.w2_dw_gemm", kRowNode, true},
    {"bwd.painn.update.w2_dx_gemm", kRowNode, true},
    {"bwd.painn.update.w1_dw_gemm", kRowNode, true},
    {"bwd.painn.update.w1_dx_gemm_norm", kRowNode, true},
    {"bwd.painn.update.mix_dw_gemm", kRowNode, true},
    {"bwd.painn.update.mix_dx_gemm", kRowNode, true},
    {"bwd.painn.message.scatter", kRowComputed, true},
    {"bwd.painn.message.w2_dw_gemm", kRowNode, true},
    {"bwd.painn.message.w2_dx_gemm", kRowNode, true},
    {"bwd.painn.message.w1_dw_gemm", kRowNode, true},
    {"bwd.painn.message.w1_dx_gemm", kRowNode, true},
    {"bwd.painn.filter_dw_reduce", kRowParam, false},
    {"force.seed", kRowGraph, false},
    {"force.rbf_dx_gemm", kRowEdge, true},
    {"force.rbf_bwd", kRowEdge, false},
    {"force.scatter", kRowNode, false},
    {"force.virial", kRowEdge, false},
    {"dbl.dist_tan", kRowEdge, false},
    {"dbl.rbf_tan", kRowEdge, false},
    {"dbl.fwd.edge_tan_gemm", kRowEdge, true},
    {"dbl.fwd.node_tan_gemm", kRowNode, true},
    {"dbl.fwd.aggregate_tan", kRowEdge, false},
    {"dbl.fwd.pool_tan", kRowGraph, false},
    {"dbl.bwd.seed_tan", kRowGraph, false},
    {"dbl.bwd.readout.dr1_tan", kRowNode, false},
    {"dbl.bwd.edge_dx_tan_gemm", kRowEdge, true},
    {"dbl.bwd.node_dx_tan_gemm", kRowNode, true},
    {"dbl.bwd.edge_dw_tan_gemm", kRowEdge, true},
    {"dbl.bwd.node_dw_tan_gemm", kRowNode, true},
    {"dbl.bwd.message.df2_tan", kRowEdge, false},
    {"dbl.bwd.message.dhs_tan", kRowEdge, false},
    {"dbl.bwd.edge.csr_tan", kRowEdge, false},
    {"dbl.bwd.embed_tan", kRowNode, false},
    {"force.loss", kRowNode, false},
    {"dbl.strain_tan", kRowEdge, false},
    {"force.stress_loss", kRowGraph, false},
    {"dbl.painn.edge_tan", kRowEdge, false},
    {"dbl.painn.message_tan", kRowComputed, true},
    {"dbl.painn.norm_tan", kRowNode, false},
    {"dbl.painn.silu_tan", kRowNode, false},
    {"dbl.painn.update_tan", kRowNode, false},
    {"dbl.bwd.painn.update_tan", kRowNode, false},
    {"dbl.bwd.painn.norm_tan", kRowNode, false},
    {"dbl.bwd.painn.silu_dual", kRowNode, false},
    {"dbl.bwd.painn.message_tan", kRowComputed, true},
    {"dbl.bwd.painn.filter_dw_reduce_tan", kRowParam, false},
};
static_assert(sizeof(kKernelSites) / sizeof(kKernelSites[0]) == kSiteCount, "one kKernelSites row per KernelSite");

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
  switch (kKernelSites[site].rows) {
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
                  &dh, &dhNew, &de, &dpre1, &dA, &dB, &dPs, &dPr, &dhs, &dagg, &du, &dr1, &dr2, &wt,
                  &dRbf, &dDist})
    n += v->size() * sizeof(T);
  for (const auto& v : tangentBufs) n += v.size() * sizeof(T);
  for (const auto& v : painnBufs) n += v.size() * sizeof(T);
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
std::unique_ptr<Plan<T>> buildPlan(const ModelConfig& cfg, const PackShape& cap, bool forces, bool forceTraining) {
  validateConfig(cfg);
  forces = forces || forceTraining;  // training on forces needs the force pass too
  const int fb = forceTraining ? program::kForcesTraining : forces ? program::kForcesPass : program::kForcesNone;
  if (cap.nodes < 0 || cap.edges < 0 || cap.graphs < 0) throwRange("plan capacity must be non-negative");
  {
    // Refuse a capacity whose buffers could not exist before touching memory
    // (value-initialising tens of GB would be killed by the OS, not caught).
    // Mirrors the resizes below (every buffer, graph-sized ones included).
    const double elems = program::activationElems(cfg, cap, fb);
    const double bytes = elems * sizeof(T) + 8 * ((double)cap.graphs + 1);  // + graphStart (int64)
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
  p->forces = forces;
  p->forceTraining = forceTraining;
  p->tangentBufs.resize(program::kBufCount - program::kBufTDist);
  p->painnBufs.resize(program::kBufPDu + 1 - program::kBufPFcut);
  // The model programs' activation layout (program.h), one buffer each.
  for (int k = 0; k < program::kBufCount; ++k)
    p->bufVec((program::Buf)k).resize((size_t)program::bufElems(cfg, cap, (program::Buf)k, fb));
  const size_t G = cap.graphs, C = cfg.latent, H = 2 * C, K = cfg.basis, R = cfg.readoutHidden;
  p->graphStart.resize(G + 1);
  // The transposed weight of a W^T product (PaiNN's largest: [F x 3F]).
  p->wt.resize(cfg.kind == ModelKind::PaiNN ? std::max({3 * C * C, 2 * C * C, C * R})
                                            : std::max({K * H, K * C, H * C, C * R, C * C}));
  return p;
}

template <class T>
std::vector<T>& Plan<T>::bufVec(program::Buf b) {
  switch (b) {
    case program::kBufRbf: return rbf;
    case program::kBufH: return h;
    case program::kBufE: return e;
    case program::kBufA1: return a1;
    case program::kBufF1: return f1;
    case program::kBufF2: return f2;
    case program::kBufHs: return hs;
    case program::kBufAgg: return agg;
    case program::kBufU1: return u1;
    case program::kBufR1: return r1;
    case program::kBufR2: return r2;
    case program::kBufPred: return pred;
    case program::kBufInvCnt: return invCnt;
    case program::kBufPs: return Ps;
    case program::kBufPr: return Pr;
    case program::kBufDh: return dh;
    case program::kBufDhNew: return dhNew;
    case program::kBufDe: return de;
    case program::kBufDpre1: return dpre1;
    case program::kBufDA: return dA;
    case program::kBufDB: return dB;
    case program::kBufDPs: return dPs;
    case program::kBufDPr: return dPr;
    case program::kBufDhs: return dhs;
    case program::kBufDagg: return dagg;
    case program::kBufDu: return du;
    case program::kBufDr1: return dr1;
    case program::kBufDr2: return dr2;
    case program::kBufDRbf: return dRbf;
    case program::kBufDDist: return dDist;
    default:
      if (b >= program::kBufTDist && b < program::kBufCount) return tangentBufs[(size_t)(b - program::kBufTDist)];
      if (b >= program::kBufPFcut && b <= program::kBufPDu) return painnBufs[(size_t)(b - program::kBufPFcut)];
      break;
  }
  throwRange("unknown activation buffer", "ERR_GNN_NATIVE");
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
program::Shape shapeOf(const BatchInputs<T>& b) {
  return program::Shape{b.shape.nodes, b.shape.edges, b.shape.graphs};
}

template <class T>
double forwardImpl(Plan<T>& p, const T* params, const BatchInputs<T>& b) {
  CpuExec<T> x{p, b};
  program::forwardModel<T>(x, p.cfg, p.layout, params, shapeOf(b));
  return x.loss;
}

template <class T>
void backwardImpl(Plan<T>& p, const T* params, T* grads, const BatchInputs<T>& b) {
  CpuExec<T> x{p, b};
  program::backwardModel<T>(x, p.cfg, p.layout, params, grads, shapeOf(b));
}

}  // namespace

template <class T>
double forward(Plan<T>& p, const T* params, const BatchInputs<T>& b, T* pred) {
  validateBatch(p, b);
  if (p.profile) { p.profShape = b.shape; p.profReal = realCounts(b); }
  DenormalGuard ftz;
  const double loss = forwardImpl(p, params, b);
  if (pred && b.shape.graphs > 0) std::memcpy(pred, p.pred.data(), sizeof(T) * b.shape.graphs);
  return loss;
}

template <class T>
double forwardBackward(Plan<T>& p, const T* params, T* grads, const BatchInputs<T>& b) {
  validateBatch(p, b);
  if (p.profile) { p.profShape = b.shape; p.profReal = realCounts(b); }
  DenormalGuard ftz;
  const double loss = forwardImpl(p, params, b);
  backwardImpl(p, params, grads, b);
  if (p.profile) p.profSteps++;
  return loss;
}

template <class T>
double forcesStep(Plan<T>& p, const T* params, const BatchInputs<T>& b, T* energy, T* forces, T* strain) {
  if (!p.forces)
    throwRange("this plan was built without forces: create it with { forces: true } to run forcesStep", "ERR_GNN_FORCES_PLAN");
  validateBatch(p, b);
  if (b.shape.edges > 0 && !b.direction)
    throwRange("forces need the edges' direction vectors (inputs.direction, [edges x 3]): build the graph store with "
               "directions",
               "ERR_GNN_DATA_DIRECTIONS");
  if (p.profile) { p.profShape = b.shape; p.profReal = realCounts(b); }
  DenormalGuard ftz;
  CpuExec<T> x{p, b};
  const program::Shape s = shapeOf(b);
  program::forwardModel<T>(x, p.cfg, p.layout, params, s);
  program::forcesModel<T>(x, p.cfg, p.layout, params, s, forces, strain);
  if (energy && b.shape.graphs > 0) std::memcpy(energy, p.pred.data(), sizeof(T) * b.shape.graphs);
  if (p.profile) p.profSteps++;
  return x.loss;
}

#define GNN_INST(T)                                                                        \
  template struct Plan<T>;                                                                 \
  template std::unique_ptr<Plan<T>> buildPlan<T>(const ModelConfig&, const PackShape&, bool, bool); \
  template void validateBatch<T>(const Plan<T>&, const BatchInputs<T>&);                   \
  template PackShape realCounts<T>(const BatchInputs<T>&);                                 \
  template double forward<T>(Plan<T>&, const T*, const BatchInputs<T>&, T*);               \
  template double forwardBackward<T>(Plan<T>&, const T*, T*, const BatchInputs<T>&);    \
  template double forcesStep<T>(Plan<T>&, const T*, const BatchInputs<T>&, T*, T*, T*);
GNN_INST(float)
GNN_INST(double)
#undef GNN_INST

}  // namespace gnn
