// The CUDA training engine (cuda_api.h): device store, model, plans whose
// training step is captured as CUDA graphs, and the kernel test hooks. The
// model program runs through CudaExec (models/exec_cuda.cuh); the kernels
// live one file per family (common.cuh lists them beside their CPU twins).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/backend.h"
#include "cuda/cuda_api.h"
#include "core/models/model.h"
#include "core/models/program.h"
#include "core/models/weights.h"
#include "core/pack.h"
#include "cuda/adam.cuh"
#include "cuda/common.cuh"
#include "cuda/dense.cuh"
#include "cuda/models/exec_cuda.cuh"
#include "cuda/models/plan.cuh"
#include "cuda/pack.cuh"
#include "cuda/segment.cuh"

namespace gnn {

namespace {
using Clock = std::chrono::steady_clock;

void requireDevice() {
  static int checked = -1;
  if (checked < 0) {
    checked = cudaDeviceCount() > 0 ? 1 : 0;
  }
  if (!checked)
    throw Error(ErrorKind::Generic, "ERR_GNN_NO_DEVICE",
                "no usable CUDA device (no GPU or no driver); this build has CUDA but the machine "
                "cannot run it: use the cpu device");
  static bool prepared = false;
  if (!prepared) {
    cu::prepareKernels();
    prepared = true;
  }
}

using cu::DevMem;
using cu::upload;

using PassW = gnn::PassW<float>;
using ModelW = gnn::ModelW<float>;

constexpr size_t kHdrAdam = 16, kHdrIds = 64;  // header: count @0, AdamDev @16, ids @64
}  // namespace

// ---- store / model ----------------------------------------------------------------
std::shared_ptr<CudaStore> cudaUploadStore(const StoreView& s, double mean, double scale) {
  requireDevice();
  validateStoreFull(s);
  if (!(scale > 0) || !std::isfinite(mean)) throwRange("targetScale must be > 0 and targetMean finite");
  if (s.numNodes > INT32_MAX || s.numEdges > INT32_MAX) throwRange("store too large for int32 indices");
  auto st = std::make_shared<CudaStore>();
  const size_t G = s.numGraphs, N = s.numNodes, E = s.numEdges;
  st->numGraphs = s.numGraphs;
  st->nodeOffset.assign(s.nodeOffset, s.nodeOffset + G + 1);
  st->edgeOffset.assign(s.edgeOffset, s.edgeOffset + G + 1);
  int32_t* no = st->mem.alloc<int32_t>(G + 1);
  int32_t* eo = st->mem.alloc<int32_t>(G + 1);
  uint8_t* an = st->mem.alloc<uint8_t>(N);
  int32_t* sn = st->mem.alloc<int32_t>(E);
  int32_t* rc = st->mem.alloc<int32_t>(E);
  float* di = st->mem.alloc<float>(E);
  int32_t* sp = st->mem.alloc<int32_t>(E);
  float* tg = st->mem.alloc<float>(G);
  upload(no, s.nodeOffset, G + 1);
  upload(eo, s.edgeOffset, G + 1);
  upload(an, s.atomicNumber, N);
  upload(sn, s.senders, E);
  upload(rc, s.receivers, E);
  upload(di, s.distance, E);
  upload(sp, s.senderPerm, E);
  std::vector<float> t(G);
  for (size_t g = 0; g < G; ++g) t[g] = (float)((s.target[g] - mean) / scale);
  upload(tg, t.data(), G);
  st->dev = cu::DevStore{s.numGraphs, no, eo, an, sn, rc, di, sp, tg};
  return st;
}

std::shared_ptr<CudaModel> cudaCreateModel(const ModelConfig& cfg, const float* params, int64_t count) {
  if (cfg.kind == ModelKind::PaiNN)
    throw Error(ErrorKind::Range, "ERR_GNN_CUDA_UNSUPPORTED",
                "the CUDA engine does not run PaiNN yet (its kernels have not been run on a GPU); train PaiNN on the CPU");
  requireDevice();
  auto m = std::make_shared<CudaModel>();
  m->cfg = cfg;
  m->layout = paramLayout(cfg);
  m->P = m->layout.total;
  if (count != m->P)
    throwRange("params has " + std::to_string(count) + " values, the model needs " + std::to_string(m->P));
  m->params = m->mem.alloc<float>(m->P);
  m->grads = m->mem.alloc<float>(m->P);
  m->m = m->mem.alloc<float>(m->P);
  m->v = m->mem.alloc<float>(m->P);
  upload(m->params, params, m->P);
  GNN_CU(cudaMemset(m->grads, 0, m->P * sizeof(float)));
  cudaResetAdam(*m);
  return m;
}
int64_t cudaModelParamCount(const CudaModel& m) { return m.P; }
void cudaDownloadParams(const CudaModel& m, float* out, int64_t count) {
  if (count != m.P) throwRange("params output must have " + std::to_string(m.P) + " values");
  GNN_CU(cudaDeviceSynchronize());
  GNN_CU(cudaMemcpy(out, m.params, m.P * sizeof(float), cudaMemcpyDeviceToHost));
}
void cudaDownloadGrads(const CudaModel& m, float* out, int64_t count) {
  if (count != m.P) throwRange("grads output must have " + std::to_string(m.P) + " values");
  GNN_CU(cudaDeviceSynchronize());
  GNN_CU(cudaMemcpy(out, m.grads, m.P * sizeof(float), cudaMemcpyDeviceToHost));
}
void cudaResetAdam(CudaModel& m) {
  GNN_CU(cudaMemset(m.m, 0, m.P * sizeof(float)));
  GNN_CU(cudaMemset(m.v, 0, m.P * sizeof(float)));
}

void cudaPoisonGrads(CudaModel& m) {
  GNN_CU(cudaDeviceSynchronize());
  GNN_CU(cudaMemset(m.grads, 0xFF, m.P * sizeof(float)));  // all-ones bits: NaN
}

// ---- plan ---------------------------------------------------------------------------------
std::shared_ptr<CudaPlan> cudaCreatePlan(std::shared_ptr<CudaStore> store, std::shared_ptr<CudaModel> model,
                                         const PackShape& shape, bool timing) {
  requireDevice();
  if (!store || !model) throwType("cudaCreatePlan needs a store and a model");
  if (shape.nodes < 1 || shape.edges < 0 || shape.graphs < 1 || shape.nodes > INT32_MAX - 1 ||
      shape.edges > INT32_MAX - 1 || shape.graphs > (1 << 20))
    throwRange("plan shape {nodes: " + std::to_string(shape.nodes) + ", edges: " + std::to_string(shape.edges) +
                   ", graphs: " + std::to_string(shape.graphs) + "} is out of range",
               "ERR_GNN_SHAPE");
  auto p = std::make_shared<CudaPlan>();
  p->store = store;
  p->model = model;
  p->shape = shape;
  p->timing = timing;
  const ModelConfig& c = model->cfg;
  const size_t N = shape.nodes, E = shape.edges, G = shape.graphs, C = c.latent, H = 2 * C,
               K = c.basis, R = c.readoutHidden;
  GNN_CU(cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking));
  for (auto& x : p->ev) GNN_CU(cudaEventCreate(&x));
  DevMem& M = p->mem;
  cu::DevBatch& b = p->b;
  b.atom = M.alloc<int32_t>(N);
  b.snd = M.alloc<int32_t>(E);
  b.rcv = M.alloc<int32_t>(E);
  b.nNode = M.alloc<int32_t>(G);
  b.recvPtr = M.alloc<int32_t>(N + 1);
  b.sendPerm = M.alloc<int32_t>(E);
  b.sendPtr = M.alloc<int32_t>(N + 1);
  b.nodeStart = M.alloc<int32_t>(G + 1);
  b.edgeStart = M.alloc<int32_t>(G + 1);
  b.meta = M.alloc<int32_t>(4);
  b.dist = M.alloc<float>(E);
  b.target = M.alloc<float>(G);
  b.mask = M.alloc<float>(G);
  p->hdrBytes = kHdrIds + G * sizeof(int32_t);
  p->hdrDev = M.alloc<unsigned char>(p->hdrBytes);
  GNN_CU(cudaMallocHost((void**)&p->hdrHost, p->hdrBytes));
  std::memset(p->hdrHost, 0, p->hdrBytes);
  p->lossDev = M.alloc<double>(1);
  GNN_CU(cudaMallocHost((void**)&p->lossHost, sizeof(double)));
  for (int k = 0; k < program::kBufCount; ++k) {
    const double n = program::bufElems(c, shape, (program::Buf)k);
    p->act[k] = n > 0 ? M.alloc<float>((size_t)n) : nullptr;
  }
  const size_t Q = c.numClasses;
  p->oneHot = M.alloc<float>(N * Q);
  const int wide = (int)std::max({K, H, C, R, Q});
  p->scratch = M.alloc<float>(std::max(cu::gemmTNScratchFloats((int)E, wide, (int)std::max(H, C)),
                                       cu::gemmTNScratchFloats((int)N, wide, (int)std::max(H, C))));
  p->stats.deviceBytes = M.bytes;
  return p;
}

