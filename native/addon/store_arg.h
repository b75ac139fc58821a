// Reading a graph store object ({nodeOffset, edgeOffset, ...} of typed arrays)
// from JS into a core StoreView, checking types and lengths.
#pragma once
#include "args.h"
#include "core/pack.h"

namespace gnnaddon {
gnn::StoreView storeArg(Napi::Env env, const Napi::Value& v, const std::string& name = "store");
// Keeps every typed array of a store alive in a worker.
void keepStore(class PromiseWorker& w, const Napi::Value& v);
}  // namespace gnnaddon
