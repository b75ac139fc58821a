#include "args.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "bindings.h"

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
    throw;  // ours carry a code; anything else is the caller's own exception (a throwing getter)
  } catch (const gnn::Error& e) {
    throwJs(env, e.kind, e.code, e.what());
  } catch (const std::bad_alloc&) {
    throwJs(env, gnn::ErrorKind::Generic, "ERR_GNN_NOMEM", "out of memory in native code");
  } catch (const std::length_error&) {
    throwJs(env, gnn::ErrorKind::Generic, "ERR_GNN_NOMEM", "allocation too large in native code");
  } catch (const std::exception& e) {
    throwJs(env, gnn::ErrorKind::Generic, "ERR_GNN_NATIVE", e.what());
  }
}

int typedArrayType(const Napi::Value& v) {
  if (!v.IsTypedArray()) return -1;
  return (int)v.As<Napi::TypedArray>().TypedArrayType();
}

// ---- phase 1 ---------------------------------------------------------------------

static std::string describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_bigint: return "a BigInt";
    case napi_function: return "a function";
    case napi_external: return "an external handle";
    default: return v.IsTypedArray() ? "a typed array" : "an object";
  }
}

static std::string numStr(double d) {
  std::ostringstream s;
  s.precision(17);
  s << d;
  return s.str();
}

Napi::Value optProp(const Napi::Object& o, const char* key) { return o.Get(key); }

Napi::Value prop(Napi::Env env, const Napi::Object& o, const char* key, const std::string& objName) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) typeError(env, objName + "." + key + " is missing");
  return v;
}

Napi::Object objArg(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsObject()) typeError(env, name + " must be an object, got " + describe(v));
  return v.As<Napi::Object>();
}

int64_t intArg(Napi::Env env, const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) typeError(env, name + " must be a number, got " + describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) typeError(env, name + " must be an integer, got " + numStr(d));
  if (d < (double)lo || d > (double)hi)
    rangeError(env, name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + numStr(d));
  return (int64_t)d;
}

double numberArg(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) typeError(env, name + " must be a number, got " + describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) rangeError(env, name + " must be finite, got " + numStr(d));
  return d;
}

bool boolArg(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsBoolean()) typeError(env, name + " must be a boolean, got " + describe(v));
  return v.As<Napi::Boolean>().Value();
}

std::string stringArg(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsString()) typeError(env, name + " must be a string, got " + describe(v));
  return v.As<Napi::String>().Utf8Value();
}

gnn::PackShape shapeArg(Napi::Env env, const Napi::Value& v, const std::string& name, ShapeLimits lim) {
  auto o = objArg(env, v, name);
  gnn::PackShape s;
  s.nodes = intArg(env, prop(env, o, "nodes", name), name + ".nodes", lim.minNodes, INT32_MAX - 1);
  s.edges = intArg(env, prop(env, o, "edges", name), name + ".edges", 0, INT32_MAX);
  s.graphs = intArg(env, prop(env, o, "graphs", name), name + ".graphs", lim.minGraphs, lim.maxGraphs);
  return s;
}

// ---- per-environment state: the built-in `resizable` getter -----------------------

namespace {
std::mutex g_envMutex;
std::unordered_map<napi_env, napi_ref>& resizableGetters() {
  static std::unordered_map<napi_env, napi_ref> m;
  return m;
}
void dropEnv(void* arg) {
  auto env = static_cast<napi_env>(arg);
  std::lock_guard<std::mutex> lock(g_envMutex);
  auto& m = resizableGetters();
  auto it = m.find(env);
  if (it != m.end()) {
    napi_delete_reference(env, it->second);
    m.erase(it);
  }
}

// True when the plain ArrayBuffer ab is resizable (the captured built-in
// getter runs no user code). False where the engine has no resizable buffers.
bool isResizable(napi_env env, napi_value ab) {
  napi_ref ref = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_envMutex);
    auto it = resizableGetters().find(env);
    if (it != resizableGetters().end()) ref = it->second;
  }
  if (!ref) return false;
  napi_value getter, result;
  if (napi_get_reference_value(env, ref, &getter) != napi_ok || !getter) return false;
  if (napi_call_function(env, ab, getter, 0, nullptr, &result) != napi_ok) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
    return false;
  }
  bool r = false;
  napi_get_value_bool(env, result, &r);
  return r;
}
}  // namespace

