// JS bindings of models, plans, training steps and Adam.
//
// A plan is an External with a type tag (a wrong handle is a TypeError, never a
// crash). A plan may only be used by one call at a time: a second call while
// an async step runs gets an Error with code ERR_GNN_BUSY.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>

#include "bindings.h"
#include "model_args.h"
#include "core/adam.h"
#include "core/dense.h"
#include "core/models/model.h"
#include "worker.h"

namespace gnnaddon {
namespace {

const napi_type_tag kPlanTag = {0x6a1f5c2b9e3d4a71ULL, 0x8c0b7e25f4d61a93ULL};

struct PlanHolder {
  bool f64 = false;
  std::unique_ptr<gnn::Plan<float>> pf;
  std::unique_ptr<gnn::Plan<double>> pd;
  std::atomic<bool> busy{false};
  const gnn::ModelConfig& cfg() const { return f64 ? pd->cfg : pf->cfg; }
  const gnn::ParamLayout& layout() const { return f64 ? pd->layout : pf->layout; }
  gnn::PackShape cap() const { return f64 ? pd->cap : pf->cap; }
  size_t bytes() const { return f64 ? pd->bytes() : pf->bytes(); }
};

struct BusyGuard {
  PlanHolder* h;
  explicit BusyGuard(PlanHolder* p) : h(p) {
    bool expected = false;
    if (!h->busy.compare_exchange_strong(expected, true))
      throw gnn::Error(gnn::ErrorKind::Generic, "ERR_GNN_BUSY", "plan is in use by another call (an async step is running)");
  }
  ~BusyGuard() { if (h) h->busy.store(false); }
  void release() { h = nullptr; }
};

PlanHolder* planArg(Napi::Env env, const Napi::Value& v) {
  bool ok = false;
  if (v.IsExternal()) {
    napi_status st = napi_check_object_type_tag(env, v, &kPlanTag, &ok);
    if (st != napi_ok) ok = false;
  }
  if (!ok) typeError(env, "plan must be a handle returned by createPlan");
  auto* h = v.As<Napi::External<PlanHolder>>().Data();
  if (!h) typeError(env, "plan has been released");
  return h;
}

template <class T>
gnn::BatchInputs<T> inputsArg(Napi::Env env, const Napi::Value& v, const Napi::Value& shapeV) {
  auto o = objArg(env, v, "inputs");
  auto so = objArg(env, shapeV, "shape");
  gnn::BatchInputs<T> b;
  b.shape.nodes = intArg(env, prop(env, so, "nodes", "shape"), "shape.nodes", 0, INT32_MAX - 1);
  b.shape.edges = intArg(env, prop(env, so, "edges", "shape"), "shape.edges", 0, INT32_MAX);
  b.shape.graphs = intArg(env, prop(env, so, "graphs", "shape"), "shape.graphs", 0, INT32_MAX);
  const auto N = b.shape.nodes, E = b.shape.edges, G = b.shape.graphs;
  const std::string n = "inputs";
  b.atomicNumber = viewAtLeast<int32_t>(env, prop(env, o, "atomicNumber", n), "inputs.atomicNumber", N).data;
  b.senders = viewAtLeast<int32_t>(env, prop(env, o, "senders", n), "inputs.senders", E).data;
  b.receivers = viewAtLeast<int32_t>(env, prop(env, o, "receivers", n), "inputs.receivers", E).data;
  b.distance = viewAtLeast<T>(env, prop(env, o, "distance", n), "inputs.distance", E).data;
  b.nNode = viewAtLeast<int32_t>(env, prop(env, o, "nNode", n), "inputs.nNode", G).data;
  b.target = viewAtLeast<T>(env, prop(env, o, "target", n), "inputs.target", G).data;
  b.mask = viewAtLeast<T>(env, prop(env, o, "mask", n), "inputs.mask", G).data;
  b.recvPtr = viewAtLeast<int32_t>(env, prop(env, o, "recvPtr", n), "inputs.recvPtr", N + 1).data;
  b.sendPerm = viewAtLeast<int32_t>(env, prop(env, o, "sendPerm", n), "inputs.sendPerm", E).data;
  b.sendPtr = viewAtLeast<int32_t>(env, prop(env, o, "sendPtr", n), "inputs.sendPtr", N + 1).data;
  return b;
}

void keepInputs(PromiseWorker& w, const Napi::Value& v) {
  auto o = v.As<Napi::Object>();
  for (const char* k : {"atomicNumber", "senders", "receivers", "distance", "nNode", "target", "mask",
                        "recvPtr", "sendPerm", "sendPtr"})
    w.Keep(o.Get(k));
}

// One fused training step: forward, backward, optional clipping, Adam.
template <class T>
struct StepResult { double loss = 0, gradNorm = 0, seconds = 0; };

template <class T>
StepResult<T> runStep(gnn::Plan<T>& p, const gnn::BatchInputs<T>& b, T* params, T* grads, T* m, T* v,
                      int64_t n, gnn::AdamArgs a) {
  auto t0 = std::chrono::steady_clock::now();
  StepResult<T> r;
  r.loss = gnn::forwardBackward(p, params, grads, b);
  if (!std::isfinite(r.loss))
    throw gnn::Error(gnn::ErrorKind::Generic, "ERR_GNN_NONFINITE", "loss is not finite (" + std::to_string(r.loss) + "): training diverged; parameters were left unchanged");
  {
    auto ta = std::chrono::steady_clock::now();
    r.gradNorm = gnn::adamStep(params, grads, m, v, n, a);
    if (p.profile) p.profSeconds[gnn::kProfAdam] += std::chrono::duration<double>(std::chrono::steady_clock::now() - ta).count();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

Napi::Object stepObj(Napi::Env env, double loss, double gnorm, double secs) {
  auto o = Napi::Object::New(env);
  o.Set("loss", loss);
  o.Set("gradNorm", gnorm);
  o.Set("seconds", secs);
  return o;
}

template <class T>
struct StepArgs {
  gnn::BatchInputs<T> b;
  T *params, *grads, *m, *v;
  int64_t n;
  gnn::AdamArgs adam;
};

template <class T>
StepArgs<T> stepArgs(Napi::Env env, const Napi::CallbackInfo& info, PlanHolder* h) {
  StepArgs<T> s;
  s.b = inputsArg<T>(env, info[1], info[2]);
  s.n = h->layout().total;
  s.params = viewOf<T>(env, info[3], "params", s.n).data;
  s.grads = viewOf<T>(env, info[4], "grads", s.n).data;
  s.m = viewOf<T>(env, info[5], "adamM", s.n).data;
  s.v = viewOf<T>(env, info[6], "adamV", s.n).data;
  s.adam = adamArg(env, info[7]);
  return s;
}

template <class T>
gnn::Plan<T>& planOf(PlanHolder* h);
template <> gnn::Plan<float>& planOf<float>(PlanHolder* h) { return *h->pf; }
template <> gnn::Plan<double>& planOf<double>(PlanHolder* h) { return *h->pd; }

template <class T>
class StepWorker : public PromiseWorker {
 public:
  StepWorker(Napi::Env env, PlanHolder* h, StepArgs<T> a) : PromiseWorker(env, "gnnbatch:trainStep"), h_(h), a_(a) {}
  void Run() override {
    struct Release { PlanHolder* h; ~Release() { h->busy.store(false); } } rel{h_};
    r_ = runStep<T>(planOf<T>(h_), a_.b, a_.params, a_.grads, a_.m, a_.v, a_.n, a_.adam);
  }
  Napi::Value Result(Napi::Env env) override { return stepObj(env, r_.loss, r_.gradNorm, r_.seconds); }
 private:
  PlanHolder* h_;
  StepArgs<T> a_;
  StepResult<T> r_;
};

template <class T>
class PredictWorker : public PromiseWorker {
 public:
  PredictWorker(Napi::Env env, PlanHolder* h, gnn::BatchInputs<T> b, const T* params, T* out)
      : PromiseWorker(env, "gnnbatch:predict"), h_(h), b_(b), params_(params), out_(out) {}
  void Run() override {
    struct Release { PlanHolder* h; ~Release() { h->busy.store(false); } } rel{h_};
    loss_ = gnn::forward(planOf<T>(h_), params_, b_, out_);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, loss_); }
 private:
  PlanHolder* h_;
  gnn::BatchInputs<T> b_;
  const T* params_;
  T* out_;
  double loss_ = 0;
};

// ---- functions ------------------------------------------------------------------

Napi::Value ModelLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto cfg = configArg(env, info[0]);
    auto L = gnn::paramLayout(cfg);
    auto o = Napi::Object::New(env);
    o.Set("total", (double)L.total);
    auto arr = Napi::Array::New(env, L.entries.size());
    for (size_t i = 0; i < L.entries.size(); ++i) {
      auto e = Napi::Object::New(env);
      e.Set("name", L.entries[i].name);
      e.Set("offset", (double)L.entries[i].offset);
      e.Set("rows", (double)L.entries[i].rows);
      e.Set("cols", (double)L.entries[i].cols);
      arr.Set((uint32_t)i, e);
    }
    o.Set("entries", arr);
    return o;
  });
}

