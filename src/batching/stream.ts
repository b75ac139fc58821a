/**
 * The study's training stream: loop over the split forever, reshuffling it
 * with a seeded RNG at the start of every epoch.
 */
import { Rng } from '../util/rng';
import type { StreamState } from './policy';
import { ArgumentError } from '../errors';

/**
 * Epoch stream over a split. Every epoch is a fresh seeded permutation of the
 * split (each epoch shuffles the split in its original order, so an epoch is
 * reproducible from the RNG state before its shuffle alone).
 */
export class EpochStream {
  private readonly split: Int32Array;
  private readonly order: Int32Array;
  private readonly rng: Rng;
  private epochRng: number[] = [];
  /** Graphs of the current epoch already handed out. */
  pos = 0;
  /** Current epoch, 0-based. */
  epoch = 0;

  constructor(split: Int32Array, seed: number) {
    if (split.length === 0) throw new ArgumentError('EpochStream: the split is empty');
    this.split = split;
    this.order = new Int32Array(split.length);
    this.rng = new Rng(seed);
    this.shuffleEpoch();
  }

  /** Number of graphs in one epoch. */
  get length(): number {
    return this.order.length;
  }

  /** Graphs handed out since the start (over all epochs). */
  get consumed(): number {
    return this.epoch * this.order.length + this.pos;
  }

  private shuffleEpoch(): void {
    this.epochRng = this.rng.getState();
    this.order.set(this.split);
    this.rng.shuffle(this.order);
    this.pos = 0;
  }

  /** Next graph id of the endless stream (crosses epoch boundaries). */
  nextId(): number {
    if (this.pos === this.order.length) {
      this.epoch++;
      this.shuffleEpoch();
    }
    return this.order[this.pos++];
  }

  /** Next graph id of the current epoch, or -1 when the epoch is used up. */
  nextInEpoch(): number {
    return this.pos < this.order.length ? this.order[this.pos++] : -1;
  }

  /** Start the next epoch (only after {@link nextInEpoch} returned -1). */
  advanceEpoch(): void {
    this.epoch++;
    this.shuffleEpoch();
  }

  getState(): StreamState {
    return { epoch: this.epoch, pos: this.pos, epochRng: this.epochRng.slice() };
  }

  setState(s: StreamState): void {
    if (!Number.isInteger(s.pos) || s.pos < 0 || s.pos > this.order.length || !Number.isInteger(s.epoch) || s.epoch < 0) {
      throw new ArgumentError(`EpochStream.setState: invalid position epoch=${s.epoch} pos=${s.pos} (epoch length ${this.order.length})`);
    }
    this.rng.setState(s.epochRng);
    this.shuffleEpoch();
    this.epoch = s.epoch;
    this.pos = s.pos;
  }
}
