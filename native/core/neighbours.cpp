// Cell-list neighbour search (see neighbours.h for the contract).
#include "neighbours.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace gnn {
namespace {

[[noreturn]] void tooManyEdges(int64_t s, double edges, int64_t limit) {
  throwRange("structure " + std::to_string(s) + " would have " + (edges >= 9.2e18 ? std::string("more than 2^63") : std::to_string((int64_t)edges)) +
                 " edges, more than the limit of " + std::to_string(limit) +
                 " per graph (rule.maxEdges); use a smaller cutoff or k",
             "ERR_GNN_TOO_MANY_EDGES");
}

struct Geometry {
  int32_t n = 0;
  bool periodic = false;
  bool axis[3] = {false, false, false};
  double cell[9] = {0};
  double inv[9] = {0};
  double spacing[3] = {0, 0, 0};  // distance between lattice planes
  std::vector<double> wrapped;    // [n x 3] positions wrapped into the cell
};

bool invert3(const double* m, double* inv, double* detOut) {
  double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
               m[2] * (m[3] * m[7] - m[4] * m[6]);
  *detOut = det;
  if (!(std::fabs(det) > 1e-12)) return false;
  double id = 1.0 / det;
  inv[0] = (m[4] * m[8] - m[5] * m[7]) * id;
  inv[1] = (m[2] * m[7] - m[1] * m[8]) * id;
  inv[2] = (m[1] * m[5] - m[2] * m[4]) * id;
  inv[3] = (m[5] * m[6] - m[3] * m[8]) * id;
  inv[4] = (m[0] * m[8] - m[2] * m[6]) * id;
  inv[5] = (m[2] * m[3] - m[0] * m[5]) * id;
  inv[6] = (m[3] * m[7] - m[4] * m[6]) * id;
  inv[7] = (m[1] * m[6] - m[0] * m[7]) * id;
  inv[8] = (m[0] * m[4] - m[1] * m[3]) * id;
  return true;
}

Geometry geometryOf(const StructureBatchView& in, int64_t s) {
  Geometry g;
  const int32_t a0 = in.atomOffset[s];
  g.n = in.atomOffset[s + 1] - a0;
  const double* p = in.positions + (int64_t)a0 * 3;
  for (int a = 0; a < 3; a++) g.axis[a] = in.pbc[s * 3 + a] != 0;
  g.periodic = g.axis[0] || g.axis[1] || g.axis[2];
  g.wrapped.assign(p, p + (int64_t)g.n * 3);
  if (!g.periodic) return g;
  std::copy(in.cells + s * 9, in.cells + s * 9 + 9, g.cell);
  double det = 0;
  if (!invert3(g.cell, g.inv, &det))
    throwRange("structure " + std::to_string(s) + " is periodic but its cell is singular", "ERR_GNN_CELL");
  const double* c = g.cell;
  for (int a = 0; a < 3; a++) {
    const double* u = c + ((a + 1) % 3) * 3;
    const double* v = c + ((a + 2) % 3) * 3;
    double cx = u[1] * v[2] - u[2] * v[1], cy = u[2] * v[0] - u[0] * v[2], cz = u[0] * v[1] - u[1] * v[0];
    g.spacing[a] = std::fabs(det) / std::sqrt(cx * cx + cy * cy + cz * cz);
  }
  // Wrap periodic fractional coordinates into [0, 1); distances only depend on
  // positions modulo lattice vectors, so this changes no edge.
  for (int32_t i = 0; i < g.n; i++) {
    double* r = &g.wrapped[(int64_t)i * 3];
    double f[3];
    for (int a = 0; a < 3; a++) f[a] = r[0] * g.inv[a] + r[1] * g.inv[3 + a] + r[2] * g.inv[6 + a];
    for (int a = 0; a < 3; a++)
      if (g.axis[a]) f[a] -= std::floor(f[a]);
    for (int a = 0; a < 3; a++) r[a] = f[0] * c[a] + f[1] * c[3 + a] + f[2] * c[6 + a];
  }
  return g;
}

struct ImagePoint {
  double x, y, z;
  int32_t atom;
  bool zeroShift;
};

// Every (receiver i, sender j, image) with distance <= radius, grouped by
// receiver in increasing order; within a receiver, in a fixed (bin, image)
// order that depends only on the input.
void radiusSearch(const Geometry& g, double radius, int64_t s, int64_t maxEdges, std::vector<NeighbourEdge>& out) {
  out.clear();
  const int32_t n = g.n;
  if (n == 0) return;
  // Image ranges and their count in floating point first: a huge radius must
  // hit the ERR_GNN_IMAGES bound, not overflow past it.
  double rangeD[3] = {0, 0, 0}, shiftsD = 1;
  for (int a = 0; a < 3; a++) {
    if (g.axis[a]) rangeD[a] = std::ceil(radius / g.spacing[a]) + 1;
    shiftsD *= 2 * rangeD[a] + 1;
  }
  if (!(shiftsD * n <= (double)kMaxImagePoints))
    throwRange("structure " + std::to_string(s) + ": radius " + std::to_string(radius) +
                   " Å needs too many periodic images for its cell (more than " + std::to_string(kMaxImagePoints) +
                   " image points)",
               "ERR_GNN_IMAGES");
  const int range[3] = {(int)rangeD[0], (int)rangeD[1], (int)rangeD[2]};
  const int64_t shifts = (int64_t)shiftsD;
  double lo[3], hi[3];
  for (int a = 0; a < 3; a++) { lo[a] = INFINITY; hi[a] = -INFINITY; }
  for (int32_t i = 0; i < n; i++)
    for (int a = 0; a < 3; a++) {
      lo[a] = std::min(lo[a], g.wrapped[(int64_t)i * 3 + a]);
      hi[a] = std::max(hi[a], g.wrapped[(int64_t)i * 3 + a]);
    }
  // A radius beyond the structure's own extent (molecules) finds the same
  // pairs as the extent itself: bound the box the bins cover by it.
  if (!g.periodic) {
    double span = 0;
    for (int a = 0; a < 3; a++) span = std::max(span, hi[a] - lo[a]);
    radius = std::min(radius, 2 * span + 1);
  }
  for (int a = 0; a < 3; a++) { lo[a] -= radius; hi[a] += radius; }
  std::vector<ImagePoint> pts;
  pts.reserve((size_t)n * std::min<int64_t>(shifts, 27));
  for (int t0 = -range[0]; t0 <= range[0]; t0++)
    for (int t1 = -range[1]; t1 <= range[1]; t1++)
      for (int t2 = -range[2]; t2 <= range[2]; t2++) {
        double sh[3] = {0, 0, 0};
        if (g.periodic)
          for (int a = 0; a < 3; a++) sh[a] = t0 * g.cell[a] + t1 * g.cell[3 + a] + t2 * g.cell[6 + a];
        bool zero = t0 == 0 && t1 == 0 && t2 == 0;
        for (int32_t j = 0; j < n; j++) {
          double x = g.wrapped[(int64_t)j * 3] + sh[0], y = g.wrapped[(int64_t)j * 3 + 1] + sh[1], z = g.wrapped[(int64_t)j * 3 + 2] + sh[2];
          if (x < lo[0] || x > hi[0] || y < lo[1] || y > hi[1] || z < lo[2] || z > hi[2]) continue;
          pts.push_back({x, y, z, j, zero});
        }
      }
  // Bins of edge >= radius, so the 27 surrounding bins hold every candidate.
  // Bins: per axis ext/radius of them (at least 1, at most 1e6), then the
  // largest axis halved until the total is at most maxBins: a bounded loop
  // (<= 60 halvings) in place of a search that a huge extent could make endless.
  int nb[3];
  double h[3];
  const double maxBins = 8.0 * (double)pts.size() + 64;
  for (int a = 0; a < 3; a++) {
    const double q = std::floor((hi[a] - lo[a]) / radius);
    nb[a] = q >= 1e6 ? 1000000 : q >= 1 ? (int)q : 1;
  }
  while ((double)nb[0] * nb[1] * nb[2] > maxBins) {
    int m = 0;
    for (int a = 1; a < 3; a++)
      if (nb[a] > nb[m]) m = a;
    nb[m] = (nb[m] + 1) / 2;
  }
  for (int a = 0; a < 3; a++) h[a] = (hi[a] - lo[a]) / nb[a];
  auto binOf = [&](double x, double y, double z, int* b) {
    double c[3] = {x, y, z};
    for (int a = 0; a < 3; a++) {
      const double v = h[a] > 0 ? std::floor((c[a] - lo[a]) / h[a]) : 0;  // NaN-safe clamp before the cast
      b[a] = v >= nb[a] - 1 ? nb[a] - 1 : v >= 0 ? (int)v : 0;
    }
  };
  const int64_t numBins = (int64_t)nb[0] * nb[1] * nb[2];
  std::vector<int32_t> start(numBins + 1, 0), order(pts.size());
  std::vector<int32_t> binIdx(pts.size());
  for (size_t q = 0; q < pts.size(); q++) {
    int b[3];
    binOf(pts[q].x, pts[q].y, pts[q].z, b);
    binIdx[q] = (b[0] * nb[1] + b[1]) * nb[2] + b[2];
    start[binIdx[q] + 1]++;
  }
  for (int64_t b = 0; b < numBins; b++) start[b + 1] += start[b];
  {
    std::vector<int32_t> pos(start.begin(), start.end() - 1);
    for (size_t q = 0; q < pts.size(); q++) order[pos[binIdx[q]]++] = (int32_t)q;
  }
  const double r2 = radius * radius;
  for (int32_t i = 0; i < n; i++) {
    const double xi = g.wrapped[(int64_t)i * 3], yi = g.wrapped[(int64_t)i * 3 + 1], zi = g.wrapped[(int64_t)i * 3 + 2];
    int b[3];
    binOf(xi, yi, zi, b);
    for (int d0 = std::max(0, b[0] - 1); d0 <= std::min(nb[0] - 1, b[0] + 1); d0++)
      for (int d1 = std::max(0, b[1] - 1); d1 <= std::min(nb[1] - 1, b[1] + 1); d1++)
        for (int d2 = std::max(0, b[2] - 1); d2 <= std::min(nb[2] - 1, b[2] + 1); d2++) {
          int64_t bin = ((int64_t)d0 * nb[1] + d1) * nb[2] + d2;
          for (int32_t q = start[bin]; q < start[bin + 1]; q++) {
            const ImagePoint& p = pts[order[q]];
            if (p.atom == i && p.zeroShift) continue;
            double dx = p.x - xi, dy = p.y - yi, dz = p.z - zi;
            double dd = dx * dx + dy * dy + dz * dz;
            if (dd <= r2) out.push_back({i, p.atom, std::sqrt(dd), {dx, dy, dz}});
          }
          if ((int64_t)out.size() > maxEdges) tooManyEdges(s, (double)out.size(), maxEdges);
        }
  }
}

bool edgeLess(const NeighbourEdge& a, const NeighbourEdge& b) {
  if (a.receiver != b.receiver) return a.receiver < b.receiver;
  if (a.sender != b.sender) return a.sender < b.sender;
  return a.distance < b.distance;
}

std::vector<NeighbourEdge> cutoffEdges(const Geometry& g, double radius, int64_t s, int64_t maxEdges) {
  std::vector<NeighbourEdge> e;
  radiusSearch(g, radius, s, maxEdges, e);
  std::stable_sort(e.begin(), e.end(), edgeLess);
  return e;
}

std::vector<NeighbourEdge> knnEdges(const Geometry& g, int k, int64_t s, int64_t maxEdges) {
  const int32_t n = g.n;
  std::vector<NeighbourEdge> cand, out;
  if (n == 0) return out;
  const int want = g.periodic ? k : std::min<int>(k, n - 1);
  if (want <= 0) return out;
  if ((double)n * want > (double)maxEdges) tooManyEdges(s, (double)n * want, maxEdges);
  double radius;
  if (g.periodic) {
    double det = 0, inv[9];
    invert3(g.cell, inv, &det);
    radius = 1.1 * std::cbrt(3.0 * (want + 1) * std::fabs(det) / (4.0 * M_PI * n));
  } else {
    radius = 2.0;
  }
  std::vector<int32_t> count(n);
  for (int iter = 0;; iter++) {
    // The candidates may outnumber the kept edges: allow 64x the ceiling.
    radiusSearch(g, radius, s, maxEdges > INT64_MAX / 64 ? INT64_MAX : maxEdges * 64, cand);
    std::fill(count.begin(), count.end(), 0);
    for (const auto& c : cand) count[c.receiver]++;
    bool ok = true;
    for (int32_t i = 0; i < n && ok; i++) ok = count[i] >= want;
    if (ok) break;
    if (iter > 200) throwRange("structure " + std::to_string(s) + ": knn radius did not converge", "ERR_GNN_KNN");
    radius *= 1.5;
  }
  out.reserve((size_t)n * want);
  size_t b = 0;
  while (b < cand.size()) {
    size_t e = b;
    while (e < cand.size() && cand[e].receiver == cand[b].receiver) e++;
    std::stable_sort(cand.begin() + b, cand.begin() + e, [](const NeighbourEdge& x, const NeighbourEdge& y) {
      if (x.distance != y.distance) return x.distance < y.distance;
      return x.sender < y.sender;
    });
    size_t keep = std::min(e - b, (size_t)want);
    size_t o = out.size();
    out.insert(out.end(), cand.begin() + b, cand.begin() + b + keep);
    std::stable_sort(out.begin() + o, out.end(), edgeLess);
    b = e;
  }
  return out;
}

// The periodic lattice of a structure (its periodic cell vectors, LLL-reduced)
// and what the minimum-image search needs from it. Reduction keeps the lattice
// (integer unimodular steps) and makes its vectors short and nearly
// orthogonal, so the bounded search below examines a handful of images even
// for strongly skewed cells.
struct PeriodicLattice {
  int k = 0;               // periodic axes (1..3)
  double b[3][3] = {};     // reduced basis vectors (rows), Cartesian Å
  double ginv[3][3] = {};  // inverse Gram matrix of b
  double h[3] = {};        // distance of b[a] from the span of the other vectors
};

inline double dot3(const double* x, const double* y) { return x[0] * y[0] + x[1] * y[1] + x[2] * y[2]; }

// LLL reduction (delta 0.99) of k <= 3 vectors in place; Gram-Schmidt is
// recomputed at every step (k is tiny). Bounded: after kMaxLllSteps steps the
// basis is still a basis of the same lattice, only less reduced (the search
// bound below stays exact, it just examines more images).
void lllReduce(double b[3][3], int k) {
  constexpr int kMaxLllSteps = 1000;
  int i = 1;
  for (int step = 0; i < k && step < kMaxLllSteps; step++) {
    double bs[3][3], bb[3], mu[3][3] = {};
    for (int r = 0; r < k; r++) {
      for (int a = 0; a < 3; a++) bs[r][a] = b[r][a];
      for (int j = 0; j < r; j++) {
        mu[r][j] = bb[j] > 0 ? dot3(b[r], bs[j]) / bb[j] : 0;
        for (int a = 0; a < 3; a++) bs[r][a] -= mu[r][j] * bs[j][a];
      }
      bb[r] = dot3(bs[r], bs[r]);
    }
    for (int j = i - 1; j >= 0; j--) {  // size reduction of b[i]
      const double q = std::round(mu[i][j]);
      if (q == 0 || !std::isfinite(q)) continue;
      for (int a = 0; a < 3; a++) b[i][a] -= q * b[j][a];
      for (int l = 0; l < j; l++) mu[i][l] -= q * mu[j][l];
      mu[i][j] -= q;
    }
    if (bb[i] >= (0.99 - mu[i][i - 1] * mu[i][i - 1]) * bb[i - 1]) {
      i++;
    } else {
      for (int a = 0; a < 3; a++) std::swap(b[i][a], b[i - 1][a]);
      i = std::max(i - 1, 1);
    }
  }
}

PeriodicLattice periodicLatticeOf(const Geometry& g, int64_t s) {
  PeriodicLattice L;
  for (int a = 0; a < 3; a++)
    if (g.axis[a]) {
      for (int c = 0; c < 3; c++) L.b[L.k][c] = g.cell[a * 3 + c];
      L.k++;
    }
  lllReduce(L.b, L.k);
  double G[3][3] = {};
  for (int r = 0; r < L.k; r++)
    for (int c = 0; c < L.k; c++) G[r][c] = dot3(L.b[r], L.b[c]);
  bool ok = true;
  if (L.k == 1) {
    ok = G[0][0] > 0;
    if (ok) L.ginv[0][0] = 1.0 / G[0][0];
  } else if (L.k == 2) {
    const double det = G[0][0] * G[1][1] - G[0][1] * G[1][0];
    ok = det > 0 && std::isfinite(det);
    if (ok) {
      L.ginv[0][0] = G[1][1] / det;
      L.ginv[1][1] = G[0][0] / det;
      L.ginv[0][1] = L.ginv[1][0] = -G[0][1] / det;
    }
  } else {
    double flat[9], inv[9], det = 0;
    for (int r = 0; r < 3; r++)
      for (int c = 0; c < 3; c++) flat[r * 3 + c] = G[r][c];
    ok = invert3(flat, inv, &det) && det > 0 && std::isfinite(det);
    if (ok)
      for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) L.ginv[r][c] = inv[r * 3 + c];
  }
  for (int a = 0; a < L.k && ok; a++) {
    ok = L.ginv[a][a] > 0 && std::isfinite(L.ginv[a][a]);
    if (ok) L.h[a] = 1.0 / std::sqrt(L.ginv[a][a]);
  }
  if (!ok) throwRange("structure " + std::to_string(s) + " is periodic but its cell is singular", "ERR_GNN_CELL");
  return L;
}

