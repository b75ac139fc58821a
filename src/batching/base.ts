/**
 * Shared machinery of every policy: the epoch stream, accounting and timing
 * around `decide()`, and checkpoint state.
 */
import type { PackShape } from '../native';
import type { BatchSpec, GraphSizes, Policy, PolicyState } from './policy';
import { BatchingStats, type BatchingSummary } from './stats';
import { EpochStream } from './stream';
import { validateSizesAndSplit } from './sizes';
import { ArgumentError } from '../errors';

/** Cached clock (global lookups are slow under vm contexts such as jest's). */
const clock: { now(): number } = performance;

/** Options every policy accepts (unused ones are ignored). */
export interface CommonPolicyOptions {
  /**
   * Reproduce the study's static reader exactly: it reads B graphs from the
   * stream and batches only the first B-1, silently dropping every B-th graph
   * of the stream. Off by default. Only the static policies honour it.
   */
  studyCompat?: boolean;
}

/** Base class: subclasses implement {@link BasePolicy.decide} and set the real totals. */
export abstract class BasePolicy implements Policy {
  abstract readonly name: string;
  abstract readonly fixedShape: PackShape | null;
  protected readonly stream: EpochStream;
  protected readonly stats = new BatchingStats();
  protected readonly nodes: Int32Array;
  protected readonly edges: Int32Array;
  /** Real totals of the batch `decide()` just built. */
  protected realNodes = 0;
  protected realEdges = 0;

  constructor(
    sizes: GraphSizes,
    protected readonly split: Int32Array,
    readonly batchSize: number,
    seed: number,
    minBatch = 2,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < minBatch) {
      throw new ArgumentError(`batch size must be an integer >= ${minBatch}, got ${batchSize}`);
    }
    validateSizesAndSplit(sizes, split);
    this.nodes = sizes.nodes;
    this.edges = sizes.edges;
    this.stream = new EpochStream(split, seed);
  }

  /** Choose the next batch; must set `realNodes` and `realEdges`. */
  protected abstract decide(): BatchSpec;

  /** Policy-specific carry-over state (default none). */
  protected getCarry(): number[] {
    return [];
  }

  protected setCarry(carry: number[]): void {
    if (carry.length !== 0) throw new ArgumentError(`${this.name}: unexpected carry state of length ${carry.length}`);
  }

  next(): BatchSpec {
    const c0 = this.stream.consumed;
    const t0 = clock.now();
    const spec = this.decide();
    const ms = clock.now() - t0;
    this.stats.record(spec.graphIds.length, this.realNodes, this.realEdges, this.stream.consumed - c0, spec.shape, ms);
    return spec;
  }

  get epoch(): number {
    return this.stream.epoch;
  }

  summary(): BatchingSummary {
    return this.stats.summary();
  }

  getState(): PolicyState {
    return { policy: this.name, stream: this.stream.getState(), carry: this.getCarry(), stats: this.stats.getState() };
  }

  setState(state: PolicyState): void {
    if (state.policy !== this.name) throw new ArgumentError(`state was written by policy '${state.policy}', not '${this.name}'`);
    this.stream.setState(state.stream);
    this.setCarry(state.carry);
    this.stats.setState(state.stats);
  }
}