Napi::Value CreatePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto cfg = configArg(env, info[0]);
    auto so = objArg(env, info[1], "capacity");
    gnn::PackShape cap;
    cap.nodes = intArg(env, prop(env, so, "nodes", "capacity"), "capacity.nodes", 0, INT32_MAX - 1);
    cap.edges = intArg(env, prop(env, so, "edges", "capacity"), "capacity.edges", 0, INT32_MAX);
    cap.graphs = intArg(env, prop(env, so, "graphs", "capacity"), "capacity.graphs", 0, INT32_MAX);
    std::string dtype = "float32";
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsString()) typeError(env, "dtype must be 'float32' or 'float64'");
      dtype = info[2].As<Napi::String>().Utf8Value();
    }
    if (dtype != "float32" && dtype != "float64") rangeError(env, "dtype must be 'float32' or 'float64', got '" + dtype + "'");
    auto* h = new PlanHolder();
    try {
      h->f64 = dtype == "float64";
      if (h->f64) h->pd = gnn::buildPlan<double>(cfg, cap);
      else h->pf = gnn::buildPlan<float>(cfg, cap);
    } catch (...) {
      delete h;
      throw;
    }
    auto ext = Napi::External<PlanHolder>::New(env, h, [](Napi::Env, PlanHolder* p) { delete p; });
    napi_type_tag_object(env, ext, &kPlanTag);
    return ext;
  });
}

