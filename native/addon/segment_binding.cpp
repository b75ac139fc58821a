// JS bindings of the segment kernels. The scalar type follows the source array.
// All arguments are positional (no getters run); numbers are parsed before the
// views are taken, and outputs may not overlap any input (ERR_GNN_ALIAS).
#include "bindings.h"
#include "core/segment.h"
#include "scalar.h"

namespace gnnaddon {
namespace {

int64_t rowsOf(Napi::Env env, int64_t len, int64_t width, const char* name) {
  if (len % width != 0)
    rangeError(env, std::string(name) + " length " + std::to_string(len) + " is not a multiple of width " + std::to_string(width), "ERR_GNN_LENGTH");
  return len / width;
}

bool isF64(Napi::Env env, const Napi::Value& v, const char* name) {
  int t = typedArrayType(v);
  if (t == napi_float64_array) return true;
  if (t == napi_float32_array) return false;
  typeError(env, std::string(name) + " must be a Float32Array or Float64Array");
}

template <class T>
Napi::Value csr(const Napi::CallbackInfo& info, bool mean) {
  Napi::Env env = info.Env();
  int64_t width = intArg(env, info[2], "width", 1, 1 << 20);
  CallArgs a(env, false);
  auto src = a.view<T>(info[0], "src", Access::In);
  auto ptr = a.view<int32_t>(info[1], "rowPtr", Access::In);
  if (ptr.size < 1) rangeError(env, "rowPtr must have at least one element");
  int64_t rows = (int64_t)ptr.size - 1;
  int64_t srcRows = rowsOf(env, (int64_t)src.size, width, "src");
  auto out = a.view<T>(info[3], "out", Access::Out, rows * width);
  a.checkAliasing();
  gnn::checkRowPtr(ptr.data, rows, srcRows, "rowPtr");
  if (mean) gnn::segmentMeanCsr(src.data, ptr.data, rows, width, out.data);
  else gnn::segmentSumCsr(src.data, ptr.data, rows, width, out.data);
  return env.Undefined();
}

Napi::Value SegmentSumCsr(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return withScalar(isF64(info.Env(), info[0], "src"), [&](auto zero) { return csr<decltype(zero)>(info, false); }); });
}
Napi::Value SegmentMeanCsr(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return withScalar(isF64(info.Env(), info[0], "src"), [&](auto zero) { return csr<decltype(zero)>(info, true); }); });
}

template <class T>
Napi::Value unsortedSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t nseg = intArg(env, info[2], "numSegments", 0, INT32_MAX - 1);
  int64_t width = intArg(env, info[3], "width", 1, 1 << 20);
  CallArgs a(env, false);
  auto src = a.view<T>(info[0], "src", Access::In);
  auto seg = a.view<int32_t>(info[1], "segmentIds", Access::In);
  int64_t n = rowsOf(env, (int64_t)src.size, width, "src");
  if ((int64_t)seg.size != n)
    rangeError(env, "segmentIds has length " + std::to_string(seg.size) + ", expected " + std::to_string(n) + " (rows of src)", "ERR_GNN_LENGTH");
  auto out = a.view<T>(info[4], "out", Access::Out, nseg * width);
  a.checkAliasing();
  gnn::checkIndices(seg.data, n, nseg, "segmentIds");
  gnn::segmentSum(src.data, seg.data, n, nseg, width, out.data);
  return env.Undefined();
}
Napi::Value SegmentSum(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return withScalar(isF64(info.Env(), info[0], "src"), [&](auto zero) { return unsortedSum<decltype(zero)>(info); }); });
}

