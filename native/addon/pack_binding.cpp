// JS bindings of the pack kernel. Arguments are read in the two phases of
// args.h: every JS property once, then views (no JS) and the kernel.
#include <array>
#include <vector>

#include "bindings.h"
#include "core/pack.h"
#include "scalar.h"
#include "store_arg.h"
#include "timing.h"

namespace gnnaddon {
namespace {

const char* kOutKeys[] = {"atomicNumber", "nodeGraph", "senders", "receivers", "distance", "nNode",
                          "nEdge",        "target",    "mask",    "recvPtr",   "sendPerm", "sendPtr"};
// The twelve outputs in kOutKeys order, then the optional `direction`
// ([3 x edges], undefined when absent).
using OutValues = std::array<Napi::Value, 13>;

OutValues readOut(Napi::Env env, const Napi::Value& v) {
  auto o = objArg(env, v, "out");
  OutValues r;
  for (size_t i = 0; i < 12; ++i) r[i] = prop(env, o, kOutKeys[i], "out");
  r[12] = optProp(o, "direction");
  return r;
}

template <class T>
gnn::PackOut<T> outViews(CallArgs& a, const OutValues& v, const gnn::PackShape& sh) {
  gnn::PackOut<T> out;
  const Access W = Access::Out;
  out.atomicNumber = a.view<int32_t>(v[0], "out.atomicNumber", W, sh.nodes).data;
  out.nodeGraph = a.view<int32_t>(v[1], "out.nodeGraph", W, sh.nodes).data;
  out.senders = a.view<int32_t>(v[2], "out.senders", W, sh.edges).data;
  out.receivers = a.view<int32_t>(v[3], "out.receivers", W, sh.edges).data;
  out.distance = a.view<T>(v[4], "out.distance", W, sh.edges).data;
  out.nNode = a.view<int32_t>(v[5], "out.nNode", W, sh.graphs).data;
  out.nEdge = a.view<int32_t>(v[6], "out.nEdge", W, sh.graphs).data;
  out.target = a.view<T>(v[7], "out.target", W, sh.graphs).data;
  out.mask = a.view<T>(v[8], "out.mask", W, sh.graphs).data;
  out.recvPtr = a.view<int32_t>(v[9], "out.recvPtr", W, sh.nodes + 1).data;
  out.sendPerm = a.view<int32_t>(v[10], "out.sendPerm", W, sh.edges).data;
  out.sendPtr = a.view<int32_t>(v[11], "out.sendPtr", W, sh.nodes + 1).data;
  if (!v[12].IsUndefined()) out.direction = a.view<T>(v[12], "out.direction", W, 3 * sh.edges).data;
  return out;
}

Napi::Value PackGraphs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 4) typeError(env, "packGraphs(store, ids, shape, out) takes 4 arguments");
    // Phase 1: JS.
    const StoreValues sv = readStore(env, info[0]);
    const gnn::PackShape sh = shapeArg(env, info[2], "shape");
    const OutValues ov = readOut(env, info[3]);
    // Phase 2: views, no JS.
    CallArgs a(env, false);
    const gnn::StoreView store = storeView(env, a, sv);
    auto ids = a.view<int32_t>(info[1], "ids", Access::In);
    // The float outputs' type follows out.distance (a mismatch elsewhere is a TypeError from the views).
    const gnn::PackStats st = withScalar(typedArrayType(ov[4]) == napi_float64_array, [&](auto zero) {
      using T = decltype(zero);
      auto out = outViews<T>(a, ov, sh);
      a.checkAliasing();
      return gnn::packGraphs<T>(store, ids.data, (int64_t)ids.size, sh, out);
    });
    auto r = Napi::Object::New(env);
    r.Set("realNodes", (double)st.realNodes);
    r.Set("realEdges", (double)st.realEdges);
    r.Set("realGraphs", (double)st.realGraphs);
    return r;
  });
}

// copyGraphSlicesBench(store, ids, shape, out, reps) -> median seconds of the
// memcpy baseline (same source slices, same outputs) the pack benchmark uses.
Napi::Value CopyGraphSlicesBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const StoreValues sv = readStore(env, info[0]);
    const gnn::PackShape sh = shapeArg(env, info[2], "shape");
    auto o = objArg(env, info[3], "out");
    Napi::Value vz = prop(env, o, "atomicNumber", "out"), vs = prop(env, o, "senders", "out"),
                vr = prop(env, o, "receivers", "out"), vp = prop(env, o, "sendPerm", "out"),
                vd = prop(env, o, "distance", "out"), vu = optProp(o, "direction");
    const int64_t reps = benchRepsArg(env, info[4], "copyGraphSlicesBench");
    CallArgs a(env, false);
    const gnn::StoreView store = storeView(env, a, sv);
    auto ids = a.view<int32_t>(info[1], "ids", Access::In);
    gnn::PackStats st = gnn::batchTotals(store, ids.data, (int64_t)ids.size);
    gnn::checkPackShape(st, sh);
    // The slices are memcpy'd from the store's graphs: each output must hold
    // the real totals (the atomic numbers are copied as bytes).
    gnn::PackOut<float> out{};
    out.atomicNumber = a.view<int32_t>(vz, "out.atomicNumber", Access::Out, sh.nodes).data;
    out.senders = a.view<int32_t>(vs, "out.senders", Access::Out, sh.edges).data;
    out.receivers = a.view<int32_t>(vr, "out.receivers", Access::Out, sh.edges).data;
    out.sendPerm = a.view<int32_t>(vp, "out.sendPerm", Access::Out, sh.edges).data;
    out.distance = a.view<float>(vd, "out.distance", Access::Out, sh.edges).data;
    if (!vu.IsUndefined()) out.direction = a.view<float>(vu, "out.direction", Access::Out, 3 * sh.edges).data;
    a.checkAliasing();
    // Bytes copied per repetition, plus 64 per graph for its slice calls.
    const double bytes = 4.0 * (double)st.realNodes + (4.0 * 4 + (out.direction ? 12.0 : 0.0)) * (double)st.realEdges + 64.0 * (double)ids.size;
    checkBenchWork(env, "copyGraphSlicesBench", reps, bytes, kMaxBenchBytes, "bytes");
    return Napi::Number::New(env, medianSeconds(reps, [&] { gnn::copyGraphSlices<float>(store, ids.data, (int64_t)ids.size, out); }));
  });
}

Napi::Value ValidateStore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const StoreValues sv = readStore(env, info[0]);
    CallArgs a(env, false);
    gnn::validateStoreFull(storeView(env, a, sv));
    return env.Undefined();
  });
}

}  // namespace

void registerPack(Napi::Env env, Napi::Object exports) {
  exports.Set("packGraphs", Napi::Function::New(env, PackGraphs, "packGraphs"));
  exports.Set("copyGraphSlicesBench", Napi::Function::New(env, CopyGraphSlicesBench, "copyGraphSlicesBench"));
  exports.Set("validateStore", Napi::Function::New(env, ValidateStore, "validateStore"));
}

GNN_REGISTER_BINDING(registerPack);

}  // namespace gnnaddon
