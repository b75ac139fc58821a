// Reading a graph store object ({nodeOffset, edgeOffset, ...} of typed arrays)
// from JS into a core StoreView, in the two phases of args.h: readStore reads
// each property once (may run JS); storeView turns those same values into views
// (runs no user JS) and checks the store header.
#pragma once
#include <array>

#include "args.h"
#include "core/pack.h"

namespace gnnaddon {

// The eight store arrays as read from JS, in kStoreKeys order, and the
// optional `direction` ([3 x edges] float32; undefined when absent).
struct StoreValues {
  std::array<Napi::Value, 8> v;
  Napi::Value direction;
  std::string name;
};
StoreValues readStore(Napi::Env env, const Napi::Value& v, const std::string& name = "store");
gnn::StoreView storeView(Napi::Env env, CallArgs& args, const StoreValues& s);

}  // namespace gnnaddon
