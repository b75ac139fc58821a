/**
 * The predictor's queue and scheduling without the addon (issue 26 item 2):
 * fake stores of known graph sizes and a fake batch runner.
 */
import { MicroBatcher, type Batch, type GraphSizes, type QueueItem } from '../../src/serve/micro-batcher';

interface Call {
  name: string;
  force: boolean;
}
type Item = QueueItem<Call>;

/** A store of graphs with the given [nodes, edges] sizes. */
function store(sizes: [number, number][]): GraphSizes {
  const nodeOffset = [0];
  const edgeOffset = [0];
  for (const [n, e] of sizes) {
    nodeOffset.push(nodeOffset[nodeOffset.length - 1] + n);
    edgeOffset.push(edgeOffset[edgeOffset.length - 1] + e);
  }
  return { numGraphs: sizes.length, nodeOffset, edgeOffset };
}
const item = (call: Call, sizes: [number, number][]): Item => ({ call, store: store(sizes), next: 0, enqueuedAt: 0 });
const budget = { graphs: 4, nodes: 40, edges: 400 };
/** What a batch held, as `call:from-to` strings. */
const describe_ = (b: Batch<Item>): string[] => b.parts.map((p) => `${p.item.call.name}:${p.from}-${p.to}`);

/** A batcher whose runner records batches and finishes each when `release()` is called. */
function harness(delayMs = 0, forceBudget = budget) {
  const batches: Batch<Item>[] = [];
  const pending: (() => void)[] = [];
  const b = new MicroBatcher<Call, Item>({
    budget,
    forceBudget,
    delayMs,
    run: (batch) => {
      batches.push(batch);
      return new Promise<void>((resolve) => pending.push(resolve));
    },
  });
  const release = async (): Promise<void> => {
    pending.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { b, batches, release };
}

test('graphs are taken in arrival order up to the budget; a call larger than the budget is split across batches', async () => {
  const { b, batches, release } = harness();
  const a: Call = { name: 'a', force: false };
  const c: Call = { name: 'c', force: false };
  // While one batch runs, two calls queue up: a has 3 graphs, c has 3.
  b.preparingCall();
  b.prepared([item({ name: 'first', force: false }, [[1, 1]])]);
  expect(batches.map(describe_)).toEqual([['first:0-1']]);
  b.preparingCall();
  b.prepared([item(a, [[5, 20], [5, 20], [5, 20]])]);
  b.preparingCall();
  b.prepared([item(c, [[5, 20], [5, 20], [5, 20]])]);
  expect(b.depth()).toBe(2);
  expect(b.queuedGraphs()).toBe(6);
  await release();
  expect(describe_(batches[1])).toEqual(['a:0-3', 'c:0-1']);
  expect(batches[1].shape).toEqual({ graphs: 4, nodes: 20, edges: 80 });
  await release();
  expect(describe_(batches[2])).toEqual(['c:1-3']);
  await release();
  expect(b.depth()).toBe(0);
  await b.drain();
});

test('the node and edge budgets close a batch; a single oversize graph runs alone', async () => {
  const { b, batches, release } = harness();
  b.preparingCall();
  b.prepared([item({ name: 'block', force: false }, [[1, 1]])]);
  b.preparingCall();
  b.prepared([item({ name: 'x', force: false }, [[30, 100], [20, 100], [100, 5000], [2, 2]])]);
  await release();
  // 30 + 20 nodes > 40: the first graph alone.
  expect(describe_(batches[1])).toEqual(['x:0-1']);
  await release();
  expect(describe_(batches[2])).toEqual(['x:1-2']);
  await release();
  // 100 nodes, 5000 edges: beyond the budget, alone.
  expect(describe_(batches[3])).toEqual(['x:2-3']);
  expect(batches[3].shape).toEqual({ graphs: 1, nodes: 100, edges: 5000 });
  await release();
  expect(describe_(batches[4])).toEqual(['x:3-4']);
  await release();
  await b.drain();
});

test("a batch holds one kind: the head's; calls of the other kind keep their places", async () => {
  const { b, batches, release } = harness(0, { graphs: 2, nodes: 40, edges: 400 });
  b.preparingCall();
  b.prepared([item({ name: 'block', force: false }, [[1, 1]])]);
  for (const [name, force] of [['f1', true], ['e1', false], ['f2', true], ['e2', false]] as const) {
    b.preparingCall();
    b.prepared([item({ name, force }, [[2, 2]])]);
  }
  await release();
  expect(batches[1].force).toBe(true);
  expect(describe_(batches[1])).toEqual(['f1:0-1', 'f2:0-1']);
  await release();
  expect(batches[2].force).toBe(false);
  expect(describe_(batches[2])).toEqual(['e1:0-1', 'e2:0-1']);
  await release();
  await b.drain();
});

test('a batch that is not full waits up to delayMs for calls still being prepared; a lone call does not wait', async () => {
  const { b, batches, release } = harness(50);
  // Alone: runs at once.
  b.preparingCall();
  b.prepared([item({ name: 'lone', force: false }, [[1, 1]])]);
  expect(batches).toHaveLength(1);
  await release();
  // Another call is still being prepared: the queued one waits for it...
  b.preparingCall(); // the straggler
  b.preparingCall();
  b.prepared([item({ name: 'early', force: false }, [[1, 1]])]);
  expect(batches).toHaveLength(1);
  // ... and both go in one batch when the straggler arrives within the delay.
  b.prepared([item({ name: 'late', force: false }, [[1, 1]])]);
  expect(batches).toHaveLength(2);
  expect(describe_(batches[1])).toEqual(['early:0-1', 'late:0-1']);
  await release();
  // A straggler that takes longer than the delay: the queued call goes after delayMs.
  b.preparingCall();
  b.preparingCall();
  b.prepared([item({ name: 'waits', force: false }, [[1, 1]])]);
  await new Promise((r) => setTimeout(r, 120));
  expect(batches).toHaveLength(3);
  expect(describe_(batches[2])).toEqual(['waits:0-1']);
  b.prepared([]);
  await release();
  await b.drain();
});

test('remove() drops the graphs of a call that have not run; drain() waits for the running batch and the preparing calls', async () => {
  const { b, batches, release } = harness();
  const gone: Call = { name: 'gone', force: false };
  b.preparingCall();
  b.prepared([item({ name: 'block', force: false }, [[1, 1]])]);
  b.preparingCall();
  b.prepared([item(gone, [[1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1]])]);
  b.remove(gone);
  expect(b.queuedGraphs()).toBe(0);
  b.preparingCall();
  let drained = false;
  const d = b.drain().then(() => (drained = true));
  expect(b.closing).toBe(true);
  await release();
  expect(drained).toBe(false); // a call is still being prepared
  b.prepared([item({ name: 'last', force: false }, [[1, 1]])]);
  expect(describe_(batches[batches.length - 1])).toEqual(['last:0-1']);
  expect(drained).toBe(false); // its batch runs
  await release();
  await d;
  expect(drained).toBe(true);
  expect(batches.map(describe_).flat()).not.toContain('gone:0-4');
});

test('a runner that rejects does not stop the queue', async () => {
  const ran: string[] = [];
  const b = new MicroBatcher<Call, Item>({
    budget: { graphs: 1, nodes: 10, edges: 10 },
    forceBudget: budget,
    delayMs: 0,
    run: async (batch) => {
      ran.push(describe_(batch)[0]);
      throw new Error('boom');
    },
  });
  b.preparingCall();
  b.prepared([item({ name: 'a', force: false }, [[1, 1], [1, 1]])]);
  await b.drain();
  expect(ran).toEqual(['a:0-1', 'a:1-2']);
});
