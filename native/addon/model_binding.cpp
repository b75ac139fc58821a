// JS bindings of models, plans, training steps and Adam.
//
// A plan is an External with a type tag (a wrong handle is a TypeError, never a
// crash). A plan may only be used by one call at a time: a second call while
// an async step runs gets an Error with code ERR_GNN_BUSY.
//
// A plan's buffers are native memory V8 cannot see: createPlan reports them
// (AdjustExternalMemory), so the GC weighs a dropped plan by its real size, and
// releasePlan frees them at once (and un-reports them); the GC finalizer does
// the same for a plan never released. A released plan's handle is refused by
// every call (ERR_GNN_ARGUMENT), never dereferenced.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <type_traits>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "bindings.h"
#include "model_args.h"
#include "plan_access.h"
#include "core/adam.h"
#include "core/dense.h"
#include "core/models/model.h"
#include "scalar.h"
#include "timing.h"
#include "worker.h"

namespace gnnaddon {
namespace {

const napi_type_tag kPlanTag = {0x6a1f5c2b9e3d4a71ULL, 0x8c0b7e25f4d61a93ULL};

struct PlanHolder {
  bool f64 = false;
  std::unique_ptr<gnn::Plan<float>> pf;
  std::unique_ptr<gnn::Plan<double>> pd;
  std::atomic<bool> busy{false};
  // Bytes reported to V8 (AdjustExternalMemory) and not yet un-reported.
  int64_t accounted = 0;
  bool released = false;
  // The plan slot of scalar type T (pf or pd); only the one of f64's type is set.
  template <class T> std::unique_ptr<gnn::Plan<T>>& slot() {
    if constexpr (std::is_same_v<T, double>) return pd;
    else return pf;
  }
  template <class T> gnn::Plan<T>& plan() { return *slot<T>(); }
  // Calls fn(plan) with the plan of this holder's scalar type (withScalar).
  template <class F> decltype(auto) visit(F&& fn) {
    return withScalar(f64, [&](auto zero) -> decltype(auto) { return fn(plan<decltype(zero)>()); });
  }
  const gnn::ParamLayout& layout() { return visit([](auto& p) -> const gnn::ParamLayout& { return p.layout; }); }
};
// The scalar type of a plan reference (inside PlanHolder::visit lambdas).
template <class P> struct PlanScalar;
template <class T> struct PlanScalar<gnn::Plan<T>> { using type = T; };
template <class P> using ScalarOf = typename PlanScalar<std::remove_cv_t<std::remove_reference_t<P>>>::type;

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

PlanHolder* planArg(Napi::Env env, const Napi::Value& v, bool allowReleased = false) {
  bool ok = false;
  if (v.IsExternal()) {
    napi_status st = napi_check_object_type_tag(env, v, &kPlanTag, &ok);
    if (st != napi_ok) ok = false;
  }
  if (!ok) typeError(env, "plan must be a handle returned by createPlan");
  // Never null: createPlan is the only maker and the holder is deleted by the GC only
  // (releasePlan frees the plan's buffers, not the holder).
  auto* h = v.As<Napi::External<PlanHolder>>().Data();
  if (h->released && !allowReleased)
    typeError(env, "plan was released (releasePlan): create a new one", "ERR_GNN_ARGUMENT");
  return h;
}

// Frees a holder's plan buffers and un-reports them to V8 (main thread only).
void freePlan(Napi::BasicEnv env, PlanHolder* h) {
  h->pf.reset();
  h->pd.reset();
  h->released = true;
  if (h->accounted != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -h->accounted);
    h->accounted = 0;
  }
}

// The batch inputs as read from JS (phase 1 of args.h), then as views.
const char* kInputKeys[] = {"atomicNumber", "senders", "receivers", "distance", "nNode",
                            "target",       "mask",    "recvPtr",   "sendPerm", "sendPtr"};
struct InputValues {
  std::array<Napi::Value, 10> v;
  Napi::Value direction;  // optional [edges x 3] (PaiNN)
  gnn::PackShape shape;
};

InputValues readInputs(Napi::Env env, const Napi::Value& inputs, const Napi::Value& shape) {
  auto o = objArg(env, inputs, "inputs");
  InputValues r;
  for (size_t i = 0; i < r.v.size(); ++i) r.v[i] = prop(env, o, kInputKeys[i], "inputs");
  r.direction = optProp(o, "direction");
  r.shape = shapeArg(env, shape, "shape");
  return r;
}

template <class T>
gnn::BatchInputs<T> inputViews(CallArgs& a, const InputValues& iv) {
  gnn::BatchInputs<T> b;
  b.shape = iv.shape;
  const auto N = b.shape.nodes, E = b.shape.edges, G = b.shape.graphs;
  const Access R = Access::In;
  b.atomicNumber = a.view<int32_t>(iv.v[0], "inputs.atomicNumber", R, -1, N).data;
  b.senders = a.view<int32_t>(iv.v[1], "inputs.senders", R, -1, E).data;
  b.receivers = a.view<int32_t>(iv.v[2], "inputs.receivers", R, -1, E).data;
  b.distance = a.view<T>(iv.v[3], "inputs.distance", R, -1, E).data;
  b.nNode = a.view<int32_t>(iv.v[4], "inputs.nNode", R, -1, G).data;
  b.target = a.view<T>(iv.v[5], "inputs.target", R, -1, G).data;
  b.mask = a.view<T>(iv.v[6], "inputs.mask", R, -1, G).data;
  b.recvPtr = a.view<int32_t>(iv.v[7], "inputs.recvPtr", R, -1, N + 1).data;
  b.sendPerm = a.view<int32_t>(iv.v[8], "inputs.sendPerm", R, -1, E).data;
  b.sendPtr = a.view<int32_t>(iv.v[9], "inputs.sendPtr", R, -1, N + 1).data;
  if (!iv.direction.IsUndefined() && !iv.direction.IsNull())
    b.direction = a.view<T>(iv.direction, "inputs.direction", R, -1, 3 * E).data;
  return b;
}

// One fused training step: forward, backward, optional clipping, Adam.
struct StepResult { double loss = 0, gradNorm = 0, seconds = 0, flops = 0; };

template <class T>
StepResult runStep(gnn::Plan<T>& p, const gnn::BatchInputs<T>& b, T* params, T* grads, T* m, T* v,
                   int64_t n, gnn::AdamArgs a) {
  auto t0 = std::chrono::steady_clock::now();
  const double f0 = gnn::flopsCount();
  StepResult r;
  r.loss = gnn::forwardBackward(p, params, grads, b);
  if (!std::isfinite(r.loss))
    throw gnn::Error(gnn::ErrorKind::Generic, "ERR_GNN_NONFINITE", "loss is not finite (" + std::to_string(r.loss) + "): training diverged; parameters were left unchanged");
  {
    auto ta = std::chrono::steady_clock::now();
    r.gradNorm = gnn::adamStep(params, grads, m, v, n, a);
    if (p.profile) {
      const auto tb = std::chrono::steady_clock::now();
      p.profSeconds[gnn::kProfAdam] += std::chrono::duration<double>(tb - ta).count();
      auto ns = [](std::chrono::steady_clock::time_point t) {
        return (double)std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
      };
      // ~12 operations per parameter (moments, bias correction, sqrt, update; the
      // clipping norm adds 2); reads params, grads, m, v and writes params, m, v.
      p.addRecord(gnn::kSiteAdam, -1, n, 1, 0, (a.clipNorm > 0 ? 14.0 : 12.0) * (double)n, 7.0 * sizeof(T) * (double)n,
                  ns(ta), ns(tb));
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.flops = gnn::flopsCount() - f0;
  return r;
}

Napi::Object stepObj(Napi::Env env, const StepResult& r) {
  auto o = Napi::Object::New(env);
  o.Set("loss", r.loss);
  o.Set("gradNorm", r.gradNorm);
  o.Set("seconds", r.seconds);
  o.Set("flops", r.flops);
  return o;
}

template <class T>
struct StepArgs {
  gnn::BatchInputs<T> b;
  T *params, *grads, *m, *v;
  int64_t n;
  gnn::AdamArgs adam;
};

// trainStep(plan, inputs, shape, params, grads, adamM, adamV, adam): all JS
// first (inputs, shape, adam options), then the views.
template <class T>
StepArgs<T> stepArgs(Napi::Env env, const Napi::CallbackInfo& info, PlanHolder* h, CallArgs& a) {
  const InputValues iv = readInputs(env, info[1], info[2]);
  StepArgs<T> s;
  s.adam = adamArg(env, info[7]);
  s.n = h->layout().total;
  s.b = inputViews<T>(a, iv);
  s.params = a.view<T>(info[3], "params", Access::InOut, s.n).data;
  s.grads = a.view<T>(info[4], "grads", Access::Out, s.n).data;
  s.m = a.view<T>(info[5], "adamM", Access::InOut, s.n).data;
  s.v = a.view<T>(info[6], "adamV", Access::InOut, s.n).data;
  a.checkAliasing();
  return s;
}

template <class T>
class StepWorker : public PromiseWorker {
 public:
  StepWorker(Napi::Env env, PlanHolder* h, std::unique_ptr<CallArgs> args, StepArgs<T> a)
      : PromiseWorker(env, "trainStepAsync", std::move(args)), h_(h), a_(a) {}
  void Run() override {
    struct Release { PlanHolder* h; ~Release() { h->busy.store(false); } } rel{h_};
    r_ = runStep<T>(h_->plan<T>(), a_.b, a_.params, a_.grads, a_.m, a_.v, a_.n, a_.adam);
  }
  Napi::Value Result(Napi::Env env) override { return stepObj(env, r_); }
 private:
  PlanHolder* h_;
  StepArgs<T> a_;
  StepResult r_;
};

template <class T>
class PredictWorker : public PromiseWorker {
 public:
  PredictWorker(Napi::Env env, PlanHolder* h, std::unique_ptr<CallArgs> args, gnn::BatchInputs<T> b, const T* params, T* out)
      : PromiseWorker(env, "predictAsync", std::move(args)), h_(h), b_(b), params_(params), out_(out) {}
  void Run() override {
    struct Release { PlanHolder* h; ~Release() { h->busy.store(false); } } rel{h_};
    loss_ = gnn::forward(h_->plan<T>(), params_, b_, out_);
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
    const gnn::PackShape cap = shapeArg(env, info[1], "capacity");
    std::string dtype = "float32";
    if (info.Length() > 2 && !info[2].IsUndefined()) dtype = stringArg(env, info[2], "dtype");
    if (dtype != "float32" && dtype != "float64") rangeError(env, "dtype must be 'float32' or 'float64', got '" + dtype + "'");
    bool forces = false;  // options.forces: also the force pass's buffers (forces_binding.cpp)
    bool forceTraining = false;  // options.forceTraining: and the double backward's (implies forces)
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      const Napi::Value f = optProp(objArg(env, info[3], "options"), "forces");
      if (!f.IsUndefined()) forces = boolArg(env, f, "options.forces");
      const Napi::Value ft = optProp(objArg(env, info[3], "options"), "forceTraining");
      if (!ft.IsUndefined()) forceTraining = boolArg(env, ft, "options.forceTraining");
    }
    auto* h = new PlanHolder();
    try {
      h->f64 = dtype == "float64";
      withScalar(h->f64, [&](auto zero) { h->slot<decltype(zero)>() = gnn::buildPlan<decltype(zero)>(cfg, cap, forces, forceTraining); });
    } catch (...) {
      delete h;
      throw;
    }
    auto ext = Napi::External<PlanHolder>::New(env, h, [](Napi::Env e, PlanHolder* p) {
      freePlan(e, p);
      delete p;
    });
    napi_type_tag_object(env, ext, &kPlanTag);
    h->accounted = (int64_t)h->visit([](auto& p) { return p.bytes(); });
    Napi::MemoryManagement::AdjustExternalMemory(env, h->accounted);
    return ext;
  });
}

// releasePlan(plan): frees the plan's buffers now (not at garbage collection)
// and un-reports them to V8. Idempotent; ERR_GNN_BUSY while an async call runs
// on the plan. Any later use of the handle is ERR_GNN_ARGUMENT.
Napi::Value ReleasePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0], true);
    if (h->released) return env.Undefined();
    {
      BusyGuard g(h);  // refuses while an async step or prediction runs on it
      freePlan(env, h);
    }