CudaPlanStats cudaPlanStats(const CudaPlan& p) { return p.stats; }
PackShape cudaPlanShape(const CudaPlan& p) { return p.shape; }

namespace {

const int32_t* countDev(const CudaPlan& p) { return (const int32_t*)p.hdrDev; }
const int32_t* idsDev(const CudaPlan& p) { return (const int32_t*)(p.hdrDev + kHdrIds); }

// Host validation (ids in range, batch fits the shape) and header fill.
void prepareHeader(CudaPlan& p, const int32_t* ids, int64_t count, const AdamArgs* adam) {
  const CudaStore& s = *p.store;
  const PackShape& sh = p.shape;
  if (count < 0 || count > sh.graphs) throwRange("graph count " + std::to_string(count) + " exceeds the plan's graphs " + std::to_string(sh.graphs), "ERR_GNN_SHAPE");
  // The same id and shape checks as the CPU packer, on the host copies of the offsets.
  StoreView offsets;
  offsets.numGraphs = s.numGraphs;
  offsets.nodeOffset = s.nodeOffset.data();
  offsets.edgeOffset = s.edgeOffset.data();
  checkPackShape(batchTotals(offsets, ids, count), sh);
  const int32_t c32 = (int32_t)count;
  std::memcpy(p.hdrHost, &c32, sizeof(c32));
  if (adam) {
    if (!(adam->bc1 > 0) || !(adam->bc2 > 0)) throwRange("adam bias corrections must be > 0");
    const cu::AdamDev a = cu::adamScalars(adam->lr, adam->beta1, adam->beta2, adam->eps, adam->bc1,
                                          adam->bc2, adam->gradScale, adam->weightDecay);
    std::memcpy(p.hdrHost + kHdrAdam, &a, sizeof(a));
  }
  if (count) std::memcpy(p.hdrHost + kHdrIds, ids, (size_t)count * sizeof(int32_t));
}

void enqueuePack(CudaPlan& p) {
  GNN_CU(cudaMemcpyAsync(p.hdrDev, p.hdrHost, p.hdrBytes, cudaMemcpyHostToDevice, p.stream));
  cu::profMark(p.stream, "pack: header H2D");
  cu::pack(p.stream, p.store->dev, countDev(p), idsDev(p), (int)p.shape.nodes, (int)p.shape.edges,
           (int)p.shape.graphs, p.b);
}

program::Shape planShape(const CudaPlan& p) {
  return program::Shape{p.shape.nodes, p.shape.edges, p.shape.graphs};
}

void enqueueForward(CudaPlan& p, bool withGrad) {
  CudaExec x(p, withGrad);
  program::forward<float>(x, p.model->cfg, p.model->layout, p.model->params, planShape(p));
}

void enqueueBackward(CudaPlan& p) {
  CudaExec x(p, true);
  program::backward<float>(x, p.model->cfg, p.model->layout, p.model->params, p.model->grads, planShape(p));
}

void enqueueStep(CudaPlan& p) {
  enqueueForward(p, true);
  enqueueBackward(p);
  CudaModel& m = *p.model;
  {
    cu::SiteScope sc(kSiteAdam, -1);  // the CPU profile's "adam" (model_binding.cpp)
    cu::adam(p.stream, m.params, m.grads, m.m, m.v, m.P, (const cu::AdamDev*)(p.hdrDev + kHdrAdam));
  }
  GNN_CU(cudaMemcpyAsync(p.lossHost, p.lossDev, sizeof(double), cudaMemcpyDeviceToHost, p.stream));
  cu::profMark(p.stream, "loss D2H");
}

cudaGraphExec_t capture(CudaPlan& p, void (*fn)(CudaPlan&)) {
  cudaGraph_t g = nullptr;
  GNN_CU(cudaStreamBeginCapture(p.stream, cudaStreamCaptureModeThreadLocal));
  try {
    fn(p);
  } catch (...) {
    cudaStreamEndCapture(p.stream, &g);
    if (g) cudaGraphDestroy(g);
    throw;
  }
  GNN_CU(cudaStreamEndCapture(p.stream, &g));
  cudaGraphExec_t ex = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&ex, g, 0);
  cudaGraphDestroy(g);
  GNN_CU(err);
  return ex;
}

