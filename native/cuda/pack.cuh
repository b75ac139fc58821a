// Device packing (the CUDA twin of core/pack.h's packGraphs, Jraph padding):
// the batch's graphs copied from the device-resident store into a plan's
// buffers, checked bitwise against packGraphs by gnn_native_check.
#pragma once
#include "cuda/common.cuh"

namespace gnn {
namespace cu {

struct DevStore {
  int64_t numGraphs = 0;
  const int32_t* nodeOffset = nullptr;
  const int32_t* edgeOffset = nullptr;
  const uint8_t* atomicNumber = nullptr;
  const int32_t* senders = nullptr;
  const int32_t* receivers = nullptr;
  const float* distance = nullptr;
  const int32_t* senderPerm = nullptr;
  const float* target = nullptr;
};
struct DevBatch {
  int32_t *atom, *snd, *rcv, *nNode, *recvPtr, *sendPerm, *sendPtr, *nodeStart, *edgeStart, *meta;
  float *dist, *target, *mask;
};
// ids/count live in device memory (count at *countDev) so the launch can be
// captured once and replayed with new ids.
void pack(cudaStream_t s, const DevStore& st, const int32_t* countDev, const int32_t* idsDev,
          int N, int E, int G, const DevBatch& b);

}  // namespace cu
}  // namespace gnn