#if defined(__GLIBC__)
    // Hand the freed pages back to the OS now: buffers below glibc's mmap
    // threshold (up to 32 MiB) otherwise stay in the heap, resident.
    malloc_trim(0);
#endif
    return env.Undefined();
  });
}

Napi::Value PlanInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    auto o = Napi::Object::New(env);
    o.Set("bytes", (double)h->visit([](auto& p) { return p.bytes(); }));
    o.Set("dtype", h->f64 ? "float64" : "float32");
    const gnn::PackShape cap = h->visit([](auto& p) { return p.cap; });
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
    BusyGuard g(h);  // held while getters run: a re-entrant call on this plan is ERR_GNN_BUSY
    CallArgs a(env, false);
    return h->visit([&](auto& plan) {
      using T = ScalarOf<decltype(plan)>;
      auto s = stepArgs<T>(env, info, h, a);
      return stepObj(env, runStep<T>(plan, s.b, s.params, s.grads, s.m, s.v, s.n, s.adam));
    });
  });
}

Napi::Value TrainStepAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 8) typeError(env, "trainStepAsync(plan, inputs, shape, params, grads, adamM, adamV, adam) takes 8 arguments");
    auto* h = planArg(env, info[0]);
    BusyGuard g(h);
    // Private copies (args.h): params, grads, m and v are copied back when the
    // step finishes, or not at all if one of them was detached meanwhile.
    auto a = std::make_unique<CallArgs>(env, true);
    PromiseWorker* w = h->visit([&](auto& plan) -> PromiseWorker* {
      using T = ScalarOf<decltype(plan)>;
      auto s = stepArgs<T>(env, info, h, *a);
      return new StepWorker<T>(env, h, std::move(a), s);
    });
    w->Keep(info[0]);
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
    const InputValues iv = readInputs(env, info[1], info[2]);
    CallArgs a(env, false);
    return h->visit([&](auto& plan) {
      using T = ScalarOf<decltype(plan)>;
      auto b = inputViews<T>(a, iv);
      auto p = a.view<T>(info[3], "params", Access::In, n);
      auto gr = a.view<T>(info[4], "grads", Access::Out, n);
      a.checkAliasing();
      return Napi::Number::New(env, gnn::forwardBackward(plan, p.data, gr.data, b));
    });
  });
}

