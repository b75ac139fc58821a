// MPEU, SchNet and PaiNN (PAPER.md, docs/painn.md) as native forward/backward
// passes over a packed batch, and the plan that owns every buffer of one batch
// capacity. Each model's forward and backward is a program over executor ops
// (program.h: MPEU, SchNet; program_painn.h: PaiNN, its CPU kernels in
// painn.cpp); forward() and forwardBackward() dispatch on the configuration's kind.
//
// Parameters live in one flat vector; ParamLayout says where each named weight
// is. Matrices are stored row-major [in x out] (Haiku's convention), so a
// checkpoint can name them one tensor per weight.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/pack.h"

namespace gnn {

enum class ModelKind { MPEU = 0, SchNet = 1, PaiNN = 2 };

struct ModelConfig {
  ModelKind kind = ModelKind::MPEU;
  int latent = 64;         // C
  int passes = 3;          // message-passing steps
  int basis = 150;         // radial basis size (Gaussian; PaiNN: sinc)
  double rbfSpacing = 0.1; // mu_k = spacing * k (Å)
  double rbfGamma = 10.0;  // exp(-gamma (d - mu_k)^2); the study's 1/0.1
  int numClasses = 100;    // one-hot atomic number classes (z < numClasses)
  int readoutHidden = 32;  // readout MLP [hidden, 1]
  bool meanAggregation = true;
  bool meanReadout = true;
  double cutoff = 5.0;         // PaiNN: cosine cutoff and sinc basis radius (Å)
  bool sharedFilters = false;  // PaiNN: one filter for every block
};

struct ParamEntry {
  std::string name;
  int64_t offset, rows, cols;  // rows x cols, row-major
};

struct ParamLayout {
  std::vector<ParamEntry> entries;
  int64_t total = 0;
};
ParamLayout paramLayout(const ModelConfig& c);
void validateConfig(const ModelConfig& c);

// Batch inputs as written by packGraphs (the plan's own buffers), plus the
// actual shape (which may be smaller than the plan's capacity).
template <class T>
struct BatchInputs {
  PackShape shape;
  const int32_t* atomicNumber;
  const int32_t* senders;
  const int32_t* receivers;
  const T* distance;
  const int32_t* nNode;
  const T* target;
  const T* mask;
  const int32_t* recvPtr;
  const int32_t* sendPerm;
  const int32_t* sendPtr;
  // [edges x 3] unit vectors from receiver to sender (PaiNN only; may be null
  // for the other models).
  const T* direction = nullptr;
};

// Named kernel groups of the opt-in profile.
enum ProfileKey {
  kProfRbf, kProfEmbed, kProfEdgeUpdate, kProfMessage, kProfAggregate, kProfNodeUpdate,
  kProfReadout, kProfReadoutBwd, kProfNodeUpdateBwd, kProfMessageBwd, kProfEdgeUpdateBwd,
  kProfEmbedBwd, kProfAdam, kProfForces, kProfTangentFwd, kProfDoubleBwd, kProfCount
};
extern const char* const kProfileNames[kProfCount];

// Kernel call sites of the per-kernel profile: one per GEMM (with its
// epilogue), gather/segment reduction, RBF, embedding, loss and Adam. Names are
// "<phase>.<kernel>" (kKernelSites); passes share a site (the record keeps
// the pass index and its own shape). The one table for both backends: the
// CPU executor's records and the CUDA executor's profiled launches
// (cudaProfileStep, native/cuda/models/exec_cuda.cuh) carry these names.
enum KernelSite {
  kSiteRbf, kSiteEmbed, kSiteEdgePs, kSiteEdgePr, kSiteEdgeW1e, kSiteEdgeW2, kSiteFilterW1, kSiteFilterW2,
  kSiteSenderW, kSiteAggregate, kSiteNodeU1, kSiteNodeU2, kSiteReadoutR1, kSiteReadoutR2, kSiteLoss,
  kSiteLossBwd, kSiteReadoutR2Dw, kSiteReadoutDr1, kSiteReadoutR1Dw, kSiteReadoutDx, kSiteNodeU2Dw, kSiteNodeU2Dx,
  kSiteNodeU1Dw, kSiteNodeU1Dx, kSiteMsgDf2, kSiteMsgDhs, kSiteSenderDw, kSiteSenderDx, kSiteFilterW2Dw,
  kSiteFilterW2Dx, kSiteFilterW1Dw, kSiteFilterW1Dx, kSiteEdgeW2Dw, kSiteEdgeW2Dx, kSiteEdgeW1eDw, kSiteEdgeGatherBwd,
  kSiteEdgeSegSum, kSiteEdgeW1sDw, kSiteEdgeW1rDw, kSiteEdgeW1sDx, kSiteEdgeW1rDx, kSiteEdgeW1eDx, kSiteEmbedBwd,
  kSiteAdam,
  // PaiNN (painn.cpp).
  kSitePRbf, kSitePMsgW1, kSitePMsgW2, kSitePMsgAgg, kSitePMix, kSitePNorm, kSitePUpdW1,
  kSitePUpdW2, kSitePUpdApplyBwd, kSitePUpdW2Dw, kSitePUpdW2Dx, kSitePUpdW1Dw, kSitePUpdW1Dx,
  kSitePMixDw, kSitePMixDx, kSitePMsgBwd, kSitePMsgW2Dw, kSitePMsgW2Dx, kSitePMsgW1Dw, kSitePMsgW1Dx,
  kSitePFilterDw,
  // The force pass (program::forces): the energy seed, the basis gradient
  // products, the basis backward to distances, the scatter to atoms, the virial.
  kSiteForceSeed, kSiteForceRbfDx, kSiteForceRbfBwd, kSiteForceScatter, kSiteForceVirial,
  // The double backward (program_tangent.h): the tangents of the distances and
  // the basis, the tangent forward's products (edge rows, node rows), its
  // aggregation and pooling, the tangent seed, the readout's hidden tangent,
  // the tangent backward's input-gradient and weight-gradient products (edge
  // rows, node rows), its message gather and scatter, CSR sums and embedding
  // backward, and forceLossAndGrad's force loss; then the stress part of the
  // distances' tangent (a homogeneous strain per graph) and the stress loss.
  kSiteTanDist, kSiteTanRbf, kSiteTanEdgeGemm, kSiteTanNodeGemm, kSiteTanAggregate, kSiteTanPool, kSiteTanSeed,
  kSiteTanDr1, kSiteTanEdgeDx, kSiteTanNodeDx, kSiteTanEdgeDw, kSiteTanNodeDw, kSiteTanMsgDf2, kSiteTanMsgDhs,
  kSiteTanCsr, kSiteTanEmbedBwd, kSiteForceLoss, kSiteTanStrain, kSiteStressLoss,
  // PaiNN's double backward (program_painn.h; its products use the tangent
  // product sites above): the tangents of the basis, cutoff and direction, of
  // the message pass, the vector norm, SiLU and the update's combination; the
  // tangent backward's update combination, norm gradient, SiLU' duals,
  // message backward (with the filter gradient's tangent) and filter reduce.
  kSitePTanEdge, kSitePTanMsg, kSitePTanNorm, kSitePTanSilu, kSitePTanUpdate, kSitePTanUpdBwd, kSitePTanNormBwd,
  kSitePTanSiluDual, kSitePTanMsgBwd, kSitePTanFilterDw,
  kSiteCount
};
// What a kernel's rows are (its padding share is that dimension's padding).
// kRowComputed: the rows are the ones the call computes, none of them padding
// (PaiNN's edge passes compute only edges inside the cutoff; padding edges,
// d = 0, are skipped), so no padding share.
enum RowKind { kRowNode = 0, kRowEdge = 1, kRowGraph = 2, kRowParam = 3, kRowComputed = 4 };
// One site: its name, its rows, and whether it is a matrix product (its flops
// are the 2*M*N*K that the thread flop counter of dense.h adds; the other
// sites count their own arithmetic, exp counted as one operation, and are not
// in that counter).
struct KernelSiteInfo {
  const char* name;
  RowKind rows;
  bool gemm;
};
extern const KernelSiteInfo kKernelSites[kSiteCount];

// One kernel call of a profiled step. Times are steady_clock nanoseconds (on
// Linux CLOCK_MONOTONIC, the clock of Node's process.hrtime). Shape is the
// call's M x N x K (for non-products: rows x width x inner); bytes moved count
// each operand read once plus the output written once (gathered rows once per
// gathering row, index arrays at 4 bytes, accumulated outputs read and written).
struct KernelRecord {
  int32_t site = 0, pass = -1;
  int64_t m = 0, n = 0, k = 0;
  int64_t rows = 0, realRows = 0;  // rows of the call's row kind, of which real (not padding)
  double t0Ns = 0, durNs = 0, flops = 0, bytes = 0;
};

// Records are kept in a buffer reserved when profiling is switched on (no
// allocation per step; 8192 records, 640 KiB, per profiled plan: a step makes
// about 30 per message pass, so callers take them every step or few); calls
// beyond its capacity are counted as dropped.
constexpr size_t kProfileRecordCapacity = 1 << 13;

namespace program {
enum Buf : int;
}

template <class T>
struct Plan {
  ModelConfig cfg;
  ParamLayout layout;
  PackShape cap;  // capacity
  bool profile = false;
  std::array<double, kProfCount> profSeconds{};
  int64_t profSteps = 0;
  std::vector<KernelRecord> profRecords;  // capacity kProfileRecordCapacity while profiling
  int64_t profDropped = 0;
  PackShape profShape, profReal;  // shape and real (unpadded) counts of the batch being profiled
  void setProfiling(bool on);
  void addRecord(int site, int pass, int64_t m, int64_t n, int64_t k, double flops, double bytes, double t0Ns, double t1Ns);
  // Forward activations.
  std::vector<T> rbf, h, e, a1, f1, f2, hs, agg, u1, r1, r2, pred, invCnt;
  std::vector<T> Ps, Pr;
  // Backward scratch.
  std::vector<T> dh, dhNew, de, dpre1, dA, dB, dPs, dPr, dhs, dagg, du, dr1, dr2, wt;
  // Force pass (allocated only when the plan is built with forces).
  bool forces = false;
  std::vector<T> dRbf, dDist;
  // Double backward (allocated only when built with force training): the
  // buffers from program::kBufTDist on, in enum order.
  bool forceTraining = false;
  std::vector<std::vector<T>> tangentBufs;
  // The buffer of the model program's activation layout (program.h).
  std::vector<T>& bufVec(program::Buf b);
  std::vector<T> tnScratch;
  // PaiNN's own buffers (program::kBufPFcut .. kBufPDu, in enum order;
  // empty for the other models). The filters themselves are recomputed per
  // edge, never stored.
  std::vector<std::vector<T>> painnBufs;
  int64_t pnEdgesInCutoff = 0;  // of the batch the last forward ran (its backward reuses it)
  std::vector<int64_t> graphStart;
  size_t bytes() const;
};

// Largest plan buildPlan allocates (its buffers, estimated before allocation):
// 32 GiB or half of physical memory, whichever is smaller; beyond it
// ERR_GNN_PLAN_TOO_LARGE.
constexpr double kMaxPlanBytes = 32.0 * 1024 * 1024 * 1024;
double maxPlanBytes();

// Real counts of a packed batch (Jraph's padding: real graphs first with mask
// 1; real nodes and edges precede the padding graph's): O(graphs).
template <class T>
PackShape realCounts(const BatchInputs<T>& b);

// With `forces`, the plan also holds the force pass's buffers (forcesStep);
// with `forceTraining` too, the double backward's (forceGrad,
// forceLossAndGrad; about as many again as the energy buffers).
template <class T>
std::unique_ptr<Plan<T>> buildPlan(const ModelConfig& cfg, const PackShape& capacity, bool forces = false,
                                   bool forceTraining = false);

// Range-checks every index array of a batch against its shape and checks that
// recvPtr / sendPtr / sendPerm describe receivers / senders exactly (O(N + E),
// once per call); throws RangeError (ERR_GNN_SHAPE, ERR_GNN_BATCH, ERR_GNN_RANGE).
template <class T>
void validateBatch(const Plan<T>& p, const BatchInputs<T>& b);

// Forward pass; writes per-graph predictions (standardised units) into pred
// (length shape.graphs) when non-null; returns the masked MSE loss.
template <class T>
double forward(Plan<T>& p, const T* params, const BatchInputs<T>& b, T* pred);

// Forward + backward; grads (layout.total) is overwritten. Returns the loss.
template <class T>
double forwardBackward(Plan<T>& p, const T* params, T* grads, const BatchInputs<T>& b);

// Forward + force pass (docs/forces.md; PaiNN: docs/painn.md), on a plan built with
// forces and a batch with edge directions. Writes the per-graph energies
// (predictions, standardised units) into energy [graphs], F = -dE/dx into
// forces [nodes x 3] (xyz per atom; padding atoms 0) and, when strain is
// non-null, dE/d strain per graph into strain [graphs x 6] (Voigt xx yy zz yz
// xz xy; stress = strain / volume). Returns the masked MSE loss of the
// forward. Throws ERR_GNN_FORCES_PLAN (plan built without forces),
// ERR_GNN_DATA_DIRECTIONS (no directions).
template <class T>
double forcesStep(Plan<T>& p, const T* params, const BatchInputs<T>& b, T* energy, T* forces, T* strain);

// The double backward of the force pass (forces.cpp, program_tangent.h,
// docs/forces.md), float32 and float64, on a plan built with force training:
// for fixed per-atom weights w [nodes x 3] (w = dL/dF of a force loss) and,
// when stressW is non-null, per-graph stress weights stressW [graphs x 6]
// (dL/dsigma, Voigt xx yy zz yz xz xy) with the cells' volumes [graphs]
// (> 0 where the graph is real and its weights are not all 0), writes
// d(w . F + stressW . sigma)/d params into grad [layout.total] and, when
// energyGrad is non-null, d(sum of the real graphs' energies)/d params.
// Returns w . F + stressW . sigma over the real graphs (sigma = (1/V) dE/d
// strain). (Forward-over-reverse: the program's forward and backward with
// tangents, the distances' tangent being their change when the atoms move
// along w and each cell with its atoms is strained by stressW / V.)
template <class T>
double forceGrad(Plan<T>& p, const T* params, const BatchInputs<T>& b, const T* w, T* grad, T* energyGrad,
                 const T* stressW = nullptr, const double* volumes = nullptr);

// The stress term of forceLossAndGrad (all null / 0: no stress term):
//   stressLoss = sum over real graphs g with graphWeights[g] > 0 of
//                graphWeights[g] sum_v (sigma_gv - targetStress_gv)^2
// over the 6 Voigt components (sigma = (1/V_g) dE/d strain, the model's
// units per Å^3); volumes (Å^3) > 0 for those graphs. sigma is written to
// stressOut [graphs x 6] when non-null (0 for padding graphs).
template <class T>
struct StressTerm {
  const T* target = nullptr;        // [graphs x 6]
  const T* graphWeights = nullptr;  // [graphs]
  const double* volumes = nullptr;  // [graphs]
  T* out = nullptr;                 // [graphs x 6], optional
};

// What a training step on energies, forces and stress needs, in one call
// (forces.cpp): the forward, the force pass (with the strain derivative when
// there is a stress term), the force loss
//   forceLoss = sum over atoms i of a_i |F_i - F*_i|^2   (a = atomWeights [nodes], F* = targetForces [nodes x 3])
// the stress loss (StressTerm), and grad = energyWeight d(energyLoss)/d params
// + d(forceLoss + stressLoss)/d params, energyLoss being the forward's masked
// MSE (lossAndGrad's): one tangent pass along the force weights and the
// strains together. Forces are written to forcesOut [nodes x 3] when
// non-null. All in the model's (standardised) units.
struct ForceLossResult {
  double energyLoss = 0, forceLoss = 0, stressLoss = 0;
};
template <class T>
ForceLossResult forceLossAndGrad(Plan<T>& p, const T* params, const BatchInputs<T>& b, const T* targetForces,
                                 const T* atomWeights, double energyWeight, T* grad, T* forcesOut,
                                 const StressTerm<T>& stress = StressTerm<T>());

}  // namespace gnn
