// JS binding of graph construction: buildNeighbours(batch, rule).
#include <climits>

#include "bindings.h"
#include "core/neighbours.h"
#include "worker.h"

namespace gnnaddon {
namespace {

gnn::GraphRule ruleArg(Napi::Env env, const Napi::Value& v) {
  auto o = objArg(env, v, "rule");
  auto kindV = prop(env, o, "kind", "rule");
  if (!kindV.IsString()) typeError(env, "rule.kind must be 'fc', 'cutoff' or 'knn'");
  std::string kind = kindV.As<Napi::String>().Utf8Value();
  gnn::GraphRule r;
  if (kind == "fc") {
    r.kind = gnn::GraphRule::FullyConnected;
  } else if (kind == "cutoff") {
    r.kind = gnn::GraphRule::Cutoff;
    auto c = prop(env, o, "cutoff", "rule");
    if (!c.IsNumber()) typeError(env, "rule.cutoff must be a number (Å)");
    r.cutoff = c.As<Napi::Number>().DoubleValue();
  } else if (kind == "knn") {
    r.kind = gnn::GraphRule::Knn;
    r.k = (int)intArg(env, prop(env, o, "k", "rule"), "rule.k", 1, 100000);
  } else {
    typeError(env, "rule.kind must be 'fc', 'cutoff' or 'knn', got '" + kind + "'");
  }
  return r;
}

gnn::StructureBatchView batchArg(Napi::Env env, const Napi::Value& v) {
    auto o = objArg(env, v, "batch");
    const std::string n = "batch";
    auto off = viewOf<int32_t>(env, prop(env, o, "atomOffset", n), "batch.atomOffset");
    if (off.size < 1) rangeError(env, "batch.atomOffset must have at least one element");
    const int64_t S = (int64_t)off.size - 1;
    auto pos = viewOf<double>(env, prop(env, o, "positions", n), "batch.positions");
    if (pos.size % 3 != 0) rangeError(env, "batch.positions length must be a multiple of 3", "ERR_GNN_LENGTH");
    auto cells = viewOf<double>(env, prop(env, o, "cells", n), "batch.cells", S * 9);
    auto pbc = viewOf<uint8_t>(env, prop(env, o, "pbc", n), "batch.pbc", S * 3);
    gnn::StructureBatchView in;
    in.numStructures = S;
    in.atomOffset = off.data;
    in.positions = pos.data;
    in.cells = cells.data;
    in.pbc = pbc.data;
    in.numAtoms = (int64_t)pos.size / 3;
    return in;
}

Napi::Value BuildNeighbours(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2) typeError(env, "buildNeighbours(batch, rule) takes 2 arguments");
    gnn::StructureBatchView in = batchArg(env, info[0]);
    gnn::GraphRule rule = ruleArg(env, info[1]);
    gnn::NeighbourBuilder b(in, rule);
    b.compute();
    const int64_t E = b.numEdges();
    auto edgeOffset = Napi::Int32Array::New(env, (size_t)in.numStructures + 1);
    std::copy(b.edgeOffset().begin(), b.edgeOffset().end(), edgeOffset.Data());
    auto senders = Napi::Int32Array::New(env, (size_t)E);
    auto receivers = Napi::Int32Array::New(env, (size_t)E);
    auto distance = Napi::Float32Array::New(env, (size_t)E);
    auto perm = Napi::Int32Array::New(env, (size_t)E);
    b.fill(senders.Data(), receivers.Data(), distance.Data(), perm.Data());
    auto r = Napi::Object::New(env);
    r.Set("edgeOffset", edgeOffset);
    r.Set("senders", senders);
    r.Set("receivers", receivers);
    r.Set("distance", distance);
    r.Set("senderPerm", perm);
    return r;
  });
}

// Owns the output vectors of an async build until JS array buffers adopt them.
template <class T>
Napi::TypedArrayOf<T> adopt(Napi::Env env, std::vector<T>&& v) {
  if (v.empty()) return Napi::TypedArrayOf<T>::New(env, 0);
  auto* owned = new std::vector<T>(std::move(v));
  auto buf = Napi::ArrayBuffer::New(env, owned->data(), owned->size() * sizeof(T),
                                    [](Napi::Env, void*, std::vector<T>* p) { delete p; }, owned);
  return Napi::TypedArrayOf<T>::New(env, owned->size(), buf, 0);
}

class BuildNeighboursWorker : public PromiseWorker {
 public:
  BuildNeighboursWorker(Napi::Env env, const gnn::StructureBatchView& in, const gnn::GraphRule& rule)
      : PromiseWorker(env, "gnnbatch:buildNeighbours"), in_(in), rule_(rule) {}

 protected:
  void Run() override {
    gnn::NeighbourBuilder b(in_, rule_);
    b.compute();
    const size_t E = (size_t)b.numEdges();
    offset_ = b.edgeOffset();
    senders_.resize(E);
    receivers_.resize(E);
    distance_.resize(E);
    perm_.resize(E);
    b.fill(senders_.data(), receivers_.data(), distance_.data(), perm_.data());
  }
  Napi::Value Result(Napi::Env env) override {
    auto r = Napi::Object::New(env);
    r.Set("edgeOffset", adopt(env, std::move(offset_)));
    r.Set("senders", adopt(env, std::move(senders_)));
    r.Set("receivers", adopt(env, std::move(receivers_)));
    r.Set("distance", adopt(env, std::move(distance_)));
    r.Set("senderPerm", adopt(env, std::move(perm_)));
    return r;
  }

 private:
  gnn::StructureBatchView in_;
  gnn::GraphRule rule_;
  std::vector<int32_t> offset_, senders_, receivers_, perm_;
  std::vector<float> distance_;
};

Napi::Value BuildNeighboursAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2) typeError(env, "buildNeighboursAsync(batch, rule) takes 2 arguments");
    gnn::StructureBatchView in = batchArg(env, info[0]);
    gnn::GraphRule rule = ruleArg(env, info[1]);
    gnn::validateStructureBatch(in);
    auto* w = new BuildNeighboursWorker(env, in, rule);
    auto o = info[0].As<Napi::Object>();
    for (const char* k : {"atomOffset", "positions", "cells", "pbc"}) w->Keep(o.Get(k));
    auto promise = w->Promise();
    w->Queue();
    return promise;
  });
}

}  // namespace

void registerNeighbours(Napi::Env env, Napi::Object exports) {
  exports.Set("buildNeighbours", Napi::Function::New(env, BuildNeighbours, "buildNeighbours"));
  exports.Set("buildNeighboursAsync", Napi::Function::New(env, BuildNeighboursAsync, "buildNeighboursAsync"));
}

GNN_REGISTER_BINDING(registerNeighbours);

}  // namespace gnnaddon
