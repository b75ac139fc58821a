// Sanitizer driver (issue 14): runs the native kernels (pack, segment,
// neighbours, model forward/backward, Adam) on random valid inputs, on random
// mutations of them, and on the regression cases of the issue, under
// AddressSanitizer + UndefinedBehaviorSanitizer (see CMakeLists.txt; any report
// aborts the process). A case passes when the kernel either succeeds (and its
// output satisfies the contract checked here) or throws gnn::Error with the
// expected code. Prints `sanitize: N cases, E errors` last; exits 1 if E > 0.
//
// Usage: gnn_sanitize [rounds]   (default 40; each round is one seed)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/adam.h"
#include "core/common.h"
#include "core/dense.h"
#include "core/models/model.h"
#include "core/neighbours.h"
#include "core/pack.h"
#include "core/segment.h"
#include "rng.h"

namespace {

int64_t g_cases = 0, g_errors = 0;

void fail(const std::string& what, const std::string& why) {
  ++g_errors;
  std::fprintf(stderr, "FAIL %s: %s\n", what.c_str(), why.c_str());
}

// f must succeed.
void expectOk(const std::string& what, const std::function<void()>& f) {
  ++g_cases;
  try {
    f();
  } catch (const gnn::Error& e) {
    fail(what, "unexpected " + e.code + ": " + e.what());
  } catch (const std::exception& e) {
    fail(what, std::string("unexpected exception: ") + e.what());
  }
}

// f must throw gnn::Error with `code` (any ERR_GNN_ code when code is null).
void expectCode(const std::string& what, const char* code, const std::function<void()>& f) {
  ++g_cases;
  try {
    f();
    fail(what, std::string("no error, expected ") + (code ? code : "an ERR_GNN_ code"));
  } catch (const gnn::Error& e) {
    if (code ? e.code != code : e.code.rfind("ERR_GNN_", 0) != 0) fail(what, "got " + e.code + " (" + e.what() + "), expected " + (code ? code : "ERR_GNN_*"));
  } catch (const std::exception& e) {
    fail(what, std::string("non-gnn exception: ") + e.what());
  }
}

// f may succeed or throw any gnn::Error (a mutated input); memory errors are the sanitizers' job.
void expectSafe(const std::string& what, const std::function<void()>& f) {
  ++g_cases;
  try {
    f();
  } catch (const gnn::Error& e) {
    if (e.code.rfind("ERR_GNN_", 0) != 0) fail(what, "error without an ERR_GNN_ code: " + e.code);
  } catch (const std::exception& e) {
    fail(what, std::string("non-gnn exception: ") + e.what());
  }
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("contract violated: " + what);
}

using gnn_test::Rng;

const int32_t kExtremeInts[] = {-1, 0, 1, 2, 7, INT32_MAX, INT32_MIN, INT32_MAX - 1, 1 << 20, -(1 << 30)};
const double kExtremeFloats[] = {std::numeric_limits<double>::quiet_NaN(), INFINITY, -INFINITY, 1.7e308, -1.7e308, 1e200, 5e-324, -0.0, 1e9, 9007199254740992.0};

// ---- graph store ---------------------------------------------------------------------

struct Store {
  std::vector<int32_t> nodeOffset{0}, edgeOffset{0}, senders, receivers, senderPerm;
  std::vector<uint8_t> z;
  std::vector<float> dist, dir;  // dir: [3 x edges] when hasDir
  bool hasDir = false;
  std::vector<double> target;
  gnn::StoreView view() const {
    gnn::StoreView s;
    s.numGraphs = (int64_t)nodeOffset.size() - 1;
    s.nodeOffset = nodeOffset.data();
    s.edgeOffset = edgeOffset.data();
    s.atomicNumber = z.data();
    s.senders = senders.data();
    s.receivers = receivers.data();
    s.distance = dist.data();
    s.senderPerm = senderPerm.data();
    s.target = target.data();
    static const float kNoEdges[3] = {0, 0, 0};  // a store of 0 edges with directions: non-null, as the addon passes it
    s.direction = !hasDir ? nullptr : dir.empty() ? kNoEdges : dir.data();
    s.numNodes = (int64_t)z.size();
    s.numEdges = (int64_t)senders.size();
    return s;
  }
};

Store randomStore(Rng& r, int graphs, int maxNodes) {
  Store st;
  for (int g = 0; g < graphs; ++g) {
    const int n = (int)r.range(1, maxNodes);
    for (int i = 0; i < n; ++i) st.z.push_back((uint8_t)r.range(1, 9));
    std::vector<std::pair<int, int>> e;  // (receiver, sender)
    const bool fc = r.uni() < 0.5;
    for (int q = 0; q < n; ++q)
      for (int s = 0; s < n; ++s)
        if (s != q && (fc || r.uni() < 0.4)) e.push_back({q, s});
    const int32_t base = (int32_t)st.senders.size();
    for (auto& p : e) {
      st.receivers.push_back(p.first);
      st.senders.push_back(p.second);
      st.dist.push_back((float)(0.7 + 3 * r.uni()));
    }
    std::vector<int32_t> order(e.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return st.senders[base + a] < st.senders[base + b]; });
    st.senderPerm.insert(st.senderPerm.end(), order.begin(), order.end());
    st.nodeOffset.push_back(st.nodeOffset.back() + n);
    st.edgeOffset.push_back(st.edgeOffset.back() + (int32_t)e.size());
    st.target.push_back(r.uni() * 2 - 1);
  }
  return st;
}

