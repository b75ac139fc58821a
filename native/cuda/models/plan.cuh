// The CUDA engine's device-side objects behind cuda_api.h's opaque types (the
// CUDA twin of core/models/model.h's Plan<T>): the device store, the model's
// device parameters and optimiser state, and a plan's buffers for one padded
// shape (activations in the model program's layout, program.h's Buf). Used by
// engine.cu and by the executor (models/exec_cuda.cuh).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/models/model.h"
#include "core/models/program.h"
#include "cuda/common.cuh"
#include "cuda/cuda_api.h"
#include "cuda/pack.cuh"

namespace gnn {

struct CudaStore {
  cu::DevMem mem;
  cu::DevStore dev;
  std::vector<int32_t> nodeOffset, edgeOffset;  // host copies for validation
  int64_t numGraphs = 0;
};

struct CudaModel {
  ModelConfig cfg;
  ParamLayout layout;
  cu::DevMem mem;
  float *params = nullptr, *grads = nullptr, *m = nullptr, *v = nullptr;
  int64_t P = 0;
};

struct CudaPlan {
  std::shared_ptr<CudaStore> store;
  std::shared_ptr<CudaModel> model;
  PackShape shape;
  bool timing = false;
  cudaStream_t stream = nullptr;
  cu::DevMem mem;
  cu::DevBatch b{};
  unsigned char* hdrDev = nullptr;
  unsigned char* hdrHost = nullptr;
  size_t hdrBytes = 0;
  double* lossDev = nullptr;
  double* lossHost = nullptr;
  float* act[program::kBufCount] = {};  // the model program's activation layout (program.h)
  float *scratch = nullptr, *oneHot = nullptr;
  float* pred() const { return act[program::kBufPred]; }
  cudaGraphExec_t packExec = nullptr, stepExec = nullptr;
  cudaEvent_t ev[3] = {nullptr, nullptr, nullptr};
  CudaPlanStats stats;
  ~CudaPlan() {
    if (packExec) cudaGraphExecDestroy(packExec);
    if (stepExec) cudaGraphExecDestroy(stepExec);
    for (auto& x : ev) if (x) cudaEventDestroy(x);
    if (hdrHost) cudaFreeHost(hdrHost);
    if (lossHost) cudaFreeHost(lossHost);
    if (stream) cudaStreamDestroy(stream);
  }
};

}  // namespace gnn
