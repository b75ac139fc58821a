/**
 * The configurable size ceilings of the data layer (issue 14, finding 5):
 * checked from atom counts before the native builder allocates (fc, knn), on
 * the built graphs for cutoff rules, and on archive members while streaming.
 */
import * as path from 'path';
import { buildStore, loadSource, parseGraphRule, qm9Like } from '../../src/data';
import { checkEdgeCeilings, resolveLimits } from '../../src/data/limits';
import { GnnError } from '../../src/errors';

const molecules = [...qm9Like(20, 4)];
const largest = molecules.reduce((b, s, i) => (s.numbers.length > molecules[b].numbers.length ? i : b), 0);
const nMax = molecules[largest].numbers.length;

test('fc: the per-graph ceiling names the structure, its atoms, the edges and the option, before allocating', () => {
  let err: unknown;
  try {
    buildStore(molecules, { graph: parseGraphRule('fc'), source: 'mols.extxyz', maxEdgesPerGraph: nMax * (nMax - 1) - 1 });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GnnError);
  expect(err).toMatchObject({ name: 'DataLimitError', code: 'ERR_GNN_EDGE_LIMIT', location: { file: 'mols.extxyz', entry: largest } });
  expect((err as Error).message).toContain(`structure ${largest} ('${molecules[largest].id}'): ${nMax} atoms under 'fc' give ${(nMax * (nMax - 1)).toLocaleString('en-US')} edges`);
  expect((err as Error).message).toMatch(/maxEdgesPerGraph or GNNBATCH_MAX_EDGES_PER_GRAPH/);
  // Exactly at the ceiling is fine.
  expect(buildStore(molecules, { graph: parseGraphRule('fc'), maxEdgesPerGraph: nMax * (nMax - 1) }).store.numGraphs).toBe(20);
});

test('knn and the total ceiling; cutoff is checked on the built graphs', () => {
  expect(() => checkEdgeCeilings(molecules, parseGraphRule('knn:4'), { maxTotalEdges: 100 })).toThrow(/together have .* more than the ceiling of 100/);
  const cut = buildStore(molecules, { graph: parseGraphRule('cutoff:3') }).store;
  const most = Math.max(...Array.from({ length: 20 }, (_, g) => cut.edgeOffset[g + 1] - cut.edgeOffset[g]));
  expect(() => buildStore(molecules, { graph: parseGraphRule('cutoff:3'), maxEdgesPerGraph: most - 1 })).toThrow(expect.objectContaining({ code: 'ERR_GNN_EDGE_LIMIT' }));
});

test('ceilings come from options, else the environment, else the defaults', () => {
  expect(resolveLimits()).toEqual({ maxEdgesPerGraph: 2_000_000, maxTotalEdges: 400_000_000, maxMemberBytes: 16 * 1024 * 1024 });
  process.env.GNNBATCH_MAX_EDGES_PER_GRAPH = '10';
  try {
    expect(resolveLimits().maxEdgesPerGraph).toBe(10);
    expect(resolveLimits({ maxEdgesPerGraph: 20 }).maxEdgesPerGraph).toBe(20);
    expect(() => buildStore(molecules, { graph: parseGraphRule('fc') })).toThrow(expect.objectContaining({ code: 'ERR_GNN_EDGE_LIMIT' }));
  } finally {
    delete process.env.GNNBATCH_MAX_EDGES_PER_GRAPH;
  }
});

test('an archive member larger than maxMemberBytes fails while streaming; the real QM9 archive still loads', async () => {
  const mini = path.resolve(__dirname, '../fixtures/qm9/qm9-mini.tar.bz2');
  expect((await loadSource(mini)).store.numGraphs).toBeGreaterThan(0);
  await expect(loadSource(mini, { maxMemberBytes: 100 })).rejects.toMatchObject({ code: 'ERR_GNN_DATA_TOO_LARGE', message: expect.stringMatching(/qm9-mini\.tar\.bz2:.*larger than the ceiling of 100 bytes/) });
});