template <class T>
struct PackBuf {
  gnn::PackShape shape;
  std::vector<int32_t> z, nodeGraph, senders, receivers, nNode, nEdge, recvPtr, sendPerm, sendPtr;
  std::vector<T> dist, target, mask, dir;  // dir: [3 x edges] when hasDir
  bool hasDir;
  explicit PackBuf(const gnn::PackShape& s, bool directions = false)
      : shape(s), z(s.nodes), nodeGraph(s.nodes), senders(s.edges), receivers(s.edges), nNode(s.graphs), nEdge(s.graphs),
        recvPtr(s.nodes + 1), sendPerm(s.edges), sendPtr(s.nodes + 1), dist(s.edges), target(s.graphs), mask(s.graphs),
        dir(directions ? (size_t)(3 * s.edges) : 0, (T)-7), hasDir(directions) {}
  gnn::PackOut<T> out() {
    gnn::PackOut<T> o{z.data(), nodeGraph.data(), senders.data(), receivers.data(), dist.data(), nNode.data(),
                      nEdge.data(), target.data(), mask.data(), recvPtr.data(), sendPerm.data(), sendPtr.data()};
    if (hasDir) o.direction = dir.data();
    return o;
  }
  gnn::BatchInputs<T> inputs() const {
    gnn::BatchInputs<T> b;
    b.shape = shape;
    b.atomicNumber = z.data();
    b.senders = senders.data();
    b.receivers = receivers.data();
    b.distance = dist.data();
    b.nNode = nNode.data();
    b.target = target.data();
    b.mask = mask.data();
    b.recvPtr = recvPtr.data();
    b.sendPerm = sendPerm.data();
    b.sendPtr = sendPtr.data();
    if (hasDir) b.direction = dir.data();
    return b;
  }
};

gnn::PackShape paddedShape(const Store& st, const std::vector<int32_t>& ids) {
  gnn::PackStats t = gnn::batchTotals(st.view(), ids.data(), (int64_t)ids.size());
  return {t.realNodes + 1, t.realEdges, t.realGraphs + 1};
}

// The store with random unit edge directions.
Store withRandomDirections(const Store& st, Rng& r) {
  Store sd = st;
  sd.hasDir = true;
  sd.dir.resize(3 * sd.senders.size());
  for (size_t k = 0; k < sd.senders.size(); ++k) {
    const double a = 6.283185307179586 * r.uni(), c = 2 * r.uni() - 1, q = std::sqrt(1 - c * c);
    sd.dir[3 * k] = (float)(q * std::cos(a));
    sd.dir[3 * k + 1] = (float)(q * std::sin(a));
    sd.dir[3 * k + 2] = (float)c;
  }
  return sd;
}

gnn::ModelConfig smallConfig(bool mpeu) {
  gnn::ModelConfig c;
  c.kind = mpeu ? gnn::ModelKind::MPEU : gnn::ModelKind::SchNet;
  c.latent = 8;
  c.passes = 2;
  c.basis = 8;
  c.numClasses = 10;
  c.readoutHidden = 4;
  return c;
}

// ---- rounds ----------------------------------------------------------------------------