// predict(plan, inputs, shape, params, predOut) -> loss; predOut[graphs] in standardised units.
template <class T>
Napi::Value predictCall(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  auto* h = planArg(env, info[0]);
  BusyGuard g(h);
  const int64_t n = h->layout().total;
  const InputValues iv = readInputs(env, info[1], info[2]);
  auto a = std::make_unique<CallArgs>(env, async);
  auto b = inputViews<T>(*a, iv);
  auto p = a->view<T>(info[3], "params", Access::In, n);
  auto out = a->view<T>(info[4], "predOut", Access::Out, -1, b.shape.graphs);
  a->checkAliasing();
  if (!async) return Napi::Number::New(env, gnn::forward(h->plan<T>(), p.data, b, out.data));
  auto* w = new PredictWorker<T>(env, h, std::move(a), b, p.data, out.data);
  w->Keep(info[0]);
  auto promise = w->Promise();
  g.release();
  w->Queue();
  return promise;
}

Napi::Value Predict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    return withScalar(planArg(env, info[0])->f64, [&](auto zero) { return predictCall<decltype(zero)>(info, false); });
  });
}

// predictAsync(plan, inputs, shape, params, predOut) -> Promise<loss>, run on a worker.
Napi::Value PredictAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    return withScalar(planArg(env, info[0])->f64, [&](auto zero) { return predictCall<decltype(zero)>(info, true); });
  });
}

