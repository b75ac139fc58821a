#include "pack.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace gnn {

void validateStoreHeader(const StoreView& s) {
  if (s.numGraphs < 0) throwRange("store: negative graph count");
  if (s.nodeOffset[0] != 0 || s.edgeOffset[0] != 0)
    throwRange("store: nodeOffset[0] and edgeOffset[0] must be 0");
  for (int64_t g = 0; g < s.numGraphs; ++g) {
    if (s.nodeOffset[g + 1] < s.nodeOffset[g])
      throwRange("store: nodeOffset decreases at graph " + std::to_string(g));
    if (s.edgeOffset[g + 1] < s.edgeOffset[g])
      throwRange("store: edgeOffset decreases at graph " + std::to_string(g));
  }
  if (s.nodeOffset[s.numGraphs] != s.numNodes)
    throwRange("store: nodeOffset[last]=" + std::to_string(s.nodeOffset[s.numGraphs]) +
               " but there are " + std::to_string(s.numNodes) + " nodes");
  if (s.edgeOffset[s.numGraphs] != s.numEdges)
    throwRange("store: edgeOffset[last]=" + std::to_string(s.edgeOffset[s.numGraphs]) +
               " but there are " + std::to_string(s.numEdges) + " edges");
}

void validateStoreFull(const StoreView& s) {
  validateStoreHeader(s);
  std::vector<uint8_t> seen;
  for (int64_t g = 0; g < s.numGraphs; ++g) {
    const int32_t n = s.nodeOffset[g + 1] - s.nodeOffset[g];
    const int32_t e0 = s.edgeOffset[g], ne = s.edgeOffset[g + 1] - e0;
    int32_t prevR = 0, prevS = 0;
    seen.assign(ne, 0);
    for (int32_t k = 0; k < ne; ++k) {
      const int32_t r = s.receivers[e0 + k], snd = s.senders[e0 + k];
      if (r < 0 || r >= n || snd < 0 || snd >= n)
        throwRange("store: graph " + std::to_string(g) + " edge " + std::to_string(k) +
                   " has endpoint out of range (graph has " + std::to_string(n) + " nodes)");
      if (r < prevR)
        throwRange("store: graph " + std::to_string(g) + " edges not sorted by receiver at edge " +
                   std::to_string(k));
      prevR = r;
      const int32_t p = s.senderPerm[e0 + k];
      if (p < 0 || p >= ne || seen[p])
        throwRange("store: graph " + std::to_string(g) + " senderPerm is not a permutation at " +
                   std::to_string(k));
      seen[p] = 1;
      const int32_t ps = s.senders[e0 + p];
      if (ps < prevS)
        throwRange("store: graph " + std::to_string(g) + " senderPerm not sorted by sender at " +
                   std::to_string(k));
      prevS = ps;
    }
  }
}

PackStats batchTotals(const StoreView& s, const int32_t* ids, int64_t count) {
  PackStats st;
  for (int64_t i = 0; i < count; ++i) {
    const int32_t g = ids[i];
    if (g < 0 || g >= s.numGraphs)
      throwRange("graph id " + std::to_string(g) + " at position " + std::to_string(i) +
                     " is out of range (store has " + std::to_string(s.numGraphs) + " graphs)",
                 "ERR_GNN_GRAPH_ID");
    st.realNodes += s.nodeOffset[g + 1] - s.nodeOffset[g];
    st.realEdges += s.edgeOffset[g + 1] - s.edgeOffset[g];
  }
  st.realGraphs = count;
  return st;
}

namespace {
// First error raised inside a parallel region, keeping the lowest position so
// that the message is deterministic whatever the thread count.
struct ParallelError {
  int64_t pos = INT64_MAX;
  std::string msg;
  void set(int64_t p, std::string m) {
#pragma omp critical(gnn_pack_error)
    if (p < pos) { pos = p; msg = std::move(m); }
  }
};
}  // namespace

void checkPackShape(const PackStats& st, const PackShape& shape) {
  const bool exact = shape.nodes == st.realNodes && shape.edges == st.realEdges &&
                     shape.graphs == st.realGraphs;
  if (!exact && (shape.nodes < st.realNodes + 1 || shape.edges < st.realEdges ||
                 shape.graphs < st.realGraphs + 1))
    throwRange("padded shape {nodes: " + std::to_string(shape.nodes) + ", edges: " +
                   std::to_string(shape.edges) + ", graphs: " + std::to_string(shape.graphs) +
                   "} is too small for " + std::to_string(st.realGraphs) + " graphs with " +
                   std::to_string(st.realNodes) + " nodes and " + std::to_string(st.realEdges) +
                   " edges (padding needs nodes >= " + std::to_string(st.realNodes + 1) +
                   ", edges >= " + std::to_string(st.realEdges) +
                   ", graphs >= " + std::to_string(st.realGraphs + 1) + ")",
               "ERR_GNN_SHAPE");
  if (shape.nodes > INT32_MAX - 1 || shape.edges > INT32_MAX)
    throwRange("padded shape exceeds 2^31-1 nodes or edges", "ERR_GNN_SHAPE");
}