template <class T>
void packAndModel(Rng& r, int round) {
  const std::string tag = std::string(sizeof(T) == 8 ? "f64" : "f32") + " round " + std::to_string(round);
  Store st = randomStore(r, (int)r.range(1, 6), 7);
  expectOk("validateStoreFull " + tag, [&] { gnn::validateStoreFull(st.view()); });
  const int G = (int)st.target.size();
  std::vector<int32_t> ids((size_t)r.range(1, G + 2));
  for (auto& g : ids) g = (int32_t)r.range(0, G - 1);
  const gnn::PackShape shape = paddedShape(st, ids);
  PackBuf<T> pb(shape);
  expectOk("packGraphs " + tag, [&] {
    gnn::packGraphs<T>(st.view(), ids.data(), (int64_t)ids.size(), shape, pb.out());
    int64_t e = 0;
    for (size_t i = 0; i < ids.size(); ++i)
      for (int32_t k = st.edgeOffset[ids[i]]; k < st.edgeOffset[ids[i] + 1]; ++k, ++e)
        check(pb.receivers[e] - pb.receivers[e] == 0 && pb.dist[e] == (T)st.dist[k], "packed distances");
    check(pb.recvPtr[shape.nodes] == shape.edges, "recvPtr end");
  });
  // Edge directions (PaiNN): copied per graph, padding edges exactly 0, the
  // other outputs unchanged; refused (coded) when the store has none.
  {
    Store sd = withRandomDirections(st, r);
    const gnn::PackShape padded{shape.nodes + 1, shape.edges + 2, shape.graphs + 1};
    PackBuf<T> pd(padded, true), pn(padded);
    expectOk("packGraphs with directions " + tag, [&] {
      gnn::packGraphs<T>(sd.view(), ids.data(), (int64_t)ids.size(), padded, pd.out());
      gnn::packGraphs<T>(st.view(), ids.data(), (int64_t)ids.size(), padded, pn.out());
      check(pd.senders == pn.senders && pd.receivers == pn.receivers && pd.dist == pn.dist && pd.sendPtr == pn.sendPtr,
            "directions change no other output");
      int64_t e = 0;
      for (size_t i = 0; i < ids.size(); ++i)
        for (int32_t k = sd.edgeOffset[ids[i]]; k < sd.edgeOffset[ids[i] + 1]; ++k, ++e)
          for (int c = 0; c < 3; ++c) check(pd.dir[(size_t)(3 * e + c)] == (T)sd.dir[(size_t)(3 * k + c)], "packed directions");
      for (int64_t q = 3 * e; q < 3 * padded.edges; ++q) check(pd.dir[(size_t)q] == (T)0, "padding directions are 0");
    });
    PackBuf<T> pm(padded, true);
    expectCode("directions requested, store has none " + tag, "ERR_GNN_DATA_DIRECTIONS",
               [&] { gnn::packGraphs<T>(st.view(), ids.data(), (int64_t)ids.size(), padded, pm.out()); });
    if (sizeof(T) == 4 && !sd.dir.empty()) {
      gnn::PackOut<T> o = pm.out();
      o.direction = (T*)(void*)sd.dir.data();  // out.direction === store.direction
      expectCode("alias out.direction=store.direction " + tag, "ERR_GNN_ALIAS",
                 [&] { gnn::packGraphs<T>(sd.view(), ids.data(), (int64_t)ids.size(), padded, o); });
    }
    if (padded.edges > 0) {
      gnn::PackOut<T> o = pm.out();
      o.direction = o.distance;  // overlaps out.distance
      expectCode("alias out.direction=out.distance " + tag, "ERR_GNN_ALIAS",
                 [&] { gnn::packGraphs<T>(sd.view(), ids.data(), (int64_t)ids.size(), padded, o); });
    }
  }
  // The packed batch satisfies the model's batch contract (row pointers describe it).
  for (bool mpeu : {true, false}) {
    const gnn::ModelConfig cfg = smallConfig(mpeu);
    auto plan = gnn::buildPlan<T>(cfg, shape);
    const gnn::ParamLayout L = gnn::paramLayout(cfg);
    std::vector<T> params((size_t)L.total), grads((size_t)L.total), m((size_t)L.total), v((size_t)L.total), pred((size_t)shape.graphs);
    for (auto& p : params) p = (T)((r.uni() - 0.5) * 0.3);
    expectOk("forward/backward/adam " + tag, [&] {
      const double l1 = gnn::forward(*plan, params.data(), pb.inputs(), pred.data());
      const double l2 = gnn::forwardBackward(*plan, params.data(), grads.data(), pb.inputs());
      check(std::isfinite(l1) && l1 == l2, "forward and forwardBackward agree");
      for (T g : grads) check(std::isfinite((double)g), "finite gradient");
      gnn::AdamArgs a;
      a.lr = 1e-3; a.bc1 = 0.1; a.bc2 = 0.001; a.clipNorm = r.uni() < 0.5 ? 0.5 : 0;
      gnn::adamStep(params.data(), grads.data(), m.data(), v.data(), L.total, a);
    });
    // Mutations of the packed batch: one index entry set to an extreme or random value.
    for (int k = 0; k < 6; ++k) {
      PackBuf<T> mb = pb;
      std::vector<int32_t>* arrays[] = {&mb.z, &mb.senders, &mb.receivers, &mb.nNode, &mb.recvPtr, &mb.sendPerm, &mb.sendPtr};
      auto* a = arrays[r.range(0, 6)];
      if (a->empty()) continue;
      (*a)[(size_t)r.range(0, (int64_t)a->size() - 1)] = r.uni() < 0.5 ? kExtremeInts[r.range(0, 9)] : (int32_t)r.range(-3, shape.edges + 3);
      expectSafe("mutated batch " + tag, [&] { gnn::forwardBackward(*plan, params.data(), grads.data(), mb.inputs()); });
    }
    // Regression (finding 6): unsorted receivers with the original recvPtr; a repeated sendPerm entry.
    if (shape.edges >= 2 && pb.receivers.front() != pb.receivers.back()) {
      PackBuf<T> mb = pb;
      std::swap(mb.receivers.front(), mb.receivers.back());
      expectCode("unsorted receivers " + tag, "ERR_GNN_BATCH", [&] { gnn::forwardBackward(*plan, params.data(), grads.data(), mb.inputs()); });
      PackBuf<T> mp = pb;
      mp.sendPerm[1] = mp.sendPerm[0];
      expectCode("repeated sendPerm " + tag, "ERR_GNN_BATCH", [&] { gnn::forward<T>(*plan, params.data(), mp.inputs(), nullptr); });
    }
  }
  // PaiNN on the same batch with directions: forward/backward/Adam, then
  // mutated index entries and directions (a located error or a result, never a
  // bad access); a batch without directions is refused with a code.
  {
    Store sd = withRandomDirections(st, r);
    PackBuf<T> pd(shape, true);
    gnn::packGraphs<T>(sd.view(), ids.data(), (int64_t)ids.size(), shape, pd.out());
    gnn::ModelConfig cfg = smallConfig(true);
    cfg.kind = gnn::ModelKind::PaiNN;
    cfg.basis = 5;
    cfg.cutoff = 2.0 + 3.0 * r.uni();
    cfg.sharedFilters = r.uni() < 0.5;
    cfg.meanAggregation = r.uni() < 0.5;
    auto plan = gnn::buildPlan<T>(cfg, shape);
    const gnn::ParamLayout L = gnn::paramLayout(cfg);
    std::vector<T> params((size_t)L.total), grads((size_t)L.total), m((size_t)L.total), v((size_t)L.total), pred((size_t)shape.graphs);
    for (auto& p : params) p = (T)((r.uni() - 0.5) * 0.3);
    expectOk("painn forward/backward/adam " + tag, [&] {
      const double l1 = gnn::forward(*plan, params.data(), pd.inputs(), pred.data());
      const double l2 = gnn::forwardBackward(*plan, params.data(), grads.data(), pd.inputs());
      check(std::isfinite(l1) && l1 == l2, "painn forward and forwardBackward agree");
      for (T g : grads) check(std::isfinite((double)g), "painn finite gradient");
      gnn::AdamArgs a;
      a.lr = 1e-3; a.bc1 = 0.1; a.bc2 = 0.001;
      gnn::adamStep(params.data(), grads.data(), m.data(), v.data(), L.total, a);
    });
    for (int k = 0; k < 6; ++k) {
      PackBuf<T> mb = pd;
      std::vector<int32_t>* arrays[] = {&mb.z, &mb.senders, &mb.receivers, &mb.nNode, &mb.recvPtr, &mb.sendPerm, &mb.sendPtr};
      auto* a = arrays[r.range(0, 6)];
      if (!a->empty())
        (*a)[(size_t)r.range(0, (int64_t)a->size() - 1)] = r.uni() < 0.5 ? kExtremeInts[r.range(0, 9)] : (int32_t)r.range(-3, shape.edges + 3);
      if (!mb.dir.empty()) mb.dir[(size_t)r.range(0, (int64_t)mb.dir.size() - 1)] = r.uni() < 0.5 ? (T)NAN : (T)1e30;
      expectSafe("painn mutated batch " + tag, [&] { gnn::forwardBackward(*plan, params.data(), grads.data(), mb.inputs()); });
    }
    if (shape.edges > 0)
      expectCode("painn without directions " + tag, "ERR_GNN_DATA_DIRECTIONS",
                 [&] { gnn::forward<T>(*plan, params.data(), pb.inputs(), nullptr); });
  }
  // Mutations of the store, then pack: a located store error or success, never a bad write.
  for (int k = 0; k < 8; ++k) {
    Store ms = st;
    std::vector<int32_t>* arrays[] = {&ms.senders, &ms.receivers, &ms.senderPerm, &ms.nodeOffset, &ms.edgeOffset};
    auto* a = arrays[r.range(0, 4)];
    if (a->empty()) continue;
    (*a)[(size_t)r.range(0, (int64_t)a->size() - 1)] = kExtremeInts[r.range(0, 9)];
    PackBuf<T> mb(shape);
    expectSafe("mutated store " + tag, [&] {
      const gnn::StoreView v = ms.view();
      gnn::validateStoreHeader(v);
      gnn::packGraphs<T>(v, ids.data(), (int64_t)ids.size(), shape, mb.out());
    });
    expectSafe("mutated store full check " + tag, [&] {
      gnn::validateStoreHeader(ms.view());
      gnn::validateStoreFull(ms.view());
    });
  }
  // Regression (finding 3): outputs aliasing the store or each other.
  if (shape.edges > 0) {
    PackBuf<T> ab(shape);
    gnn::PackOut<T> out = ab.out();
    Store big = st;
    big.receivers.resize(std::max<size_t>(big.receivers.size(), (size_t)shape.edges));
    gnn::StoreView v = big.view();
    v.numEdges = (int64_t)st.senders.size();
    out.senders = big.receivers.data();  // out.senders === store.receivers
    expectCode("alias out.senders=store.receivers " + tag, "ERR_GNN_ALIAS", [&] { gnn::packGraphs<T>(v, ids.data(), (int64_t)ids.size(), shape, out); });
    gnn::PackOut<T> o2 = ab.out();
    o2.sendPtr = o2.recvPtr;
    expectCode("alias out.sendPtr=out.recvPtr " + tag, "ERR_GNN_ALIAS", [&] { gnn::packGraphs<T>(st.view(), ids.data(), (int64_t)ids.size(), shape, o2); });
  }
  // Regression (finding 3, UBSan): indices near INT32_MAX before the range check.
  if (!st.senders.empty()) {
    Store ms = st;
    for (auto& s : ms.senders) s = INT32_MAX;
    for (auto& p : ms.senderPerm) p = INT32_MAX;
    std::vector<int32_t> all(G);
    std::iota(all.begin(), all.end(), 0);
    const gnn::PackShape sh = paddedShape(st, all);
    PackBuf<T> mb(sh);
    expectCode("INT32_MAX store indices " + tag, "ERR_GNN_STORE", [&] { gnn::packGraphs<T>(ms.view(), all.data(), (int64_t)all.size(), sh, mb.out()); });
  }
  expectCode("bad graph id " + tag, "ERR_GNN_GRAPH_ID", [&] {
    std::vector<int32_t> bad = {0, G};
    gnn::batchTotals(st.view(), bad.data(), 2);
  });
  expectCode("shape too small " + tag, "ERR_GNN_SHAPE", [&] {
    gnn::PackStats t{INT32_MAX, 5, 1};
    gnn::checkPackShape(t, {INT32_MAX, 5, 2});
  });
}

