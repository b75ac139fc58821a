#include "store_arg.h"

#include "worker.h"

namespace gnnaddon {

static const char* kStoreKeys[] = {"nodeOffset", "edgeOffset", "atomicNumber", "senders",
                                   "receivers",  "distance",   "senderPerm",   "target"};

gnn::StoreView storeArg(Napi::Env env, const Napi::Value& v, const std::string& name) {
  auto o = objArg(env, v, name);
  gnn::StoreView s;
  auto nodeOffset = viewOf<int32_t>(env, prop(env, o, "nodeOffset", name), name + ".nodeOffset");
  if (nodeOffset.size < 1) rangeError(env, name + ".nodeOffset must have at least one element");
  s.numGraphs = (int64_t)nodeOffset.size - 1;
  auto edgeOffset = viewOf<int32_t>(env, prop(env, o, "edgeOffset", name), name + ".edgeOffset", s.numGraphs + 1);
  auto z = viewOf<uint8_t>(env, prop(env, o, "atomicNumber", name), name + ".atomicNumber");
  s.numNodes = (int64_t)z.size;
  auto senders = viewOf<int32_t>(env, prop(env, o, "senders", name), name + ".senders");
  s.numEdges = (int64_t)senders.size;
  auto receivers = viewOf<int32_t>(env, prop(env, o, "receivers", name), name + ".receivers", s.numEdges);
  auto dist = viewOf<float>(env, prop(env, o, "distance", name), name + ".distance", s.numEdges);
  auto perm = viewOf<int32_t>(env, prop(env, o, "senderPerm", name), name + ".senderPerm", s.numEdges);
  auto target = viewOf<double>(env, prop(env, o, "target", name), name + ".target", s.numGraphs);
  s.nodeOffset = nodeOffset.data;
  s.edgeOffset = edgeOffset.data;
  s.atomicNumber = z.data;
  s.senders = senders.data;
  s.receivers = receivers.data;
  s.distance = dist.data;
  s.senderPerm = perm.data;
  s.target = target.data;
  gnn::validateStoreHeader(s);
  return s;
}

void keepStore(PromiseWorker& w, const Napi::Value& v) {
  auto o = v.As<Napi::Object>();
  for (const char* k : kStoreKeys) w.Keep(o.Get(k));
}

}  // namespace gnnaddon
