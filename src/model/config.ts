/**
 * Model configuration: the study's MPEU, SchNet and PaiNN (PAPER.md,
 * docs/painn.md) with every number configurable.
 */
import { ArgumentError } from '../errors';

/** Which message-passing model. */
export type ModelKind = 'mpeu' | 'schnet' | 'painn';

/** Every model kind, in the study's order. */
export const MODEL_KINDS: readonly ModelKind[] = ['mpeu', 'schnet', 'painn'];

/** Full model configuration (all fields required once resolved). */
export interface ModelConfig {
  /** `mpeu` (message passing with edge updates), `schnet` or `painn` (equivariant, docs/painn.md). */
  kind: ModelKind;
  /** Latent size C (study: 64; PaiNN: 128 features). */
  latent: number;
  /** Message-passing steps (study: 3; PaiNN: 3 interaction blocks). */
  passes: number;
  /** Radial basis size (study: 150 Gaussians 0.1 Å apart; PaiNN: 20 sinc functions). */
  basis: number;
  /** Spacing of the Gaussian basis centres in Å (study: 0.1; not used by PaiNN). */
  rbfSpacing: number;
  /** Width factor gamma in exp(-gamma (d - mu)^2) (study: 1/0.1 = 10; not used by PaiNN). */
  rbfGamma: number;
  /** PaiNN: radius in Å of the cosine cutoff and the sinc basis (paper: 5); edges beyond it contribute zero. */
  cutoff: number;
  /** PaiNN: one filter shared by every interaction block instead of one per block (paper: per block). */
  sharedFilters: boolean;
  /** One-hot classes of the atomic number (atomic numbers must be < this). */
  numClasses: number;
  /** Hidden width of the readout MLP [hidden, 1] (study: 32; PaiNN: F/2 = 64). */
  readoutHidden: number;
  /** Aggregation of incoming messages (study: mean; PaiNN: sum). */
  aggregation: 'mean' | 'sum';
  /** Pooling of node outputs into the graph prediction (study: mean; PaiNN: sum, energies are extensive). */
  readout: 'mean' | 'sum';
}

/** The study's configuration for a model kind. */
export function defaultModelConfig(kind: ModelKind = 'mpeu'): ModelConfig {
  if (kind === 'painn') {
    return {
      kind,
      latent: 128,
      passes: 3,
      basis: 20,
      rbfSpacing: 0.1,
      rbfGamma: 10,
      cutoff: 5,
      sharedFilters: false,
      numClasses: 100,
      readoutHidden: 64,
      aggregation: 'sum',
      readout: 'sum',
    };
  }
  return {
    kind,
    latent: 64,
    passes: 3,
    basis: 150,
    rbfSpacing: 0.1,
    rbfGamma: 10,
    cutoff: 5,
    sharedFilters: false,
    numClasses: 100,
    readoutHidden: 32,
    aggregation: 'mean',
    readout: 'mean',
  };
}

/** Fills unspecified fields with the study's defaults and checks ranges. */
export function resolveModelConfig(partial: Partial<ModelConfig> & { kind?: ModelKind }): ModelConfig {
  const c: ModelConfig = { ...defaultModelConfig(partial.kind ?? 'mpeu'), ...stripUndefined(partial) };
  const intIn = (name: keyof ModelConfig, lo: number, hi: number): void => {
    const v = c[name] as number;
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new ArgumentError(`model config: ${name} must be an integer in ${lo}..${hi}, got ${String(v)}`, 'ERR_GNN_CONFIG');
    }
  };
  if (!MODEL_KINDS.includes(c.kind)) {
    throw new ArgumentError(`model config: kind must be one of ${MODEL_KINDS.join(', ')}, got '${String(c.kind)}'`, 'ERR_GNN_CONFIG');
  }
  intIn('latent', 1, 1024);
  intIn('passes', 1, 32);
  intIn('basis', 1, 4096);
  intIn('numClasses', 1, 256);
  intIn('readoutHidden', 1, 4096);
  if (!(c.rbfSpacing > 0) || !(c.rbfGamma > 0)) throw new ArgumentError('model config: rbfSpacing and rbfGamma must be > 0', 'ERR_GNN_CONFIG');
  if (!(c.cutoff > 0 && c.cutoff <= 1000)) throw new ArgumentError(`model config: cutoff must be in (0, 1000] Å, got ${String(c.cutoff)}`, 'ERR_GNN_CONFIG');
  if (typeof c.sharedFilters !== 'boolean') throw new ArgumentError('model config: sharedFilters must be a boolean', 'ERR_GNN_CONFIG');
  if (c.aggregation !== 'mean' && c.aggregation !== 'sum') throw new ArgumentError("model config: aggregation must be 'mean' or 'sum'", 'ERR_GNN_CONFIG');
  if (c.readout !== 'mean' && c.readout !== 'sum') throw new ArgumentError("model config: readout must be 'mean' or 'sum'", 'ERR_GNN_CONFIG');
  return c;
}

/**
 * The model configuration a run over `store` uses (train, recommend's
 * calibration): `model`'s kind and overrides on the study's defaults, with
 * `numClasses` at least 100 and above the store's largest atomic number unless
 * `model` sets it. Throws ArgumentError when a given numClasses cannot embed
 * every atom of the store, and ERR_GNN_CONFIG for an invalid field.
 */
export function modelConfigForStore(store: { readonly atomicNumber: Uint8Array }, model: Partial<ModelConfig> & { kind?: ModelKind } = {}): ModelConfig {
  let maxZ = 0;
  for (let i = 0; i < store.atomicNumber.length; i++) if (store.atomicNumber[i] > maxZ) maxZ = store.atomicNumber[i];
  const config = resolveModelConfig({ numClasses: Math.max(100, maxZ + 1), ...model });
  if (maxZ >= config.numClasses) throw new ArgumentError(`atomic number ${maxZ} needs numClasses > ${maxZ}, got ${config.numClasses}`);
  return config;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