// ---- segment kernels ---------------------------------------------------------------------

void segmentRound(Rng& r, int round) {
  const std::string tag = "round " + std::to_string(round);
  const int64_t rows = r.range(0, 12), width = r.range(1, 5);
  std::vector<int32_t> ptr((size_t)rows + 1, 0);
  for (int64_t i = 1; i <= rows; ++i) ptr[(size_t)i] = ptr[(size_t)i - 1] + (int32_t)r.range(0, 3);
  const int64_t src = ptr[(size_t)rows];
  std::vector<double> x((size_t)(src * width)), out((size_t)(rows * width)), back((size_t)(src * width));
  for (auto& v : x) v = r.uni();
  expectOk("segmentSumCsr " + tag, [&] {
    gnn::checkRowPtr(ptr.data(), rows, src, "ptr");
    gnn::segmentSumCsr(x.data(), ptr.data(), rows, width, out.data());
    for (int64_t q = 0; q < rows; ++q)
      for (int64_t f = 0; f < width; ++f) {
        double s = 0;
        for (int32_t k = ptr[(size_t)q]; k < ptr[(size_t)q + 1]; ++k) s += x[(size_t)(k * width + f)];
        check(std::fabs(s - out[(size_t)(q * width + f)]) < 1e-12, "segment sum");
      }
    gnn::segmentMeanCsr(x.data(), ptr.data(), rows, width, out.data());
    gnn::segmentCsrBackward(out.data(), ptr.data(), rows, width, true, back.data());
  });
  std::vector<int32_t> idx((size_t)src);
  for (auto& i : idx) i = (int32_t)r.range(0, std::max<int64_t>(0, rows - 1));
  if (rows > 0)
    expectOk("segmentSum/gather " + tag, [&] {
      gnn::checkIndices(idx.data(), src, rows, "idx");
      gnn::segmentSum(x.data(), idx.data(), src, rows, width, out.data());
      std::vector<double> g((size_t)(src * width));
      gnn::gatherRows(out.data(), idx.data(), src, width, g.data());
    });
  if (rows > 0) {
    std::vector<int32_t> bad = ptr;
    bad[(size_t)r.range(0, rows)] = kExtremeInts[r.range(0, 9)];
    expectSafe("mutated rowPtr " + tag, [&] {
      gnn::checkRowPtr(bad.data(), rows, src, "ptr");
      gnn::segmentSumCsr(x.data(), bad.data(), rows, width, out.data());
    });
    expectCode("decreasing rowPtr " + tag, "ERR_GNN_RANGE", [&] {
      std::vector<int32_t> d((size_t)rows + 1, 0);
      d[(size_t)rows] = (int32_t)src;
      if (rows >= 2) { d[1] = 5; d[2] = 1; } else d[1] = -1;
      gnn::checkRowPtr(d.data(), rows, src, "ptr");
    });
    expectCode("index out of range " + tag, "ERR_GNN_RANGE", [&] {
      std::vector<int32_t> b = {0, (int32_t)rows};
      gnn::checkIndices(b.data(), 2, rows, "idx");
    });
  }
}

