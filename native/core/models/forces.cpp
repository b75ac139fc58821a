// The double backward of the force pass (docs/forces.md): forward-over-reverse
// with explicit tangent ops on the model program (program_tangent.h), float32
// and float64, on the plan's own buffers (no allocation per call).
#include <cstring>

#include "core/models/model_internal.h"
#include "core/models/program.h"
#include "core/models/program_painn.h"
#include "core/models/program_tangent.h"

namespace gnn {

namespace {

template <class T>
void checkForceTraining(const Plan<T>& p, const BatchInputs<T>& b, const char* what) {
  if (!p.forceTraining)
    throwRange(std::string("this plan was built without the double backward's buffers: create it with { forces: true, "
                           "forceTraining: true } to run ") + what,
               "ERR_GNN_FORCES_PLAN");
  validateBatch(p, b);
  if (b.shape.edges > 0 && !b.direction)
    throwRange("forces need the edges' direction vectors (inputs.direction, [edges x 3]): build the graph store with "
               "directions",
               "ERR_GNN_DATA_DIRECTIONS");
}

template <class T>
program::Shape shapeOf(const BatchInputs<T>& b) {
  return program::Shape{b.shape.nodes, b.shape.edges, b.shape.graphs};
}

// The tangent programs' dispatch on the model kind (program_tangent.h: MPEU
// and SchNet; program_painn.h: PaiNN).
template <class T, class X>
void forwardTangentModel(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, const program::Shape& s,
                         const T* w, const T* q) {
  if (c.kind == ModelKind::PaiNN) program::painnForwardTangent<T>(x, c, L, params, s, w, q);
  else program::forwardTangent<T>(x, c, L, params, s, w, q);
}
template <class T, class X>
void backwardDualModel(X& x, const ModelConfig& c, const ParamLayout& L, const T* params, T* gradT, T* gradV,
                       T seedScale, const program::Shape& s) {
  if (c.kind == ModelKind::PaiNN) program::painnBackwardDual<T>(x, c, L, params, gradT, gradV, seedScale, s);
  else program::backwardDual<T>(x, c, L, params, gradT, gradV, seedScale, s);
}

}  // namespace

template <class T>
double forceGrad(Plan<T>& p, const T* params, const BatchInputs<T>& b, const T* w, T* grad, T* energyGrad,
                 const T* stressW, const double* volumes) {
  checkForceTraining(p, b, "forceGrad");
  if (p.profile) { p.profShape = b.shape; p.profReal = realCounts(b); }
  DenormalGuard ftz;
  detail::CpuExec<T> x{p, b};
  const program::Shape s = shapeOf(b);
  const int64_t P = p.layout.total;
  program::forwardModel<T>(x, p.cfg, p.layout, params, s);
  T* q = nullptr;
  if (stressW) {
    q = x.buf(program::kBufForceQ);
    auto ph = x.phase(kProfForces);
    x.strainWeights(kSiteStressLoss, s.G, stressW, volumes, q);
  }
  forwardTangentModel<T>(x, p.cfg, p.layout, params, s, w, q);
  backwardDualModel<T>(x, p.cfg, p.layout, params, grad, energyGrad, (T)0, s);
  // d(w . F + q . W)/d theta = -(the tangent gradient).
  for (int64_t i = 0; i < P; ++i) grad[i] = -grad[i];
  const T* predT = x.buf(program::kBufTPred);
  double wF = 0;
  for (int64_t g = 0; g < s.G; ++g)
    if (b.mask[g] > 0) wF -= (double)predT[g];
  if (p.profile) p.profSteps++;
  return wF;
}

template <class T>
ForceLossResult forceLossAndGrad(Plan<T>& p, const T* params, const BatchInputs<T>& b, const T* targetForces,
                                 const T* atomWeights, double energyWeight, T* grad, T* forcesOut,
                                 const StressTerm<T>& stress) {
  checkForceTraining(p, b, "forceLossAndGrad");
  if (p.profile) { p.profShape = b.shape; p.profReal = realCounts(b); }
  DenormalGuard ftz;
  detail::CpuExec<T> x{p, b};
  const program::Shape s = shapeOf(b);
  const int64_t P = p.layout.total;
  const bool withStress = stress.graphWeights != nullptr;
  T* F = x.buf(program::kBufForceF);
  T* w = x.buf(program::kBufForceW);
  T* Wst = withStress ? x.buf(program::kBufForceStrain) : (T*)nullptr;
  T* q = withStress ? x.buf(program::kBufForceQ) : (T*)nullptr;
  ForceLossResult r;
  program::forwardModel<T>(x, p.cfg, p.layout, params, s);
  r.energyLoss = x.loss;
  program::forcesModel<T>(x, p.cfg, p.layout, params, s, F, Wst);
  {
    auto ph = x.phase(kProfForces);
    r.forceLoss = x.forceLoss(kSiteForceLoss, s.N, realCounts(b).nodes, F, targetForces, atomWeights, w);
    if (withStress)
      r.stressLoss = x.stressLoss(kSiteStressLoss, s.G, Wst, stress.volumes, stress.target, stress.graphWeights, stress.out, q);
  }
  // One tangent along the force weights and the strains together.
  forwardTangentModel<T>(x, p.cfg, p.layout, params, s, w, q);
  // Seed tangent -energyWeight dLoss/dr2: the tangent gradient is then
  // -(d(w . F + q . W)/dtheta + energyWeight dLoss/dtheta).
  backwardDualModel<T>(x, p.cfg, p.layout, params, grad, (T*)nullptr, (T)(-energyWeight), s);
  for (int64_t i = 0; i < P; ++i) grad[i] = -grad[i];
  if (forcesOut && s.N > 0) std::memcpy(forcesOut, F, sizeof(T) * 3 * (size_t)s.N);
  if (p.profile) p.profSteps++;
  return r;
}

#define GNN_INST(T)                                                                                             \
  template double forceGrad<T>(Plan<T>&, const T*, const BatchInputs<T>&, const T*, T*, T*, const T*,        \
                               const double*);                                                            \
  template ForceLossResult forceLossAndGrad<T>(Plan<T>&, const T*, const BatchInputs<T>&, const T*, const T*, \
                                               double, T*, T*, const StressTerm<T>&);
GNN_INST(float)
GNN_INST(double)
#undef GNN_INST

}  // namespace gnn
