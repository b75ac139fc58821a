// Segment reductions and gathers over row-major [rows x width] arrays.
//
// The CSR forms take row pointers (ptr[r]..ptr[r+1] are the source rows of
// segment r) and reduce each segment in index order on one thread: results are
// bitwise identical for any thread count. The unsorted segmentSum buckets rows
// by segment with a stable counting sort first, so it is deterministic too.
// Callers range-check pointers and indices (checkRowPtr / checkIndices).
#pragma once
#include "common.h"

namespace gnn {

// Validates CSR row pointers: ptr[0]==0, nondecreasing, ptr[rows]==srcRows.
void checkRowPtr(const int32_t* ptr, int64_t rows, int64_t srcRows, const char* name);
// Validates that every idx[i] is in [0, limit).
void checkIndices(const int32_t* idx, int64_t n, int64_t limit, const char* name);

// out[r,:] = sum_{k in ptr[r]..ptr[r+1]} src[k,:]
template <class T>
void segmentSumCsr(const T* src, const int32_t* ptr, int64_t rows, int64_t width, T* out);
// As segmentSumCsr divided by the segment length; empty segments give 0.
template <class T>
void segmentMeanCsr(const T* src, const int32_t* ptr, int64_t rows, int64_t width, T* out);
// out[seg[i],:] += src[i,:] for unsorted seg (deterministic: index order per segment).
template <class T>
void segmentSum(const T* src, const int32_t* seg, int64_t n, int64_t numSegments, int64_t width,
                T* out);
// out[i,:] = src[idx[i],:]
template <class T>
void gatherRows(const T* src, const int32_t* idx, int64_t n, int64_t width, T* out);
// Backward of segmentSumCsr/Mean: gradSrc[k,:] = gradOut[row(k),:] (/ length when mean).
template <class T>
void segmentCsrBackward(const T* gradOut, const int32_t* ptr, int64_t rows, int64_t width,
                        bool mean, T* gradSrc);
// Backward of gatherRows with idx sorted through a permutation: gradSrc[r,:] =
// sum_{k in ptr[r]..ptr[r+1]} gradOut[perm[k],:]. (For the receiver gather, whose
// indices are already sorted, perm may be null: identity.)
template <class T>
void gatherRowsBackward(const T* gradOut, const int32_t* perm, const int32_t* ptr, int64_t rows,
                        int64_t width, T* gradSrc);

}  // namespace gnn
