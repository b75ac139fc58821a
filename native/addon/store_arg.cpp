// Reading the store object of a native call (see store_arg.h).
#include "store_arg.h"

namespace gnnaddon {

static const char* kStoreKeys[] = {"nodeOffset", "edgeOffset", "atomicNumber", "senders",
                                   "receivers",  "distance",   "senderPerm",   "target"};

StoreValues readStore(Napi::Env env, const Napi::Value& v, const std::string& name) {
  auto o = objArg(env, v, name);
  StoreValues s;
  s.name = name;
  for (size_t i = 0; i < 8; ++i) s.v[i] = prop(env, o, kStoreKeys[i], name);
  s.direction = optProp(o, "direction");
  return s;
}

gnn::StoreView storeView(Napi::Env env, CallArgs& a, const StoreValues& sv) {
  const std::string& n = sv.name;
  gnn::StoreView s;
  auto nodeOffset = a.view<int32_t>(sv.v[0], n + ".nodeOffset", Access::In);
  if (nodeOffset.size < 1) rangeError(env, n + ".nodeOffset must have at least one element", "ERR_GNN_LENGTH");
  s.numGraphs = (int64_t)nodeOffset.size - 1;
  auto edgeOffset = a.view<int32_t>(sv.v[1], n + ".edgeOffset", Access::In, s.numGraphs + 1);
  auto z = a.view<uint8_t>(sv.v[2], n + ".atomicNumber", Access::In);
  s.numNodes = (int64_t)z.size;
  auto senders = a.view<int32_t>(sv.v[3], n + ".senders", Access::In);
  s.numEdges = (int64_t)senders.size;
  auto receivers = a.view<int32_t>(sv.v[4], n + ".receivers", Access::In, s.numEdges);
  auto dist = a.view<float>(sv.v[5], n + ".distance", Access::In, s.numEdges);
  auto perm = a.view<int32_t>(sv.v[6], n + ".senderPerm", Access::In, s.numEdges);
  auto target = a.view<double>(sv.v[7], n + ".target", Access::In, s.numGraphs);
  s.nodeOffset = nodeOffset.data;
  s.edgeOffset = edgeOffset.data;
  s.atomicNumber = z.data;
  s.senders = senders.data;
  s.receivers = receivers.data;
  s.distance = dist.data;
  s.senderPerm = perm.data;
  s.target = target.data;
  // Optional: [3 x edges] unit vectors (ERR_GNN_LENGTH for any other length).
  if (!sv.direction.IsUndefined())
    s.direction = a.view<float>(sv.direction, n + ".direction", Access::In, 3 * s.numEdges).data;
  gnn::validateStoreHeader(s);
  return s;
}

}  // namespace gnnaddon
