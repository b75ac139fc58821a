// gnnbatch_mpi.node: the optional MPI module of data-parallel training
// (docs/scale-out.md). A separate Node addon, built only when CMake finds an
// MPI (GNN_MPI=AUTO|ON|OFF), so the main addon and the prebuilt package never
// need libmpi.
//
// It exposes only what training needs: init / rank / size, one ordered
// reduction of the flat gradient per step, abort and finalize. The reduction
// order is fixed here, not left to MPI's algorithms: element i of the result
// is (((s0[i] + s1[i]) + s2[i]) + ...) over the slots s of every rank, rank 0
// first, each rank's slots in order (float32 additions, no multiplications:
// bitwise what the single-process accumulation in src/train/accumulate.ts
// computes). Two ways to move the data, same bits:
//   'allgather'  one MPI_Iallgather of every slot, then every rank sums all;
//   'alltoall'   reduce-scatter by hand (MPI_Ialltoallv of slices, each rank
//                sums its slice in slot order) then MPI_Iallgatherv of the
//                summed slices: ~2n floats per rank instead of W n.
// Collectives are nonblocking and polled (MPI_Test) against a deadline, so a
// rank that died or hangs makes the others return "timed out" (the caller
// prints why and calls abort) instead of waiting forever.
#define NAPI_VERSION 9
#define NAPI_CPP_EXCEPTIONS
#define NODE_ADDON_API_DISABLE_DEPRECATED
#include <napi.h>
#include <mpi.h>
#include <dlfcn.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#ifndef GNN_MPI_LIBRARY
#define GNN_MPI_LIBRARY ""
#endif

namespace {

bool gInitialized = false;
bool gFinalized = false;
int gRank = 0, gSize = 1;

Napi::Error codedError(Napi::Env env, const std::string& code, const std::string& msg) {
  auto e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

void requireInit(Napi::Env env) {
  if (!gInitialized || gFinalized) throw codedError(env, "ERR_GNN_MPI", "MPI is not initialised (call init() first, and not after finalize())");
}

// Open MPI loads its components (plugins) with dlopen; they resolve libmpi's
// symbols globally, which fails when libmpi came in through a Node addon
// (RTLD_LOCAL). Re-open it RTLD_GLOBAL before MPI_Init.
std::string promoteLibmpi() {
  const char* candidates[] = {GNN_MPI_LIBRARY, "libmpi.so.40", "libmpi.so.12", "libmpi.so"};
  for (const char* c : candidates) {
    if (!c || !*c) continue;
    if (dlopen(c, RTLD_NOW | RTLD_GLOBAL)) return c;
  }
  return "";
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (gFinalized) throw codedError(env, "ERR_GNN_MPI", "MPI was finalized in this process and cannot be initialised again");
  std::string lib;
  if (!gInitialized) {
    lib = promoteLibmpi();
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS)
        throw codedError(env, "ERR_GNN_MPI", "MPI_Init failed");
    }
    // Errors come back as return codes (the caller decides), not as a silent abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &gRank);
    MPI_Comm_size(MPI_COMM_WORLD, &gSize);
    gInitialized = true;
  }
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string v(version, strnlen(version, (size_t)len));
  if (auto nl = v.find('\n'); nl != std::string::npos) v.resize(nl);
  while (!v.empty() && (v.back() == ',' || v.back() == ' ')) v.pop_back();
  auto o = Napi::Object::New(env);
  o.Set("rank", gRank);
  o.Set("size", gSize);
  o.Set("library", v);
  o.Set("promoted", lib);
  return o;
}

Napi::Value Rank(const Napi::CallbackInfo& info) { requireInit(info.Env()); return Napi::Number::New(info.Env(), gRank); }
Napi::Value Size(const Napi::CallbackInfo& info) { requireInit(info.Env()); return Napi::Number::New(info.Env(), gSize); }

