// Fused Adam over the flat parameter vector. TypeScript owns the step count,
// the schedule and the bias corrections; this does the elementwise update.
#pragma once
#include <cstdint>

namespace gnn {

struct AdamArgs {
  double lr = 1e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double bc1 = 1, bc2 = 1;   // bias corrections 1 - beta^t
  double gradScale = 1;      // multiplies every gradient (set by adamStep when clipping)
  double clipNorm = 0;       // global-norm clipping threshold for adamStep (0 = off)
  double weightDecay = 0;    // decoupled (AdamW) when > 0
};

// Sum of squares of g with a fixed reduction order (deterministic).
template <class T>
double sumSquares(const T* g, int64_t n);

template <class T>
void adamUpdate(T* params, const T* grads, T* m, T* v, int64_t n, const AdamArgs& a);

// One optimiser step: the gradient's global L2 norm, the clipping scale it
// implies when a.clipNorm > 0, then adamUpdate. Returns the norm before clipping.
template <class T>
double adamStep(T* params, const T* grads, T* m, T* v, int64_t n, AdamArgs a);

}  // namespace gnn