// Images examined for one pair at most: beyond this the cell is too
// degenerate for its minimum image to be found in bounded time.
constexpr double kMaxFcImagesPerPair = 1e6;

// Fully connected with the true minimum-image displacement for periodic
// structures. For a pair's difference d, translations T of the periodic
// lattice change only d's projection p onto the lattice's span:
// |d + T|^2 = |d - p|^2 + |p + T|^2. With p's coordinates y in the reduced
// basis, the image rounding y is a candidate of length R = |p - round(y)|; any
// image at least as short has |y_a + t_a| * h_a <= R on every axis (h_a: the
// distance of b_a from the other vectors' span), a box of integer shifts that
// is searched whole. The minimum is the first image at the least squared
// length in the box's fixed order, so the result depends only on the input.
std::vector<NeighbourEdge> periodicFcEdges(const Geometry& g, int64_t s) {
  const PeriodicLattice L = periodicLatticeOf(g, s);
  const int k = L.k;
  std::vector<NeighbourEdge> out;
  const int32_t n = g.n;
  out.reserve((size_t)n * (n > 0 ? n - 1 : 0));
  // Reduced lattices need at most a few images per pair; the structure's
  // budget allows 27 per pair beyond kMaxImagePoints before it is refused.
  const double budget = (double)kMaxImagePoints + 27.0 * n * (n > 0 ? n - 1 : 0);
  double examined = 0;
  for (int32_t r = 0; r < n; r++)
    for (int32_t sd = 0; sd < n; sd++) {
      if (sd == r) continue;
      double d[3], bd[3] = {0, 0, 0}, y[3] = {0, 0, 0}, z[3] = {0, 0, 0}, v[3], p[3] = {0, 0, 0};
      for (int a = 0; a < 3; a++) d[a] = g.wrapped[(int64_t)sd * 3 + a] - g.wrapped[(int64_t)r * 3 + a];
      for (int a = 0; a < k; a++) bd[a] = dot3(L.b[a], d);
      for (int a = 0; a < k; a++)
        for (int c = 0; c < k; c++) y[a] += L.ginv[a][c] * bd[c];
      for (int c = 0; c < 3; c++) v[c] = d[c];
      for (int a = 0; a < k; a++) {
        const double t = std::round(y[a]);
        z[a] = y[a] - t;
        for (int c = 0; c < 3; c++) {
          v[c] -= t * L.b[a][c];
          p[c] += z[a] * L.b[a][c];
        }
      }
      // A little slack so rounding cannot drop the true minimum from the box.
      const double R = std::sqrt(dot3(p, p)) * (1 + 1e-9) + 1e-9;
      int lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
      double boxD = 1;
      for (int a = 0; a < k; a++) {
        const double l = std::ceil(-R / L.h[a] - z[a]), u = std::floor(R / L.h[a] - z[a]);
        boxD *= (u - l + 1);
        if (!(boxD <= kMaxFcImagesPerPair)) break;
        lo[a] = (int)l;
        hi[a] = (int)u;
      }
      examined += boxD;
      if (!(boxD <= kMaxFcImagesPerPair) || !(examined <= budget))
        throwRange("structure " + std::to_string(s) + ": its periodic cell is too degenerate to find fc's minimum images in bounded time (more than " +
                       std::to_string((int64_t)kMaxFcImagesPerPair) + " images for one pair, or " + std::to_string((int64_t)budget) +
                       " for the structure)",
                   "ERR_GNN_IMAGES");
      double best = INFINITY, bestVec[3] = {0, 0, 0};
      for (int u0 = lo[0]; u0 <= hi[0]; u0++)
        for (int u1 = lo[1]; u1 <= hi[1]; u1++)
          for (int u2 = lo[2]; u2 <= hi[2]; u2++) {
            const int u[3] = {u0, u1, u2};
            double c[3] = {v[0], v[1], v[2]};
            for (int a = 0; a < k; a++)
              for (int q = 0; q < 3; q++) c[q] += u[a] * L.b[a][q];
            const double dd = dot3(c, c);
            if (dd < best) {  // the first image at the minimum, in this fixed order
              best = dd;
              for (int q = 0; q < 3; q++) bestVec[q] = c[q];
            }
          }
      out.push_back({r, sd, std::sqrt(best), {bestVec[0], bestVec[1], bestVec[2]}});
    }
  return out;
}

