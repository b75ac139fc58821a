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

// Checks the volumes of the graphs a stress term scores: finite and > 0 for
// every real graph whose weights (weightOf) are not 0.
template <class T, class F>
void checkStressVolumes(Napi::Env env, const char* call, const gnn::BatchInputs<T>& b, const double* volumes, F weightOf) {
  for (int64_t g = 0; g < b.shape.graphs; ++g)
    if (b.mask[g] > 0 && weightOf(g) && !(std::isfinite(volumes[g]) && volumes[g] > 0))
      rangeError(env, std::string(call) + ": volumes[" + std::to_string(g) + "] = " + std::to_string(volumes[g]) +
                          ": a graph with a stress weight needs its cell volume (> 0, Å^3); give it weight 0 when it has no stress",
                 "ERR_GNN_RANGE");
}

// forceGrad(plan, inputs, shape, params, forceWeights, gradOut, energyGradOut?, stressWeights?, volumes?) -> w . F + s . sigma
//   The double backward (plans created with { forces: true, forceTraining:
//   true }; float32 or float64, arrays of the plan's dtype): with forceWeights
//   w [nodes x 3] (dL/dF of a force loss) and optionally stressWeights s
//   [graphs x 6] (dL/dsigma, Voigt) with volumes [graphs] (Float64Array),
//   gradOut [params] = d(w . F + s . sigma)/d params and energyGradOut
//   [params] = d(sum of the real graphs' energies)/d params.
template <class T>
Napi::Value forceGradCall(Napi::Env env, const Napi::CallbackInfo& info, const PlanAccess& pa) {
  PlanBusy busy(pa.busy);
  gnn::Plan<T>* pp;
  if constexpr (std::is_same_v<T, double>) pp = pa.pd;
  else pp = pa.pf;
  gnn::Plan<T>& plan = *pp;
  const BatchValues bv = readBatchValues(env, info[1], info[2]);
  auto given = [&](size_t i) { return info.Length() > i && !info[i].IsUndefined() && !info[i].IsNull(); };
  const bool withEnergy = given(6);
  const bool withStress = given(7);
  if (withStress != given(8))
    typeError(env, "forceGrad: stressWeights and volumes go together (the stress is (1/volume) dE/d strain)", "ERR_GNN_ARGUMENT");
  CallArgs a(env, false);
  const gnn::BatchInputs<T> b = batchViews<T>(a, bv);
  const int64_t P = plan.layout.total, G = b.shape.graphs;
  const T* params = a.view<T>(info[3], "params", Access::In, P).data;
  const T* w = a.view<T>(info[4], "forceWeights", Access::In, 3 * b.shape.nodes).data;
  T* grad = a.view<T>(info[5], "gradOut", Access::Out, P).data;
  T* eg = withEnergy ? a.view<T>(info[6], "energyGradOut", Access::Out, P).data : nullptr;
  const T* sw = withStress ? a.view<T>(info[7], "stressWeights", Access::In, 6 * G).data : nullptr;
  const double* vol = withStress ? a.view<double>(info[8], "volumes", Access::In, G).data : nullptr;
  a.checkAliasing();
  if (withStress)
    checkStressVolumes(env, "forceGrad", b, vol, [&](int64_t g) {
      for (int v = 0; v < 6; ++v)
        if (sw[6 * g + v] != (T)0) return true;
      return false;
    });
  return Napi::Number::New(env, gnn::forceGrad<T>(plan, params, b, w, grad, eg, sw, vol));
}

Napi::Value ForceGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 6)
      typeError(env, "forceGrad(plan, inputs, shape, params, forceWeights, gradOut, energyGradOut?, stressWeights?, volumes?) takes 6 to 9 arguments");
    const PlanAccess pa = planAccessArg(env, info[0]);
    return withScalar(pa.f64, [&](auto zero) { return forceGradCall<decltype(zero)>(env, info, pa); });
  });
}