void ensureCaptured(CudaPlan& p) {
  if (p.packExec && p.stepExec) return;
  const auto t0 = Clock::now();
  cu::Cost cost;
  cu::setCostCounter(&cost);
  try {
    p.packExec = capture(p, enqueuePack);
    p.stepExec = capture(p, enqueueStep);
  } catch (...) {
    cu::setCostCounter(nullptr);
    throw;
  }
  cu::setCostCounter(nullptr);
  GNN_CU(cudaGraphUpload(p.packExec, p.stream));
  GNN_CU(cudaGraphUpload(p.stepExec, p.stream));
  GNN_CU(cudaStreamSynchronize(p.stream));
  p.stats.captures++;
  p.stats.captureSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
  p.stats.flopsPerStep = cost.flops;
  p.stats.bytesPerStep = cost.bytes;
}

}  // namespace

double cudaTrainStep(CudaPlan& p, const int32_t* ids, int64_t count, const AdamArgs& adam) {
  prepareHeader(p, ids, count, &adam);
  ensureCaptured(p);
  if (p.timing) GNN_CU(cudaEventRecord(p.ev[0], p.stream));
  GNN_CU(cudaGraphLaunch(p.packExec, p.stream));
  if (p.timing) GNN_CU(cudaEventRecord(p.ev[1], p.stream));
  GNN_CU(cudaGraphLaunch(p.stepExec, p.stream));
  if (p.timing) GNN_CU(cudaEventRecord(p.ev[2], p.stream));
  GNN_CU(cudaStreamSynchronize(p.stream));
  if (p.timing) {
    float a = 0, b = 0;
    GNN_CU(cudaEventElapsedTime(&a, p.ev[0], p.ev[1]));
    GNN_CU(cudaEventElapsedTime(&b, p.ev[1], p.ev[2]));
    p.stats.lastBatchMs = a;
    p.stats.lastStepMs = b;
  }
  p.stats.steps++;
  return *p.lossHost;
}

