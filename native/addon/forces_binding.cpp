// JS binding of the force pass (docs/forces.md): energies, forces and stress of
// a packed batch on a plan created with { forces: true }, and the double
// backward (forceGrad, forceLossAndGrad) on one created with forceTraining too.
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings.h"
#include "plan_access.h"
#include "scalar.h"

namespace gnnaddon {
namespace {

// forcesStep(plan, inputs, shape, params, energyOut, forcesOut, stressOut?, volumes?) -> loss
//   energyOut [graphs]: per-graph energies (the model's standardised units)
//   forcesOut [nodes x 3]: -dE/dx, xyz per atom (padding atoms 0)
//   stressOut [graphs x 6] with volumes [graphs] (Float64Array, Å^3, > 0 for
//   every real graph): (1/V) dE/d strain, Voigt xx yy zz yz xz xy (padding
//   graphs 0). Both or neither.
template <class T>
Napi::Value forcesCall(Napi::Env env, const Napi::CallbackInfo& info, const PlanAccess& pa) {
  PlanBusy busy(pa.busy);
  gnn::Plan<T>* pp;
  if constexpr (std::is_same_v<T, double>) pp = pa.pd;
  else pp = pa.pf;
  gnn::Plan<T>& plan = *pp;
  const BatchValues bv = readBatchValues(env, info[1], info[2]);
  const bool withStress = info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsNull();
  const bool withVolumes = info.Length() > 7 && !info[7].IsUndefined() && !info[7].IsNull();
  if (withStress != withVolumes)
    typeError(env, "forcesStep: stressOut and volumes go together (the stress is (1/volume) dE/d strain)", "ERR_GNN_ARGUMENT");
  CallArgs a(env, false);
  const gnn::BatchInputs<T> b = batchViews<T>(a, bv);
  const int64_t N = b.shape.nodes, G = b.shape.graphs;
  const T* params = a.view<T>(info[3], "params", Access::In, plan.layout.total).data;
  T* energy = a.view<T>(info[4], "energyOut", Access::Out, G).data;
  T* forces = a.view<T>(info[5], "forcesOut", Access::Out, 3 * N).data;
  T* stress = nullptr;
  const double* volumes = nullptr;
  if (withStress) {
    stress = a.view<T>(info[6], "stressOut", Access::Out, 6 * G).data;
    volumes = a.view<double>(info[7], "volumes", Access::In, G).data;
  }
  a.checkAliasing();
  if (withStress)
    for (int64_t g = 0; g < G; ++g)
      if (b.mask[g] > 0 && !(std::isfinite(volumes[g]) && volumes[g] > 0))
        rangeError(env, "forcesStep: volumes[" + std::to_string(g) + "] = " + std::to_string(volumes[g]) +
                            ": the stress of a graph needs its cell volume (> 0, Å^3); leave stress out for non-periodic structures",
                   "ERR_GNN_RANGE");
  std::vector<T> strain(withStress ? (size_t)(6 * G) : 0);
  const double loss = gnn::forcesStep<T>(plan, params, b, energy, forces, withStress ? strain.data() : nullptr);
  if (withStress)
    for (int64_t g = 0; g < G; ++g)
      for (int v = 0; v < 6; ++v) stress[6 * g + v] = b.mask[g] > 0 ? (T)((double)strain[6 * g + v] / volumes[g]) : (T)0;
  return Napi::Number::New(env, loss);
}

Napi::Value ForcesStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 6)
      typeError(env, "forcesStep(plan, inputs, shape, params, energyOut, forcesOut, stressOut?, volumes?) takes 6 to 8 arguments");
    const PlanAccess pa = planAccessArg(env, info[0]);
    return withScalar(pa.f64, [&](auto zero) { return forcesCall<decltype(zero)>(env, info, pa); });
  });
}