void batchOffsets(const StoreView& s, const int32_t* ids, int64_t count, int64_t* nodeStart, int64_t* edgeStart) {
  nodeStart[0] = edgeStart[0] = 0;
  for (int64_t i = 0; i < count; ++i) {
    const int32_t g = ids[i];
    nodeStart[i + 1] = nodeStart[i] + (s.nodeOffset[g + 1] - s.nodeOffset[g]);
    edgeStart[i + 1] = edgeStart[i] + (s.edgeOffset[g + 1] - s.edgeOffset[g]);
  }
}

namespace {
struct Range {
  const char* name;
  uintptr_t b, e;
};
Range rangeOf(const char* name, const void* p, int64_t elems, size_t elemBytes) {
  const uintptr_t b = (uintptr_t)p;
  return {name, b, elems > 0 && p ? b + (uintptr_t)elems * elemBytes : b};
}
}  // namespace

template <class T>
void checkPackAliasing(const StoreView& s, const int32_t* ids, int64_t count, const PackShape& shape,
                       const PackOut<T>& out) {
  const int64_t N = shape.nodes, E = shape.edges, G = shape.graphs;
  const Range outs[] = {
      rangeOf("out.atomicNumber", out.atomicNumber, N, 4), rangeOf("out.nodeGraph", out.nodeGraph, N, 4),
      rangeOf("out.senders", out.senders, E, 4),           rangeOf("out.receivers", out.receivers, E, 4),
      rangeOf("out.distance", out.distance, E, sizeof(T)), rangeOf("out.nNode", out.nNode, G, 4),
      rangeOf("out.nEdge", out.nEdge, G, 4),               rangeOf("out.target", out.target, G, sizeof(T)),
      rangeOf("out.mask", out.mask, G, sizeof(T)),         rangeOf("out.recvPtr", out.recvPtr, N + 1, 4),
      rangeOf("out.sendPerm", out.sendPerm, E, 4),         rangeOf("out.sendPtr", out.sendPtr, N + 1, 4),
      rangeOf("out.direction", out.direction, 3 * E, sizeof(T))};
  const Range ins[] = {
      rangeOf("store.nodeOffset", s.nodeOffset, s.numGraphs + 1, 4),
      rangeOf("store.edgeOffset", s.edgeOffset, s.numGraphs + 1, 4),
      rangeOf("store.atomicNumber", s.atomicNumber, s.numNodes, 1),
      rangeOf("store.senders", s.senders, s.numEdges, 4),
      rangeOf("store.receivers", s.receivers, s.numEdges, 4),
      rangeOf("store.distance", s.distance, s.numEdges, 4),
      rangeOf("store.senderPerm", s.senderPerm, s.numEdges, 4),
      rangeOf("store.target", s.target, s.numGraphs, 8),
      rangeOf("store.direction", s.direction, 3 * s.numEdges, 4),
      rangeOf("ids", ids, count, 4)};
  auto overlap = [](const Range& a, const Range& b) { return a.b < a.e && b.b < b.e && a.b < b.e && b.b < a.e; };
  for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); ++i) {
    for (const Range& r : ins)
      if (overlap(outs[i], r))
        throwRange(std::string(outs[i].name) + " overlaps " + r.name + " in memory: packGraphs outputs must not share memory with the store, the ids or each other",
                   "ERR_GNN_ALIAS");
    for (size_t j = i + 1; j < sizeof(outs) / sizeof(outs[0]); ++j)
      if (overlap(outs[i], outs[j]))
        throwRange(std::string(outs[i].name) + " overlaps " + outs[j].name + " in memory: packGraphs outputs must not share memory with the store, the ids or each other",
                   "ERR_GNN_ALIAS");
  }
}