std::vector<NeighbourEdge> edgesOf(const StructureBatchView& in, int64_t s, const GraphRule& rule) {
  Geometry g = geometryOf(in, s);
  switch (rule.kind) {
    case GraphRule::Cutoff: return cutoffEdges(g, rule.cutoff, s, rule.maxEdges);
    case GraphRule::Knn: return knnEdges(g, rule.k, s, rule.maxEdges);
    default: break;
  }
  if ((double)g.n * (g.n - 1) > (double)rule.maxEdges) tooManyEdges(s, (double)g.n * (g.n - 1), rule.maxEdges);
  if (g.periodic) return periodicFcEdges(g, s);
  std::vector<NeighbourEdge> out;
  const double* p = in.positions + (int64_t)in.atomOffset[s] * 3;
  for (int32_t r = 0; r < g.n; r++)
    for (int32_t sd = 0; sd < g.n; sd++) {
      if (sd == r) continue;
      double dx = p[(int64_t)sd * 3] - p[(int64_t)r * 3], dy = p[(int64_t)sd * 3 + 1] - p[(int64_t)r * 3 + 1], dz = p[(int64_t)sd * 3 + 2] - p[(int64_t)r * 3 + 2];
      out.push_back({r, sd, std::sqrt(dx * dx + dy * dy + dz * dz), {dx, dy, dz}});
    }
  return out;
}

