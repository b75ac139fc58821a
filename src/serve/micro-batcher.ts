/**
 * The predictor's queue and batch scheduling (issue 26 item 2), apart from the
 * native work so it can be tested without the addon: calls' graphs wait in
 * arrival order; whenever the executor is idle a batch is taken from the head
 * up to a budget of graphs, nodes and edges; a batch that is not full waits up
 * to `delayMs` for graphs still being built; one batch runs at a time.
 *
 * Rules (the predictor's documented behaviour, kept here in one place):
 * - A batch holds calls of one kind (energy or force): the head's kind decides,
 *   queued graphs of the other kind keep their places for a later batch.
 * - Graphs are taken in order until the next one would overflow the budget; a
 *   single graph larger than the budget goes alone (an oversize batch).
 * - A batch waits for more graphs only while some call is still being
 *   prepared, the queue holds fewer graphs than the budget, the head has
 *   waited less than `delayMs` and the batcher is not draining; a lone call
 *   never waits.
 * - `remove(call)` drops a call's graphs that have not run (aborted or failed
 *   calls); `drain()` resolves once nothing is queued, prepared or running.
 */

/** A batch budget: the most graphs, nodes and edges one native pass takes. */
export interface BatchBudget {
  graphs: number;
  nodes: number;
  edges: number;
}

/** The graph sizes of a built store, as the batcher reads them. */
export interface GraphSizes {
  readonly numGraphs: number;
  readonly nodeOffset: ArrayLike<number>;
  readonly edgeOffset: ArrayLike<number>;
}

/** A call's graphs waiting in the queue (a call has one item, or one per built chunk). */
export interface QueueItem<C extends { force: boolean }, S extends GraphSizes = GraphSizes> {
  call: C;
  store: S;
  /** Next graph of this store to schedule. */
  next: number;
  /** When the item was queued (the batcher's clock, ms). */
  enqueuedAt: number;
}

/** A contiguous run of one item's graphs in a batch: graphs from..to-1 of its store. */
export interface BatchPart<I> {
  item: I;
  from: number;
  to: number;
}

/** A batch taken from the queue. */
export interface Batch<I> {
  parts: BatchPart<I>[];
  /** Its real graphs, nodes and edges. */
  shape: BatchBudget;
  /** Whether it is a force batch. */
  force: boolean;
  /** How long its oldest graph waited (ms). */
  queueMs: number;
}

/** What the batcher needs from its owner. */
export interface MicroBatcherOptions<I> {
  /** The budget of energy batches and of force batches. */
  budget: BatchBudget;
  forceBudget: BatchBudget;
  /** How long (ms) a batch that is not full waits for calls still being prepared. */
  delayMs: number;
  /** Runs one batch; must settle its own calls (a rejection is ignored). */
  run: (batch: Batch<I>) => Promise<void>;
  /** Clock in ms (default performance.now). */
  now?: () => number;
}

/** The queue and the scheduler of {@link createPredictor}'s batches (see the module comment). */
export class MicroBatcher<C extends { force: boolean }, I extends QueueItem<C, GraphSizes>> {
  private readonly queue: I[] = [];
  private preparing = 0;
  private running = false;
  private draining = false;
  private timer: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;
  private readonly now: () => number;

  constructor(private readonly o: MicroBatcherOptions<I>) {
    this.now = o.now ?? (() => performance.now());
  }

  /** Calls waiting: those with queued graphs plus those being prepared. */
  depth(): number {
    return new Set(this.queue.map((it) => it.call)).size + this.preparing;
  }

  /** Graphs queued and not yet taken. */
  queuedGraphs(): number {
    return this.queue.reduce((s, it) => s + (it.store.numGraphs - it.next), 0);
  }

  /** Whether the batcher is draining (no more waiting for stragglers). */
  get closing(): boolean {
    return this.draining;
  }

  /** A call starts being prepared (its graphs are built); pair with {@link prepared}. */
  preparingCall(): void {
    this.preparing++;
  }

  /** A call's preparation ended: its items (none if it failed or was settled) join the queue, and a batch may start. */
  prepared(items: readonly I[]): void {
    this.preparing--;
    const t = this.now();
    for (const it of items) {
      it.enqueuedAt = t;
      this.queue.push(it);
    }
    this.pump();
  }

  /** Drops the graphs of `call` that have not run. */
  remove(call: C): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].call === call) this.queue.splice(i, 1);
  }

  /** Resolves once nothing is queued, prepared or running; no batch waits for stragglers from now on. */
  drain(): Promise<void> {
    this.draining = true;
    const idle = this.queue.length === 0 && this.preparing === 0 && !this.running;
    const done = idle
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          this.drained = resolve;
          this.pump();
        });
    return done.then(() => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    });
  }

  /**
   * Takes graphs from the head of the queue up to the budget of the head's
   * kind; marks them taken and drops items with nothing left. Exposed for tests.
   */
  take(): Batch<I> {
    const parts: BatchPart<I>[] = [];
    const force = this.queue[0].call.force;
    const b = force ? this.o.forceBudget : this.o.budget;
    let graphs = 0, nodes = 0, edges = 0;
    for (let qi = 0; qi < this.queue.length; qi++) {
      const item = this.queue[qi];
      if (item.call.force !== force) continue;
      const s = item.store;
      const from = item.next;
      let g = from;
      let full = false;
      while (g < s.numGraphs && graphs < b.graphs) {
        const n = s.nodeOffset[g + 1] - s.nodeOffset[g];
        const e = s.edgeOffset[g + 1] - s.edgeOffset[g];
        const fits = nodes + n <= b.nodes && edges + e <= b.edges;
        if (!fits && graphs > 0) {
          full = true;
          break;
        }
        graphs++;
        nodes += n;
        edges += e;
        g++;
        if (!fits) {
          full = true; // an oversize graph alone
          break;
        }
      }
      if (g > from) parts.push({ item, from, to: g });
      if (full || g < s.numGraphs) break; // the batch is full
    }
    const queueMs = this.now() - parts[0].item.enqueuedAt;
    for (const part of parts) part.item.next = part.to;
    // Items of the other kind may sit before consumed ones: drop every consumed item.
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].next >= this.queue[i].store.numGraphs) this.queue.splice(i, 1);
    return { parts, shape: { graphs, nodes, edges }, force, queueMs };
  }

  /** Starts a batch when the executor is idle and the queue is ready (full, nobody else coming, or waited enough). */
  pump(): void {
    if (this.running || this.queue.length === 0) {
      if (!this.running && this.queue.length === 0 && this.preparing === 0 && this.drained) {
        const d = this.drained;
        this.drained = null;
        d();
      }
      return;
    }
    const waited = this.now() - this.queue[0].enqueuedAt;
    if (this.preparing > 0 && this.queuedGraphs() < this.o.budget.graphs && waited < this.o.delayMs && !this.draining) {
      if (!this.timer) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, Math.max(0, this.o.delayMs - waited));
      }
      return;
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.running = true;
    const batch = this.take();
    this.o
      .run(batch)
      .catch(() => {
        // run settles its own calls; nothing reaches here.
      })
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }
}
