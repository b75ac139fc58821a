// JS bindings of the CUDA engine (cuda/cuda_api.h): device store, device model,
// plans (CUDA-graph captured steps). Handles are type-tagged Externals (a wrong
// handle is a TypeError). Without a CUDA build the calls throw ERR_GNN_NO_CUDA;
// without a device, ERR_GNN_NO_DEVICE. Synchronous: a step is ~1 ms of GPU work.
#include <chrono>
#include <cmath>
#include <memory>

#include "bindings.h"
#include "model_args.h"
#include "cuda/cuda_api.h"
#include "store_arg.h"

namespace gnnaddon {
namespace {

const napi_type_tag kCudaStoreTag = {0x3c6e0f9a51d24b87ULL, 0x9e21a7d4c08b5f13ULL};
const napi_type_tag kCudaModelTag = {0x71b4d2e8a6c93f05ULL, 0x2d5f8c1e94a07b36ULL};
const napi_type_tag kCudaPlanTag = {0xa58c3e1f7b209d64ULL, 0x4f16b9d2e3c85a70ULL};

struct StoreH { std::shared_ptr<gnn::CudaStore> p; };
struct ModelH { std::shared_ptr<gnn::CudaModel> p; };
struct PlanH { std::shared_ptr<gnn::CudaPlan> p; };

template <class H>
Napi::Value wrap(Napi::Env env, H* h, const napi_type_tag& tag) {
  auto ext = Napi::External<H>::New(env, h, [](Napi::Env, H* x) { delete x; });
  napi_type_tag_object(env, ext, &tag);
  return ext;
}
template <class H>
H* unwrap(Napi::Env env, const Napi::Value& v, const napi_type_tag& tag, const char* what) {
  bool ok = false;
  if (v.IsExternal() && napi_check_object_type_tag(env, v, &tag, &ok) != napi_ok) ok = false;
  if (!ok) typeError(env, std::string(what) + " must be a handle returned by " +
                              (&tag == &kCudaStoreTag ? "cudaUploadStore" : &tag == &kCudaModelTag ? "cudaCreateModel" : "cudaCreatePlan"));
  return v.As<Napi::External<H>>().Data();
}

// The CUDA engine's Adam has no clipping (yet): refuse rather than ignore it.
gnn::AdamArgs cudaAdamArg(Napi::Env env, const Napi::Value& v) {
  gnn::AdamArgs a = adamArg(env, v);
  if (a.clipNorm > 0)
    throwJs(env, gnn::ErrorKind::Generic, "ERR_GNN_UNSUPPORTED", "adam.clipNorm is not supported on the cuda device yet");
  return a;
}

Napi::Object statsObj(Napi::Env env, const gnn::CudaPlanStats& s) {
  auto o = Napi::Object::New(env);
  o.Set("captures", (double)s.captures);
  o.Set("captureSeconds", s.captureSeconds);
  o.Set("steps", (double)s.steps);
  o.Set("bytes", (double)s.deviceBytes);
  o.Set("flopsPerStep", s.flopsPerStep);
  o.Set("bytesPerStep", s.bytesPerStep);
  o.Set("lastBatchMs", s.lastBatchMs);
  o.Set("lastStepMs", s.lastStepMs);
  return o;
}

void registerCuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaUploadStore", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      const StoreValues sv = readStore(env, info[0]);
      // Numbers are never coerced: a BigInt or a string is a TypeError with a code.
      const double mean = info.Length() > 1 && !info[1].IsUndefined() ? numberArg(env, info[1], "targetMean") : 0.0;
      const double scale = info.Length() > 2 && !info[2].IsUndefined() ? numberArg(env, info[2], "targetScale") : 1.0;
      CallArgs a(env, false);
      const gnn::StoreView s = storeView(env, a, sv);
      return wrap(env, new StoreH{gnn::cudaUploadStore(s, mean, scale)}, kCudaStoreTag);
    });
  }, "cudaUploadStore"));
  exports.Set("cudaCreateModel", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      const gnn::ModelConfig c = configArg(env, info[0]);
      if (c.kind == gnn::ModelKind::PaiNN)
        rangeError(env, "the CUDA backend does not run PaiNN yet (its kernels have not been run on a GPU); train PaiNN on the CPU",
                   "ERR_GNN_CUDA_UNSUPPORTED");
      CallArgs a(env, false);
      auto p = a.view<float>(info[1], "params", Access::In);
      return wrap(env, new ModelH{gnn::cudaCreateModel(c, p.data, (int64_t)p.size)}, kCudaModelTag);
    });
  }, "cudaCreateModel"));
  exports.Set("cudaCreatePlan", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto* st = unwrap<StoreH>(env, info[0], kCudaStoreTag, "store");
      auto* m = unwrap<ModelH>(env, info[1], kCudaModelTag, "model");
      const gnn::PackShape sh = shapeArg(env, info[2], "shape", kCudaPlanShape);
      const bool timing = info.Length() > 3 && !info[3].IsUndefined() && boolArg(env, info[3], "timing");
      return wrap(env, new PlanH{gnn::cudaCreatePlan(st->p, m->p, sh, timing)}, kCudaPlanTag);
    });
  }, "cudaCreatePlan"));
  exports.Set("cudaTrainStep", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto* p = unwrap<PlanH>(env, info[0], kCudaPlanTag, "plan");
      const gnn::AdamArgs adam = cudaAdamArg(env, info[2]);
      CallArgs a(env, false);
      auto ids = a.view<int32_t>(info[1], "ids", Access::In);
      const auto t0 = std::chrono::steady_clock::now();
      const double loss = gnn::cudaTrainStep(*p->p, ids.data, (int64_t)ids.size, adam);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      auto o = statsObj(env, gnn::cudaPlanStats(*p->p));
      o.Set("loss", loss);
      o.Set("seconds", sec);
      return o;
    });
  }, "cudaTrainStep"));
  exports.Set("cudaPredict", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto* p = unwrap<PlanH>(env, info[0], kCudaPlanTag, "plan");
      CallArgs a(env, false);
      auto ids = a.view<int32_t>(info[1], "ids", Access::In);
      float* out = nullptr;
      if (info.Length() > 2 && !info[2].IsUndefined())
        out = a.view<float>(info[2], "predOut", Access::Out, -1, gnn::cudaPlanShape(*p->p).graphs).data;
      a.checkAliasing();
      return Napi::Number::New(env, gnn::cudaPredict(*p->p, ids.data, (int64_t)ids.size, out));
    });
  }, "cudaPredict"));
  exports.Set("cudaDownloadParams", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto* m = unwrap<ModelH>(env, info[0], kCudaModelTag, "model");
      CallArgs a(env, false);
      auto out = a.view<float>(info[1], "out", Access::Out, gnn::cudaModelParamCount(*m->p));
      gnn::cudaDownloadParams(*m->p, out.data, (int64_t)out.size);
      return env.Undefined();
    });
  }, "cudaDownloadParams"));
  exports.Set("cudaPlanInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto* p = unwrap<PlanH>(env, info[0], kCudaPlanTag, "plan");
      return statsObj(env, gnn::cudaPlanStats(*p->p));
    });
  }, "cudaPlanInfo"));
}

}  // namespace
GNN_REGISTER_BINDING(registerCuda);
}  // namespace gnnaddon
