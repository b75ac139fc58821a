import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { native } from '../../src/native';
import { CacheError } from '../../src/data/errors';
import { GNB_VERSION, loadStore, saveStore } from '../../src/data/cache';
import { parseGraphRule } from '../../src/data/graph-rule';
import { splitGraphs, targetStats } from '../../src/data/split';
import { distribution, storeStats } from '../../src/data/stats';
import { buildStore, buildStoreAsync, storeArraysFor, structuresFromStore, targetColumn } from '../../src/data/store';
import { loadSource } from '../../src/data/source';
import { aflowLike, qm9Like } from '../../src/data/synthetic';
import type { Structure } from '../../src/data/types';
import { registerDataCommands } from '../../src/cli/data';

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnb-store-'));
afterAll(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

function molecule(id: string, numbers: number[], positions: number[], targets: Record<string, number>): Structure {
  return { id, numbers: Uint8Array.from(numbers), positions: Float64Array.from(positions), cell: null, pbc: [false, false, false], targets };
}

describe('graph store', () => {
  const structures = [...qm9Like(200, 7)];

  test('buildStore: offsets, receiver-sorted edges, targets table; passes native validation', () => {
    const { store, edgeless } = buildStore(structures, { graph: parseGraphRule('fc'), source: 'qm9-like:200' });
    expect(edgeless).toBe(0);
    expect(store.numGraphs).toBe(200);
    let edges = 0;
    for (let g = 0; g < 200; g++) {
      const n = store.nodeOffset[g + 1] - store.nodeOffset[g];
      expect(store.edgeOffset[g + 1] - store.edgeOffset[g]).toBe(n * (n - 1));
      edges += n * (n - 1);
    }
    expect(store.senders.length).toBe(edges);
    expect(store.targetNames).toEqual(['U0', 'pair_energy']);
    expect(store.targets[2 * 5]).toBe(structures[5].targets.U0);
    expect(store.positions).toBeInstanceOf(Float32Array);
    expect(() => native().validateStore(storeArraysFor(store, 'U0'))).not.toThrow();
  });

  test('buildStoreAsync (native worker) gives the same store', async () => {
    const crystals = [...aflowLike(40, 9)];
    const a = buildStore(crystals, { graph: parseGraphRule('knn:12') }).store;
    const b = (await buildStoreAsync(crystals, { graph: parseGraphRule('knn:12') })).store;
    for (const k of ['edgeOffset', 'senders', 'receivers', 'distance', 'senderPerm'] as const) expect(Array.from(b[k])).toEqual(Array.from(a[k]));
    await expect(buildStoreAsync([molecule('bad', [1], [NaN, 0, 0], {})], { graph: parseGraphRule('fc') })).rejects.toThrow(/position is not finite/);
  });

  test('storeArraysFor standardises with the given stats and leaves the store untouched', () => {
    const { store } = buildStore(structures, { graph: parseGraphRule('cutoff:2') });
    const raw = targetColumn(store, 'U0');
    const a = storeArraysFor(store, 'U0', { mean: 10, std: 2 });
    expect(a.target[3]).toBeCloseTo((raw[3] - 10) / 2, 12);
    expect(a.senders).toBe(store.senders);
    expect(targetColumn(store, 'U0')[3]).toBe(raw[3]);
    expect(() => storeArraysFor(store, 'nope')).toThrow(/target 'nope' is not in the store; it has: U0, pair_energy/);
  });

  test('edgeless structures are counted and kept, or dropped on request', () => {
    const s = [
      molecule('a', [1, 1], [0, 0, 0, 0.7, 0, 0], { y: 1 }),
      molecule('lonely', [8], [0, 0, 0], { y: 2 }),
      molecule('far', [1, 1], [0, 0, 0, 9, 0, 0], { y: 3 }),
      molecule('b', [1, 8], [0, 0, 0, 1, 0, 0], { y: 4 }),
    ];
    const kept = buildStore(s, { graph: parseGraphRule('cutoff:2') });
    expect([kept.edgeless, kept.dropped, kept.store.numGraphs]).toEqual([2, 0, 4]);
    const dropped = buildStore(s, { graph: parseGraphRule('cutoff:2'), dropEdgeless: true });
    expect([dropped.edgeless, dropped.dropped, dropped.store.numGraphs]).toEqual([2, 2, 2]);
    expect(dropped.store.ids).toEqual(['a', 'b']);
    expect(Array.from(dropped.store.targets)).toEqual([1, 4]);
    expect(Array.from(dropped.store.atomicNumber)).toEqual([1, 1, 1, 8]);
    expect(() => native().validateStore(storeArraysFor(dropped.store, 'y'))).not.toThrow();
  });

  test('structuresFromStore gives back ids, atoms, targets and cells', () => {
    const crystals = [...aflowLike(3, 1)];
    const { store } = buildStore(crystals, { graph: parseGraphRule('knn:12') });
    const back = [...structuresFromStore(store)];
    expect(back.map((s) => s.id)).toEqual(crystals.map((s) => s.id));
    expect(Array.from(back[1].cell ?? [])).toEqual(Array.from(crystals[1].cell ?? []));
    expect(back[2].positions[0]).toBeCloseTo(crystals[2].positions[0], 4);
  });
});

describe('split and standardisation', () => {
  test('seeded 80/10/10, disjoint, covering, reproducible; configurable ratios', () => {
    const a = splitGraphs(1001, { seed: 42 });
    const b = splitGraphs(1001, { seed: 42 });
    expect([a.train.length, a.val.length, a.test.length]).toEqual([801, 100, 100]);
    expect(a).toEqual(b);
    const all = new Set([...a.train, ...a.val, ...a.test]);
    expect(all.size).toBe(1001);
    expect(splitGraphs(1001, { seed: 1 }).train).not.toEqual(a.train);
    const c = splitGraphs(100, { ratios: [0.5, 0.25, 0.25] });
    expect([c.train.length, c.val.length, c.test.length]).toEqual([50, 25, 25]);
    expect(() => splitGraphs(10, { ratios: [-1, 1, 1] })).toThrow(RangeError);
  });

  test('target stats come from the train split only', () => {
    const y = Float64Array.from([1, 2, 3, 1000, 2000]);
    const s = targetStats(y, Int32Array.from([0, 1, 2]));
    expect(s.mean).toBeCloseTo(2, 12);
    expect(s.std).toBeCloseTo(Math.sqrt(2 / 3), 12);
  });
});

describe('.gnb cache', () => {
  const { store } = buildStore([...aflowLike(30, 3)], { graph: parseGraphRule('knn:12'), source: 'aflow-like:30' });
  const file = path.join(tmpDir, 'a.gnb');

  test('round trip: every array, name and id', () => {
    saveStore(store, file);
    expect(fs.readdirSync(tmpDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const back = loadStore(file);
    for (const k of ['nodeOffset', 'edgeOffset', 'atomicNumber', 'positions', 'senders', 'receivers', 'distance', 'senderPerm', 'targets', 'cells', 'pbc'] as const)
      expect(Array.from(back[k] ?? [])).toEqual(Array.from(store[k] ?? []));
    expect([back.numGraphs, back.ids, back.targetNames, back.graphRule, back.source]).toEqual([store.numGraphs, store.ids, store.targetNames, store.graphRule, store.source]);
  });

  function expectCacheError(f: string, code: string, re: RegExp) {
    try {
      loadStore(f);
    } catch (e) {
      expect(e).toBeInstanceOf(CacheError);
      expect((e as CacheError).code).toBe(code);
      expect((e as Error).message).toMatch(re);
      return;
    }
    throw new Error('expected a CacheError');
  }

  test('truncated, corrupt, other version, not a cache: clear errors', () => {
    saveStore(store, file);
    const bytes = fs.readFileSync(file);
    const t = path.join(tmpDir, 't.gnb');
    fs.writeFileSync(t, bytes.subarray(0, bytes.length - 100));
    expectCacheError(t, 'ERR_GNN_CACHE_TRUNCATED', /truncated/);
    fs.writeFileSync(t, bytes.subarray(0, 30));
    expectCacheError(t, 'ERR_GNN_CACHE_TRUNCATED', /truncated inside the header/);
    const corrupt = Buffer.from(bytes);
    corrupt[Math.floor(corrupt.length / 2)] ^= 0xff; // inside the edge arrays
    fs.writeFileSync(t, corrupt);
    expectCacheError(t, 'ERR_GNN_CACHE_CORRUPT', /checksum mismatch in array/);
    const hdr = Buffer.from(bytes);
    hdr[20] = 0x7b; // '{' inside the JSON header
    fs.writeFileSync(t, hdr);
    expectCacheError(t, 'ERR_GNN_CACHE_CORRUPT', /corrupt header/);
    const v = Buffer.from(bytes);
    v.writeUInt32LE(GNB_VERSION + 1, 8);
    fs.writeFileSync(t, v);
    expectCacheError(t, 'ERR_GNN_CACHE_VERSION', new RegExp(`version ${GNB_VERSION + 1}`));
    fs.writeFileSync(t, 'hello world, not a cache');
    expectCacheError(t, 'ERR_GNN_CACHE_MAGIC', /bad magic/);
  });

  test('loadSource accepts a .gnb and checks the rule and target', async () => {
    saveStore(store, file);
    const loaded = await loadSource(file, { target: 'Egap' });
    expect(loaded.fromCache).toBe(true);
    await expect(loadSource(file, { graph: 'fc' })).rejects.toThrow(/built with graph rule 'knn:12'/);
    await expect(loadSource(file, { target: 'U0' })).rejects.toThrow(/missing target/);
  });
});

describe('stats', () => {
  test('distribution: mean, std, percentiles, histogram of integers', () => {
    const d = distribution([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect([d.count, d.mean, d.min, d.max, d.percentiles.p50, d.percentiles.p95]).toEqual([10, 5.5, 1, 10, 5, 10]);
    expect(d.std).toBeCloseTo(Math.sqrt(8.25), 12);
    expect(d.histogram.counts.reduce((a, b) => a + b, 0)).toBe(10);
  });

  test('storeStats totals and element counts', () => {
    const { store } = buildStore([...qm9Like(50, 2)], { graph: parseGraphRule('fc') });
    const s = storeStats(store);
    expect(s.graphs).toBe(50);
    expect(s.atoms).toBe(store.atomicNumber.length);
    expect(s.edges).toBe(store.senders.length);
    expect(Object.values(s.elements).reduce((a, b) => a + b, 0)).toBe(s.atoms);
    expect(s.atomsPerGraph.mean * 50).toBeCloseTo(s.atoms, 6);
    expect(s.targets.U0.count).toBe(50);
  });
});

describe('synthetic generators', () => {
  test('qm9-like: deterministic by seed, QM9 size range and composition', () => {
    const a = [...qm9Like(3000, 42)];
    const b = [...qm9Like(50, 42)];
    expect(b.map((s) => Array.from(s.positions))).toEqual(a.slice(0, 50).map((s) => Array.from(s.positions)));
    const sizes = a.map((s) => s.numbers.length);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(3);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(29);
    const mean = sizes.reduce((x, y) => x + y, 0) / sizes.length;
    expect(mean).toBeGreaterThan(16.5);
    expect(mean).toBeLessThan(19.5);
    for (const s of a) {
      const heavy = Array.from(s.numbers).filter((z) => z !== 1);
      expect(heavy.length).toBeLessThanOrEqual(9);
      expect(heavy.every((z) => [6, 7, 8, 9].includes(z))).toBe(true);
    }
    // Realistic spacing: no two atoms closer than 0.85 Å in the first 300 molecules.
    let closest = Infinity;
    for (const s of a.slice(0, 300))
      for (let i = 0; i < s.numbers.length; i++)
        for (let j = i + 1; j < s.numbers.length; j++)
          closest = Math.min(closest, Math.hypot(s.positions[i * 3] - s.positions[j * 3], s.positions[i * 3 + 1] - s.positions[j * 3 + 1], s.positions[i * 3 + 2] - s.positions[j * 3 + 2]));
    expect(closest).toBeGreaterThan(0.85);
  });

  test('aflow-like: periodic, 1 to 60+ atoms, finite targets', () => {
    const a = [...aflowLike(2000, 42)];
    const sizes = a.map((s) => s.numbers.length);
    expect(Math.min(...sizes)).toBe(1);
    expect(Math.max(...sizes)).toBeGreaterThan(60);
    expect(a.every((s) => s.pbc.every((p) => p) && s.cell !== null)).toBe(true);
    expect(a.some((s) => s.cell && (s.cell[3] !== 0 || s.cell[6] !== 0))).toBe(true);
    expect(a.every((s) => Number.isFinite(s.targets.enthalpy_formation_atom))).toBe(true);
  });
});

describe('CLI: data build / stats / export', () => {
  async function run(args: string[]): Promise<string> {
    const program = new Command().exitOverride();
    registerDataCommands(program);
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((chunk: string | Uint8Array) => { out += chunk.toString(); return true; }) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await program.parseAsync(['node', 'gnnbatch', ...args]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
    return out;
  }

  test('stats --json has graphs, atoms, edges totals beside the distributions', async () => {
    const doc = JSON.parse(await run(['data', 'stats', 'qm9-like:40', '--graph', 'fc', '--json'])) as Record<string, unknown>;
    expect(doc.graphs).toBe(40);
    expect(typeof doc.atoms).toBe('number');
    expect(typeof doc.edges).toBe('number');
    expect(doc).toHaveProperty('edgesPerGraph.histogram');
  });

  test('build writes a cache that stats and export read back', async () => {
    const out = path.join(tmpDir, 'cli.gnb');
    expect(await run(['data', 'build', 'aflow-like:20', '-o', out, '--graph', 'knn:12', '--target', 'enthalpy_formation_atom'])).toMatch(/wrote .*20 graphs/);
    const text = await run(['data', 'stats', out]);
    expect(text).toMatch(/graphs 20, atoms \d+, edges \d+/);
    const x = path.join(tmpDir, 'cli.extxyz');
    expect(await run(['data', 'export', out, '-o', x])).toMatch(/wrote 20 frames/);
    const again = JSON.parse(await run(['data', 'stats', x, '--graph', 'knn:12', '--json'])) as { edges: number };
    expect(again.edges).toBe(20 * 0 + JSON.parse(await run(['data', 'stats', out, '--json'])).edges);
  });
});
