// Device packing (pack.cuh; the CUDA twin of core/pack.cpp's packGraphs).
#include "cuda/pack.cuh"

#include <algorithm>

namespace gnn {
namespace cu {

// ---- packing ----------------------------------------------------------------------------
// One block: per-slot node/edge starts (exclusive scan over the batch's graphs)
// and the padding slots; meta = {realNodes, realEdges, count}.
__global__ void packScanKernel(DevStore st, const int32_t* countDev, const int32_t* ids, int N, int E,
                               int G, DevBatch b) {
  __shared__ int sn[1024], se[1024];
  __shared__ int carryN, carryE;
  const int count = *countDev;
  if (threadIdx.x == 0) { carryN = 0; carryE = 0; }
  __syncthreads();
  for (int base = 0; base < count; base += blockDim.x) {
    const int i = base + threadIdx.x;
    int nn = 0, ne = 0;
    if (i < count) {
      const int g = ids[i];
      nn = st.nodeOffset[g + 1] - st.nodeOffset[g];
      ne = st.edgeOffset[g + 1] - st.edgeOffset[g];
    }
    sn[threadIdx.x] = nn;
    se[threadIdx.x] = ne;
    __syncthreads();
    for (int off = 1; off < (int)blockDim.x; off <<= 1) {  // Hillis-Steele inclusive scan
      int an = 0, ae = 0;
      if ((int)threadIdx.x >= off) { an = sn[threadIdx.x - off]; ae = se[threadIdx.x - off]; }
      __syncthreads();
      sn[threadIdx.x] += an;
      se[threadIdx.x] += ae;
      __syncthreads();
    }
    if (i < count) {
      const int ns = carryN + sn[threadIdx.x] - nn, es = carryE + se[threadIdx.x] - ne;
      b.nodeStart[i] = ns;
      b.edgeStart[i] = es;
      b.nNode[i] = nn;
      b.target[i] = st.target[ids[i]];
      b.mask[i] = 1.f;
    }
    __syncthreads();
    if (threadIdx.x == blockDim.x - 1) { carryN += sn[threadIdx.x]; carryE += se[threadIdx.x]; }
    __syncthreads();
  }
  const int rn = carryN, re = carryE;
  for (int i = count + threadIdx.x; i < G; i += blockDim.x) {
    const int ns = i == count ? rn : N;
    b.nodeStart[i] = ns;
    b.edgeStart[i] = i == count ? re : E;
    b.nNode[i] = N - ns;
    b.target[i] = 0.f;
    b.mask[i] = 0.f;
  }
  if (threadIdx.x == 0) {
    b.nodeStart[G] = N;
    b.edgeStart[G] = E;
    b.meta[0] = rn;
    b.meta[1] = re;
    b.meta[2] = count;
  }
}

// Block per graph slot: copy nodes and edges of a real graph, shift the
// endpoints, and build both CSR row-pointer arrays by binary search.
__global__ void packGraphKernel(DevStore st, const int32_t* countDev, const int32_t* ids, DevBatch b) {
  const int i = blockIdx.x;
  if (i >= *countDev) return;
  const int g = ids[i];
  const int n0 = st.nodeOffset[g], n = st.nodeOffset[g + 1] - n0;
  const int e0 = st.edgeOffset[g], ne = st.edgeOffset[g + 1] - e0;
  const int ns = b.nodeStart[i], es = b.edgeStart[i];
  const int32_t* sS = st.senders + e0;
  const int32_t* sR = st.receivers + e0;
  const int32_t* sP = st.senderPerm + e0;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    b.atom[ns + j] = st.atomicNumber[n0 + j];
    int lo = 0, hi = ne;  // first edge with receiver >= j
    while (lo < hi) { const int mid = (lo + hi) / 2; if (sR[mid] < j) lo = mid + 1; else hi = mid; }
    b.recvPtr[ns + j] = es + lo;
    lo = 0; hi = ne;      // first sender-ordered position with sender >= j
    while (lo < hi) { const int mid = (lo + hi) / 2; if (sS[sP[mid]] < j) lo = mid + 1; else hi = mid; }
    b.sendPtr[ns + j] = es + lo;
  }
  for (int k = threadIdx.x; k < ne; k += blockDim.x) {
    b.snd[es + k] = sS[k] + ns;
    b.rcv[es + k] = sR[k] + ns;
    b.dist[es + k] = st.distance[e0 + k];
    b.sendPerm[es + k] = es + sP[k];
  }
}

__global__ void packPadKernel(int N, int E, DevBatch b) {
  const int rn = b.meta[0], re = b.meta[1];
  const int total = max(N, E);
  for (int x = blockIdx.x * blockDim.x + threadIdx.x; x <= total; x += gridDim.x * blockDim.x) {
    if (x >= re && x < E) {
      b.snd[x] = rn;
      b.rcv[x] = rn;
      b.dist[x] = 0.f;
      b.sendPerm[x] = x;
    }
    if (x >= rn && x < N) {
      b.atom[x] = 0;
      b.recvPtr[x] = x == rn ? re : E;
      b.sendPtr[x] = x == rn ? re : E;
    }
    if (x == N) { b.recvPtr[N] = E; b.sendPtr[N] = E; }
  }
}

void pack(cudaStream_t s, const DevStore& st, const int32_t* countDev, const int32_t* idsDev, int N,
          int E, int G, const DevBatch& b) {
  addCost(0, 4.0 * (3.0 * N + 4.0 * E + 4.0 * E + 3.0 * N));
  packScanKernel<<<1, 1024, 0, s>>>(st, countDev, idsDev, N, E, G, b);
  checkLaunch(s, "packScanKernel");
  if (G > 0) {
    packGraphKernel<<<G, 128, 0, s>>>(st, countDev, idsDev, b);
    checkLaunch(s, "packGraphKernel");
  }
  const int total = std::max(N, E) + 1;
  packPadKernel<<<std::min(cdiv(total, 256), 1024), 256, 0, s>>>(N, E, b);
  checkLaunch(s, "packPadKernel");
}

}  // namespace cu
}  // namespace gnn
