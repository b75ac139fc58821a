// The MPEU / SchNet model pieces (models/model.cuh; the CUDA twins of
// CpuExec's ops in core/models/model_internal.h).
#include "cuda/models/model.cuh"

#include "cuda/dense.cuh"

namespace gnn {
namespace cu {

// ---- model pieces ----------------------------------------------------------------
__global__ void rbfKernel(const float* __restrict__ d, int E, int K, float gamma, float step,
                          float* __restrict__ out) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)E * K) return;
  const int k = (int)(i / K), j = (int)(i % K);
  const float x = d[k] - step * (float)j;
  out[i] = expf(-gamma * x * x);
}
void rbf(cudaStream_t s, const float* dist, int E, int K, float gamma, float step, float* out) {
  if (E <= 0) return;
  addCost(0, 4.0 * E * (K + 1));
  rbfKernel<<<cdiv((int64_t)E * K, 256), 256, 0, s>>>(dist, E, K, gamma, step, out);
  checkLaunch(s, "rbfKernel");
}

__global__ void invCountKernel(const int32_t* ptr, int N, bool mean, float* out) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const int c = ptr[n + 1] - ptr[n];
  out[n] = mean ? (c > 0 ? 1.f / (float)c : 0.f) : 1.f;
}
void invCount(cudaStream_t s, const int32_t* recvPtr, int N, bool mean, float* out) {
  if (N <= 0) return;
  invCountKernel<<<cdiv(N, 256), 256, 0, s>>>(recvPtr, N, mean, out);
  checkLaunch(s, "invCountKernel");
}

__global__ void embedKernel(const int32_t* atom, int N, int C, const float* W, const float* b, float* h) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)N * C) return;
  const int n = (int)(i / C), j = (int)(i % C);
  h[i] = W[(size_t)atom[n] * C + j] + b[j];
}
void embed(cudaStream_t s, const int32_t* atom, int N, int C, const float* W, const float* b, float* h) {
  if (N <= 0) return;
  addCost(0, 8.0 * N * C);
  embedKernel<<<cdiv((int64_t)N * C, 256), 256, 0, s>>>(atom, N, C, W, b, h);
  checkLaunch(s, "embedKernel");
}

__global__ void aggregateKernel(const int32_t* __restrict__ ptr, const int32_t* __restrict__ snd,
                                const float* __restrict__ f2, const float* __restrict__ hs,
                                const float* __restrict__ ic, int N, int C, float* __restrict__ agg) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const int k0 = ptr[row], k1 = ptr[row + 1];
  const float sc = ic[row];
  for (int j = lane; j < C; j += 32) {
    float acc = 0.f;
#pragma unroll 4  // one accumulator, edges in order: same sums; loads issued ahead
    for (int k = k0; k < k1; ++k) acc += f2[(size_t)k * C + j] * hs[(size_t)snd[k] * C + j];
    agg[(size_t)row * C + j] = acc * sc;
  }
}
void aggregate(cudaStream_t s, const int32_t* recvPtr, const int32_t* snd, const float* f2,
               const float* hs, const float* invCnt, int N, int C, float* agg) {
  if (N <= 0) return;
  aggregateKernel<<<cdiv(N, 8), 256, 0, s>>>(recvPtr, snd, f2, hs, invCnt, N, C, agg);
  checkLaunch(s, "aggregateKernel");
}

__global__ void messageBwdEdgeKernel(const int32_t* __restrict__ snd, const int32_t* __restrict__ rcv,
                                     const float* __restrict__ dagg, const float* __restrict__ ic,
                                     const float* __restrict__ hs, const float* __restrict__ f2,
                                     int E, int C, float* __restrict__ dA) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)E * C) return;
  const int k = (int)(i / C), j = (int)(i % C);
  const int r = rcv[k];
  const float v = dagg[(size_t)r * C + j] * ic[r] * hs[(size_t)snd[k] * C + j];
  dA[i] = v * sspGradAct(f2[i]);
}
void messageBwdEdge(cudaStream_t s, const int32_t* snd, const int32_t* rcv, const float* dagg,
                    const float* invCnt, const float* hs, const float* f2, int E, int C, float* dA) {
  if (E <= 0) return;
  addCost(0, 4.0 * 2 * E * C);
  messageBwdEdgeKernel<<<cdiv((int64_t)E * C, 256), 256, 0, s>>>(snd, rcv, dagg, invCnt, hs, f2, E, C, dA);
  checkLaunch(s, "messageBwdEdgeKernel");
}