void cudaSetGemmImpl(const std::string& name) {
  if (name == "ffma") cu::setGemmImpl(cu::kGemmFfma);
  else if (name == "tf32x3") cu::setGemmImpl(cu::kGemmTf32x3);
  else throwRange("unknown gemm implementation '" + name + "' (ffma or tf32x3)");
}
std::string cudaGemmImpl() { return cu::gemmImplName(cu::gemmImpl()); }

std::vector<CudaLaunchTime> cudaProfileStep(CudaPlan& p, const int32_t* ids, int64_t count, const AdamArgs& adam) {
  prepareHeader(p, ids, count, &adam);
  GNN_CU(cudaStreamSynchronize(p.stream));
  cu::Profiler prof;
  std::vector<CudaLaunchTime> out;
  try {
    cu::spin(p.stream, 20.0);  // the host enqueues the whole step meanwhile
    cu::setProfiler(&prof);
    cu::profMark(p.stream, "start");
    enqueuePack(p);
    enqueueStep(p);
    cu::setProfiler(nullptr);
    GNN_CU(cudaStreamSynchronize(p.stream));
    for (size_t i = 1; i < prof.ev.size(); ++i) {
      float ms = 0;
      GNN_CU(cudaEventElapsedTime(&ms, prof.ev[i - 1], prof.ev[i]));
      CudaLaunchTime t;
      t.name = prof.names[i];
      t.ms = ms;
      const int site = prof.sites[i];
      t.site = site >= 0 && site < kSiteCount ? kKernelSites[site].name : "";
      t.pass = prof.passes[i];
      out.push_back(std::move(t));
    }
  } catch (...) {
    cu::setProfiler(nullptr);
    for (auto e : prof.ev) cudaEventDestroy(e);
    throw;
  }
  for (auto e : prof.ev) cudaEventDestroy(e);
  return out;
}

