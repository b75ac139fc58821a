// Argument checking at the JS boundary: typed-array views (zero copy, honouring
// byteOffset), numbers, and mapping of core exceptions to JS errors with a code.
//
// Why arguments are read in two phases (issue 14): reading a property can run
// JavaScript (a getter, a Proxy trap), and JavaScript can detach, transfer or
// shrink any ArrayBuffer. A raw pointer taken before some JS runs may dangle by
// the time a kernel reads through it. So every binding
//   1. reads each JS property it needs exactly once (prop/optProp), and parses
//      every number, string and option (these may run JS), then
//   2. turns the values it kept into views through one CallArgs (runs no user
//      JS), checks that outputs overlap nothing (checkAliasing), and calls the
//      kernel with no JS in between.
// Resizable ArrayBuffers are refused (ERR_GNN_RESIZABLE). Arrays read from a
// SharedArrayBuffer are copied first (another thread could change validated
// indices between the check and the use). Async calls copy every array into
// native memory (CallArgs(env, true)): a transferred ArrayBuffer frees its
// memory whatever references the addon holds, so a worker must never read JS
// memory; results are copied back on the JS thread only into arrays that are
// still attached with their original length (else ERR_GNN_DETACHED and nothing
// is written).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/pack.h"
#include "napi_include.h"

namespace gnnaddon {

// Element type tags mirrored from napi_typedarray_type.
template <class T> struct TaType;
template <> struct TaType<float> { static constexpr napi_typedarray_type v = napi_float32_array; static constexpr const char* name = "Float32Array"; };
template <> struct TaType<double> { static constexpr napi_typedarray_type v = napi_float64_array; static constexpr const char* name = "Float64Array"; };
template <> struct TaType<int32_t> { static constexpr napi_typedarray_type v = napi_int32_array; static constexpr const char* name = "Int32Array"; };
template <> struct TaType<uint8_t> { static constexpr napi_typedarray_type v = napi_uint8_array; static constexpr const char* name = "Uint8Array"; };

// Throws a JS error of the kind/code of a gnn::Error.
[[noreturn]] void throwJs(Napi::Env env, gnn::ErrorKind kind, const std::string& code, const std::string& msg);
[[noreturn]] inline void typeError(Napi::Env env, const std::string& msg, const char* code = "ERR_GNN_TYPE") { throwJs(env, gnn::ErrorKind::Type, code, msg); }
[[noreturn]] inline void rangeError(Napi::Env env, const std::string& msg, const char* code = "ERR_GNN_RANGE") { throwJs(env, gnn::ErrorKind::Range, code, msg); }

// Runs f, converting gnn::Error and std exceptions into JS exceptions.
Napi::Value guarded(Napi::Env env, const std::function<Napi::Value()>& f);

// The element type of a typed array value, or -1 when it is not a typed array
// (runs no JS).
int typedArrayType(const Napi::Value& v);

// ---- phase 1: reading JS values (may run JS) -------------------------------------

// o[key], read with exactly one [[Get]]; TypeError "<objName>.<key> is missing" when undefined.
Napi::Value prop(Napi::Env env, const Napi::Object& o, const char* key, const std::string& objName);
// o[key] with one [[Get]]; undefined when absent.
Napi::Value optProp(const Napi::Object& o, const char* key);
Napi::Object objArg(Napi::Env env, const Napi::Value& v, const std::string& name);
// An integer argument in [lo, hi]; a non-number (BigInt, string, object) is a
// TypeError with a code, never coerced.
int64_t intArg(Napi::Env env, const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi);
// A finite number (TypeError for non-numbers, RangeError for NaN/Inf).
double numberArg(Napi::Env env, const Napi::Value& v, const std::string& name);
bool boolArg(Napi::Env env, const Napi::Value& v, const std::string& name);
std::string stringArg(Napi::Env env, const Napi::Value& v, const std::string& name);
// Bounds of a shape argument beyond int32 (nodes <= INT32_MAX - 1 so that
// nodes + 1 row pointers fit). The packer and CPU plans take any shape, an
// empty one included; a CUDA plan needs a node and a graph slot and at most
// 2^20 slots (cudaCreatePlan's own limit, checked here first with the
// argument's name).
struct ShapeLimits { int64_t minNodes = 0, minGraphs = 0, maxGraphs = INT32_MAX; };
inline constexpr ShapeLimits kAnyShape{};
inline constexpr ShapeLimits kCudaPlanShape{1, 1, 1 << 20};
// The one parser of {nodes, edges, graphs}: each property read once, each an
// integer within `lim` (TypeError/RangeError naming `name.nodes` etc.).
gnn::PackShape shapeArg(Napi::Env env, const Napi::Value& v, const std::string& name, ShapeLimits lim = kAnyShape);

// ---- phase 2: views (run no user JS) ---------------------------------------------

enum class Access { In, Out, InOut };

// The arrays of one native call. Not copyable; an async worker owns its CallArgs.
class CallArgs {
 public:
  CallArgs(Napi::Env env, bool async);
  CallArgs(const CallArgs&) = delete;
  CallArgs& operator=(const CallArgs&) = delete;
  ~CallArgs();

  // A view of element type T of the typed array v: checks the element type,
  // detachment, resizability and the length (expectLen exact, or >= minLen when
  // expectLen < 0). In arrays are copied when shared or when async; Out/InOut
  // arrays are private buffers when async (copied back by copyBack()).
  template <class T>
  gnn::View<T> view(const Napi::Value& v, const std::string& name, Access a, int64_t expectLen = -1,
                    int64_t minLen = -1) {
    size_t elems = 0;
    auto* p = static_cast<T*>(add(v, name, a, TaType<T>::v, TaType<T>::name, sizeof(T), expectLen, minLen, &elems));
    return gnn::View<T>(p, elems);
  }
  // Throws RangeError ERR_GNN_ALIAS when the memory of an Out/InOut array
  // overlaps any other array of the call (memory ranges, not identity).
  void checkAliasing() const;
  // Async only, on the JS thread after the worker finished: copies every
  // Out/InOut array back. Throws Error ERR_GNN_DETACHED (writing nothing) when
  // one of them was detached, resized or transferred meanwhile.
  void copyBack(Napi::Env env, const char* call);
  bool async() const { return async_; }

 private:
  struct Entry;
  void* add(const Napi::Value& v, const std::string& name, Access a, napi_typedarray_type type,
            const char* typeName, size_t elemBytes, int64_t expectLen, int64_t minLen, size_t* elemsOut);
  napi_env env_;
  bool async_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// One-array convenience for bindings without outputs to alias (a fresh
// CallArgs per call is the norm; this is the sync In case).
template <class T>
gnn::View<T> viewOf(CallArgs& a, const Napi::Value& v, const std::string& name, int64_t expectLen = -1) {
  return a.view<T>(v, name, Access::In, expectLen);
}

// Registers the per-environment state the checks need (the built-in
// ArrayBuffer.prototype.resizable getter, captured before user code can
// replace it). Called once per environment at module initialisation.
void initArgs(Napi::Env env);

}  // namespace gnnaddon
