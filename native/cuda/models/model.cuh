// The MPEU / SchNet model pieces that are not products or plain CSR sums
// (the CUDA twins of CpuExec's rbf, invCount, embed, aggregate,
// messageBwdEdge, messageBwdSender, readoutLoss, readoutBwdHidden and
// embedBwd in core/models/model_internal.h). Launched by CudaExec
// (models/exec_cuda.cuh) for the model program (core/models/program.h).
#pragma once
#include "cuda/common.cuh"

namespace gnn {
namespace cu {

void rbf(cudaStream_t s, const float* dist, int E, int K, float gamma, float step, float* out);
void invCount(cudaStream_t s, const int32_t* recvPtr, int N, bool mean, float* out);
void embed(cudaStream_t s, const int32_t* atom, int N, int C, const float* W, const float* b,
           float* h);
// agg[r] = invCnt[r] * sum_{k in row r} f2[k] * hs[snd[k]]
void aggregate(cudaStream_t s, const int32_t* recvPtr, const int32_t* snd, const float* f2,
               const float* hs, const float* invCnt, int N, int C, float* agg);
// dA[k] = dagg[rcv[k]] * ic[rcv[k]] * hs[snd[k]] * ssp'(f2[k])
void messageBwdEdge(cudaStream_t s, const int32_t* snd, const int32_t* rcv, const float* dagg,
                    const float* invCnt, const float* hs, const float* f2, int E, int C, float* dA);
// dhs[n] = sum_{k in sender row n} dagg[r] * ic[r] * f2[e], e = sendPerm[k], r = rcv[e]
void messageBwdSender(cudaStream_t s, const int32_t* sendPtr, const int32_t* sendPerm,
                      const int32_t* rcv, const float* dagg, const float* invCnt, const float* f2,
                      int N, int C, float* dhs);
// Per-graph mean readout, masked MSE loss (double, written to lossOut) and, when
// dr2 is non-null, d loss / d r2 per node.
void readoutLoss(cudaStream_t s, const float* r2, const int32_t* nodeStart, const int32_t* nNode,
                 const float* target, const float* mask, int G, bool meanReadout, float* pred,
                 double* lossOut, float* dr2);
// dr1[n,j] = dr2[n] * w2[j] * ssp'(r1[n,j])
void readoutBwdHidden(cudaStream_t s, const float* dr2, const float* w2, const float* r1, int N,
                      int R, float* dr1);
// gW[z] = sum_{n: atom[n]==z} dh[n], gb = sum_n dh[n]: onehot(atom)^T dh through
// gemmTN (oneHot: N x classes scratch; scratch: gemmTNScratchFloats(N, classes, C)).
void embedBwd(cudaStream_t s, const int32_t* atom, const float* dh, int N, int C, int classes,
              float* gW, float* gb, float* oneHot, float* scratch);

}  // namespace cu
}  // namespace gnn
