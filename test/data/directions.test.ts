/**
 * Edge direction vectors (PaiNN): u_k = (x_sender + image shift - x_receiver) / d_k
 * from graph construction, through the store, the .gnb cache and loadSource.
 * The oracle is plain TypeScript float64.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../../src/native';
import type { NativeGraphRule, NativeNeighbours } from '../../src/native';
import { buildStore, buildStoreAsync, structureBatch, withDirections } from '../../src/data/store';
import { loadStore, saveStore } from '../../src/data/cache';
import { loadSource } from '../../src/data/source';
import { mulberry32 } from '../../src/data/split';
import type { GraphStore, Structure } from '../../src/data/types';
import { bruteMinImage } from './reference';
import { codeOf } from '../helpers/codes';

function structure(numbers: number[], positions: number[], cell: number[] | null, pbc: [boolean, boolean, boolean]): Structure {
  return { id: 'x', numbers: Uint8Array.from(numbers), positions: Float64Array.from(positions), cell: cell ? Float64Array.from(cell) : null, pbc, targets: { y: 1 } };
}

function randomMolecule(seed: number, n: number, spread = 4): Structure {
  const r = mulberry32(seed);
  return structure(Array.from({ length: n }, (_, i) => 1 + (i % 8)), Array.from({ length: 3 * n }, () => r() * spread - spread / 2), null, [false, false, false]);
}

/** A periodic structure with a skewed cell and fractional coordinates in [-0.5, 1.5) (wrapping exercised). */
function randomCrystal(seed: number, n: number, pbc: [boolean, boolean, boolean] = [true, true, true]): Structure {
  const r = mulberry32(seed);
  const cell = [4 + r(), 0, 0, 0.7 * r(), 4.5 + r(), 0, 0.3 * r(), -0.4 * r(), 5 + r()];
  const pos: number[] = [];
  for (let i = 0; i < n; i++) {
    const f = [r() * 2 - 0.5, r() * 2 - 0.5, r() * 2 - 0.5];
    for (let a = 0; a < 3; a++) pos.push(f[0] * cell[a] + f[1] * cell[3 + a] + f[2] * cell[6 + a]);
  }
  return structure(Array.from({ length: n }, (_, i) => 1 + (i % 8)), pos, cell, pbc);
}

function build(structures: Structure[], rule: NativeGraphRule, directions = true): NativeNeighbours {
  return native().buildNeighbours(structureBatch(structures), rule, { directions });
}

/** Inverse of a 3x3 row-major matrix. */
function inverse3(m: ArrayLike<number>): number[] {
  const det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
  return [
    (m[4] * m[8] - m[5] * m[7]) / det, (m[2] * m[7] - m[1] * m[8]) / det, (m[1] * m[5] - m[2] * m[4]) / det,
    (m[5] * m[6] - m[3] * m[8]) / det, (m[0] * m[8] - m[2] * m[6]) / det, (m[2] * m[3] - m[0] * m[5]) / det,
    (m[3] * m[7] - m[4] * m[6]) / det, (m[1] * m[6] - m[0] * m[7]) / det, (m[0] * m[4] - m[1] * m[3]) / det,
  ];
}

/** A rotation matrix (row-major) from a random unit quaternion. */
function randomRotation(seed: number): number[] {
  const r = mulberry32(seed);
  let q = [r() - 0.5, r() - 0.5, r() - 0.5, r() - 0.5];
  const n = Math.hypot(...q);
  q = q.map((x) => x / n);
  const [w, x, y, z] = q;
  return [
    1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
    2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
    2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
  ];
}
const rotate = (R: number[], v: ArrayLike<number>, o = 0): number[] => [0, 1, 2].map((a) => R[3 * a] * v[o] + R[3 * a + 1] * v[o + 1] + R[3 * a + 2] * v[o + 2]);

function rotated(s: Structure, R: number[]): Structure {
  const p = new Float64Array(s.positions.length);
  for (let i = 0; i < p.length; i += 3) p.set(rotate(R, s.positions, i), i);
  let cell: Float64Array | null = null;
  if (s.cell) {
    cell = new Float64Array(9);
    for (let v = 0; v < 3; v++) cell.set(rotate(R, s.cell, 3 * v), 3 * v);
  }
  return { ...s, positions: p, cell };
}

