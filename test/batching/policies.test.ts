import fc from 'fast-check';
import {
  createPolicy,
  EpochStream,
  GraphTooLargeError,
  POLICY_NAMES,
  static64Shape,
  staticPow2Shape,
  staticConstantShape,
  type BatchSpec,
  type GraphSizes,
  type Policy,
  type PolicyState,
} from '../../src/batching';

interface Case {
  sizes: GraphSizes;
  split: Int32Array;
  batch: number;
  seed: number;
}

/** Random size distributions: 1..maxN nodes (maxN 2, 4 or 40), 0..n(n-1) edges, a random split of the ids. */
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    // Small maxima make the graph-count cap bind, large ones the node/edge budget.
    graphs: fc.constantFrom(2, 4, 40).chain((maxN) =>
      fc.array(
        fc.integer({ min: 1, max: maxN }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n * (n - 1) }))),
        { minLength: 1, maxLength: 120 },
      ),
    ),
    batch: fc.integer({ min: 2, max: 12 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 }),
    keep: fc.double({ min: 0.3, max: 1, noNaN: true }),
  })
  .map(({ graphs, batch, seed, keep }) => {
    const nodes = Int32Array.from(graphs.map((g) => g[0]));
    const edges = Int32Array.from(graphs.map((g) => g[1]));
    const ids: number[] = [];
    for (let i = 0; i < graphs.length; i++) if (i === 0 || (i * 7919) % 100 < keep * 100) ids.push(i);
    ids.reverse();
    return { sizes: { nodes, edges }, split: Int32Array.from(ids), batch, seed };
  });

function run(p: Policy, steps: number): { specs: BatchSpec[]; epochs: number[] } {
  const specs: BatchSpec[] = [];
  const epochs: number[] = [];
  for (let s = 0; s < steps; s++) {
    specs.push(p.next());
    epochs.push(p.epoch);
  }
  return { specs, epochs };
}

function totals(c: Case, ids: Int32Array): { n: number; e: number } {
  let n = 0;
  let e = 0;
  for (const id of ids) {
    n += c.sizes.nodes[id];
    e += c.sizes.edges[id];
  }
  return { n, e };
}

const sorted = (a: ArrayLike<number>): number[] => Array.from(a).sort((x, y) => x - y);

/** Steps enough for three epochs even at one graph per batch. */
const stepsFor = (c: Case): number => 3 * c.split.length + 2;

describe('every policy', () => {
  test.each(POLICY_NAMES)('%s: shapes follow the rules, budgets hold, padding graph present', (name) => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const p = createPolicy(name, c.sizes, c.split, c.batch, c.seed);
        const { specs } = run(p, stepsFor(c));
        for (const s of specs) {
          const { n, e } = totals(c, s.graphIds);
          const g = s.graphIds.length;
          expect(g).toBeGreaterThan(0);
          if (name === 'exact') {
            expect(s.shape).toEqual({ nodes: n, edges: e, graphs: c.batch });
            expect(g).toBe(c.batch);
            continue;
          }
          // Jraph padding convention: a spare node and a spare graph.
          expect(n).toBeLessThanOrEqual(s.shape.nodes - 1);
          expect(e).toBeLessThanOrEqual(s.shape.edges);
          expect(g).toBeLessThanOrEqual(s.shape.graphs - 1);
          if (name === 'static-2pow') expect(s.shape).toEqual(staticPow2Shape(n, e, c.batch));
          if (name === 'static-64') expect(s.shape).toEqual(static64Shape(n, e, c.batch));
          if (name.startsWith('static')) expect(g).toBe(c.batch - 1);
          if (name === 'dynamic') expect(s.shape.graphs).toBe(c.batch);
        }
        if (p.fixedShape) expect(new Set(specs.map((s) => JSON.stringify(s.shape))).size).toBe(1);
        expect(p.summary().shapes).toBe(new Set(specs.map((s) => JSON.stringify(s.shape))).size);
      }),
      { numRuns: 60 },
    );
  });

  test.each(POLICY_NAMES)('%s: each graph exactly once per epoch', (name) => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const p = createPolicy(name, c.sizes, c.split, c.batch, c.seed);
        const { specs, epochs } = run(p, stepsFor(c));
        const want = sorted(c.split);
        if (name === 'packed') {
          // Packed batches never cross an epoch: group by epoch.
          const last = epochs[epochs.length - 1];
          expect(last).toBeGreaterThanOrEqual(1);
          for (let ep = 0; ep < last; ep++) {
            const ids: number[] = [];
            specs.forEach((s, i) => epochs[i] === ep && ids.push(...s.graphIds));
            expect(sorted(ids)).toEqual(want);
          }
          return;
        }
        // Stream policies: the concatenated batches are the endless stream.
        const all = specs.flatMap((s) => Array.from(s.graphIds));
        const L = c.split.length;
        expect(all.length).toBeGreaterThanOrEqual(2 * L);
        for (let ep = 0; (ep + 1) * L <= all.length; ep++) expect(sorted(all.slice(ep * L, (ep + 1) * L))).toEqual(want);
      }),
      { numRuns: 60 },
    );
  });

  test.each(POLICY_NAMES)('%s: deterministic for a seed; state save/restore continues identically', (name) => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 0, max: 50 }), (c, cut) => {
        const a = run(createPolicy(name, c.sizes, c.split, c.batch, c.seed), cut + 40).specs;
        const b = createPolicy(name, c.sizes, c.split, c.batch, c.seed);
        const bSpecs = run(b, cut).specs;
        const state = JSON.parse(JSON.stringify(b.getState())) as PolicyState;
        const restored = createPolicy(name, c.sizes, c.split, c.batch, c.seed + 1);
        restored.setState(state);
        const rest = run(restored, 40).specs;
        const cont = [...bSpecs, ...rest];
        expect(cont.map((s) => [Array.from(s.graphIds), s.shape])).toEqual(a.map((s) => [Array.from(s.graphIds), s.shape]));
        const sm = restored.summary();
        expect(sm.batches).toBe(cut + 40);
      }),
      { numRuns: 40 },
    );
  });
});