double cudaComputeGrads(CudaPlan& p, const int32_t* ids, int64_t count) {
  prepareHeader(p, ids, count, nullptr);
  enqueuePack(p);
  enqueueForward(p, true);
  enqueueBackward(p);
  double loss = 0;
  GNN_CU(cudaMemcpyAsync(&loss, p.lossDev, sizeof(double), cudaMemcpyDeviceToHost, p.stream));
  GNN_CU(cudaStreamSynchronize(p.stream));
  return loss;
}

double cudaPredict(CudaPlan& p, const int32_t* ids, int64_t count, float* predOut) {
  prepareHeader(p, ids, count, nullptr);
  enqueuePack(p);
  enqueueForward(p, false);
  double loss = 0;
  GNN_CU(cudaMemcpyAsync(&loss, p.lossDev, sizeof(double), cudaMemcpyDeviceToHost, p.stream));
  if (predOut)
    GNN_CU(cudaMemcpyAsync(predOut, p.pred(), sizeof(float) * p.shape.graphs, cudaMemcpyDeviceToHost, p.stream));
  GNN_CU(cudaStreamSynchronize(p.stream));
  return loss;
}

void cudaPackForTest(CudaPlan& p, const int32_t* ids, int64_t count, const PackOut<float>& o) {
  prepareHeader(p, ids, count, nullptr);
  enqueuePack(p);
  GNN_CU(cudaStreamSynchronize(p.stream));
  const size_t N = p.shape.nodes, E = p.shape.edges, G = p.shape.graphs;
  auto dl = [](void* dst, const void* src, size_t bytes) {
    if (dst && bytes) GNN_CU(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  };
  dl(o.atomicNumber, p.b.atom, N * 4);
  dl(o.senders, p.b.snd, E * 4);
  dl(o.receivers, p.b.rcv, E * 4);
  dl(o.distance, p.b.dist, E * 4);
  dl(o.nNode, p.b.nNode, G * 4);
  dl(o.target, p.b.target, G * 4);
  dl(o.mask, p.b.mask, G * 4);
  dl(o.recvPtr, p.b.recvPtr, (N + 1) * 4);
  dl(o.sendPerm, p.b.sendPerm, E * 4);
  dl(o.sendPtr, p.b.sendPtr, (N + 1) * 4);
  if (o.nEdge) {
    std::vector<int32_t> es(G + 1);
    dl(es.data(), p.b.edgeStart, (G + 1) * 4);
    for (size_t g = 0; g < G; ++g) o.nEdge[g] = es[g + 1] - es[g];
  }
  if (o.nodeGraph) {
    std::vector<int32_t> ns(G + 1);
    dl(ns.data(), p.b.nodeStart, (G + 1) * 4);
    for (size_t g = 0; g < G; ++g)
      for (int32_t n = ns[g]; n < ns[g + 1]; ++n) o.nodeGraph[n] = (int32_t)g;
  }
}

double cudaMeasureCopyBandwidth(size_t bytes) {
  requireDevice();
  DevMem m;
  char* a = m.alloc<char>(bytes);
  char* b = m.alloc<char>(bytes);
  GNN_CU(cudaMemset(a, 1, bytes));
  cudaEvent_t e0, e1;
  GNN_CU(cudaEventCreate(&e0));
  GNN_CU(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int i = 0; i < 7; ++i) {
    GNN_CU(cudaEventRecord(e0));
    GNN_CU(cudaMemcpy(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice));
    GNN_CU(cudaEventRecord(e1));
    GNN_CU(cudaEventSynchronize(e1));
    float t = 0;
    GNN_CU(cudaEventElapsedTime(&t, e0, e1));
    if (i > 0) ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return 2.0 * (double)bytes / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

// ---- kernel test hooks ---------------------------------------------------------------------
namespace cudatest {
namespace {
struct Tmp {
  DevMem mem;
  template <class T>
  T* in(const T* h, size_t n) {
    if (!h) return nullptr;
    T* d = mem.alloc<T>(n);
    upload(d, h, n);
    return d;
  }
};
template <class T>
void down(T* h, const T* d, size_t n) {
  GNN_CU(cudaDeviceSynchronize());
  GNN_CU(cudaMemcpy(h, d, n * sizeof(T), cudaMemcpyDeviceToHost));
}
}  // namespace

void gemm(int M, int N, int K, const float* A, bool transA, const float* B, bool transB, float* C,
          bool accumulate, int mode, const float* bias, const float* aux, const float* Ps,
          const float* Pr, int psRows, const int32_t* snd, const int32_t* rcv) {
  requireDevice();
  Tmp t;
  cu::Epi e;
  e.mode = mode;
  e.bias = t.in(bias, N);
  e.aux = t.in(aux, (size_t)M * N);
  e.ldaux = N;
  e.Ps = t.in(Ps, (size_t)psRows * N);
  e.Pr = t.in(Pr, (size_t)psRows * N);
  e.ldp = N;
  e.snd = t.in(snd, M);
  e.rcv = t.in(rcv, M);
  const float* dA = t.in(A, (size_t)M * K);
  const float* dB = t.in(B, (size_t)K * N);
  float* dC = t.in(C, (size_t)M * N);
  cu::gemm(0, M, N, K, dA, transA ? M : K, transA, dB, transB ? K : N, transB, dC, N, accumulate, e);
  down(C, dC, (size_t)M * N);
}

void gemmTN(int M, int K, int N, const float* X, const float* D, float* G, float* gbias, bool acc) {
  requireDevice();
  Tmp t;
  const float* dX = t.in(X, (size_t)M * K);
  const float* dD = t.in(D, (size_t)M * N);
  float* dG = t.in(G, (size_t)K * N);
  float* db = t.in(gbias, N);
  float* scr = t.mem.alloc<float>(cu::gemmTNScratchFloats(M, K, N));
  cu::gemmTN(0, M, K, N, dX, K, dD, N, dG, db, acc, scr);
  down(G, dG, (size_t)K * N);
  if (gbias) down(gbias, db, N);
}

void segmentSumCsr(const float* src, const int32_t* ptr, int rows, int srcRows, int width, float* out) {
  requireDevice();
  Tmp t;
  const float* ds = t.in(src, (size_t)srcRows * width);
  const int32_t* dp = t.in(ptr, rows + 1);
  float* dout = t.in(out, (size_t)rows * width);
  cu::csrRowSum(0, ds, nullptr, dp, rows, width, dout);
  down(out, dout, (size_t)rows * width);
}

void gatherRowsBackward(const float* gradOut, const int32_t* perm, const int32_t* ptr, int rows,
                        int srcRows, int width, float* gradSrc) {
  requireDevice();
  Tmp t;
  const float* ds = t.in(gradOut, (size_t)srcRows * width);
  const int32_t* dperm = t.in(perm, srcRows);
  const int32_t* dp = t.in(ptr, rows + 1);
  float* dout = t.in(gradSrc, (size_t)rows * width);
  cu::csrRowSum(0, ds, dperm, dp, rows, width, dout);
  down(gradSrc, dout, (size_t)rows * width);
}

void ssp(const float* x, int n, float* out) {
  requireDevice();
  Tmp t;
  const float* dx = t.in(x, n);
  float* dout = t.in(out, n);
  cu::sspForward(0, dx, n, dout);
  down(out, dout, n);
}

void adam(float* p, const float* g, float* m, float* v, int64_t n, const AdamArgs& a) {
  requireDevice();
  Tmp t;
  float* dp = t.in(p, n);
  const float* dg = t.in(g, n);
  float* dm = t.in(m, n);
  float* dv = t.in(v, n);
  const cu::AdamDev h = cu::adamScalars(a.lr, a.beta1, a.beta2, a.eps, a.bc1, a.bc2, a.gradScale, a.weightDecay);
  cu::AdamDev* dh = t.in(&h, 1);
  cu::adam(0, dp, dg, dm, dv, n, dh);
  down(p, dp, n);
  down(m, dm, n);
  down(v, dv, n);
}
}  // namespace cudatest

}  // namespace gnn