Napi::Value SetProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    const bool on = boolArg(env, info[1], "on");
    BusyGuard g(h);  // an async step may be writing the profile
    h->visit([&](auto& p) { p.setProfiling(on); });
    return env.Undefined();
  });
}

Napi::Value GetProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    const auto secs = h->visit([](auto& p) { return p.profSeconds; });
    auto o = Napi::Object::New(env);
    for (int i = 0; i < gnn::kProfCount; ++i) o.Set(gnn::kProfileNames[i], secs[i]);
    return o;
  });
}

template <class T>
Napi::Value takeRecords(Napi::Env env, gnn::Plan<T>& p) {
  const size_t n = p.profRecords.size();
  auto i32 = [&](auto get) {
    auto a = Napi::Int32Array::New(env, n);
    for (size_t i = 0; i < n; ++i) a[i] = get(p.profRecords[i]);
    return a;
  };
  auto f64 = [&](auto get) {
    auto a = Napi::Float64Array::New(env, n);
    for (size_t i = 0; i < n; ++i) a[i] = get(p.profRecords[i]);
    return a;
  };
  using R = gnn::KernelRecord;
  auto o = Napi::Object::New(env);
  o.Set("count", (double)n);
  o.Set("dropped", (double)p.profDropped);
  o.Set("site", i32([](const R& r) { return r.site; }));
  o.Set("pass", i32([](const R& r) { return r.pass; }));
  o.Set("m", f64([](const R& r) { return (double)r.m; }));
  o.Set("n", f64([](const R& r) { return (double)r.n; }));
  o.Set("k", f64([](const R& r) { return (double)r.k; }));
  o.Set("rows", f64([](const R& r) { return (double)r.rows; }));
  o.Set("realRows", f64([](const R& r) { return (double)r.realRows; }));
  o.Set("t0Ns", f64([](const R& r) { return r.t0Ns; }));
  o.Set("durNs", f64([](const R& r) { return r.durNs; }));
  o.Set("flops", f64([](const R& r) { return r.flops; }));
  o.Set("bytes", f64([](const R& r) { return r.bytes; }));
  p.profRecords.clear();  // keeps the reserved capacity
  p.profDropped = 0;
  return o;
}