template <class T>
PackStats packGraphs(const StoreView& s, const int32_t* ids, int64_t count,
                     const PackShape& shape, const PackOut<T>& out) {
  const PackStats st = batchTotals(s, ids, count);
  checkPackShape(st, shape);
  if (out.direction && !s.direction)
    throwRange("packGraphs: out.direction was given but the store has no edge directions; build the store with "
               "directions (buildStore option directions: true)",
               "ERR_GNN_DATA_DIRECTIONS");
  // The kernel reads the store and the ids after writing outputs (and checks
  // indices after copying them): an output sharing memory with any input would
  // change validated indices under it.
  checkPackAliasing(s, ids, count, shape, out);
  std::vector<int64_t> nodeStart(count + 1), edgeStart(count + 1);
  batchOffsets(s, ids, count, nodeStart.data(), edgeStart.data());

  ParallelError err;
  // Bytes read + written per edge (senders, receivers, distance, sendPerm, directions) and per node.
  const int64_t perEdge = 2 * (12 + (int64_t)sizeof(T) + (out.direction ? 3 * (int64_t)sizeof(T) : 0));
  const bool par = perEdge * st.realEdges + 24 * st.realNodes >= kParallelMinBytes;
#pragma omp parallel for schedule(dynamic, 4) num_threads(numThreads()) if (par)
  for (int64_t i = 0; i < count; ++i) {
    const int32_t g = ids[i];
    const int32_t n0 = s.nodeOffset[g], n = s.nodeOffset[g + 1] - n0;
    const int32_t e0 = s.edgeOffset[g], ne = s.edgeOffset[g + 1] - e0;
    const int32_t ns = (int32_t)nodeStart[i], es = (int32_t)edgeStart[i];
    for (int32_t j = 0; j < n; ++j) {
      out.atomicNumber[ns + j] = s.atomicNumber[n0 + j];
      out.nodeGraph[ns + j] = (int32_t)i;
    }
    // Local restrict pointers: the output arrays cannot alias the store, so the
    // compiler keeps them in registers and vectorises the copy loops (reading
    // them through `out` reloaded every pointer on every edge).
    const int32_t* __restrict sS = s.senders + e0;
    const int32_t* __restrict sR = s.receivers + e0;
    const float* __restrict sD = s.distance + e0;
    const int32_t* __restrict sP = s.senderPerm + e0;
    int32_t* __restrict oS = out.senders + es;
    int32_t* __restrict oR = out.receivers + es;
    T* __restrict oD = out.distance + es;
    int32_t* __restrict oP = out.sendPerm + es;
    int32_t* __restrict rp = out.recvPtr + ns;
    int32_t* __restrict sp = out.sendPtr + ns;
    const unsigned un = (unsigned)n, une = (unsigned)ne, uns = (unsigned)ns, ues = (unsigned)es;
    // Edges: shift endpoints and copy distances (branch-free, checked after;
    // the shift is done in unsigned arithmetic so that an out-of-range index
    // wraps harmlessly instead of overflowing before the check rejects it).
    int bad = 0;
    for (int32_t k = 0; k < ne; ++k) {
      const int32_t snd = sS[k], r = sR[k];
      bad |= ((unsigned)snd >= un) | ((unsigned)r >= un);
      oS[k] = (int32_t)((unsigned)snd + uns);
      oR[k] = (int32_t)((unsigned)r + uns);
      oD[k] = (T)sD[k];
    }
    if (out.direction) {
      const float* __restrict sU = s.direction + 3 * (int64_t)e0;
      T* __restrict oU = out.direction + 3 * (int64_t)es;
      for (int64_t k = 0; k < 3 * (int64_t)ne; ++k) oU[k] = (T)sU[k];
    }
    for (int32_t k = 1; k < ne; ++k) bad |= sR[k] < sR[k - 1];
    if (bad) {
      err.set(i, "store graph " + std::to_string(g) +
                     " has an edge endpoint out of range or edges not sorted by receiver");
      continue;
    }
    // Receiver CSR row pointers (receivers verified in range and sorted):
    // scatter each edge's end position to its receiver (the last write per
    // receiver wins: no read-modify-write chain, no branch per edge), then a
    // running maximum over nodes gives every row's start.
    {
      static thread_local std::vector<int32_t> endBuf;
      if ((int32_t)endBuf.size() < n) endBuf.resize((size_t)n);
      int32_t* __restrict endb = endBuf.data();
      for (int32_t j = 0; j < n; ++j) endb[j] = 0;
      for (int32_t k = 0; k < ne; ++k) endb[sR[k]] = k + 1;
      for (int32_t j = 0, run = 0; j < n; ++j) {
        rp[j] = es + run;
        run = endb[j] > run ? endb[j] : run;
      }
    }
    // Sender permutation and its row pointers.
    for (int32_t k = 0; k < ne; ++k) {
      const int32_t p = sP[k];
      bad |= (unsigned)p >= une;
      oP[k] = (int32_t)((unsigned)p + ues);
    }
    // Sender row pointers by counting senders (a sequential pass; no gather
    // through the permutation). That senderPerm is sorted by sender is
    // verified once per store by validateStoreFull; here every index is
    // range-checked, which is what memory safety needs.
    for (int32_t j = 0; j < n; ++j) sp[j] = 0;
    for (int32_t k = 0; k < ne; ++k) sp[sS[k]]++;
    for (int32_t j = 0, run = es; j < n; ++j) {
      const int32_t c = sp[j];
      sp[j] = run;
      run += c;
    }
    if (bad) {
      err.set(i, "store graph " + std::to_string(g) +
                     " has a senderPerm entry out of range");
      continue;
    }
    out.nNode[i] = n;
    out.nEdge[i] = ne;
    out.target[i] = (T)s.target[g];
    out.mask[i] = (T)1;
  }
  if (err.pos != INT64_MAX) throwRange(err.msg, "ERR_GNN_STORE");

  // Padding (Jraph): graph slot `count` owns the padding nodes and edges.
  const int32_t rn = (int32_t)st.realNodes, re = (int32_t)st.realEdges;
  const int32_t N = (int32_t)shape.nodes, E = (int32_t)shape.edges;
#pragma omp parallel for schedule(static) num_threads(numThreads()) if ((int64_t)(E - re) * (12 + (int64_t)sizeof(T)) >= kParallelMinBytes)
  for (int32_t k = re; k < E; ++k) {
    out.senders[k] = rn;
    out.receivers[k] = rn;
    out.distance[k] = (T)0;
    out.sendPerm[k] = k;
  }
  if (out.direction) std::fill(out.direction + 3 * (int64_t)re, out.direction + 3 * (int64_t)E, (T)0);
  for (int32_t j = rn; j < N; ++j) {
    out.atomicNumber[j] = 0;
    out.nodeGraph[j] = (int32_t)count;
    out.recvPtr[j] = j == rn ? re : E;
    out.sendPtr[j] = j == rn ? re : E;
  }
  out.recvPtr[N] = E;
  out.sendPtr[N] = E;
  for (int64_t i = count; i < shape.graphs; ++i) {
    const bool pad = i == count;
    out.nNode[i] = pad ? N - rn : 0;
    out.nEdge[i] = pad ? E - re : 0;
    out.target[i] = (T)0;
    out.mask[i] = (T)0;
  }
  return st;
}