__global__ void messageBwdSenderKernel(const int32_t* __restrict__ ptr, const int32_t* __restrict__ perm,
                                       const int32_t* __restrict__ rcv, const float* __restrict__ dagg,
                                       const float* __restrict__ ic, const float* __restrict__ f2,
                                       int N, int C, float* __restrict__ dhs) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const int k0 = ptr[row], k1 = ptr[row + 1];
  for (int j = lane; j < C; j += 32) {
    float acc = 0.f;
#pragma unroll 4  // one accumulator, edges in order: same sums; loads issued ahead
    for (int k = k0; k < k1; ++k) {
      const int e = perm[k], r = rcv[e];
      acc += dagg[(size_t)r * C + j] * ic[r] * f2[(size_t)e * C + j];
    }
    dhs[(size_t)row * C + j] = acc;
  }
}
void messageBwdSender(cudaStream_t s, const int32_t* sendPtr, const int32_t* sendPerm,
                      const int32_t* rcv, const float* dagg, const float* invCnt, const float* f2,
                      int N, int C, float* dhs) {
  if (N <= 0) return;
  messageBwdSenderKernel<<<cdiv(N, 8), 256, 0, s>>>(sendPtr, sendPerm, rcv, dagg, invCnt, f2, N, C, dhs);
  checkLaunch(s, "messageBwdSenderKernel");
}

// One block: thread per graph for the predictions, thread 0 for the loss in
// double in graph order (as the CPU engine), then d loss / d r2 per node.
__global__ void readoutLossKernel(const float* __restrict__ r2, const int32_t* __restrict__ nodeStart,
                                  const int32_t* __restrict__ nNode, const float* __restrict__ target,
                                  const float* __restrict__ mask, int G, bool meanReadout,
                                  float* __restrict__ pred, double* lossOut, float* __restrict__ dr2) {
  __shared__ double sNreal;
  for (int g = threadIdx.x; g < G; g += blockDim.x) {
    float s = 0.f;
    for (int n = nodeStart[g]; n < nodeStart[g + 1]; ++n) s += r2[n];
    const int nn = nNode[g];
    pred[g] = meanReadout ? (nn > 0 ? s / (float)nn : 0.f) : s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double loss = 0, nreal = 0;
    for (int g = 0; g < G; ++g) {
      const double d = (double)pred[g] - (double)target[g];
      loss += (double)mask[g] * d * d;
      nreal += (double)mask[g];
    }
    *lossOut = nreal > 0 ? loss / nreal : 0.0;
    sNreal = nreal;
  }
  __syncthreads();
  if (!dr2) return;
  const double nreal = sNreal;
  for (int g = threadIdx.x; g < G; g += blockDim.x) {
    const float dp = nreal > 0 ? (float)(2.0 * (double)mask[g] * ((double)pred[g] - (double)target[g]) / nreal) : 0.f;
    const int nn = nNode[g];
    const float v = meanReadout ? (nn > 0 ? dp / (float)nn : 0.f) : dp;
    for (int n = nodeStart[g]; n < nodeStart[g + 1]; ++n) dr2[n] = v;
  }
}
void readoutLoss(cudaStream_t s, const float* r2, const int32_t* nodeStart, const int32_t* nNode,
                 const float* target, const float* mask, int G, bool meanReadout, float* pred,
                 double* lossOut, float* dr2) {
  readoutLossKernel<<<1, 256, 0, s>>>(r2, nodeStart, nNode, target, mask, G, meanReadout, pred, lossOut, dr2);
  checkLaunch(s, "readoutLossKernel");
}

__global__ void readoutBwdHiddenKernel(const float* dr2, const float* w2, const float* r1, int N, int R, float* dr1) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)N * R) return;
  const int n = (int)(i / R), j = (int)(i % R);
  dr1[i] = (dr2[n] * w2[j]) * sspGradAct(r1[i]);
}
void readoutBwdHidden(cudaStream_t s, const float* dr2, const float* w2, const float* r1, int N, int R, float* dr1) {
  if (N <= 0) return;
  readoutBwdHiddenKernel<<<cdiv((int64_t)N * R, 256), 256, 0, s>>>(dr2, w2, r1, N, R, dr1);
  checkLaunch(s, "readoutBwdHiddenKernel");
}

// Embedding backward as a product: gW = onehot(atom)^T dh, gb = colsum(dh),
// through the deterministic chunked X^T D (no atomics, fixed order).
__global__ void oneHotKernel(const int32_t* __restrict__ atom, int N, int classes, float* __restrict__ oh) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)N * classes) return;
  const int n = (int)(i / classes), z = (int)(i % classes);
  oh[i] = atom[n] == z ? 1.f : 0.f;
}
void embedBwd(cudaStream_t s, const int32_t* atom, const float* dh, int N, int C, int classes,
              float* gW, float* gb, float* oneHot, float* scratch) {
  if (N > 0) {
    oneHotKernel<<<cdiv((int64_t)N * classes, 256), 256, 0, s>>>(atom, N, classes, oneHot);
    checkLaunch(s, "oneHotKernel");
  }
  gemmTN(s, N, classes, C, oneHot, classes, dh, C, gW, gb, false, scratch);
}

}  // namespace cu
}  // namespace gnn
