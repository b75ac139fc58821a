// Promise-returning worker base: Execute runs off the JS thread and catches
// everything into an error (kind, code, message); inputs stay referenced until
// the promise settles, so the GC cannot free buffers a worker is reading.
#pragma once
#include <string>
#include <vector>

#include "args.h"

namespace gnnaddon {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  // Keeps a JS value (typically a typed array or an External) alive.
  void Keep(const Napi::Value& v) {
    if (v.IsObject()) refs_.emplace_back(Napi::Persistent(v.As<Napi::Object>()));
  }

 protected:
  virtual void Run() = 0;                           // off-thread work
  virtual Napi::Value Result(Napi::Env env) = 0;    // on the JS thread
  void Execute() final {
    try {
      Run();
    } catch (const gnn::Error& e) {
      kind_ = e.kind; code_ = e.code; SetError(e.what());
    } catch (const std::bad_alloc&) {
      kind_ = gnn::ErrorKind::Generic; code_ = "ERR_GNN_NOMEM"; SetError("out of memory in native code");
    } catch (const std::exception& e) {
      kind_ = gnn::ErrorKind::Generic; code_ = "ERR_GNN_NATIVE"; SetError(e.what());
    }
  }
  void OnOK() final {
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(Result(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) final {
    Napi::HandleScope scope(Env());
    Napi::Error err = kind_ == gnn::ErrorKind::Range  ? Napi::RangeError::New(Env(), e.Message())
                      : kind_ == gnn::ErrorKind::Type ? Napi::TypeError::New(Env(), e.Message())
                                                      : Napi::Error::New(Env(), e.Message());
    err.Set("code", Napi::String::New(Env(), code_));
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
  gnn::ErrorKind kind_ = gnn::ErrorKind::Generic;
  std::string code_ = "ERR_GNN_NATIVE";
};

}  // namespace gnnaddon