template <class T>
void copyGraphSlices(const StoreView& s, const int32_t* ids, int64_t count, const PackOut<T>& out) {
  std::vector<int64_t> nodeStart(count + 1), edgeStart(count + 1);
  batchOffsets(s, ids, count, nodeStart.data(), edgeStart.data());
  const bool par = 2 * (16 + (out.direction ? 12 : 0)) * edgeStart[count] + 2 * nodeStart[count] >= kParallelMinBytes;
#pragma omp parallel for schedule(dynamic, 4) num_threads(numThreads()) if (par)
  for (int64_t i = 0; i < count; ++i) {
    const int32_t g = ids[i];
    const int32_t n0 = s.nodeOffset[g], n = s.nodeOffset[g + 1] - n0;
    const int32_t e0 = s.edgeOffset[g], ne = s.edgeOffset[g + 1] - e0;
    const int64_t ns = nodeStart[i], es = edgeStart[i];
    std::memcpy(out.atomicNumber + ns, s.atomicNumber + n0, (size_t)n);  // bytes: the store's uint8
    std::memcpy(out.senders + es, s.senders + e0, sizeof(int32_t) * (size_t)ne);
    std::memcpy(out.receivers + es, s.receivers + e0, sizeof(int32_t) * (size_t)ne);
    std::memcpy(out.sendPerm + es, s.senderPerm + e0, sizeof(int32_t) * (size_t)ne);
    std::memcpy((void*)(out.distance + es), s.distance + e0, sizeof(float) * (size_t)ne);
    if (out.direction && s.direction)
      std::memcpy((void*)(out.direction + 3 * es), s.direction + 3 * (int64_t)e0, sizeof(float) * 3 * (size_t)ne);
  }
}

template void copyGraphSlices<float>(const StoreView&, const int32_t*, int64_t, const PackOut<float>&);
template void copyGraphSlices<double>(const StoreView&, const int32_t*, int64_t, const PackOut<double>&);

template void checkPackAliasing<float>(const StoreView&, const int32_t*, int64_t, const PackShape&, const PackOut<float>&);
template void checkPackAliasing<double>(const StoreView&, const int32_t*, int64_t, const PackShape&, const PackOut<double>&);
template PackStats packGraphs<float>(const StoreView&, const int32_t*, int64_t, const PackShape&,
                                     const PackOut<float>&);
template PackStats packGraphs<double>(const StoreView&, const int32_t*, int64_t, const PackShape&,
                                      const PackOut<double>&);

}  // namespace gnn
