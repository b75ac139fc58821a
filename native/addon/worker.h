// Promise-returning worker base: Execute runs off the JS thread and catches
// everything into an error (kind, code, message). A worker never reads JS
// memory: its CallArgs (args.h) were created with async = true, so every array
// it touches is a private copy, and results are copied back into the caller's
// arrays in OnOK, on the JS thread, only if they are still attached
// (ERR_GNN_DETACHED otherwise). Handles (plan Externals) are kept referenced
// until the promise settles. The flops the kernels count on the worker thread
// are credited to the calling JS thread's counter (dense.h) when it settles.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "core/dense.h"

namespace gnnaddon {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, std::unique_ptr<CallArgs> args)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), call_(name), args_(std::move(args)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  // Keeps a JS handle (an External) alive until the promise settles.
  void Keep(const Napi::Value& v) {
    if (v.IsObject() || v.IsExternal()) refs_.emplace_back(Napi::Persistent(v.As<Napi::Object>()));
  }

 protected:
  virtual void Run() = 0;                           // off-thread work
  virtual Napi::Value Result(Napi::Env env) = 0;    // on the JS thread
  double workerFlops() const { return flops_; }
  void Execute() final {
    const double f0 = gnn::flopsCount();
    try {
      Run();
    } catch (const gnn::Error& e) {
      kind_ = e.kind; code_ = e.code; SetError(e.what());
    } catch (const std::bad_alloc&) {
      kind_ = gnn::ErrorKind::Generic; code_ = "ERR_GNN_NOMEM"; SetError("out of memory in native code");
    } catch (const std::exception& e) {
      kind_ = gnn::ErrorKind::Generic; code_ = "ERR_GNN_NATIVE"; SetError(e.what());
    }
    flops_ = gnn::flopsCount() - f0;
  }
  void OnOK() final {
    Napi::HandleScope scope(Env());
    gnn::addFlopsCount(flops_);
    try {
      if (args_) args_->copyBack(Env(), call_.c_str());
      deferred_.Resolve(Result(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) final {
    Napi::HandleScope scope(Env());
    gnn::addFlopsCount(flops_);
    Napi::Error err = kind_ == gnn::ErrorKind::Range  ? Napi::RangeError::New(Env(), e.Message())
                      : kind_ == gnn::ErrorKind::Type ? Napi::TypeError::New(Env(), e.Message())
                                                      : Napi::Error::New(Env(), e.Message());
    err.Set("code", Napi::String::New(Env(), code_));
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string call_;
  std::unique_ptr<CallArgs> args_;
  std::vector<Napi::ObjectReference> refs_;
  gnn::ErrorKind kind_ = gnn::ErrorKind::Generic;
  std::string code_ = "ERR_GNN_NATIVE";
  double flops_ = 0;
};

}  // namespace gnnaddon