describe('static policies', () => {
  test('studyCompat drops every B-th graph of the stream', () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom('static-2pow', 'static-64', 'static-constant'), (c, name) => {
        const p = createPolicy(name, c.sizes, c.split, c.batch, c.seed, { studyCompat: true });
        const ref = new EpochStream(c.split, c.seed);
        for (let s = 0; s < 30; s++) {
          const want: number[] = [];
          for (let i = 0; i < c.batch; i++) want.push(ref.nextId());
          want.pop();
          expect(Array.from(p.next().graphIds)).toEqual(want);
        }
      }),
      { numRuns: 40 },
    );
  });

  test('static-constant pads to the next multiple of 64 above largest graph x B', () => {
    const sizes = { nodes: Int32Array.from([3, 29, 10]), edges: Int32Array.from([6, 812, 90]) };
    const p = createPolicy('static-constant', sizes, Int32Array.from([0, 1, 2]), 16, 1);
    expect(p.fixedShape).toEqual({ nodes: 512, edges: 13056, graphs: 16 });
    expect(staticConstantShape(29, 812, 16)).toEqual({ nodes: 512, edges: 13056, graphs: 16 });
  });
});

describe('dynamic', () => {
  test('greedy: the first graph of each batch did not fit into the previous one', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const p = createPolicy('dynamic', c.sizes, c.split, c.batch, c.seed);
        const shape = p.fixedShape!;
        const { specs } = run(p, stepsFor(c));
        for (let i = 0; i + 1 < specs.length; i++) {
          const { n, e } = totals(c, specs[i].graphIds);
          const first = specs[i + 1].graphIds[0];
          const fits =
            n + c.sizes.nodes[first] <= shape.nodes - 1 &&
            e + c.sizes.edges[first] <= shape.edges &&
            specs[i].graphIds.length + 1 <= shape.graphs - 1;
          expect(fits).toBe(false);
        }
      }),
      { numRuns: 60 },
    );
  });

  test.each(['dynamic', 'packed'])('%s: with fitLargest off (the study exactly), a graph larger than the budget is a GraphTooLargeError', (name) => {
    const nodes = new Int32Array(50).fill(5);
    const edges = new Int32Array(50).fill(20);
    nodes[40] = 500;
    edges[40] = 500 * 499;
    const split = Int32Array.from({ length: 50 }, (_, i) => i);
    const make = (): Policy => createPolicy(name, { nodes, edges }, split, 4, 0, { estimationGraphs: 10, fitLargest: false });
    expect(make).toThrow(GraphTooLargeError);
    // By default the budget holds the largest graph of the split.
    expect(() => createPolicy(name, { nodes, edges }, split, 4, 0, { estimationGraphs: 10 })).not.toThrow();
    expect(make).toThrow(/graph 40 \(500 nodes, 249500 edges\) is larger than the budget/);
    // The quantile estimator bounds by the largest graph of the whole split.
    expect(() => createPolicy(name, { nodes, edges }, split, 4, 0, { estimationGraphs: 10, estimator: 'quantile' })).not.toThrow();
  });
});

describe('errors', () => {
  test('bad inputs name the argument', () => {
    const sizes = { nodes: Int32Array.from([3, 4]), edges: Int32Array.from([6, 12]) };
    expect(() => createPolicy('nope', sizes, Int32Array.from([0]), 4, 0)).toThrow(/unknown batching policy 'nope'/);
    expect(() => createPolicy('dynamic', sizes, Int32Array.from([0, 2]), 4, 0)).toThrow(/split\[1\] = 2 is outside/);
    expect(() => createPolicy('static-64', sizes, Int32Array.from([0]), 1, 0)).toThrow(/batch size must be an integer >= 2/);
    expect(() => createPolicy('exact', sizes, new Int32Array(0), 4, 0)).toThrow(/split: is empty/);
    const p = createPolicy('dynamic', sizes, Int32Array.from([0, 1]), 4, 0);
    expect(() => p.setState({ ...p.getState(), policy: 'packed' })).toThrow(/written by policy 'packed'/);
  });
});