// The unit vector of a displacement of length `d` (its own norm, computed the
// same way), in double, rounded to float; zero when d is 0.
inline void writeUnit(double dx, double dy, double dz, double d, float* u) {
  if (d > 0) {
    u[0] = (float)(dx / d);
    u[1] = (float)(dy / d);
    u[2] = (float)(dz / d);
  } else {
    u[0] = u[1] = u[2] = 0.0f;
  }
}

bool isMolecule(const StructureBatchView& in, int64_t s) {
  return !(in.pbc[s * 3] || in.pbc[s * 3 + 1] || in.pbc[s * 3 + 2]);
}

}  // namespace

void validateStructureBatch(const StructureBatchView& in) {
  if (in.numStructures < 0) throwRange("negative structure count");
  if (in.atomOffset[0] != 0) throwRange("atomOffset[0] must be 0, got " + std::to_string(in.atomOffset[0]));
  for (int64_t s = 0; s < in.numStructures; s++)
    if (in.atomOffset[s + 1] < in.atomOffset[s])
      throwRange("atomOffset is not monotone at structure " + std::to_string(s));
  if (in.atomOffset[in.numStructures] != in.numAtoms)
    throwRange("atomOffset[" + std::to_string(in.numStructures) + "] = " + std::to_string(in.atomOffset[in.numStructures]) +
               " but positions hold " + std::to_string(in.numAtoms) + " atoms");
  for (int64_t s = 0; s < in.numStructures; s++) {
    for (int32_t i = in.atomOffset[s]; i < in.atomOffset[s + 1]; i++)
      for (int a = 0; a < 3; a++)
        if (!(std::fabs(in.positions[(int64_t)i * 3 + a]) <= kMaxCoordinate))
          throwRange("structure " + std::to_string(s) + ", atom " + std::to_string(i - in.atomOffset[s]) + ": position " +
                         (std::isfinite(in.positions[(int64_t)i * 3 + a]) ? "exceeds 1e8 \u00c5 in magnitude" : "is not finite"),
                     "ERR_GNN_POSITION");
    if (!isMolecule(in, s)) {
      double inv[9], det;
      for (int q = 0; q < 9; q++)
        if (!(std::fabs(in.cells[s * 9 + q]) <= kMaxCoordinate))
          throwRange("structure " + std::to_string(s) + ": cell " +
                         (std::isfinite(in.cells[s * 9 + q]) ? "component exceeds 1e8 \u00c5 in magnitude" : "is not finite"),
                     "ERR_GNN_CELL");
      if (!invert3(in.cells + s * 9, inv, &det) || !std::isfinite(det))
        throwRange("structure " + std::to_string(s) + " is periodic but its cell is singular", "ERR_GNN_CELL");
    }
  }
}

