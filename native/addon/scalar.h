// The addon's one float32/float64 dispatch. Kernels and models are templates
// over the scalar type (float32 for speed, float64 for gradient checks); a
// binding picks the type once per call, from its plan or from an array's
// element type, and writes its body once as a generic lambda:
//
//   return withScalar(isF64, [&](auto zero) { using T = decltype(zero); ... });
//
// Both instantiations must return the same type.
#pragma once
#include <utility>

namespace gnnaddon {

template <class F>
decltype(auto) withScalar(bool f64, F&& fn) {
  if (f64) return std::forward<F>(fn)(double{});
  return std::forward<F>(fn)(float{});
}

}  // namespace gnnaddon
