// The CUDA interface (cuda_api.h, backend.h) for builds without the CUDA
// sources: compiled instead of the .cu files (CMakeLists.txt: gnncudastub;
// node-gyp builds are CPU only). No device; every engine entry point throws
// ERR_GNN_NO_CUDA.
#include "cuda/backend.h"
#include "cuda/cuda_api.h"

namespace gnn {
bool cudaCompiled() { return false; }
int cudaDeviceCount() { return 0; }

namespace {
[[noreturn]] void noCuda() {
  throw Error(ErrorKind::Generic, "ERR_GNN_NO_CUDA",
              "gnnbatch was built without CUDA (rebuild with nvcc on the PATH and GNN_CUDA=ON)");
}
}  // namespace

std::shared_ptr<CudaStore> cudaUploadStore(const StoreView&, double, double) { noCuda(); }
std::shared_ptr<CudaModel> cudaCreateModel(const ModelConfig&, const float*, int64_t) { noCuda(); }
int64_t cudaModelParamCount(const CudaModel&) { noCuda(); }
void cudaDownloadParams(const CudaModel&, float*, int64_t) { noCuda(); }
void cudaDownloadGrads(const CudaModel&, float*, int64_t) { noCuda(); }
void cudaResetAdam(CudaModel&) { noCuda(); }
void cudaPoisonGrads(CudaModel&) { noCuda(); }
std::shared_ptr<CudaPlan> cudaCreatePlan(std::shared_ptr<CudaStore>, std::shared_ptr<CudaModel>,
                                         const PackShape&, bool) { noCuda(); }
CudaPlanStats cudaPlanStats(const CudaPlan&) { noCuda(); }
PackShape cudaPlanShape(const CudaPlan&) { noCuda(); }
double cudaTrainStep(CudaPlan&, const int32_t*, int64_t, const AdamArgs&) { noCuda(); }
double cudaComputeGrads(CudaPlan&, const int32_t*, int64_t) { noCuda(); }
double cudaPredict(CudaPlan&, const int32_t*, int64_t, float*) { noCuda(); }
void cudaPackForTest(CudaPlan&, const int32_t*, int64_t, const PackOut<float>&) { noCuda(); }
double cudaMeasureCopyBandwidth(size_t) { noCuda(); }
void cudaSetGemmImpl(const std::string&) { noCuda(); }
std::string cudaGemmImpl() { noCuda(); }
std::vector<CudaLaunchTime> cudaProfileStep(CudaPlan&, const int32_t*, int64_t, const AdamArgs&) { noCuda(); }

namespace cudatest {
void gemm(int, int, int, const float*, bool, const float*, bool, float*, bool, int, const float*,
          const float*, const float*, const float*, int, const int32_t*, const int32_t*) { noCuda(); }
void gemmTN(int, int, int, const float*, const float*, float*, float*, bool) { noCuda(); }
void segmentSumCsr(const float*, const int32_t*, int, int, int, float*) { noCuda(); }
void gatherRowsBackward(const float*, const int32_t*, const int32_t*, int, int, int, float*) { noCuda(); }
void ssp(const float*, int, float*) { noCuda(); }
void adam(float*, const float*, float*, float*, int64_t, const AdamArgs&) { noCuda(); }
}  // namespace cudatest
}  // namespace gnn
