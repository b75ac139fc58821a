// JS bindings of the pack kernel.
#include <algorithm>
#include <chrono>
#include <vector>

#include "bindings.h"
#include "core/pack.h"
#include "store_arg.h"

namespace gnnaddon {
namespace {

gnn::PackShape shapeArg(Napi::Env env, const Napi::Value& v) {
  auto o = objArg(env, v, "shape");
  gnn::PackShape s;
  s.nodes = intArg(env, prop(env, o, "nodes", "shape"), "shape.nodes", 0, INT32_MAX - 1);
  s.edges = intArg(env, prop(env, o, "edges", "shape"), "shape.edges", 0, INT32_MAX);
  s.graphs = intArg(env, prop(env, o, "graphs", "shape"), "shape.graphs", 0, INT32_MAX);
  return s;
}

template <class T>
gnn::PackStats packTyped(Napi::Env env, const gnn::StoreView& store, const gnn::View<int32_t>& ids,
                         const gnn::PackShape& sh, const Napi::Object& o) {
  gnn::PackOut<T> out;
  const std::string n = "out";
  out.atomicNumber = viewOf<int32_t>(env, prop(env, o, "atomicNumber", n), "out.atomicNumber", sh.nodes).data;
  out.nodeGraph = viewOf<int32_t>(env, prop(env, o, "nodeGraph", n), "out.nodeGraph", sh.nodes).data;
  out.senders = viewOf<int32_t>(env, prop(env, o, "senders", n), "out.senders", sh.edges).data;
  out.receivers = viewOf<int32_t>(env, prop(env, o, "receivers", n), "out.receivers", sh.edges).data;
  out.distance = viewOf<T>(env, prop(env, o, "distance", n), "out.distance", sh.edges).data;
  out.nNode = viewOf<int32_t>(env, prop(env, o, "nNode", n), "out.nNode", sh.graphs).data;
  out.nEdge = viewOf<int32_t>(env, prop(env, o, "nEdge", n), "out.nEdge", sh.graphs).data;
  out.target = viewOf<T>(env, prop(env, o, "target", n), "out.target", sh.graphs).data;
  out.mask = viewOf<T>(env, prop(env, o, "mask", n), "out.mask", sh.graphs).data;
  out.recvPtr = viewOf<int32_t>(env, prop(env, o, "recvPtr", n), "out.recvPtr", sh.nodes + 1).data;
  out.sendPerm = viewOf<int32_t>(env, prop(env, o, "sendPerm", n), "out.sendPerm", sh.edges).data;
  out.sendPtr = viewOf<int32_t>(env, prop(env, o, "sendPtr", n), "out.sendPtr", sh.nodes + 1).data;
  return gnn::packGraphs<T>(store, ids.data, (int64_t)ids.size, sh, out);
}

Napi::Value PackGraphs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 4) typeError(env, "packGraphs(store, ids, shape, out) takes 4 arguments");
    auto store = storeArg(env, info[0]);
    auto ids = viewOf<int32_t>(env, info[1], "ids");
    auto sh = shapeArg(env, info[2]);
    auto o = objArg(env, info[3], "out");
    int t = typedArrayType(prop(env, o, "distance", "out"));
    gnn::PackStats st = t == napi_float64_array ? packTyped<double>(env, store, ids, sh, o)
                                                : packTyped<float>(env, store, ids, sh, o);
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
    auto store = storeArg(env, info[0]);
    auto ids = viewOf<int32_t>(env, info[1], "ids");
    auto sh = shapeArg(env, info[2]);
    auto o = objArg(env, info[3], "out");
    int64_t reps = intArg(env, info[4], "reps", 1, 1000000);
    gnn::PackStats st = gnn::batchTotals(store, ids.data, (int64_t)ids.size);
    if (st.realNodes > sh.nodes || st.realEdges > sh.edges) rangeError(env, "shape too small for the batch", "ERR_GNN_SHAPE");
    gnn::PackOut<float> out{};
    out.atomicNumber = viewOf<int32_t>(env, prop(env, o, "atomicNumber", "out"), "out.atomicNumber", sh.nodes).data;
    out.senders = viewOf<int32_t>(env, prop(env, o, "senders", "out"), "out.senders", sh.edges).data;
    out.receivers = viewOf<int32_t>(env, prop(env, o, "receivers", "out"), "out.receivers", sh.edges).data;
    out.sendPerm = viewOf<int32_t>(env, prop(env, o, "sendPerm", "out"), "out.sendPerm", sh.edges).data;
    out.distance = viewOf<float>(env, prop(env, o, "distance", "out"), "out.distance", sh.edges).data;
    std::vector<double> t((size_t)reps);
    for (int64_t r = 0; r < reps; ++r) {
      auto a = std::chrono::steady_clock::now();
      gnn::copyGraphSlices<float>(store, ids.data, (int64_t)ids.size, out);
      t[(size_t)r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    }
    std::sort(t.begin(), t.end());
    return Napi::Number::New(env, t[t.size() / 2]);
  });
}

Napi::Value ValidateStore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto store = storeArg(env, info[0]);
    gnn::validateStoreFull(store);
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