template <class T>
Napi::Value gather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t width = intArg(env, info[2], "width", 1, 1 << 20);
  CallArgs a(env, false);
  auto src = a.view<T>(info[0], "src", Access::In);
  auto idx = a.view<int32_t>(info[1], "indices", Access::In);
  int64_t srcRows = rowsOf(env, (int64_t)src.size, width, "src");
  auto out = a.view<T>(info[3], "out", Access::Out, (int64_t)idx.size * width);
  a.checkAliasing();
  gnn::checkIndices(idx.data, (int64_t)idx.size, srcRows, "indices");
  gnn::gatherRows(src.data, idx.data, (int64_t)idx.size, width, out.data);
  return env.Undefined();
}
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return withScalar(isF64(info.Env(), info[0], "src"), [&](auto zero) { return gather<decltype(zero)>(info); }); });
}

template <class T>
Napi::Value csrBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t width = intArg(env, info[2], "width", 1, 1 << 20);
  const bool mean = boolArg(env, info[3], "mean");
  CallArgs a(env, false);
  auto gout = a.view<T>(info[0], "gradOut", Access::In);
  auto ptr = a.view<int32_t>(info[1], "rowPtr", Access::In);
  if (ptr.size < 1) rangeError(env, "rowPtr must have at least one element");
  int64_t rows = (int64_t)ptr.size - 1;
  if ((int64_t)gout.size != rows * width)
    rangeError(env, "gradOut has length " + std::to_string(gout.size) + ", expected " + std::to_string(rows * width), "ERR_GNN_LENGTH");
  auto gsrc = a.view<T>(info[4], "gradSrc", Access::Out);
  a.checkAliasing();
  int64_t srcRows = rowsOf(env, (int64_t)gsrc.size, width, "gradSrc");
  gnn::checkRowPtr(ptr.data, rows, srcRows, "rowPtr");
  gnn::segmentCsrBackward(gout.data, ptr.data, rows, width, mean, gsrc.data);
  return env.Undefined();
}
Napi::Value SegmentCsrBackward(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return withScalar(isF64(info.Env(), info[0], "gradOut"), [&](auto zero) { return csrBackward<decltype(zero)>(info); }); });
}

template <class T>
Napi::Value gatherBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t width = intArg(env, info[3], "width", 1, 1 << 20);
  CallArgs a(env, false);
  auto gout = a.view<T>(info[0], "gradOut", Access::In);
  int64_t n = rowsOf(env, (int64_t)gout.size, width, "gradOut");
  const int32_t* perm = nullptr;
  if (!info[1].IsNull() && !info[1].IsUndefined()) perm = a.view<int32_t>(info[1], "perm", Access::In, n).data;
  auto ptr = a.view<int32_t>(info[2], "rowPtr", Access::In);
  if (ptr.size < 1) rangeError(env, "rowPtr must have at least one element");
  int64_t rows = (int64_t)ptr.size - 1;
  auto gsrc = a.view<T>(info[4], "gradSrc", Access::Out, rows * width);
  a.checkAliasing();
  if (perm) gnn::checkIndices(perm, n, n, "perm");
  gnn::checkRowPtr(ptr.data, rows, n, "rowPtr");
  gnn::gatherRowsBackward(gout.data, perm, ptr.data, rows, width, gsrc.data);
  return env.Undefined();
}
Napi::Value GatherRowsBackward(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return withScalar(isF64(info.Env(), info[0], "gradOut"), [&](auto zero) { return gatherBackward<decltype(zero)>(info); }); });
}

}  // namespace

void registerSegment(Napi::Env env, Napi::Object exports) {
  exports.Set("segmentSumCsr", Napi::Function::New(env, SegmentSumCsr, "segmentSumCsr"));
  exports.Set("segmentMeanCsr", Napi::Function::New(env, SegmentMeanCsr, "segmentMeanCsr"));
  exports.Set("segmentSum", Napi::Function::New(env, SegmentSum, "segmentSum"));
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows, "gatherRows"));
  exports.Set("segmentCsrBackward", Napi::Function::New(env, SegmentCsrBackward, "segmentCsrBackward"));
  exports.Set("gatherRowsBackward", Napi::Function::New(env, GatherRowsBackward, "gatherRowsBackward"));
}

GNN_REGISTER_BINDING(registerSegment);

}  // namespace gnnaddon
