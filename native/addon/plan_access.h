// The plans of model_binding.cpp as other bindings see them (forces_binding.cpp):
// the plan behind a createPlan handle, its busy mark, and the batch inputs read
// with the same keys and checks as trainStep / predict. Defined in
// model_binding.cpp.
#pragma once
#include <array>
#include <atomic>

#include "args.h"
#include "core/models/model.h"

namespace gnnaddon {

// A live (not released) plan: exactly one of pf / pd is set (pd for float64).
struct PlanAccess {
  bool f64 = false;
  gnn::Plan<float>* pf = nullptr;
  gnn::Plan<double>* pd = nullptr;
  std::atomic<bool>* busy = nullptr;
};
// Phase 1: the plan of handle v (TypeError when not a createPlan handle,
// ERR_GNN_ARGUMENT when released). Runs no JS.
PlanAccess planAccessArg(Napi::Env env, const Napi::Value& v);

// Marks a plan busy for one call (ERR_GNN_BUSY when another call holds it).
class PlanBusy {
 public:
  explicit PlanBusy(std::atomic<bool>* b);
  ~PlanBusy();
  PlanBusy(const PlanBusy&) = delete;
  PlanBusy& operator=(const PlanBusy&) = delete;
 private:
  std::atomic<bool>* b_;
};

// Phase 1: the batch inputs object and shape (each property read once).
struct BatchValues {
  std::array<Napi::Value, 10> v;
  Napi::Value direction;
  gnn::PackShape shape;
};
BatchValues readBatchValues(Napi::Env env, const Napi::Value& inputs, const Napi::Value& shape);
// Phase 2: the views of a batch (element type T for the float arrays).
template <class T>
gnn::BatchInputs<T> batchViews(CallArgs& a, const BatchValues& v);

}  // namespace gnnaddon