// ---- neighbours ----------------------------------------------------------------------------

struct Structures {
  std::vector<int32_t> off{0};
  std::vector<double> pos, cells;
  std::vector<uint8_t> pbc;
  gnn::StructureBatchView view() const {
    gnn::StructureBatchView v;
    v.numStructures = (int64_t)off.size() - 1;
    v.atomOffset = off.data();
    v.positions = pos.data();
    v.cells = cells.data();
    v.pbc = pbc.data();
    v.numAtoms = (int64_t)pos.size() / 3;
    return v;
  }
};

Structures randomStructures(Rng& r, int S, int maxAtoms, bool periodic, double L) {
  Structures b;
  for (int s = 0; s < S; ++s) {
    const int n = (int)r.range(1, maxAtoms);
    for (int i = 0; i < 3 * n; ++i) b.pos.push_back(r.uni() * L);
    b.off.push_back(b.off.back() + n);
    const double c[9] = {L, 0, 0, 0.3 * r.uni(), L, 0, 0, 0, L};
    b.cells.insert(b.cells.end(), c, c + 9);
    for (int a = 0; a < 3; ++a) b.pbc.push_back(periodic ? 1 : 0);
  }
  return b;
}

void build(const Structures& b, const gnn::GraphRule& rule, int64_t* edgesOut = nullptr) {
  gnn::NeighbourBuilder nb(b.view(), rule);
  nb.compute();
  const int64_t E = nb.numEdges();
  std::vector<int32_t> snd((size_t)E), rcv((size_t)E), perm((size_t)E);
  std::vector<float> d((size_t)E);
  nb.fill(snd.data(), rcv.data(), d.data(), perm.data());
  // With directions: the same edges bitwise, unit vectors (or 0 at distance 0).
  {
    std::vector<int32_t> snd2((size_t)E), rcv2((size_t)E), perm2((size_t)E);
    std::vector<float> d2((size_t)E), u((size_t)(3 * E));
    nb.fill(snd2.data(), rcv2.data(), d2.data(), perm2.data(), u.data());
    check(snd2 == snd && rcv2 == rcv && perm2 == perm && (E == 0 || std::memcmp(d2.data(), d.data(), sizeof(float) * (size_t)E) == 0),
          "directions change no other output");
    for (int64_t e = 0; e < E; ++e) {
      const double n2 = (double)u[3 * e] * u[3 * e] + (double)u[3 * e + 1] * u[3 * e + 1] + (double)u[3 * e + 2] * u[3 * e + 2];
      check(d[(size_t)e] == 0 ? n2 == 0 : std::fabs(n2 - 1) < 1e-5, "unit direction");
    }
  }
  // Contract: per structure receiver-sorted, in range; perm a sender-sorted permutation.
  const auto& eo = nb.edgeOffset();
  for (size_t s = 0; s + 1 < eo.size(); ++s) {
    const int32_t n = b.off[s + 1] - b.off[s];
    std::vector<uint8_t> seen((size_t)(eo[s + 1] - eo[s]), 0);
    for (int32_t e = eo[s]; e < eo[s + 1]; ++e) {
      check(snd[(size_t)e] >= 0 && snd[(size_t)e] < n && rcv[(size_t)e] >= 0 && rcv[(size_t)e] < n, "edge endpoints in range");
      check(e == eo[s] || rcv[(size_t)e - 1] <= rcv[(size_t)e], "receiver-sorted");
      check(std::isfinite(d[(size_t)e]) && d[(size_t)e] >= 0, "finite distance");
      if (rule.kind == gnn::GraphRule::Cutoff) check(d[(size_t)e] <= rule.cutoff * (1 + 1e-6), "within cutoff");
      const int32_t p = perm[(size_t)e];
      check(p >= 0 && p < eo[s + 1] - eo[s] && !seen[(size_t)p], "senderPerm permutation");
      seen[(size_t)p] = 1;
    }
  }
  if (edgesOut) *edgesOut = E;
}

