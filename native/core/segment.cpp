#include "segment.h"

#include <cstring>
#include <vector>

namespace gnn {

void checkRowPtr(const int32_t* ptr, int64_t rows, int64_t srcRows, const char* name) {
  if (ptr[0] != 0) throwRange(std::string(name) + "[0] must be 0, got " + std::to_string(ptr[0]));
  for (int64_t r = 0; r < rows; ++r)
    if (ptr[r + 1] < ptr[r])
      throwRange(std::string(name) + " decreases at index " + std::to_string(r + 1) + " (" +
                 std::to_string(ptr[r]) + " > " + std::to_string(ptr[r + 1]) + ")");
  if (ptr[rows] != srcRows)
    throwRange(std::string(name) + "[" + std::to_string(rows) + "]=" + std::to_string(ptr[rows]) +
               " must equal the number of source rows " + std::to_string(srcRows));
}

void checkIndices(const int32_t* idx, int64_t n, int64_t limit, const char* name) {
  int64_t badAt = -1;
  for (int64_t i = 0; i < n; ++i)
    if ((uint32_t)idx[i] >= (uint64_t)limit) { badAt = i; break; }
  if (badAt >= 0)
    throwRange(std::string(name) + "[" + std::to_string(badAt) + "]=" + std::to_string(idx[badAt]) +
               " is out of range [0, " + std::to_string(limit) + ")");
}

namespace {
template <class T>
inline void addRow(T* __restrict acc, const T* __restrict src, int64_t w) {
#pragma omp simd
  for (int64_t f = 0; f < w; ++f) acc[f] += src[f];
}
template <class T>
inline void copyRow(T* __restrict dst, const T* __restrict src, int64_t w) {
  std::memcpy(dst, src, sizeof(T) * w);
}
template <class T>
inline void scaleRow(T* __restrict dst, T s, int64_t w) {
#pragma omp simd
  for (int64_t f = 0; f < w; ++f) dst[f] *= s;
}

template <class T>
void csrReduce(const T* src, const int32_t* ptr, int64_t rows, int64_t width, bool mean, T* out) {
  // Bytes moved: every source row read, every output row written.
  const bool par = ((int64_t)ptr[rows] + rows) * width * (int64_t)sizeof(T) >= kParallelMinBytes;
#pragma omp parallel for schedule(static) num_threads(numThreads()) if (par)
  for (int64_t r = 0; r < rows; ++r) {
    T* o = out + r * width;
    const int32_t b = ptr[r], e = ptr[r + 1];
    if (b == e) { std::memset(o, 0, sizeof(T) * width); continue; }
    copyRow(o, src + (int64_t)b * width, width);
    for (int32_t k = b + 1; k < e; ++k) addRow(o, src + (int64_t)k * width, width);
    if (mean && e - b > 1) scaleRow(o, (T)1 / (T)(e - b), width);
  }
}
}  // namespace

template <class T>
void segmentSumCsr(const T* src, const int32_t* ptr, int64_t rows, int64_t width, T* out) {
  csrReduce(src, ptr, rows, width, false, out);
}
template <class T>
void segmentMeanCsr(const T* src, const int32_t* ptr, int64_t rows, int64_t width, T* out) {
  csrReduce(src, ptr, rows, width, true, out);
}

template <class T>
void segmentSum(const T* src, const int32_t* seg, int64_t n, int64_t numSegments, int64_t width,
                T* out) {
  // Stable counting sort of row indices by segment, then ordered CSR reduction.
  std::vector<int32_t> ptr(numSegments + 1, 0), perm(n);
  for (int64_t i = 0; i < n; ++i) ptr[seg[i] + 1]++;
  for (int64_t s = 0; s < numSegments; ++s) ptr[s + 1] += ptr[s];
  std::vector<int32_t> fill(ptr.begin(), ptr.end() - 1);
  for (int64_t i = 0; i < n; ++i) perm[fill[seg[i]]++] = (int32_t)i;
  gatherRowsBackward(src, perm.data(), ptr.data(), numSegments, width, out);
}

template <class T>
void gatherRows(const T* src, const int32_t* idx, int64_t n, int64_t width, T* out) {
#pragma omp parallel for schedule(static) num_threads(numThreads()) if (2 * n * width * (int64_t)sizeof(T) >= kParallelMinBytes)
  for (int64_t i = 0; i < n; ++i) copyRow(out + i * width, src + (int64_t)idx[i] * width, width);
}

template <class T>
void segmentCsrBackward(const T* gradOut, const int32_t* ptr, int64_t rows, int64_t width,
                        bool mean, T* gradSrc) {
#pragma omp parallel for schedule(static) num_threads(numThreads()) if (((int64_t)ptr[rows] + rows) * width * (int64_t)sizeof(T) >= kParallelMinBytes)
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t b = ptr[r], e = ptr[r + 1];
    if (b == e) continue;
    const T* g = gradOut + r * width;
    const T s = mean ? (T)1 / (T)(e - b) : (T)1;
    for (int32_t k = b; k < e; ++k) {
      T* d = gradSrc + (int64_t)k * width;
#pragma omp simd
      for (int64_t f = 0; f < width; ++f) d[f] = g[f] * s;
    }
  }
}

template <class T>
void gatherRowsBackward(const T* gradOut, const int32_t* perm, const int32_t* ptr, int64_t rows,
                        int64_t width, T* gradSrc) {
  if (!perm) { csrReduce(gradOut, ptr, rows, width, false, gradSrc); return; }
#pragma omp parallel for schedule(static) num_threads(numThreads()) if (((int64_t)ptr[rows] + rows) * width * (int64_t)sizeof(T) >= kParallelMinBytes)
  for (int64_t r = 0; r < rows; ++r) {
    T* o = gradSrc + r * width;
    const int32_t b = ptr[r], e = ptr[r + 1];
    if (b == e) { std::memset(o, 0, sizeof(T) * width); continue; }
    copyRow(o, gradOut + (int64_t)perm[b] * width, width);
    for (int32_t k = b + 1; k < e; ++k) addRow(o, gradOut + (int64_t)perm[k] * width, width);
  }
}

#define GNN_INST(T)                                                                             \
  template void segmentSumCsr<T>(const T*, const int32_t*, int64_t, int64_t, T*);               \
  template void segmentMeanCsr<T>(const T*, const int32_t*, int64_t, int64_t, T*);              \
  template void segmentSum<T>(const T*, const int32_t*, int64_t, int64_t, int64_t, T*);         \
  template void gatherRows<T>(const T*, const int32_t*, int64_t, int64_t, T*);                  \
  template void segmentCsrBackward<T>(const T*, const int32_t*, int64_t, int64_t, bool, T*);    \
  template void gatherRowsBackward<T>(const T*, const int32_t*, const int32_t*, int64_t, int64_t, \
                                      T*);
GNN_INST(float)
GNN_INST(double)
#undef GNN_INST

}  // namespace gnn