void initArgs(Napi::Env env) {
  // Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable').get
  Napi::Object global = env.Global();
  Napi::Value ab = global.Get("ArrayBuffer"), obj = global.Get("Object");
  if (!ab.IsFunction() || !obj.IsObject()) return;
  Napi::Value proto = ab.As<Napi::Object>().Get("prototype");
  Napi::Value gopd = obj.As<Napi::Object>().Get("getOwnPropertyDescriptor");
  if (!proto.IsObject() || !gopd.IsFunction()) return;
  Napi::Value desc = gopd.As<Napi::Function>().Call(obj, {proto, Napi::String::New(env, "resizable")});
  if (!desc.IsObject()) return;  // an engine without resizable ArrayBuffers
  Napi::Value get = desc.As<Napi::Object>().Get("get");
  if (!get.IsFunction()) return;
  napi_ref ref;
  if (napi_create_reference(env, get, 1, &ref) != napi_ok) return;
  bool fresh;
  {
    std::lock_guard<std::mutex> lock(g_envMutex);
    auto it = resizableGetters().find(env);
    fresh = it == resizableGetters().end();
    if (!fresh) napi_delete_reference(env, it->second);  // initialised twice in one environment
    resizableGetters()[env] = ref;
  }
  if (fresh) napi_add_env_cleanup_hook(env, dropEnv, env);  // one hook per environment (a second would abort)
}

static void registerArgs(Napi::Env env, Napi::Object) { initArgs(env); }
GNN_REGISTER_BINDING(registerArgs);

// ---- phase 2: CallArgs -------------------------------------------------------------

struct CallArgs::Entry {
  std::string name;
  Access access = Access::In;
  napi_typedarray_type type = napi_int8_array;
  size_t elemBytes = 1, elems = 0;
  uintptr_t jsBegin = 0, jsEnd = 0;  // the JS memory at capture (for the aliasing check)
  std::unique_ptr<uint8_t[]> copy;   // private copy (shared input, or any async array)
  napi_ref ref = nullptr;            // async Out/InOut: where copyBack writes
};

CallArgs::CallArgs(Napi::Env env, bool async) : env_(env), async_(async) {}

CallArgs::~CallArgs() {
  for (auto& e : entries_)
    if (e->ref) napi_delete_reference(env_, e->ref);
}

// Zero-length arrays may have no data pointer; kernels get a valid one.
alignas(64) static uint8_t kEmpty[64];