void neighbourRound(Rng& r, int round) {
  const std::string tag = "round " + std::to_string(round);
  const bool periodic = r.uni() < 0.5;
  Structures b = randomStructures(r, (int)r.range(1, 4), 8, periodic, 3 + 5 * r.uni());
  gnn::GraphRule fc, cut, knn;
  cut.kind = gnn::GraphRule::Cutoff;
  cut.cutoff = 1 + 4 * r.uni();
  knn.kind = gnn::GraphRule::Knn;
  knn.k = (int)r.range(1, 8);
  expectOk("neighbours fc " + tag, [&] { build(b, fc); });
  expectOk("neighbours cutoff " + tag, [&] { build(b, cut); });
  expectOk("neighbours knn " + tag, [&] { build(b, knn); });
  // Mutations: one coordinate or cell component set to an extreme value.
  for (int k = 0; k < 3; ++k) {
    Structures m = b;
    if (r.uni() < 0.5) m.pos[(size_t)r.range(0, (int64_t)m.pos.size() - 1)] = kExtremeFloats[r.range(0, 9)];
    else m.cells[(size_t)r.range(0, (int64_t)m.cells.size() - 1)] = kExtremeFloats[r.range(0, 9)];
    gnn::GraphRule rule = k == 0 ? fc : k == 1 ? cut : knn;
    if (r.uni() < 0.3) rule.cutoff = kExtremeFloats[r.range(0, 9)];
    expectSafe("mutated structures " + tag, [&] { build(m, rule); });
  }
}