// takeProfileRecords(plan) -> the kernel calls recorded since the last take
// (columns of typed arrays; see KernelRecord), then clears them.
Napi::Value TakeProfileRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto* h = planArg(env, info[0]);
    BusyGuard g(h);
    return h->visit([&](auto& p) { return takeRecords(env, p); });
  });
}

// kernelSites() -> [{name, rows: 'node'|'edge'|'graph'|'param'|'none', gemm}] in site order
// ('none': the call's rows are all computed work, no padding among them).
Napi::Value KernelSites(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const char* const kRows[] = {"node", "edge", "graph", "param", "none"};
  auto a = Napi::Array::New(env, gnn::kSiteCount);
  for (int i = 0; i < gnn::kSiteCount; ++i) {
    auto o = Napi::Object::New(env);
    o.Set("name", gnn::kKernelSites[i].name);
    o.Set("rows", kRows[gnn::kKernelSites[i].rows]);
    o.Set("gemm", gnn::kKernelSites[i].gemm);
    a.Set((uint32_t)i, o);
  }
  return a;
}

template <class T>
double adamCall(Napi::Env env, const Napi::CallbackInfo& info, const gnn::AdamArgs& adam) {
  CallArgs a(env, false);
  auto p = a.view<T>(info[0], "params", Access::InOut);
  const int64_t n = (int64_t)p.size;
  auto g = a.view<T>(info[1], "grads", Access::In, n);
  auto m = a.view<T>(info[2], "m", Access::InOut, n);
  auto v = a.view<T>(info[3], "v", Access::InOut, n);
  a.checkAliasing();
  return gnn::adamStep(p.data, g.data, m.data, v.data, n, adam);
}

Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const gnn::AdamArgs adam = adamArg(env, info[4]);
    // The gradient's global norm before clipping (as trainStep reports it).
    double norm = 0;
    withScalar(typedArrayType(info[0]) == napi_float64_array, [&](auto zero) { norm = adamCall<decltype(zero)>(env, info, adam); });
    return Napi::Number::New(env, norm);
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
            K = intArg(env, info[2], "K", 1, 4096), reps = benchRepsArg(env, info[3], "gemmBench");
    // Three matrices of at most 2^28 floats in all (1 GiB): larger is a typo, not a benchmark.
    if (M * K + K * N + M * N > (int64_t)1 << 28)
      rangeError(env, "gemmBench: M*K + K*N + M*N must be at most 2^28 elements", "ERR_GNN_SHAPE");
    checkBenchWork(env, "gemmBench", reps, 2.0 * (double)M * (double)N * (double)K, kMaxBenchFlops, "flops");
    std::vector<float> A((size_t)(M * K)), B((size_t)(K * N)), C((size_t)(M * N));
    for (size_t i = 0; i < A.size(); ++i) A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    for (size_t i = 0; i < B.size(); ++i) B[i] = (float)((i * 40503u) % 1000) * 1e-3f;
    return Napi::Number::New(env, medianSeconds(reps, [&] { gnn::gemm<float>(M, N, K, A.data(), K, 1, B.data(), N, C.data(), N, false); }));
  });
}

