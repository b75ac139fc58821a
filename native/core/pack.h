// Packing a list of graphs from the columnar graph store into one padded batch.
//
// Contract (inputs): the store's edges are grouped by graph (edgeOffset), each
// graph's edges sorted by local receiver; senders/receivers are graph-local node
// indices; senderPerm lists each graph's local edge indices ordered by sender
// (stable). Every call range-checks every index it dereferences (endpoints,
// senderPerm entries) and verifies receiver order for every graph it touches,
// so a corrupt store yields gnn::Error, never a crash. That senderPerm is a
// sender-sorted permutation is checked once per store (validateStoreFull), not
// per call: a store that skipped it packs without crashing but may give wrong
// sender row pointers.
//
// Contract (outputs, Jraph's padding convention): real graphs occupy graph slots
// 0..k-1 in the given order, their nodes and edges laid out contiguously with
// edge endpoints shifted by the nodes before them. If the shape is larger than
// the real totals, graph slot k is the padding graph owning every padding node
// and edge (padding edges go from and to the first padding node, distance 0,
// direction the zero vector), and slots k+1.. are empty graphs. A shape equal to the real totals
// (nodes, edges, graphs) means an exact, unpadded batch.
#pragma once
#include "common.h"

namespace gnn {

struct StoreView {
  int64_t numGraphs = 0;
  const int32_t* nodeOffset = nullptr;  // [numGraphs+1]
  const int32_t* edgeOffset = nullptr;  // [numGraphs+1]
  const uint8_t* atomicNumber = nullptr;  // [numNodes]
  const int32_t* senders = nullptr;     // [numEdges], graph-local
  const int32_t* receivers = nullptr;   // [numEdges], graph-local, sorted per graph
  const float* distance = nullptr;      // [numEdges]
  const int32_t* senderPerm = nullptr;  // [numEdges], graph-local edge index
  const double* target = nullptr;       // [numGraphs]
  const float* direction = nullptr;     // [3*numEdges] or null: unit edge vectors, xyz per edge
  int64_t numNodes = 0;
  int64_t numEdges = 0;
};

struct PackShape {
  int64_t nodes = 0, edges = 0, graphs = 0;
};

template <class T>
struct PackOut {
  int32_t* atomicNumber;  // [nodes]
  int32_t* nodeGraph;     // [nodes]
  int32_t* senders;       // [edges], batch-global
  int32_t* receivers;     // [edges], batch-global, sorted
  T* distance;            // [edges]
  int32_t* nNode;         // [graphs]
  int32_t* nEdge;         // [graphs]
  T* target;              // [graphs]
  T* mask;                // [graphs] 1 for real graphs, 0 for padding/empty
  int32_t* recvPtr;       // [nodes+1] CSR row pointers by receiver
  int32_t* sendPerm;      // [edges] edge indices ordered by sender
  int32_t* sendPtr;       // [nodes+1] row pointers into sendPerm by sender
  T* direction = nullptr; // [3*edges] or null: unit edge vectors (padding edges 0); needs store.direction
};

struct PackStats {
  int64_t realNodes = 0, realEdges = 0, realGraphs = 0;
};

// Checks the store's global structure once (offsets monotone and consistent
// with the array lengths). Per-graph contents are verified when packed, and
// fully (senderPerm a permutation) by validateStoreFull.
void validateStoreHeader(const StoreView& s);
// O(E) full check: every index in range, receivers sorted, senderPerm a
// sender-sorted permutation of each graph's edges.
void validateStoreFull(const StoreView& s);

// Real totals of a graph list (throws RangeError on an unknown id).
PackStats batchTotals(const StoreView& s, const int32_t* ids, int64_t count);

// Throws RangeError (ERR_GNN_SHAPE) unless `shape` can hold the batch: either
// exactly its totals (an unpadded batch) or room for Jraph's padding graph
// (nodes >= real + 1, edges >= real, graphs >= real + 1), within int32.
void checkPackShape(const PackStats& st, const PackShape& shape);

// Exclusive prefix sums of the listed graphs' node and edge counts (count + 1
// entries each): where each graph starts in a packed batch. Ids must be valid.
void batchOffsets(const StoreView& s, const int32_t* ids, int64_t count, int64_t* nodeStart, int64_t* edgeStart);

// Throws RangeError (ERR_GNN_ALIAS) when the memory of any output array (its
// extent from `shape`) overlaps any store array, the ids, or another output.
template <class T>
void checkPackAliasing(const StoreView& s, const int32_t* ids, int64_t count, const PackShape& shape,
                       const PackOut<T>& out);

// Packs the graphs `ids` into `out` (see the contract above); refuses aliasing
// outputs (checkPackAliasing) and a shape that cannot hold them (checkPackShape).
// With out.direction set it also writes the edge directions, and throws
// ERR_GNN_DATA_DIRECTIONS when the store has none.
template <class T>
PackStats packGraphs(const StoreView& s, const int32_t* ids, int64_t count,
                     const PackShape& shape, const PackOut<T>& out);

// Benchmark baseline: memcpy of exactly the store slices packGraphs reads
// (node and edge arrays of each listed graph, directions too when both the
// store and `out` have them) into the same output arrays,
// with the same threading; no shifting, row pointers or checks. Ids must be
// valid and the outputs large enough (the benchmark packs the same batch).
template <class T>
void copyGraphSlices(const StoreView& s, const int32_t* ids, int64_t count, const PackOut<T>& out);

}  // namespace gnn
