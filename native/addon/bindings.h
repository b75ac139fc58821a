// Binding files register themselves (see GNN_REGISTER_BINDING) so that adding
// a binding never touches the module entry point.
#pragma once
#include <vector>

#include "args.h"
namespace gnnaddon {
using RegisterFn = void (*)(Napi::Env, Napi::Object);
std::vector<RegisterFn>& bindingRegistry();
struct BindingRegistrar {
  explicit BindingRegistrar(RegisterFn f) { bindingRegistry().push_back(f); }
};
}  // namespace gnnaddon

// Registers `fn(env, exports)` to run at module initialisation.
#define GNN_REGISTER_BINDING(fn) static ::gnnaddon::BindingRegistrar gnn_registrar_##fn(fn)
