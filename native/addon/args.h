// Argument checking at the JS boundary: typed-array views (zero copy, honouring
// byteOffset), numbers, and mapping of core exceptions to JS errors with a code.
#pragma once
#include <functional>
#include <string>

#include "core/common.h"
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
[[noreturn]] inline void typeError(Napi::Env env, const std::string& msg) { throwJs(env, gnn::ErrorKind::Type, "ERR_GNN_TYPE", msg); }
[[noreturn]] inline void rangeError(Napi::Env env, const std::string& msg, const char* code = "ERR_GNN_RANGE") { throwJs(env, gnn::ErrorKind::Range, code, msg); }

// Runs f, converting gnn::Error and std exceptions into JS exceptions.
Napi::Value guarded(Napi::Env env, const std::function<Napi::Value()>& f);

// The element type of a typed array value, or -1 when it is not a typed array.
int typedArrayType(const Napi::Value& v);

// A typed-array view of element type T, checking type, detachment and (when
// expectLen >= 0) length. `name` appears in every message.
template <class T>
gnn::View<T> viewOf(Napi::Env env, const Napi::Value& v, const std::string& name, int64_t expectLen = -1) {
  if (!v.IsTypedArray()) typeError(env, name + " must be a " + TaType<T>::name);
  // napi_get_typedarray_info gives the data pointer with byteOffset applied and
  // works for SharedArrayBuffer-backed arrays too (ArrayBuffer().Data() fails on
  // those with a code-less "Invalid argument"); only a plain ArrayBuffer can be
  // detached.
  napi_typedarray_type type;
  size_t elems = 0;
  void* raw = nullptr;
  napi_value ab;
  size_t byteOffset = 0;
  if (napi_get_typedarray_info(env, v, &type, &elems, &raw, &ab, &byteOffset) != napi_ok)
    typeError(env, name + " could not be read as a typed array");
  if (type != TaType<T>::v) typeError(env, name + " must be a " + TaType<T>::name);
  bool isPlain = false, detached = false;
  if (napi_is_arraybuffer(env, ab, &isPlain) == napi_ok && isPlain &&
      napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && detached)
    typeError(env, name + " is backed by a detached ArrayBuffer");
  T* data = static_cast<T*>(raw);
  int64_t len = (int64_t)elems;
  if (expectLen >= 0 && len != expectLen)
    rangeError(env, name + " has length " + std::to_string(len) + ", expected " + std::to_string(expectLen), "ERR_GNN_LENGTH");
  return gnn::View<T>(data, (size_t)len);
}

// A view whose length must be at least minLen.
template <class T>
gnn::View<T> viewAtLeast(Napi::Env env, const Napi::Value& v, const std::string& name, int64_t minLen) {
  auto view = viewOf<T>(env, v, name);
  if ((int64_t)view.size < minLen)
    rangeError(env, name + " has length " + std::to_string(view.size) + ", needs at least " + std::to_string(minLen), "ERR_GNN_LENGTH");
  return view;
}

// An integer argument in [lo, hi].
int64_t intArg(Napi::Env env, const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi);
// A property of an object, required.
Napi::Value prop(Napi::Env env, const Napi::Object& o, const char* key, const std::string& objName);
Napi::Object objArg(Napi::Env env, const Napi::Value& v, const std::string& name);

}  // namespace gnnaddon