// The extreme geometry of issue 14, finding 4: each a named error, in bounded time.
void geometryRegressions() {
  auto timed = [](const std::string& what, const char* code, const std::function<void()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    if (code) expectCode(what, code, f);
    else expectOk(what, f);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 20) fail(what, "took " + std::to_string(s) + " s");
  };
  Structures m;
  m.off = {0, 2};
  m.pos = {1.7e308, 0, 0, -1.7e308, 0, 0};
  m.cells.assign(9, 0);
  m.pbc = {0, 0, 0};
  gnn::GraphRule cut, knn;
  cut.kind = gnn::GraphRule::Cutoff;
  cut.cutoff = 5;
  knn.kind = gnn::GraphRule::Knn;
  knn.k = 4;
  timed("+-1.7e308 cutoff 5", "ERR_GNN_POSITION", [&] { build(m, cut); });
  timed("+-1.7e308 knn 4", "ERR_GNN_POSITION", [&] { build(m, knn); });
  m.pos = {std::numeric_limits<double>::quiet_NaN(), 0, 0, 1, 0, 0};
  timed("NaN position", "ERR_GNN_POSITION", [&] { build(m, cut); });
  Structures p;
  p.off = {0, 3};
  p.pos = {0, 0, 0, 1, 1, 1, 2, 0.5, 1};
  p.cells = {1e200, 0, 0, 0, 1e200, 0, 0, 0, 1e200};
  p.pbc = {1, 1, 1};
  timed("1e200 lattice cutoff", "ERR_GNN_CELL", [&] { build(p, cut); });
  timed("1e200 lattice knn", "ERR_GNN_CELL", [&] { build(p, knn); });
  p.cells = {4, 0, 0, 0, 4, 0, 0, 0, 4};
  for (double c : {1e300, 9007199254740992.0, 1e5}) {
    gnn::GraphRule big = cut;
    big.cutoff = c;
    timed("periodic cutoff " + std::to_string(c), "ERR_GNN_IMAGES", [&] { build(p, big); });
  }
  Structures mol;
  mol.off = {0, 20};
  Rng r(99);
  for (int i = 0; i < 60; ++i) mol.pos.push_back(r.uni() * 1e7);
  mol.cells.assign(9, 0);
  mol.pbc = {0, 0, 0};
  timed("molecule cutoff 1e300 = every pair", nullptr, [&] {
    gnn::GraphRule big = cut;
    big.cutoff = 1e300;
    int64_t e = 0;
    build(mol, big, &e);
    check(e == 20 * 19, "every ordered pair");
  });
  gnn::GraphRule capped;
  capped.maxEdges = 100;
  timed("maxEdges", "ERR_GNN_TOO_MANY_EDGES", [&] { build(mol, capped); });
}