void NeighbourBuilder::check(const StructureBatchView& in, const GraphRule& rule) {
  if (rule.kind == GraphRule::Cutoff && !(rule.cutoff > 0 && std::isfinite(rule.cutoff)))
    throwRange("cutoff radius must be a positive finite number of Å, got " + std::to_string(rule.cutoff), "ERR_GNN_CUTOFF");
  if (rule.kind == GraphRule::Knn && rule.k < 1) throwRange("knn needs k >= 1, got " + std::to_string(rule.k));
  if (rule.maxEdges < 0) throwRange("maxEdges must be >= 0");
  validateStructureBatch(in);
}

NeighbourBuilder::NeighbourBuilder(const StructureBatchView& in, const GraphRule& rule) : in_(in), rule_(rule) {
  check(in, rule);
}

void NeighbourBuilder::compute() {
  const int64_t S = in_.numStructures;
  edges_.assign(S, {});
  direct_.assign(S, 0);
  std::vector<int64_t> count(S, 0);
  bool failed = false;
  std::string failMsg, failCode;
  // A few small structures (a serving request) are built serially: opening a
  // team costs more than the work, and on a busy host (another native call
  // holding its own team) as long as a descheduled member stays away. Each
  // structure is built the same way either way (same edges, same order).
  const int64_t atoms = (int64_t)in_.atomOffset[S] - in_.atomOffset[0];
  const bool par = S >= 2 && atoms >= kParallelMinAtoms;
#pragma omp parallel for schedule(dynamic, 16) num_threads(numThreads()) if (par)
  for (int64_t s = 0; s < S; s++) {
    try {
      if (rule_.kind == GraphRule::FullyConnected && isMolecule(in_, s)) {
        const int64_t n = (int64_t)in_.atomOffset[s + 1] - in_.atomOffset[s];
        if (n * (n - 1) > rule_.maxEdges) tooManyEdges(s, (double)n * (n - 1), rule_.maxEdges);
        direct_[s] = 1;
        count[s] = n * (n - 1);
      } else {
        edges_[s] = edgesOf(in_, s, rule_);
        count[s] = (int64_t)edges_[s].size();
      }
    } catch (const Error& e) {
#pragma omp critical(gnn_neigh_error)
      if (!failed) { failed = true; failMsg = e.what(); failCode = e.code; }
    } catch (const std::exception& e) {
#pragma omp critical(gnn_neigh_error)
      if (!failed) { failed = true; failMsg = e.what(); failCode = "ERR_GNN_NATIVE"; }
    }
  }
  if (failed) throwRange(failMsg, failCode.c_str());
  edgeOffset_.assign(S + 1, 0);
  int64_t total = 0;
  for (int64_t s = 0; s < S; s++) {
    total += count[s];
    if (total > INT32_MAX)
      throwRange("the graphs hold more than 2^31-1 edges (structure " + std::to_string(s) +
                 "); use a smaller cutoff or k, or fewer structures", "ERR_GNN_TOO_MANY_EDGES");
    edgeOffset_[s + 1] = (int32_t)total;
  }
}

