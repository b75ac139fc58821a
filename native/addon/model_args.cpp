#include "model_args.h"

#include <cmath>

namespace gnnaddon {

double numberOr(Napi::Env env, const Napi::Object& o, const char* key, double def, const std::string& objName) {
  const Napi::Value x = optProp(o, key);  // one [[Get]]
  if (x.IsUndefined()) return def;
  return numberArg(env, x, objName + "." + key);
}

gnn::ModelConfig configArg(Napi::Env env, const Napi::Value& v) {
  auto o = objArg(env, v, "config");
  gnn::ModelConfig c;
  auto kind = prop(env, o, "kind", "config");
  if (!kind.IsString()) typeError(env, "config.kind must be 'mpeu', 'schnet' or 'painn'");
  const std::string k = kind.As<Napi::String>().Utf8Value();
  if (k == "mpeu") c.kind = gnn::ModelKind::MPEU;
  else if (k == "schnet") c.kind = gnn::ModelKind::SchNet;
  else if (k == "painn") c.kind = gnn::ModelKind::PaiNN;
  else rangeError(env, "config.kind must be 'mpeu', 'schnet' or 'painn', got '" + k + "'", "ERR_GNN_CONFIG");
  const bool painn = c.kind == gnn::ModelKind::PaiNN;
  auto integer = [&](const char* key, int def) {
    const double d = numberOr(env, o, key, def, "config");
    if (d != std::floor(d)) typeError(env, std::string("config.") + key + " must be an integer");
    if (d < -1e9 || d > 1e9) rangeError(env, std::string("config.") + key + " is out of range", "ERR_GNN_CONFIG");
    return (int)d;
  };
  auto choice = [&](const char* key) {
    const Napi::Value x = optProp(o, key);
    if (x.IsUndefined()) return !painn;  // 'mean' ('sum' for PaiNN)
    const std::string s = x.IsString() ? x.As<Napi::String>().Utf8Value() : "";
    if (s != "mean" && s != "sum") rangeError(env, std::string("config.") + key + " must be 'mean' or 'sum'", "ERR_GNN_CONFIG");
    return s == "mean";
  };
  c.latent = integer("latent", painn ? 128 : 64);
  c.passes = integer("passes", 3);
  c.basis = integer("basis", painn ? 20 : 150);
  c.numClasses = integer("numClasses", 100);
  c.readoutHidden = integer("readoutHidden", painn ? 64 : 32);
  c.cutoff = numberOr(env, o, "cutoff", 5.0, "config");
  {
    const Napi::Value x = optProp(o, "sharedFilters");
    if (!x.IsUndefined() && !x.IsBoolean()) typeError(env, "config.sharedFilters must be a boolean");
    c.sharedFilters = x.IsBoolean() && x.As<Napi::Boolean>().Value();
  }
  c.rbfSpacing = numberOr(env, o, "rbfSpacing", 0.1, "config");
  c.rbfGamma = numberOr(env, o, "rbfGamma", 10.0, "config");
  c.meanAggregation = choice("aggregation");
  c.meanReadout = choice("readout");
  gnn::validateConfig(c);
  return c;
}

gnn::AdamArgs adamArg(Napi::Env env, const Napi::Value& v) {
  auto o = objArg(env, v, "adam");
  gnn::AdamArgs a;
  a.lr = numberArg(env, prop(env, o, "lr", "adam"), "adam.lr");
  a.beta1 = numberOr(env, o, "beta1", a.beta1, "adam");
  a.beta2 = numberOr(env, o, "beta2", a.beta2, "adam");
  a.eps = numberOr(env, o, "eps", a.eps, "adam");
  a.bc1 = numberArg(env, prop(env, o, "bc1", "adam"), "adam.bc1");
  a.bc2 = numberArg(env, prop(env, o, "bc2", "adam"), "adam.bc2");
  a.weightDecay = numberOr(env, o, "weightDecay", 0, "adam");
  a.clipNorm = numberOr(env, o, "clipNorm", 0, "adam");
  if (a.bc1 <= 0 || a.bc2 <= 0) rangeError(env, "adam.bc1 and adam.bc2 must be > 0");
  if (a.clipNorm < 0) rangeError(env, "adam.clipNorm must be >= 0");
  return a;
}

}  // namespace gnnaddon