void planRegressions() {
  expectCode("plan too large", "ERR_GNN_PLAN_TOO_LARGE", [] { gnn::buildPlan<float>(smallConfig(true), {INT32_MAX - 1, INT32_MAX, 10}); });
  // Found by the long JS fuzz: graph-sized buffers alone (graphs = 2^31-1) were not in the estimate.
  expectCode("plan too large by graphs", "ERR_GNN_PLAN_TOO_LARGE", [] { gnn::buildPlan<double>(smallConfig(false), {4, 4, INT32_MAX}); });
  expectCode("bad config", "ERR_GNN_CONFIG", [] {
    gnn::ModelConfig c = smallConfig(true);
    c.latent = 0;
    gnn::buildPlan<float>(c, {4, 4, 2});
  });
  // Flops are counted per calling thread.
  expectOk("thread-local flops", [] {
    gnn::resetFlops();
    std::vector<float> a(64 * 8, 1), b(8 * 8, 1), c(64 * 8);
    gnn::gemm<float>(64, 8, 8, a.data(), 8, 1, b.data(), 8, c.data(), 8, false);
    check(gnn::flopsCount() == 2.0 * 64 * 8 * 8, "2MNK counted");
    gnn::addFlopsCount(1);
    check(gnn::flopsCount() == 2.0 * 64 * 8 * 8 + 1, "addFlopsCount");
  });
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 40;
  gnn::setNumThreads(2);
  for (int round = 0; round < rounds; ++round) {
    Rng r((uint64_t)round + 1);
    packAndModel<float>(r, round);
    packAndModel<double>(r, round);
    segmentRound(r, round);
    neighbourRound(r, round);
  }
  geometryRegressions();
  planRegressions();
  std::printf("sanitize: %lld cases, %lld errors\n", (long long)g_cases, (long long)g_errors);
  return g_errors == 0 ? 0 : 1;
}
