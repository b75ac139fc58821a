/**
 * Model configuration: the study's MPEU and SchNet (PAPER.md) with every
 * number configurable.
 */
import { ArgumentError } from '../errors';

/** Which message-passing model. */
export type ModelKind = 'mpeu' | 'schnet';

/** Full model configuration (all fields required once resolved). */
export interface ModelConfig {
  /** `mpeu` (message passing with edge updates) or `schnet`. */
  kind: ModelKind;
  /** Latent size C (study: 64). */
  latent: number;
  /** Message-passing steps (study: 3). */
  passes: number;
  /** Gaussian radial basis size (study: 150 centres 0.1 Å apart). */
  basis: number;
  /** Spacing of the basis centres in Å (study: 0.1). */
  rbfSpacing: number;
  /** Width factor gamma in exp(-gamma (d - mu)^2) (study: 1/0.1 = 10). */
  rbfGamma: number;
  /** One-hot classes of the atomic number (atomic numbers must be < this). */
  numClasses: number;
  /** Hidden width of the readout MLP [hidden, 1] (study: 32). */
  readoutHidden: number;
  /** Aggregation of incoming messages (study: mean). */
  aggregation: 'mean' | 'sum';
  /** Pooling of node outputs into the graph prediction (study: mean). */
  readout: 'mean' | 'sum';
}

/** The study's configuration for a model kind. */
export function defaultModelConfig(kind: ModelKind = 'mpeu'): ModelConfig {
  return {
    kind,
    latent: 64,
    passes: 3,
    basis: 150,
    rbfSpacing: 0.1,
    rbfGamma: 10,
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
  if (c.kind !== 'mpeu' && c.kind !== 'schnet') {
    throw new ArgumentError(`model config: kind must be 'mpeu' or 'schnet', got '${String(c.kind)}'`, 'ERR_GNN_CONFIG');
  }
  intIn('latent', 1, 1024);
  intIn('passes', 1, 32);
  intIn('basis', 1, 4096);
  intIn('numClasses', 1, 256);
  intIn('readoutHidden', 1, 4096);
  if (!(c.rbfSpacing > 0) || !(c.rbfGamma > 0)) throw new ArgumentError('model config: rbfSpacing and rbfGamma must be > 0', 'ERR_GNN_CONFIG');
  if (c.aggregation !== 'mean' && c.aggregation !== 'sum') throw new ArgumentError("model config: aggregation must be 'mean' or 'sum'", 'ERR_GNN_CONFIG');
  if (c.readout !== 'mean' && c.readout !== 'sum') throw new ArgumentError("model config: readout must be 'mean' or 'sum'", 'ERR_GNN_CONFIG');
  return c;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