// forceGrad(plan, inputs, shape, params, forceWeights, gradOut, energyGradOut?) -> w . F
//   The double backward (plans created with { forces: true, forceTraining:
//   true }; float32 or float64, arrays of the plan's dtype): with forceWeights
//   w [nodes x 3] (dL/dF of a force loss), gradOut [params] = d(w . F)/d params
//   and energyGradOut [params] = d(sum of the real graphs' energies)/d params.
template <class T>
Napi::Value forceGradCall(Napi::Env env, const Napi::CallbackInfo& info, const PlanAccess& pa) {
  PlanBusy busy(pa.busy);
  gnn::Plan<T>* pp;
  if constexpr (std::is_same_v<T, double>) pp = pa.pd;
  else pp = pa.pf;
  gnn::Plan<T>& plan = *pp;
  const BatchValues bv = readBatchValues(env, info[1], info[2]);
  const bool withEnergy = info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsNull();
  CallArgs a(env, false);
  const gnn::BatchInputs<T> b = batchViews<T>(a, bv);
  const int64_t P = plan.layout.total;
  const T* params = a.view<T>(info[3], "params", Access::In, P).data;
  const T* w = a.view<T>(info[4], "forceWeights", Access::In, 3 * b.shape.nodes).data;
  T* grad = a.view<T>(info[5], "gradOut", Access::Out, P).data;
  T* eg = withEnergy ? a.view<T>(info[6], "energyGradOut", Access::Out, P).data : nullptr;
  a.checkAliasing();
  return Napi::Number::New(env, gnn::forceGrad<T>(plan, params, b, w, grad, eg));
}

Napi::Value ForceGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 6)
      typeError(env, "forceGrad(plan, inputs, shape, params, forceWeights, gradOut, energyGradOut?) takes 6 or 7 arguments");
    const PlanAccess pa = planAccessArg(env, info[0]);
    return withScalar(pa.f64, [&](auto zero) { return forceGradCall<decltype(zero)>(env, info, pa); });
  });
}

// forceLossAndGrad(plan, inputs, shape, params, targetForces, atomWeights, energyWeight, gradOut, forcesOut?)
//   -> { energyLoss, forceLoss }
//   One training step's gradient on energies and forces (no optimiser step):
//   gradOut = energyWeight d(energyLoss)/d params + d(forceLoss)/d params with
//   energyLoss the masked MSE of lossAndGrad and forceLoss = sum over the real
//   atoms of atomWeights[i] |F_i - targetForces_i|^2 (model units).
template <class T>
Napi::Value forceLossCall(Napi::Env env, const Napi::CallbackInfo& info, const PlanAccess& pa) {
  PlanBusy busy(pa.busy);
  gnn::Plan<T>* pp;
  if constexpr (std::is_same_v<T, double>) pp = pa.pd;
  else pp = pa.pf;
  gnn::Plan<T>& plan = *pp;
  const BatchValues bv = readBatchValues(env, info[1], info[2]);
  const bool withForces = info.Length() > 8 && !info[8].IsUndefined() && !info[8].IsNull();
  if (!info[6].IsNumber()) typeError(env, "forceLossAndGrad: energyWeight must be a number", "ERR_GNN_ARGUMENT");
  const double energyWeight = info[6].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(energyWeight) || energyWeight < 0)
    rangeError(env, "forceLossAndGrad: energyWeight must be finite and >= 0, got " + std::to_string(energyWeight), "ERR_GNN_RANGE");
  CallArgs a(env, false);
  const gnn::BatchInputs<T> b = batchViews<T>(a, bv);
  const int64_t P = plan.layout.total, N = b.shape.nodes;
  const T* params = a.view<T>(info[3], "params", Access::In, P).data;
  const T* target = a.view<T>(info[4], "targetForces", Access::In, 3 * N).data;
  const T* aw = a.view<T>(info[5], "atomWeights", Access::In, N).data;
  T* grad = a.view<T>(info[7], "gradOut", Access::Out, P).data;
  T* forces = withForces ? a.view<T>(info[8], "forcesOut", Access::Out, 3 * N).data : nullptr;
  a.checkAliasing();
  const gnn::ForceLossResult r = gnn::forceLossAndGrad<T>(plan, params, b, target, aw, energyWeight, grad, forces);
  Napi::Object o = Napi::Object::New(env);
  o.Set("energyLoss", r.energyLoss);
  o.Set("forceLoss", r.forceLoss);
  return o;
}

Napi::Value ForceLossAndGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 8)
      typeError(env,
                "forceLossAndGrad(plan, inputs, shape, params, targetForces, atomWeights, energyWeight, gradOut, forcesOut?) "
                "takes 8 or 9 arguments");
    const PlanAccess pa = planAccessArg(env, info[0]);
    return withScalar(pa.f64, [&](auto zero) { return forceLossCall<decltype(zero)>(env, info, pa); });
  });
}

}  // namespace

void registerForces(Napi::Env env, Napi::Object exports) {
  exports.Set("forcesStep", Napi::Function::New(env, ForcesStep, "forcesStep"));
  exports.Set("forceGrad", Napi::Function::New(env, ForceGrad, "forceGrad"));
  exports.Set("forceLossAndGrad", Napi::Function::New(env, ForceLossAndGrad, "forceLossAndGrad"));
}
GNN_REGISTER_BINDING(registerForces);

}  // namespace gnnaddon
