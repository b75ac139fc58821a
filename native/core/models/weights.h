// Named pointers into a flat parameter (or gradient) vector, in the order of
// paramLayout: shared by the CPU model and the CUDA engine. Header-only.
#pragma once
#include <vector>

#include "core/models/model.h"

namespace gnn {

// Pointers of one pass's weights inside a flat vector (params or grads).
template <class T>
struct PassW {
  T *w1s, *w1r, *w1e, *b1, *w2, *b2, *wf1, *bf1, *wf2, *bf2, *wl, *bl, *wu1, *bu1, *wu2, *bu2;
};
template <class T>
struct ModelW {
  T *embW, *embB, *r1w, *r1b, *r2w, *r2b;
  std::vector<PassW<T>> pass;
};

template <class T>
ModelW<T> bindWeights(const ModelConfig& c, const ParamLayout& L, T* base) {
  ModelW<T> w{};
  size_t i = 0;
  auto next = [&]() { return base + L.entries[i++].offset; };
  const int64_t C = c.latent, H = 2 * C;
  w.embW = next();
  w.embB = next();
  w.pass.resize(c.passes);
  for (int t = 0; t < c.passes; ++t) {
    PassW<T>& p = w.pass[t];
    if (c.kind == ModelKind::MPEU) {
      p.w1s = next();
      p.w1r = p.w1s + C * H;
      p.w1e = p.w1r + C * H;
      p.b1 = next();
      p.w2 = next();
      p.b2 = next();
    }
    p.wf1 = next(); p.bf1 = next(); p.wf2 = next(); p.bf2 = next();
    p.wl = next(); p.bl = next();
    p.wu1 = next(); p.bu1 = next(); p.wu2 = next(); p.bu2 = next();
  }
  w.r1w = next(); w.r1b = next(); w.r2w = next(); w.r2b = next();
  return w;
}

}  // namespace gnn
