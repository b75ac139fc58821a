// JS binding of graph construction: buildNeighbours(batch, rule, options?),
// options = { directions?: boolean } adds `direction` ([3 x edges] float32).
#include <climits>
#include <memory>

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
    r.cutoff = numberArg(env, prop(env, o, "cutoff", "rule"), "rule.cutoff (\u00c5)");
  } else if (kind == "knn") {
    r.kind = gnn::GraphRule::Knn;
    r.k = (int)intArg(env, prop(env, o, "k", "rule"), "rule.k", 1, 100000);
  } else {
    typeError(env, "rule.kind must be 'fc', 'cutoff' or 'knn', got '" + kind + "'");
  }
  Napi::Value me = optProp(o, "maxEdges");
  if (!me.IsUndefined()) r.maxEdges = intArg(env, me, "rule.maxEdges", 0, INT32_MAX);
  return r;
}

// The third argument, { directions?: boolean } (read in phase 1: may run JS).
bool wantDirections(Napi::Env env, const Napi::CallbackInfo& info) {
  if (info.Length() < 3 || info[2].IsUndefined()) return false;
  auto o = objArg(env, info[2], "options");
  Napi::Value d = optProp(o, "directions");
  return !d.IsUndefined() && boolArg(env, d, "options.directions");
}

struct BatchValues { Napi::Value atomOffset, positions, cells, pbc; };

BatchValues readBatch(Napi::Env env, const Napi::Value& v) {
  auto o = objArg(env, v, "batch");
  const std::string n = "batch";
  return {prop(env, o, "atomOffset", n), prop(env, o, "positions", n), prop(env, o, "cells", n), prop(env, o, "pbc", n)};
}

gnn::StructureBatchView batchView(Napi::Env env, CallArgs& a, const BatchValues& bv) {
  auto off = a.view<int32_t>(bv.atomOffset, "batch.atomOffset", Access::In);
  if (off.size < 1) rangeError(env, "batch.atomOffset must have at least one element", "ERR_GNN_LENGTH");
  const int64_t S = (int64_t)off.size - 1;
  auto pos = a.view<double>(bv.positions, "batch.positions", Access::In);
  if (pos.size % 3 != 0) rangeError(env, "batch.positions length must be a multiple of 3", "ERR_GNN_LENGTH");
  auto cells = a.view<double>(bv.cells, "batch.cells", Access::In, S * 9);
  auto pbc = a.view<uint8_t>(bv.pbc, "batch.pbc", Access::In, S * 3);
  gnn::StructureBatchView in;
  in.numStructures = S;
  in.atomOffset = off.data;
  in.positions = pos.data;
  in.cells = cells.data;
  in.pbc = pbc.data;
  in.numAtoms = (int64_t)pos.size / 3;
  return in;
}

// A JS typed array of n elements; an allocation failure is ERR_GNN_NOMEM.
template <class A>
A newTyped(Napi::Env env, size_t n, const char* what) {
  try {
    return A::New(env, n);
  } catch (const Napi::Error&) {
    throwJs(env, gnn::ErrorKind::Generic, "ERR_GNN_NOMEM",
            std::string("could not allocate the ") + what + " array of " + std::to_string(n) + " elements");
  }
}

Napi::Value BuildNeighbours(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2) typeError(env, "buildNeighbours(batch, rule, options?) takes 2 or 3 arguments");
    const BatchValues bv = readBatch(env, info[0]);
    const gnn::GraphRule rule = ruleArg(env, info[1]);
    const bool directions = wantDirections(env, info);
    CallArgs a(env, false);
    const gnn::StructureBatchView in = batchView(env, a, bv);
    gnn::NeighbourBuilder b(in, rule);
    b.compute();
    const int64_t E = b.numEdges();
    // Allocating JS arrays may run the GC but no user JS; the inputs stay
    // referenced by this call's arguments.
    auto edgeOffset = newTyped<Napi::Int32Array>(env, (size_t)in.numStructures + 1, "edgeOffset");
    std::copy(b.edgeOffset().begin(), b.edgeOffset().end(), edgeOffset.Data());
    auto senders = newTyped<Napi::Int32Array>(env, (size_t)E, "senders");
    auto receivers = newTyped<Napi::Int32Array>(env, (size_t)E, "receivers");
    auto distance = newTyped<Napi::Float32Array>(env, (size_t)E, "distance");
    auto perm = newTyped<Napi::Int32Array>(env, (size_t)E, "senderPerm");
    Napi::Float32Array direction;
    if (directions) direction = newTyped<Napi::Float32Array>(env, (size_t)E * 3, "direction");
    b.fill(senders.Data(), receivers.Data(), distance.Data(), perm.Data(), directions ? direction.Data() : nullptr);
    auto r = Napi::Object::New(env);
    if (directions) r.Set("direction", direction);
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
  BuildNeighboursWorker(Napi::Env env, std::unique_ptr<CallArgs> args, const gnn::StructureBatchView& in,
                        const gnn::GraphRule& rule, bool directions)
      : PromiseWorker(env, "buildNeighboursAsync", std::move(args)), in_(in), rule_(rule), directions_(directions) {}

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
    if (directions_) direction_.resize(E * 3);
    b.fill(senders_.data(), receivers_.data(), distance_.data(), perm_.data(), directions_ ? direction_.data() : nullptr);
  }
  Napi::Value Result(Napi::Env env) override {
    auto r = Napi::Object::New(env);
    r.Set("edgeOffset", adopt(env, std::move(offset_)));
    r.Set("senders", adopt(env, std::move(senders_)));
    r.Set("receivers", adopt(env, std::move(receivers_)));
    r.Set("distance", adopt(env, std::move(distance_)));
    r.Set("senderPerm", adopt(env, std::move(perm_)));
    if (directions_) r.Set("direction", adopt(env, std::move(direction_)));
    return r;
  }

 private:
  gnn::StructureBatchView in_;  // points into the worker's private copies
  gnn::GraphRule rule_;
  bool directions_;
  std::vector<int32_t> offset_, senders_, receivers_, perm_;
  std::vector<float> distance_, direction_;
};

Napi::Value BuildNeighboursAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2) typeError(env, "buildNeighboursAsync(batch, rule, options?) takes 2 or 3 arguments");
    const BatchValues bv = readBatch(env, info[0]);
    const gnn::GraphRule rule = ruleArg(env, info[1]);
    const bool directions = wantDirections(env, info);
    // The worker reads private copies (args.h): the caller may transfer or
    // detach the batch arrays as soon as this returns.
    auto a = std::make_unique<CallArgs>(env, true);
    const gnn::StructureBatchView in = batchView(env, *a, bv);
    gnn::NeighbourBuilder::check(in, rule);
    auto* w = new BuildNeighboursWorker(env, std::move(a), in, rule, directions);
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
