// JS bindings of the segment kernels. The scalar type follows the source array.
#include "bindings.h"
#include "core/segment.h"

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
  auto src = viewOf<T>(env, info[0], "src");
  auto ptr = viewOf<int32_t>(env, info[1], "rowPtr");
  if (ptr.size < 1) rangeError(env, "rowPtr must have at least one element");
  int64_t rows = (int64_t)ptr.size - 1;
  int64_t srcRows = rowsOf(env, (int64_t)src.size, width, "src");
  auto out = viewOf<T>(env, info[3], "out", rows * width);
  gnn::checkRowPtr(ptr.data, rows, srcRows, "rowPtr");
  if (mean) gnn::segmentMeanCsr(src.data, ptr.data, rows, width, out.data);
  else gnn::segmentSumCsr(src.data, ptr.data, rows, width, out.data);
  return env.Undefined();
}

Napi::Value SegmentSumCsr(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return isF64(info.Env(), info[0], "src") ? csr<double>(info, false) : csr<float>(info, false); });
}
Napi::Value SegmentMeanCsr(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return isF64(info.Env(), info[0], "src") ? csr<double>(info, true) : csr<float>(info, true); });
}

template <class T>
Napi::Value unsortedSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto src = viewOf<T>(env, info[0], "src");
  auto seg = viewOf<int32_t>(env, info[1], "segmentIds");
  int64_t nseg = intArg(env, info[2], "numSegments", 0, INT32_MAX - 1);
  int64_t width = intArg(env, info[3], "width", 1, 1 << 20);
  int64_t n = rowsOf(env, (int64_t)src.size, width, "src");
  if ((int64_t)seg.size != n)
    rangeError(env, "segmentIds has length " + std::to_string(seg.size) + ", expected " + std::to_string(n) + " (rows of src)", "ERR_GNN_LENGTH");
  auto out = viewOf<T>(env, info[4], "out", nseg * width);
  gnn::checkIndices(seg.data, n, nseg, "segmentIds");
  gnn::segmentSum(src.data, seg.data, n, nseg, width, out.data);
  return env.Undefined();
}
Napi::Value SegmentSum(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return isF64(info.Env(), info[0], "src") ? unsortedSum<double>(info) : unsortedSum<float>(info); });
}

template <class T>
Napi::Value gather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto src = viewOf<T>(env, info[0], "src");
  auto idx = viewOf<int32_t>(env, info[1], "indices");
  int64_t width = intArg(env, info[2], "width", 1, 1 << 20);
  int64_t srcRows = rowsOf(env, (int64_t)src.size, width, "src");
  auto out = viewOf<T>(env, info[3], "out", (int64_t)idx.size * width);
  gnn::checkIndices(idx.data, (int64_t)idx.size, srcRows, "indices");
  gnn::gatherRows(src.data, idx.data, (int64_t)idx.size, width, out.data);
  return env.Undefined();
}
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return isF64(info.Env(), info[0], "src") ? gather<double>(info) : gather<float>(info); });
}

template <class T>
Napi::Value csrBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto gout = viewOf<T>(env, info[0], "gradOut");
  auto ptr = viewOf<int32_t>(env, info[1], "rowPtr");
  int64_t width = intArg(env, info[2], "width", 1, 1 << 20);
  if (!info[3].IsBoolean()) typeError(env, "mean must be a boolean");
  bool mean = info[3].As<Napi::Boolean>().Value();
  if (ptr.size < 1) rangeError(env, "rowPtr must have at least one element");
  int64_t rows = (int64_t)ptr.size - 1;
  if ((int64_t)gout.size != rows * width)
    rangeError(env, "gradOut has length " + std::to_string(gout.size) + ", expected " + std::to_string(rows * width), "ERR_GNN_LENGTH");
  auto gsrc = viewOf<T>(env, info[4], "gradSrc");
  int64_t srcRows = rowsOf(env, (int64_t)gsrc.size, width, "gradSrc");
  gnn::checkRowPtr(ptr.data, rows, srcRows, "rowPtr");
  gnn::segmentCsrBackward(gout.data, ptr.data, rows, width, mean, gsrc.data);
  return env.Undefined();
}
Napi::Value SegmentCsrBackward(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return isF64(info.Env(), info[0], "gradOut") ? csrBackward<double>(info) : csrBackward<float>(info); });
}

template <class T>
Napi::Value gatherBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto gout = viewOf<T>(env, info[0], "gradOut");
  int64_t width = intArg(env, info[3], "width", 1, 1 << 20);
  int64_t n = rowsOf(env, (int64_t)gout.size, width, "gradOut");
  const int32_t* perm = nullptr;
  if (!info[1].IsNull() && !info[1].IsUndefined()) {
    auto p = viewOf<int32_t>(env, info[1], "perm", n);
    gnn::checkIndices(p.data, n, n, "perm");
    perm = p.data;
  }
  auto ptr = viewOf<int32_t>(env, info[2], "rowPtr");
  if (ptr.size < 1) rangeError(env, "rowPtr must have at least one element");
  int64_t rows = (int64_t)ptr.size - 1;
  auto gsrc = viewOf<T>(env, info[4], "gradSrc", rows * width);
  gnn::checkRowPtr(ptr.data, rows, n, "rowPtr");
  gnn::gatherRowsBackward(gout.data, perm, ptr.data, rows, width, gsrc.data);
  return env.Undefined();
}
Napi::Value GatherRowsBackward(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() { return isF64(info.Env(), info[0], "gradOut") ? gatherBackward<double>(info) : gatherBackward<float>(info); });
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
