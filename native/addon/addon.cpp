// Module entry: build information, thread control, and benchmark baselines.
#include <cstring>
#include <vector>

#include "bindings.h"
#include "cuda/backend.h"
#include "core/common.h"
#include "timing.h"

#ifndef GNN_BUILD_FLAVOR
#define GNN_BUILD_FLAVOR "unknown"
#endif

namespace gnnaddon {
namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  // Every export except the cuda* entry points computes on the CPU, whatever
  // this build contains; whether CUDA was compiled and has devices is `cuda`.
  o.Set("backend", "cpu");
  auto cuda = Napi::Object::New(env);
  cuda.Set("compiled", gnn::cudaCompiled());
  cuda.Set("devices", gnn::cudaDeviceCount());
  o.Set("cuda", cuda);
  o.Set("threads", gnn::numThreads());
#ifdef _OPENMP
  o.Set("openmp", true);
#else
  o.Set("openmp", false);
#endif
  o.Set("build", GNN_BUILD_FLAVOR);
#ifdef GNN_ISA_NAME
  o.Set("isa", GNN_ISA_NAME);
#else
  o.Set("isa", "native");
#endif
#if defined(__AVX512F__)
  o.Set("simd", "avx512");
#elif defined(__AVX2__)
  o.Set("simd", "avx2");
#elif defined(__SSE2__)
  o.Set("simd", "sse2");
#else
  o.Set("simd", "none");
#endif
  // CPU features the compiler was allowed to use (names as /proc/cpuinfo spells
  // them): the loader refuses a binary whose features the CPU lacks.
  static const char* const kFeatures[] = {
#ifdef __SSE4_2__
      "sse4_2",
#endif
#ifdef __POPCNT__
      "popcnt",
#endif
#ifdef __AVX__
      "avx",
#endif
#ifdef __AVX2__
      "avx2",
#endif
#ifdef __FMA__
      "fma",
#endif
#ifdef __BMI2__
      "bmi2",
#endif
#ifdef __AVX512F__
      "avx512f",
#endif
#ifdef __AVX512BW__
      "avx512bw",
#endif
#ifdef __AVX512DQ__
      "avx512dq",
#endif
#ifdef __AVX512VL__
      "avx512vl",
#endif
#ifdef __AVX512VNNI__
      "avx512_vnni",
#endif
#ifdef __AVX512BF16__
      "avx512_bf16",
#endif
#ifdef __AVX512FP16__
      "avx512_fp16",
#endif
      nullptr};
  auto features = Napi::Array::New(env);
  for (uint32_t i = 0; kFeatures[i] != nullptr; ++i) features.Set(i, kFeatures[i]);
  o.Set("features", features);
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    gnn::setNumThreads((int)intArg(env, info[0], "threads", 1, 1024));
    return env.Undefined();
  });
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), gnn::numThreads());
}

// Copies src into dst `reps` times and returns the median seconds of one copy:
// the in-run memory-bandwidth baseline of the benchmarks.
Napi::Value MemcpyBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t reps = benchRepsArg(env, info[2], "memcpyBench");
    CallArgs args(env, false);
    auto dst = args.view<uint8_t>(info[0], "dst", Access::Out);
    auto src = args.view<uint8_t>(info[1], "src", Access::In, (int64_t)dst.size);
    args.checkAliasing();
    checkBenchWork(env, "memcpyBench", reps, (double)dst.size, kMaxBenchBytes, "bytes");
    return Napi::Number::New(env, medianSeconds(reps, [&] { std::memcpy(dst.data, src.data, dst.size); }));
  });
}

}  // namespace

void registerBench(Napi::Env env, Napi::Object exports) {
  exports.Set("memcpyBench", Napi::Function::New(env, MemcpyBench, "memcpyBench"));
}
GNN_REGISTER_BINDING(registerBench);

std::vector<RegisterFn>& bindingRegistry() {
  static std::vector<RegisterFn> fns;
  return fns;
}

}  // namespace gnnaddon

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, gnnaddon::Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, gnnaddon::SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, gnnaddon::GetThreads, "getThreads"));
  for (auto fn : gnnaddon::bindingRegistry()) fn(env, exports);
  return exports;
}

NODE_API_MODULE(gnnbatch, Init)