Napi::Value PlanInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    auto o = Napi::Object::New(env);
    o.Set("bytes", (double)h->bytes());
    o.Set("dtype", h->f64 ? "float64" : "float32");
    auto cap = h->cap();
    auto c = Napi::Object::New(env);
    c.Set("nodes", (double)cap.nodes);
    c.Set("edges", (double)cap.edges);
    c.Set("graphs", (double)cap.graphs);
    o.Set("capacity", c);
    o.Set("params", (double)h->layout().total);
    return o;
  });
}

Napi::Value TrainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 8) typeError(env, "trainStep(plan, inputs, shape, params, grads, adamM, adamV, adam) takes 8 arguments");
    auto* h = planArg(env, info[0]);
    BusyGuard g(h);
    if (h->f64) {
      auto a = stepArgs<double>(env, info, h);
      auto r = runStep<double>(*h->pd, a.b, a.params, a.grads, a.m, a.v, a.n, a.adam);
      return stepObj(env, r.loss, r.gradNorm, r.seconds);
    }
    auto a = stepArgs<float>(env, info, h);
    auto r = runStep<float>(*h->pf, a.b, a.params, a.grads, a.m, a.v, a.n, a.adam);
    return stepObj(env, r.loss, r.gradNorm, r.seconds);
  });
}