void NeighbourBuilder::fill(int32_t* senders, int32_t* receivers, float* distance, int32_t* senderPerm,
                            float* direction) const {
  const int64_t S = in_.numStructures;
  // Writing the edges is a copy: parallel only when it moves enough bytes
  // (senders, receivers, distance, senderPerm, direction: up to 28 B per edge).
  const bool par = S >= 2 && (int64_t)edgeOffset_[S] * 28 >= kParallelMinBytes;
#pragma omp parallel for schedule(dynamic, 64) num_threads(numThreads()) if (par)
  for (int64_t s = 0; s < S; s++) {
    const int64_t e0 = edgeOffset_[s];
    const int32_t n = in_.atomOffset[s + 1] - in_.atomOffset[s];
    int32_t* snd = senders + e0;
    int32_t* rcv = receivers + e0;
    float* dst = distance + e0;
    float* dir = direction ? direction + 3 * e0 : nullptr;
    int64_t m = edgeOffset_[s + 1] - e0;
    if (direct_[s]) {
      const double* p = in_.positions + (int64_t)in_.atomOffset[s] * 3;
      int64_t e = 0;
      for (int32_t r = 0; r < n; r++)
        for (int32_t sd = 0; sd < n; sd++) {
          if (sd == r) continue;
          double dx = p[(int64_t)sd * 3] - p[(int64_t)r * 3], dy = p[(int64_t)sd * 3 + 1] - p[(int64_t)r * 3 + 1], dz = p[(int64_t)sd * 3 + 2] - p[(int64_t)r * 3 + 2];
          const double d = std::sqrt(dx * dx + dy * dy + dz * dz);
          snd[e] = sd;
          rcv[e] = r;
          dst[e] = (float)d;
          if (dir) writeUnit(dx, dy, dz, d, dir + 3 * e);
          e++;
        }
    } else {
      const auto& v = edges_[s];
      for (int64_t e = 0; e < m; e++) {
        snd[e] = v[e].sender;
        rcv[e] = v[e].receiver;
        dst[e] = (float)v[e].distance;
      }
      if (dir)
        for (int64_t e = 0; e < m; e++) writeUnit(v[e].delta[0], v[e].delta[1], v[e].delta[2], v[e].distance, dir + 3 * e);
    }
    // Stable counting sort of local edge indices by sender.
    std::vector<int32_t> pos(n + 1, 0);
    for (int64_t e = 0; e < m; e++) pos[snd[e] + 1]++;
    for (int32_t i = 0; i < n; i++) pos[i + 1] += pos[i];
    int32_t* perm = senderPerm + e0;
    for (int64_t e = 0; e < m; e++) perm[pos[snd[e]]++] = (int32_t)e;
  }
}

std::vector<NeighbourEdge> neighboursOf(const StructureBatchView& in, int64_t s, const GraphRule& rule) {
  if (s < 0 || s >= in.numStructures) throwRange("structure index out of range");
  return edgesOf(in, s, rule);
}

}  // namespace gnn