// Polls `req` until it completes or `deadline` passes; true when complete.
// Spins briefly, then sleeps in growing steps (<= 1 ms) so a waiting rank
// leaves the core to the ranks still computing.
bool waitUntil(MPI_Request* req, std::chrono::steady_clock::time_point deadline) {
  int done = 0;
  int polls = 0;
  while (true) {
    MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (done) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    ++polls;
    if (polls > 200) std::this_thread::sleep_for(std::chrono::microseconds(polls > 2000 ? 1000 : 50));
  }
}

Napi::Float32Array floatArg(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, std::string(name) + " must be a Float32Array");
  return v.As<Napi::Float32Array>();
}

// orderedSum(local, slots, out, timeoutMs, algorithm) -> { ok, ms }
// local: this rank's `slots` vectors of out.length floats, back to back.
// out: receives the ordered sum over every rank's slots. ok=false: the
// exchange did not complete before the deadline (out is unspecified; the
// request stays pending: abort the job).
Napi::Value OrderedSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireInit(env);
  if (info.Length() < 5) throw Napi::TypeError::New(env, "orderedSum(local, slots, out, timeoutMs, algorithm) takes 5 arguments");
  auto local = floatArg(env, info[0], "local");
  auto out = floatArg(env, info[2], "out");
  if (!info[1].IsNumber() || !info[3].IsNumber() || !info[4].IsString()) throw Napi::TypeError::New(env, "orderedSum: slots and timeoutMs must be numbers, algorithm a string");
  const int64_t slots = info[1].As<Napi::Number>().Int64Value();
  const double timeoutMs = info[3].As<Napi::Number>().DoubleValue();
  const std::string algorithm = info[4].As<Napi::String>().Utf8Value();
  const int64_t n = (int64_t)out.ElementLength();
  if (slots < 1 || (int64_t)local.ElementLength() != slots * n)
    throw Napi::RangeError::New(env, "orderedSum: local must hold slots * out.length floats");
  if (slots * n * (int64_t)gSize > INT32_MAX) throw Napi::RangeError::New(env, "orderedSum: the exchange exceeds 2^31-1 floats");
  if (algorithm != "allgather" && algorithm != "alltoall") throw Napi::RangeError::New(env, "orderedSum: algorithm must be 'allgather' or 'alltoall'");
  if (local.Data() == out.Data()) throw Napi::Error::New(env, "orderedSum: local and out must not share memory");
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + std::chrono::microseconds((int64_t)(timeoutMs * 1000));
  const int W = gSize;
  const int64_t S = slots * W;  // slots in all
  const float* src = local.Data();
  float* dst = out.Data();
  bool ok = true;
  auto result = [&](bool good) {
    auto o = Napi::Object::New(env);
    o.Set("ok", good);
    o.Set("ms", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    return o;
  };

  if (algorithm == "allgather") {
    // Heap: on a timeout the pending request may still write it, so it is then left alive.
    auto* all = new std::vector<float>((size_t)(S * n));
    MPI_Request req;
    if (MPI_Iallgather(src, (int)(slots * n), MPI_FLOAT, all->data(), (int)(slots * n), MPI_FLOAT, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
      throw codedError(env, "ERR_GNN_MPI", "MPI_Iallgather failed");
    ok = waitUntil(&req, deadline);
    if (!ok) return result(false);
    std::memcpy(dst, all->data(), sizeof(float) * (size_t)n);
    for (int64_t s = 1; s < S; ++s) {
      const float* g = all->data() + s * n;
      for (int64_t i = 0; i < n; ++i) dst[i] = dst[i] + g[i];
    }
    delete all;
    return result(true);
  }

  // alltoall: rank q owns elements [lo(q), lo(q+1)).
  std::vector<int> lo(W + 1);
  for (int q = 0; q <= W; ++q) lo[q] = (int)((n * q) / W);
  const int mine = lo[gRank + 1] - lo[gRank];
  // Send: for each owner q, this rank's slots' slices of q's range, slot-major.
  auto* sendBuf = new std::vector<float>((size_t)(slots * n));
  auto* recvBuf = new std::vector<float>((size_t)(S * mine));
  std::vector<int> scount(W), sdispl(W), rcount(W), rdispl(W);
  {
    int64_t off = 0;
    for (int q = 0; q < W; ++q) {
      const int len = lo[q + 1] - lo[q];
      sdispl[q] = (int)off;
      scount[q] = (int)(slots * len);
      for (int64_t s = 0; s < slots; ++s) {
        std::memcpy(sendBuf->data() + off, src + s * n + lo[q], sizeof(float) * (size_t)len);
        off += len;
      }
      rcount[q] = (int)(slots * mine);
      rdispl[q] = (int)(q * slots * mine);
    }
  }
  MPI_Request req;
  if (MPI_Ialltoallv(sendBuf->data(), scount.data(), sdispl.data(), MPI_FLOAT, recvBuf->data(), rcount.data(), rdispl.data(), MPI_FLOAT, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
    throw codedError(env, "ERR_GNN_MPI", "MPI_Ialltoallv failed");
  ok = waitUntil(&req, deadline);
  if (!ok) return result(false);  // buffers leak on purpose: the request may still write them
  // recvBuf: from rank 0 its slots (each `mine` floats), then rank 1, ...: slot order.
  std::vector<float> part((size_t)mine);
  if (mine > 0) {
    std::memcpy(part.data(), recvBuf->data(), sizeof(float) * (size_t)mine);
    for (int64_t s = 1; s < S; ++s) {
      const float* g = recvBuf->data() + s * mine;
      for (int i = 0; i < mine; ++i) part[(size_t)i] = part[(size_t)i] + g[i];
    }
  }
  delete sendBuf;
  delete recvBuf;
  std::vector<int> gcount(W), gdispl(W);
  for (int q = 0; q < W; ++q) {
    gcount[q] = lo[q + 1] - lo[q];
    gdispl[q] = lo[q];
  }
  auto* partKeep = new std::vector<float>(std::move(part));
  if (MPI_Iallgatherv(partKeep->data(), mine, MPI_FLOAT, dst, gcount.data(), gdispl.data(), MPI_FLOAT, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
    throw codedError(env, "ERR_GNN_MPI", "MPI_Iallgatherv failed");
  ok = waitUntil(&req, deadline);
  if (ok) delete partKeep;
  return result(ok);
}

// barrier(timeoutMs) -> ok (MPI_Ibarrier polled against the deadline)
Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireInit(env);
  const double timeoutMs = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 60000;
  MPI_Request req;
  if (MPI_Ibarrier(MPI_COMM_WORLD, &req) != MPI_SUCCESS) throw codedError(env, "ERR_GNN_MPI", "MPI_Ibarrier failed");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds((int64_t)(timeoutMs * 1000));
  return Napi::Boolean::New(env, waitUntil(&req, deadline));
}

// abort(code): MPI_Abort on the world communicator (every rank ends); does not return.
Napi::Value Abort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  if (gInitialized && !gFinalized) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
  return env.Undefined();
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  if (gInitialized && !gFinalized) {
    MPI_Finalize();
    gFinalized = true;
  }
  return info.Env().Undefined();
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("rank", Napi::Function::New(env, Rank, "rank"));
  exports.Set("size", Napi::Function::New(env, Size, "size"));
  exports.Set("orderedSum", Napi::Function::New(env, OrderedSum, "orderedSum"));
  exports.Set("barrier", Napi::Function::New(env, Barrier, "barrier"));
  exports.Set("abort", Napi::Function::New(env, Abort, "abort"));
  exports.Set("finalize", Napi::Function::New(env, Finalize, "finalize"));
  exports.Set("library", Napi::String::New(env, GNN_MPI_LIBRARY));
  return exports;
}

}  // namespace

NODE_API_MODULE(gnnbatch_mpi, InitModule)