/** Float32 rounding of a component of magnitude <= 1, plus the float32 distance's rounding when multiplied back. */
const F32 = 2 ** -23;

describe('edge directions from graph construction', () => {
  const molecules = [randomMolecule(1, 9), randomMolecule(2, 1), randomMolecule(3, 14, 7), randomMolecule(4, 2)];

  it.each<[string, NativeGraphRule]>([
    ['fc', { kind: 'fc' }],
    ['cutoff:2.5', { kind: 'cutoff', cutoff: 2.5 }],
    ['knn:4', { kind: 'knn', k: 4 }],
  ])('molecules, %s: u = (x_sender - x_receiver) / d in float64, rounded to float32; the other outputs bitwise unchanged', (_, rule) => {
    const nb = build(molecules, rule);
    const plain = build(molecules, rule, false);
    expect(plain.direction).toBeUndefined();
    for (const k of ['edgeOffset', 'senders', 'receivers', 'senderPerm'] as const) expect(Array.from(nb[k])).toEqual(Array.from(plain[k]));
    expect(Buffer.from(nb.distance.buffer, nb.distance.byteOffset, nb.distance.byteLength).equals(Buffer.from(plain.distance.buffer, plain.distance.byteOffset, plain.distance.byteLength))).toBe(true);
    const u = nb.direction as Float32Array;
    expect(Object.prototype.toString.call(u)).toBe('[object Float32Array]'); // addon arrays come from another realm than jest's
    expect(u.length).toBe(3 * nb.senders.length);
    expect(nb.senders.length).toBeGreaterThan(10);
    let worst = 0;
    molecules.forEach((m, g) => {
      for (let e = nb.edgeOffset[g]; e < nb.edgeOffset[g + 1]; e++) {
        const i = nb.receivers[e], j = nb.senders[e];
        const d = [0, 1, 2].map((a) => m.positions[3 * j + a] - m.positions[3 * i + a]);
        const n = Math.hypot(d[0], d[1], d[2]);
        for (let a = 0; a < 3; a++) worst = Math.max(worst, Math.abs(u[3 * e + a] - d[a] / n));
        expect(Math.abs(nb.distance[e] - n)).toBeLessThan(1e-6 * Math.max(1, n));
      }
    });
    expect(worst).toBeLessThanOrEqual(F32);
  });

  it.each<[string, NativeGraphRule, [boolean, boolean, boolean]]>([
    ['fc, 3D periodic', { kind: 'fc' }, [true, true, true]],
    ['fc, a slab (x, y periodic)', { kind: 'fc' }, [true, true, false]],
    ['cutoff:6, 3D periodic', { kind: 'cutoff', cutoff: 6 }, [true, true, true]],
    ['knn:8, 3D periodic', { kind: 'knn', k: 8 }, [true, true, true]],
  ])('crystals, %s: d u = x_sender + T - x_receiver for a lattice vector T, |u| = 1 (fc: the minimum image)', (_, rule, pbc) => {
    const crystals = [randomCrystal(11, 5, pbc), randomCrystal(12, 3, pbc), randomCrystal(13, 1, pbc)];
    const nb = build(crystals, rule);
    const u = nb.direction as Float32Array;
    let images = 0;
    crystals.forEach((c, g) => {
      const cell = c.cell as Float64Array;
      const inv = inverse3(cell);
      for (let e = nb.edgeOffset[g]; e < nb.edgeOffset[g + 1]; e++) {
        const i = nb.receivers[e], j = nb.senders[e], d = nb.distance[e];
        expect(Math.abs(Math.hypot(u[3 * e], u[3 * e + 1], u[3 * e + 2]) - 1)).toBeLessThan(4 * F32);
        // The image shift T = d u - (x_j - x_i), in lattice coordinates: integers, 0 on non-periodic axes.
        const t = [0, 1, 2].map((a) => d * u[3 * e + a] - (c.positions[3 * j + a] - c.positions[3 * i + a]));
        const f = [0, 1, 2].map((a) => t[0] * inv[a] + t[1] * inv[3 + a] + t[2] * inv[6 + a]);
        const n = f.map(Math.round);
        for (let a = 0; a < 3; a++) {
          expect(Math.abs(f[a] - n[a])).toBeLessThan(1e-4);
          if (!pbc[a]) expect(n[a] === 0).toBe(true);
        }
        if (n.some((x) => x !== 0)) images++;
        // The exact displacement of that image, in float64: u is its unit vector, d its length.
        const exact = [0, 1, 2].map((a) => c.positions[3 * j + a] + n[0] * cell[a] + n[1] * cell[3 + a] + n[2] * cell[6 + a] - c.positions[3 * i + a]);
        const len = Math.hypot(exact[0], exact[1], exact[2]);
        expect(Math.abs(len - d)).toBeLessThan(1e-5 * Math.max(1, d));
        for (let a = 0; a < 3; a++) expect(Math.abs(u[3 * e + a] - exact[a] / len)).toBeLessThan(1e-6);
        if (rule.kind === 'fc') expect(Math.abs(len - bruteMinImage(c, i, j))).toBeLessThan(1e-9 * Math.max(1, len));
      }
    });
    expect(images).toBeGreaterThan(0); // some edges do cross the cell
  });

  it('an edge of length 0 (coincident atoms) has the zero vector', () => {
    const m = structure([1, 1, 8], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.5, 0.5, 0.5], null, [false, false, false]);
    for (const rule of [{ kind: 'fc' }, { kind: 'cutoff', cutoff: 2 }, { kind: 'knn', k: 2 }] as NativeGraphRule[]) {
      const nb = build([m], rule);
      const u = nb.direction as Float32Array;
      let zeros = 0;
      for (let e = 0; e < nb.senders.length; e++) {
        if (nb.distance[e] === 0) {
          zeros++;
          expect([u[3 * e], u[3 * e + 1], u[3 * e + 2]]).toEqual([0, 0, 0]);
        } else expect(Math.abs(Math.hypot(u[3 * e], u[3 * e + 1], u[3 * e + 2]) - 1)).toBeLessThan(4 * F32);
      }
      expect(zeros).toBe(2); // 0 -> 1 and 1 -> 0
    }
  });

  it('rotating the input rotates the directions (molecules under every rule, a crystal under fc)', () => {
    const R = randomRotation(7);
    const cases: [Structure[], NativeGraphRule][] = [
      [molecules, { kind: 'fc' }],
      [molecules, { kind: 'cutoff', cutoff: 2.5 }],
      [molecules, { kind: 'knn', k: 4 }],
      [[randomCrystal(21, 6), randomCrystal(22, 4)], { kind: 'fc' }],
    ];
    for (const [ss, rule] of cases) {
      const a = build(ss, rule);
      const b = build(ss.map((s) => rotated(s, R)), rule);
      expect(Array.from(b.senders)).toEqual(Array.from(a.senders));
      expect(Array.from(b.receivers)).toEqual(Array.from(a.receivers));
      const ua = a.direction as Float32Array, ub = b.direction as Float32Array;
      let worst = 0;
      for (let e = 0; e < a.senders.length; e++) {
        const ru = rotate(R, ua, 3 * e);
        for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(ub[3 * e + c] - ru[c]));
      }
      expect(worst).toBeLessThan(2e-6);
    }
  });

  it('buildNeighboursAsync returns the same directions; a non-boolean option is a coded TypeError', async () => {
    const batch = structureBatch(molecules);
    const sync = native().buildNeighbours(batch, { kind: 'cutoff', cutoff: 3 }, { directions: true });
    const async = await native().buildNeighboursAsync(batch, { kind: 'cutoff', cutoff: 3 }, { directions: true });
    expect(Array.from(async.direction as Float32Array)).toEqual(Array.from(sync.direction as Float32Array));
    expect((await native().buildNeighboursAsync(batch, { kind: 'fc' })).direction).toBeUndefined();
    expect(native().buildNeighbours(batch, { kind: 'fc' }, {}).direction).toBeUndefined();
    expect(codeOf(() => native().buildNeighbours(batch, { kind: 'fc' }, { directions: 1 as never }))).toBe('ERR_GNN_TYPE');
    expect(codeOf(() => native().buildNeighbours(batch, { kind: 'fc' }, 3 as never))).toBe('ERR_GNN_TYPE');
  });
});