Napi::Value TrainStepAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 8) typeError(env, "trainStepAsync(plan, inputs, shape, params, grads, adamM, adamV, adam) takes 8 arguments");
    auto* h = planArg(env, info[0]);
    BusyGuard g(h);
    PromiseWorker* w;
    if (h->f64) w = new StepWorker<double>(env, h, stepArgs<double>(env, info, h));
    else w = new StepWorker<float>(env, h, stepArgs<float>(env, info, h));
    w->Keep(info[0]);
    keepInputs(*w, info[1]);
    for (int i = 3; i <= 6; ++i) w->Keep(info[i]);
    auto promise = w->Promise();
    g.release();  // the worker releases the plan when it finishes
    w->Queue();
    return promise;
  });
}

// lossAndGrad(plan, inputs, shape, params, grads) -> loss (no update; for checks)
Napi::Value LossAndGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    BusyGuard g(h);
    const int64_t n = h->layout().total;
    if (h->f64) {
      auto b = inputsArg<double>(env, info[1], info[2]);
      auto p = viewOf<double>(env, info[3], "params", n);
      auto gr = viewOf<double>(env, info[4], "grads", n);
      return Napi::Number::New(env, gnn::forwardBackward(*h->pd, p.data, gr.data, b));
    }
    auto b = inputsArg<float>(env, info[1], info[2]);
    auto p = viewOf<float>(env, info[3], "params", n);
    auto gr = viewOf<float>(env, info[4], "grads", n);
    return Napi::Number::New(env, gnn::forwardBackward(*h->pf, p.data, gr.data, b));
  });
}

// predict(plan, inputs, shape, params, predOut) -> loss; predOut[graphs] in standardised units.
Napi::Value Predict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    BusyGuard g(h);
    const int64_t n = h->layout().total;
    if (h->f64) {
      auto b = inputsArg<double>(env, info[1], info[2]);
      auto p = viewOf<double>(env, info[3], "params", n);
      auto out = viewAtLeast<double>(env, info[4], "predOut", b.shape.graphs);
      return Napi::Number::New(env, gnn::forward(*h->pd, p.data, b, out.data));
    }
    auto b = inputsArg<float>(env, info[1], info[2]);
    auto p = viewOf<float>(env, info[3], "params", n);
    auto out = viewAtLeast<float>(env, info[4], "predOut", b.shape.graphs);
    return Napi::Number::New(env, gnn::forward(*h->pf, p.data, b, out.data));
  });
}

// predictAsync(plan, inputs, shape, params, predOut) -> Promise<loss>, run on a worker.
Napi::Value PredictAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    BusyGuard g(h);
    const int64_t n = h->layout().total;
    PromiseWorker* w;
    if (h->f64) {
      auto b = inputsArg<double>(env, info[1], info[2]);
      auto p = viewOf<double>(env, info[3], "params", n);
      auto out = viewAtLeast<double>(env, info[4], "predOut", b.shape.graphs);
      w = new PredictWorker<double>(env, h, b, p.data, out.data);
    } else {
      auto b = inputsArg<float>(env, info[1], info[2]);
      auto p = viewOf<float>(env, info[3], "params", n);
      auto out = viewAtLeast<float>(env, info[4], "predOut", b.shape.graphs);
      w = new PredictWorker<float>(env, h, b, p.data, out.data);
    }
    w->Keep(info[0]);
    keepInputs(*w, info[1]);
    w->Keep(info[3]);
    w->Keep(info[4]);
    auto promise = w->Promise();
    g.release();
    w->Queue();
    return promise;
  });
}

Napi::Value SetProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    if (!info[1].IsBoolean()) typeError(env, "on must be a boolean");
    bool on = info[1].As<Napi::Boolean>().Value();
    if (h->f64) { h->pd->profile = on; h->pd->profSeconds.fill(0); h->pd->profSteps = 0; }
    else { h->pf->profile = on; h->pf->profSeconds.fill(0); h->pf->profSteps = 0; }
    return env.Undefined();
  });
}