void* CallArgs::add(const Napi::Value& v, const std::string& name, Access a, napi_typedarray_type want,
                    const char* typeName, size_t elemBytes, int64_t expectLen, int64_t minLen, size_t* elemsOut) {
  Napi::Env env(env_);
  if (!v.IsTypedArray()) typeError(env, name + " must be a " + typeName + ", got " + describe(v));
  // napi_get_typedarray_info gives the data pointer with byteOffset applied and
  // works for SharedArrayBuffer-backed arrays too; only a plain ArrayBuffer can
  // be detached or resizable.
  napi_typedarray_type type;
  size_t elems = 0, byteOffset = 0;
  void* raw = nullptr;
  napi_value ab;
  if (napi_get_typedarray_info(env_, v, &type, &elems, &raw, &ab, &byteOffset) != napi_ok)
    typeError(env, name + " could not be read as a typed array");
  if (type != want) typeError(env, name + " must be a " + typeName);
  bool plain = false, detached = false;
  if (napi_is_arraybuffer(env_, ab, &plain) != napi_ok) plain = false;
  if (plain) {
    if (napi_is_detached_arraybuffer(env_, ab, &detached) == napi_ok && detached)
      typeError(env, name + " is backed by a detached ArrayBuffer");
    if (isResizable(env_, ab))
      typeError(env, name + " is backed by a resizable ArrayBuffer, which native calls refuse (it could shrink under them); pass a fixed-length copy (e.g. .slice())",
                "ERR_GNN_RESIZABLE");
  }
  const int64_t len = (int64_t)elems;
  if (expectLen >= 0 && len != expectLen)
    rangeError(env, name + " has length " + std::to_string(len) + ", expected " + std::to_string(expectLen), "ERR_GNN_LENGTH");
  if (minLen >= 0 && len < minLen)
    rangeError(env, name + " has length " + std::to_string(len) + ", needs at least " + std::to_string(minLen), "ERR_GNN_LENGTH");

  auto e = std::make_unique<Entry>();
  e->name = name;
  e->access = a;
  e->type = type;
  e->elemBytes = elemBytes;
  e->elems = elems;
  const size_t bytes = elems * elemBytes;
  e->jsBegin = (uintptr_t)raw;
  e->jsEnd = (uintptr_t)raw + (raw ? bytes : 0);
  void* data = raw && bytes ? raw : kEmpty;
  const bool shared = !plain;
  if (bytes > 0 && (async_ || (a == Access::In && shared))) {
    e->copy.reset(new uint8_t[bytes]);
    std::memcpy(e->copy.get(), raw, bytes);
    data = e->copy.get();
  }
  if (async_ && a != Access::In) {
    if (napi_create_reference(env_, v, 1, &e->ref) != napi_ok) typeError(env, name + " could not be referenced");
  }
  entries_.push_back(std::move(e));
  *elemsOut = elems;
  return data;
}

void CallArgs::checkAliasing() const {
  for (const auto& w : entries_) {
    if (w->access == Access::In || w->jsBegin == w->jsEnd) continue;
    for (const auto& o : entries_) {
      if (o.get() == w.get() || o->jsBegin == o->jsEnd) continue;
      if (w->jsBegin < o->jsEnd && o->jsBegin < w->jsEnd)
        rangeError(Napi::Env(env_), w->name + " overlaps " + o->name +
                                        " in memory; an array a native call writes must not share memory with any other argument",
                   "ERR_GNN_ALIAS");
    }
  }
}

void CallArgs::copyBack(Napi::Env env, const char* call) {
  struct Target { Entry* e; void* dst; };
  std::vector<Target> targets;
  for (auto& e : entries_) {
    if (!e->ref) continue;
    napi_value v;
    napi_typedarray_type type;
    size_t elems = 0, off = 0;
    void* raw = nullptr;
    napi_value ab;
    bool ok = napi_get_reference_value(env_, e->ref, &v) == napi_ok && v &&
              napi_get_typedarray_info(env_, v, &type, &elems, &raw, &ab, &off) == napi_ok && type == e->type &&
              elems == e->elems;
    bool plain = false, detached = false;
    if (ok && napi_is_arraybuffer(env_, ab, &plain) == napi_ok && plain)
      ok = napi_is_detached_arraybuffer(env_, ab, &detached) == napi_ok && !detached;
    if (ok && elems > 0 && !raw) ok = false;
    if (!ok)
      throwJs(env, gnn::ErrorKind::Generic, "ERR_GNN_DETACHED",
              std::string(call) + ": " + e->name +
                  " was detached, transferred or resized while the call ran; its result was discarded (no output was written)");
    targets.push_back({e.get(), raw});
  }
  for (auto& t : targets)
    if (t.e->elems > 0) std::memcpy(t.dst, t.e->copy.get(), t.e->elems * t.e->elemBytes);
}

}  // namespace gnnaddon
