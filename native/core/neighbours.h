// Graph construction for many atomic structures at once: fully connected,
// radius cutoff and k nearest neighbours, with periodic images.
//
// Contract (inputs): structure s owns atoms atomOffset[s]..atomOffset[s+1]-1;
// positions are Cartesian Å [atoms x 3]; cells[s*9..] holds the lattice vectors
// as rows (ignored unless some pbc flag of s is set); pbc[s*3+a] != 0 marks axis
// a periodic. All inputs are validated (offsets, finite coordinates, an
// invertible cell where pbc is set); bad input throws gnn::Error.
//
// Bounds (so that absurd input is a named error in bounded time, never a hang
// or an overflow): |coordinate| <= kMaxCoordinate Å (ERR_GNN_POSITION),
// |cell component| <= kMaxCoordinate Å (ERR_GNN_CELL), at most
// kMaxImagePoints periodic image points per structure (ERR_GNN_IMAGES, counted
// in floating point so a huge cutoff cannot overflow past the check), and at
// most rule.maxEdges edges per structure (ERR_GNN_TOO_MANY_EDGES, checked
// before the edges are allocated and while they are searched).
//
// Contract (outputs, per structure): edges sender -> receiver with graph-local
// indices, sorted by receiver, then sender, then distance; `distance` includes
// the periodic image shift, so one sender may appear several times for a
// receiver (its images). The self pair at zero shift is never an edge; an
// atom's own periodic images are. senderPerm lists each graph's local edge
// indices ordered by sender (stable, so by receiver within a sender). On
// request, `direction` holds each edge's unit vector u = (x_sender + image
// shift - x_receiver) / distance (xyz per edge, computed in double and rounded
// to float; the zero vector if the distance is 0), the displacement being the
// one whose length is `distance` (for periodic fc, the minimum image's). The
// result does not depend on the thread count.
//
// Rules:
//  - fc: every ordered pair i != j; distance is the minimum-image distance
//    when the structure is periodic (exact in any cell, skewed included: the
//    periodic vectors are LLL-reduced and a box of images that provably holds
//    the shortest is searched; ERR_GNN_IMAGES for a cell so degenerate that
//    box exceeds 1e6 images for a pair), plain Euclidean otherwise.
//  - cutoff R: every (j, image) with 0 < |r_j + T - r_i| <= R (self at T = 0
//    excluded). Cell lists make it O(atoms + edges) per structure.
//  - knn K: the K nearest (j, image) of each receiver; the search radius grows
//    (x1.5) until every atom has K candidates or, for a finite molecule, all
//    of its n-1 partners. Ties at equal distance keep the smaller sender, then
//    the candidate found first in a fixed image order.
#pragma once
#include <vector>

#include "common.h"

namespace gnn {

struct StructureBatchView {
  int64_t numStructures = 0;
  const int32_t* atomOffset = nullptr;  // [S+1]
  const double* positions = nullptr;    // [atoms x 3]
  const double* cells = nullptr;        // [S x 9]
  const uint8_t* pbc = nullptr;         // [S x 3]
  int64_t numAtoms = 0;
};

// Largest coordinate or lattice-vector component accepted (Å): 1 cm, far
// beyond any structure, small enough that squared distances stay exact-ish.
constexpr double kMaxCoordinate = 1e8;
// Upper bound on periodic image points examined for one structure.
constexpr int64_t kMaxImagePoints = 50'000'000;
// Default ceiling on the edges of one structure (16.7M: 4096 atoms fully connected).
constexpr int64_t kDefaultMaxEdgesPerGraph = int64_t(1) << 24;

struct GraphRule {
  enum Kind { FullyConnected = 0, Cutoff = 1, Knn = 2 };
  Kind kind = FullyConnected;
  double cutoff = 0;  // Å, Cutoff only
  int k = 0;          // Knn only
  int64_t maxEdges = kDefaultMaxEdgesPerGraph;  // per structure
};

// One edge before it is written out: `delta` is the displacement sender image
// minus receiver (Å), whose length is `distance`.
struct NeighbourEdge {
  int32_t receiver, sender;
  double distance;
  double delta[3];
};

// Two-phase construction so the caller can allocate the output arrays between
// the phases (the addon allocates JS typed arrays of the exact size).
class NeighbourBuilder {
 public:
  NeighbourBuilder(const StructureBatchView& in, const GraphRule& rule);
  // The checks the constructor runs (rule and batch); throws gnn::Error.
  static void check(const StructureBatchView& in, const GraphRule& rule);
  // Phase 1 (parallel over structures): finds every graph's edges.
  void compute();
  // [S+1] edge offsets, valid after compute().
  const std::vector<int32_t>& edgeOffset() const { return edgeOffset_; }
  int64_t numEdges() const { return edgeOffset_.empty() ? 0 : edgeOffset_.back(); }
  // Phase 2 (parallel): writes [numEdges] arrays, and [3 x numEdges] unit
  // direction vectors (xyz per edge) when `direction` is not null. The other
  // outputs do not depend on whether directions are asked for.
  void fill(int32_t* senders, int32_t* receivers, float* distance, int32_t* senderPerm,
            float* direction = nullptr) const;

 private:
  const StructureBatchView in_;
  const GraphRule rule_;
  std::vector<int32_t> edgeOffset_;
  std::vector<std::vector<NeighbourEdge>> edges_;  // per structure (not for molecular fc)
  std::vector<uint8_t> direct_;                     // 1: fc written directly in fill()
};

// Validates the batch (offsets, finiteness, cells); throws gnn::Error.
void validateStructureBatch(const StructureBatchView& in);

// Edges of one structure (receiver, sender, distance order), for tests/tools.
std::vector<NeighbourEdge> neighboursOf(const StructureBatchView& in, int64_t s, const GraphRule& rule);

}  // namespace gnn