// forceLossAndGrad(plan, inputs, shape, params, targetForces, atomWeights, energyWeight, gradOut, forcesOut?, stress?)
//   -> { energyLoss, forceLoss, stressLoss }
//   One training step's gradient on energies, forces and stress (no
//   optimiser step): gradOut = energyWeight d(energyLoss)/d params +
//   d(forceLoss + stressLoss)/d params with energyLoss the masked MSE of
//   lossAndGrad, forceLoss = sum over the real atoms of atomWeights[i] |F_i -
//   targetForces_i|^2 and, with stress = { targets [graphs x 6], weights
//   [graphs], volumes [graphs] (Float64Array), out? [graphs x 6] },
//   stressLoss = sum over real graphs of weights[g] |sigma_g - targets_g|^2
//   (Voigt; model units).
template <class T>
Napi::Value forceLossCall(Napi::Env env, const Napi::CallbackInfo& info, const PlanAccess& pa) {
  PlanBusy busy(pa.busy);
  gnn::Plan<T>* pp;
  if constexpr (std::is_same_v<T, double>) pp = pa.pd;
  else pp = pa.pf;
  gnn::Plan<T>& plan = *pp;
  const BatchValues bv = readBatchValues(env, info[1], info[2]);
  auto given = [&](size_t i) { return info.Length() > i && !info[i].IsUndefined() && !info[i].IsNull(); };
  const bool withForces = given(8);
  const bool withStress = given(9);
  if (!info[6].IsNumber()) typeError(env, "forceLossAndGrad: energyWeight must be a number", "ERR_GNN_ARGUMENT");
  const double energyWeight = info[6].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(energyWeight) || energyWeight < 0)
    rangeError(env, "forceLossAndGrad: energyWeight must be finite and >= 0, got " + std::to_string(energyWeight), "ERR_GNN_RANGE");
  Napi::Value sTargets, sWeights, sVolumes, sOut;
  if (withStress) {
    const Napi::Object so = objArg(env, info[9], "stress");
    sTargets = prop(env, so, "targets", "stress");
    sWeights = prop(env, so, "weights", "stress");
    sVolumes = prop(env, so, "volumes", "stress");
    sOut = optProp(so, "out");
  }
  CallArgs a(env, false);
  const gnn::BatchInputs<T> b = batchViews<T>(a, bv);
  const int64_t P = plan.layout.total, N = b.shape.nodes, G = b.shape.graphs;
  const T* params = a.view<T>(info[3], "params", Access::In, P).data;
  const T* target = a.view<T>(info[4], "targetForces", Access::In, 3 * N).data;
  const T* aw = a.view<T>(info[5], "atomWeights", Access::In, N).data;
  T* grad = a.view<T>(info[7], "gradOut", Access::Out, P).data;
  T* forces = withForces ? a.view<T>(info[8], "forcesOut", Access::Out, 3 * N).data : nullptr;
  gnn::StressTerm<T> st;
  if (withStress) {
    st.target = a.view<T>(sTargets, "stress.targets", Access::In, 6 * G).data;
    st.graphWeights = a.view<T>(sWeights, "stress.weights", Access::In, G).data;
    st.volumes = a.view<double>(sVolumes, "stress.volumes", Access::In, G).data;
    if (!sOut.IsUndefined() && !sOut.IsNull()) st.out = a.view<T>(sOut, "stress.out", Access::Out, 6 * G).data;
  }
  a.checkAliasing();
  if (withStress) {
    for (int64_t g = 0; g < G; ++g)
      if (b.mask[g] > 0 && !(std::isfinite((double)st.graphWeights[g]) && st.graphWeights[g] >= 0))
        rangeError(env, "forceLossAndGrad: stress.weights[" + std::to_string(g) + "] must be finite and >= 0", "ERR_GNN_RANGE");
    checkStressVolumes(env, "forceLossAndGrad", b, st.volumes, [&](int64_t g) { return st.graphWeights[g] > (T)0; });
    for (int64_t g = 0; g < G; ++g)
      if (b.mask[g] > 0 && st.graphWeights[g] > (T)0)
        for (int v = 0; v < 6; ++v)
          if (!std::isfinite((double)st.target[6 * g + v]))
            rangeError(env, "forceLossAndGrad: stress.targets[" + std::to_string(6 * g + v) +
                                "] is not finite: a graph without a stress target takes weight 0",
                       "ERR_GNN_RANGE");
  }
  const gnn::ForceLossResult r = gnn::forceLossAndGrad<T>(plan, params, b, target, aw, energyWeight, grad, forces, st);
  Napi::Object o = Napi::Object::New(env);
  o.Set("energyLoss", r.energyLoss);
  o.Set("forceLoss", r.forceLoss);
  o.Set("stressLoss", r.stressLoss);
  return o;
}

Napi::Value ForceLossAndGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 8)
      typeError(env,
                "forceLossAndGrad(plan, inputs, shape, params, targetForces, atomWeights, energyWeight, gradOut, forcesOut?, "
                "stress?) takes 8 to 10 arguments");
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