Napi::Value GetProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    const auto& secs = h->f64 ? h->pd->profSeconds : h->pf->profSeconds;
    auto o = Napi::Object::New(env);
    for (int i = 0; i < gnn::kProfCount; ++i) o.Set(gnn::kProfileNames[i], secs[i]);
    return o;
  });
}

Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int t = typedArrayType(info[0]);
    auto a = adamArg(env, info[4]);
    if (t == napi_float64_array) {
      auto p = viewOf<double>(env, info[0], "params");
      int64_t n = (int64_t)p.size;
      gnn::adamStep(p.data, viewOf<double>(env, info[1], "grads", n).data, viewOf<double>(env, info[2], "m", n).data,
                      viewOf<double>(env, info[3], "v", n).data, n, a);
    } else {
      auto p = viewOf<float>(env, info[0], "params");
      int64_t n = (int64_t)p.size;
      gnn::adamStep(p.data, viewOf<float>(env, info[1], "grads", n).data, viewOf<float>(env, info[2], "m", n).data,
                      viewOf<float>(env, info[3], "v", n).data, n, a);
    }
    return env.Undefined();
  });
}

Napi::Value FlopsCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), gnn::flopsCount()); }
Napi::Value ResetFlops(const Napi::CallbackInfo& info) { gnn::resetFlops(); return info.Env().Undefined(); }

// gemmBench(M, N, K, reps) -> median seconds of one float32 C = A B (the
// in-run dense matrix-product peak the step benchmark compares against).
Napi::Value GemmBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int64_t M = intArg(env, info[0], "M", 1, 1 << 24), N = intArg(env, info[1], "N", 1, 4096),
            K = intArg(env, info[2], "K", 1, 4096), reps = intArg(env, info[3], "reps", 1, 10000);
    std::vector<float> A((size_t)(M * K)), B((size_t)(K * N)), C((size_t)(M * N));
    for (size_t i = 0; i < A.size(); ++i) A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    for (size_t i = 0; i < B.size(); ++i) B[i] = (float)((i * 40503u) % 1000) * 1e-3f;
    std::vector<double> t((size_t)reps);
    for (int64_t r = 0; r < reps; ++r) {
      auto a = std::chrono::steady_clock::now();
      gnn::gemm<float>(M, N, K, A.data(), K, 1, B.data(), N, C.data(), N, false);
      t[(size_t)r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    }
    std::sort(t.begin(), t.end());
    return Napi::Number::New(env, t[t.size() / 2]);
  });
}

}  // namespace

void registerModel(Napi::Env env, Napi::Object exports) {
  exports.Set("modelLayout", Napi::Function::New(env, ModelLayout, "modelLayout"));
  exports.Set("createPlan", Napi::Function::New(env, CreatePlan, "createPlan"));
  exports.Set("planInfo", Napi::Function::New(env, PlanInfo, "planInfo"));
  exports.Set("trainStep", Napi::Function::New(env, TrainStep, "trainStep"));
  exports.Set("trainStepAsync", Napi::Function::New(env, TrainStepAsync, "trainStepAsync"));
  exports.Set("lossAndGrad", Napi::Function::New(env, LossAndGrad, "lossAndGrad"));
  exports.Set("predict", Napi::Function::New(env, Predict, "predict"));
  exports.Set("predictAsync", Napi::Function::New(env, PredictAsync, "predictAsync"));
  exports.Set("setProfile", Napi::Function::New(env, SetProfile, "setProfile"));
  exports.Set("getProfile", Napi::Function::New(env, GetProfile, "getProfile"));
  exports.Set("adamUpdate", Napi::Function::New(env, AdamUpdate, "adamUpdate"));
  exports.Set("flopsCount", Napi::Function::New(env, FlopsCount, "flopsCount"));
  exports.Set("resetFlops", Napi::Function::New(env, ResetFlops, "resetFlops"));
  exports.Set("gemmBench", Napi::Function::New(env, GemmBench, "gemmBench"));
}
GNN_REGISTER_BINDING(registerModel);

}  // namespace gnnaddon