// streamBench(mib, reps) -> median seconds of one parallel copy of `mib` MiB
// of floats into another buffer (2 * mib MiB moved) with the native thread
// count: the in-run streaming bandwidth the kernel profile compares against.
Napi::Value StreamBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t mib = intArg(env, info[0], "mib", 1, 4096), reps = benchRepsArg(env, info[1], "streamBench");
    checkBenchWork(env, "streamBench", reps, (double)mib * (1 << 20), kMaxBenchBytes, "bytes");
    const int64_t n = mib * (1 << 20) / (int64_t)sizeof(float);
    std::vector<float> a((size_t)n), b((size_t)n);
    const int nt = gnn::numThreads();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) { a[(size_t)i] = (float)(i & 1023); b[(size_t)i] = 0.f; }  // first touch per thread
    const double s = medianSeconds(reps, [&] {
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t i = 0; i < n; ++i) b[(size_t)i] = a[(size_t)i];
    });
    volatile float sink = b[(size_t)(n / 2)];
    (void)sink;
    return Napi::Number::New(env, s);
  });
}

}  // namespace

// plan_access.h (for forces_binding.cpp).
PlanAccess planAccessArg(Napi::Env env, const Napi::Value& v) {
  PlanHolder* h = planArg(env, v);
  PlanAccess r;
  r.f64 = h->f64;
  r.pf = h->pf.get();
  r.pd = h->pd.get();
  r.busy = &h->busy;
  return r;
}
PlanBusy::PlanBusy(std::atomic<bool>* b) : b_(b) {
  bool expected = false;
  if (!b_->compare_exchange_strong(expected, true))
    throw gnn::Error(gnn::ErrorKind::Generic, "ERR_GNN_BUSY", "plan is in use by another call (an async step is running)");
}
PlanBusy::~PlanBusy() { b_->store(false); }
BatchValues readBatchValues(Napi::Env env, const Napi::Value& inputs, const Napi::Value& shape) {
  const InputValues iv = readInputs(env, inputs, shape);
  return BatchValues{iv.v, iv.direction, iv.shape};
}
template <class T>
gnn::BatchInputs<T> batchViews(CallArgs& a, const BatchValues& v) {
  return inputViews<T>(a, InputValues{v.v, v.direction, v.shape});
}
template gnn::BatchInputs<float> batchViews<float>(CallArgs&, const BatchValues&);
template gnn::BatchInputs<double> batchViews<double>(CallArgs&, const BatchValues&);

void registerModel(Napi::Env env, Napi::Object exports) {
  exports.Set("modelLayout", Napi::Function::New(env, ModelLayout, "modelLayout"));
  exports.Set("createPlan", Napi::Function::New(env, CreatePlan, "createPlan"));
  exports.Set("planInfo", Napi::Function::New(env, PlanInfo, "planInfo"));
  exports.Set("releasePlan", Napi::Function::New(env, ReleasePlan, "releasePlan"));
  exports.Set("trainStep", Napi::Function::New(env, TrainStep, "trainStep"));
  exports.Set("trainStepAsync", Napi::Function::New(env, TrainStepAsync, "trainStepAsync"));
  exports.Set("lossAndGrad", Napi::Function::New(env, LossAndGrad, "lossAndGrad"));
  exports.Set("predict", Napi::Function::New(env, Predict, "predict"));
  exports.Set("predictAsync", Napi::Function::New(env, PredictAsync, "predictAsync"));
  exports.Set("setProfile", Napi::Function::New(env, SetProfile, "setProfile"));
  exports.Set("getProfile", Napi::Function::New(env, GetProfile, "getProfile"));
  exports.Set("takeProfileRecords", Napi::Function::New(env, TakeProfileRecords, "takeProfileRecords"));
  exports.Set("kernelSites", Napi::Function::New(env, KernelSites, "kernelSites"));
  exports.Set("adamUpdate", Napi::Function::New(env, AdamUpdate, "adamUpdate"));
  exports.Set("flopsCount", Napi::Function::New(env, FlopsCount, "flopsCount"));
  exports.Set("resetFlops", Napi::Function::New(env, ResetFlops, "resetFlops"));
  exports.Set("gemmBench", Napi::Function::New(env, GemmBench, "gemmBench"));
  exports.Set("streamBench", Napi::Function::New(env, StreamBench, "streamBench"));
}
GNN_REGISTER_BINDING(registerModel);

}  // namespace gnnaddon
