#include "args.h"

#include <cmath>

namespace gnnaddon {

void throwJs(Napi::Env env, gnn::ErrorKind kind, const std::string& code, const std::string& msg) {
  Napi::Error e = kind == gnn::ErrorKind::Range  ? Napi::RangeError::New(env, msg)
                  : kind == gnn::ErrorKind::Type ? Napi::TypeError::New(env, msg)
                                                 : Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

Napi::Value guarded(Napi::Env env, const std::function<Napi::Value()>& f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const gnn::Error& e) {
    throwJs(env, e.kind, e.code, e.what());
  } catch (const std::bad_alloc&) {
    throwJs(env, gnn::ErrorKind::Generic, "ERR_GNN_NOMEM", "out of memory in native code");
  } catch (const std::exception& e) {
    throwJs(env, gnn::ErrorKind::Generic, "ERR_GNN_NATIVE", e.what());
  }
}

int typedArrayType(const Napi::Value& v) {
  if (!v.IsTypedArray()) return -1;
  return (int)v.As<Napi::TypedArray>().TypedArrayType();
}

int64_t intArg(Napi::Env env, const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) typeError(env, name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) typeError(env, name + " must be an integer, got " + std::to_string(d));
  if (d < (double)lo || d > (double)hi)
    rangeError(env, name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string((int64_t)d));
  return (int64_t)d;
}

Napi::Object objArg(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsObject()) typeError(env, name + " must be an object");
  return v.As<Napi::Object>();
}

Napi::Value prop(Napi::Env env, const Napi::Object& o, const char* key, const std::string& objName) {
  if (!o.Has(key)) typeError(env, objName + "." + key + " is missing");
  return o.Get(key);
}

}  // namespace gnnaddon
