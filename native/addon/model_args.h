// Model configuration and optimiser arguments from JS, shared by the CPU and
// CUDA model bindings (one definition of the fields, defaults and checks).
#pragma once
#include <string>

#include "args.h"
#include "core/adam.h"
#include "core/models/model.h"

namespace gnnaddon {

// o[key] as a finite number, or `def` when absent/undefined; errors name `objName.key`.
double numberOr(Napi::Env env, const Napi::Object& o, const char* key, double def, const std::string& objName);

// {kind: 'mpeu'|'schnet'|'painn', latent, passes, basis, rbfSpacing, rbfGamma, numClasses,
//  readoutHidden, aggregation: 'mean'|'sum', readout: 'mean'|'sum', cutoff, sharedFilters}
// (the study's defaults per kind; PaiNN's from docs/painn.md).
gnn::ModelConfig configArg(Napi::Env env, const Napi::Value& v);

// {lr, bc1, bc2 (required), beta1, beta2, eps, weightDecay, clipNorm}.
gnn::AdamArgs adamArg(Napi::Env env, const Napi::Value& v);

}  // namespace gnnaddon