describe('stores with directions', () => {
  const structures = [randomMolecule(31, 5), randomCrystal(32, 4), randomMolecule(33, 7)];

  it('buildStore({directions}) stores the native directions; without the option there are none and nothing else changes', async () => {
    const rule: NativeGraphRule = { kind: 'cutoff', cutoff: 3.5 };
    const withD = buildStore(structures, { graph: rule, directions: true }).store;
    const without = buildStore(structures, { graph: rule }).store;
    expect(without.directions).toBeUndefined();
    expect('directions' in without).toBe(false);
    const nb = build(structures, rule);
    expect(Array.from(withD.directions as Float32Array)).toEqual(Array.from(nb.direction as Float32Array));
    const { directions: _d, ...rest } = withD;
    expect(rest).toEqual(without);
    const asyncStore = (await buildStoreAsync(structures, { graph: rule, directions: true })).store;
    expect(Array.from(asyncStore.directions as Float32Array)).toEqual(Array.from(withD.directions as Float32Array));
  });

  it('dropEdgeless keeps each kept graph with its own directions', () => {
    const lone = (id: string): Structure => ({ ...structure([6], [0, 0, 0], null, [false, false, false]), id });
    const ss = [lone('a'), structures[0], lone('b'), lone('c'), structures[2], lone('d')];
    const dropped = buildStore(ss, { graph: { kind: 'fc' }, dropEdgeless: true, directions: true });
    expect(dropped.dropped).toBe(4);
    const ref = buildStore([structures[0], structures[2]], { graph: { kind: 'fc' }, directions: true }).store;
    expect(Array.from(dropped.store.directions as Float32Array)).toEqual(Array.from(ref.directions as Float32Array));
    expect(Array.from(dropped.store.senders)).toEqual(Array.from(ref.senders));
  });
});

describe('the .gnb cache and loadSource with directions', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-dirs-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const storeOf = (directions: boolean): GraphStore =>
    buildStore([randomMolecule(41, 6), randomCrystal(42, 3), randomMolecule(43, 4)], { graph: { kind: 'cutoff', cutoff: 4 }, directions, source: 'test' }).store;

  it('round trip: directions written and read back bitwise; a store without them loads without them', () => {
    const s = storeOf(true);
    const f = path.join(dir, 'with.gnb');
    saveStore(s, f);
    const back = loadStore(f);
    expect(Object.prototype.toString.call(back.directions)).toBe('[object Float32Array]');
    expect(Array.from(back.directions as Float32Array)).toEqual(Array.from(s.directions as Float32Array));
    expect(Array.from(back.distance)).toEqual(Array.from(s.distance));
    const g = path.join(dir, 'without.gnb');
    saveStore(storeOf(false), g);
    expect(loadStore(g).directions).toBeUndefined();
    expect(fs.statSync(f).size - fs.statSync(g).size).toBeGreaterThanOrEqual(12 * s.senders.length);
  });

  it('a cache without directions does not satisfy a request for them: loadSource recomputes and checks them', async () => {
    const f = path.join(dir, 'plain.gnb');
    const ref = storeOf(true);
    saveStore(storeOf(false), f);
    const plain = await loadSource(f);
    expect(plain.store.directions).toBeUndefined();
    const got = await loadSource(f, { directions: true });
    const u = got.store.directions as Float32Array, want = ref.directions as Float32Array;
    expect(u.length).toBe(want.length);
    let worst = 0;
    for (let k = 0; k < u.length; k++) worst = Math.max(worst, Math.abs(u[k] - want[k]));
    expect(worst).toBeLessThan(1e-5); // from float32 positions
    expect(worst).toBeGreaterThan(0);
    expect(Array.from(got.store.senders)).toEqual(Array.from(ref.senders));
    // A cache that has them gives its own, bitwise.
    const g = path.join(dir, 'dirs.gnb');
    saveStore(ref, g);
    expect(Array.from((await loadSource(g, { directions: true })).store.directions as Float32Array)).toEqual(Array.from(want));
  });

  it('withDirections refuses (ERR_GNN_DATA_DIRECTIONS) when the rebuilt edges are not the stored ones', async () => {
    const s = storeOf(false);
    const bad: GraphStore = { ...s, distance: Float32Array.from(s.distance) };
    bad.distance[3] += 0.5;
    await expect(withDirections(bad, 'tampered.gnb')).rejects.toMatchObject({ code: 'ERR_GNN_DATA_DIRECTIONS', message: expect.stringMatching(/tampered\.gnb.*edge 3 differs/) });
    const fewer: GraphStore = { ...s, graphRule: 'cutoff:3' };
    await expect(withDirections(fewer)).rejects.toMatchObject({ code: 'ERR_GNN_DATA_DIRECTIONS' });
    const same = storeOf(true);
    expect(await withDirections(same)).toBe(same);
  });

  it('generated sources get directions from loadSource (molecules fc, crystals knn:12)', async () => {
    const q = await loadSource('qm9-like:40', { directions: true });
    expect(q.store.directions?.length).toBe(3 * q.store.senders.length);
    const a = await loadSource('aflow-like:12', { directions: true });
    expect(a.store.directions?.length).toBe(3 * a.store.senders.length);
    expect((await loadSource('qm9-like:5')).store.directions).toBeUndefined();
    // The cache of a crystal store without directions gets them back (the knn edges survive float32 positions).
    // Where images of one sender tie in distance (an atom's own images at +T and -T) the rebuild may give an
    // edge the other image's direction: still the direction of an image at exactly that edge's distance.
    const f = path.join(dir, 'aflow.gnb');
    const { directions: _d, ...plain } = a.store;
    saveStore(plain as GraphStore, f);
    const back = (await loadSource(f, { directions: true })).store;
    const u = back.directions as Float32Array, want = a.store.directions as Float32Array;
    let same = 0;
    for (let e = 0; e < back.senders.length; e++) if ([0, 1, 2].every((c) => Math.abs(u[3 * e + c] - want[3 * e + c]) < 1e-5)) same++;
    expect(same).toBeGreaterThan(0.9 * back.senders.length);
    for (let g = 0; g < back.numGraphs; g++) {
      const cell = (back.cells as Float64Array).subarray(9 * g, 9 * g + 9), inv = inverse3(cell), p = back.positions, a0 = back.nodeOffset[g];
      for (let e = back.edgeOffset[g]; e < back.edgeOffset[g + 1]; e++) {
        const i = a0 + back.receivers[e], j = a0 + back.senders[e], d = back.distance[e];
        const t = [0, 1, 2].map((c) => d * u[3 * e + c] - (p[3 * j + c] - p[3 * i + c]));
        const n = [0, 1, 2].map((c) => Math.round(t[0] * inv[c] + t[1] * inv[3 + c] + t[2] * inv[6 + c]));
        const exact = [0, 1, 2].map((c) => p[3 * j + c] + n[0] * cell[c] + n[1] * cell[3 + c] + n[2] * cell[6 + c] - p[3 * i + c]);
        expect(Math.abs(Math.hypot(exact[0], exact[1], exact[2]) - d)).toBeLessThan(1e-5 * Math.max(1, d));
      }
    }
  });

  it.each<[string, (u: Float32Array) => Float32Array]>([
    ['a NaN', (u) => { u[4] = NaN; return u; }],
    ['a vector of norm 2', (u) => { u[0] *= 2; u[1] *= 2; u[2] *= 2; return u; }],
    ['an infinite component', (u) => { u[7] = Infinity; return u; }],
    ['the wrong length', (u) => u.subarray(0, u.length - 3)],
  ])('corrupt directions (%s) are ERR_GNN_CACHE_CORRUPT', (_, spoil) => {
    const s = storeOf(true);
    const f = path.join(dir, 'corrupt.gnb');
    saveStore({ ...s, directions: spoil(Float32Array.from(s.directions as Float32Array)) }, f);
    expect(codeOf(() => loadStore(f))).toBe('ERR_GNN_CACHE_CORRUPT');
  });
});
