/**
 * Forces and stress on the data side (issue 22 item 4): extended XYZ and ASE
 * .db readers, located errors for malformed force and stress fields, the
 * store's columns, the .gnb round trip (version 2) and the read of a
 * version 1 file.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GNB_VERSION, loadStore, saveStore } from '../../src/data/cache';
import { parseGraphRule } from '../../src/data/graph-rule';
import { buildStore, structuresFromStore } from '../../src/data/store';
import { formatExtxyzFrame, parseExtxyzText, readExtxyz } from '../../src/data/formats/extxyz';
import { readAseDb } from '../../src/data/formats/ase-db';
import type { Structure } from '../../src/data/types';

const FIX = path.join(__dirname, '..', 'fixtures', 'forces');
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnb-forces-'));
afterAll(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function expectClose(a: ArrayLike<number> | undefined, b: number[], tol = 1e-12): void {
  expect(a).toBeDefined();
  expect(a?.length).toBe(b.length);
  b.forEach((x, i) => expect(Math.abs((a as ArrayLike<number>)[i] - x)).toBeLessThanOrEqual(tol));
}

function errorOf(f: () => unknown): { code?: string; message: string } {
  try {
    f();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected an error');
}

describe('extended XYZ with forces, stress, virial and energy', () => {
  test('reads the file ASE wrote (forces column, 3x3 stress in the comment, per-frame energy)', async () => {
    const [mol, si] = await all(readExtxyz(path.join(FIX, 'ase-forces.extxyz')));
    expect(mol.targets.energy).toBe(-14.25);
    expectClose(mol.forces, [0.1, -0.2, 0.3, -0.05, 0.15, -0.25, -0.05, 0.05, -0.05]);
    expect(mol.stress).toBeUndefined();
    expect(si.targets.energy).toBe(-10.8);
    expectClose(si.forces, [0.01, 0.02, 0.03, -0.01, -0.02, -0.03]);
    // ASE stores [xx yy zz yz xz xy] = [0.011 0.012 0.013 0.004 0.005 0.006] (the .db fixture's).
    expectClose(si.stress, [0.011, 0.012, 0.013, 0.004, 0.005, 0.006]);
    expect(si.info?.stress).toBeUndefined();
  });

  const head = 'Lattice="2 0 0 0 3 0 0 0 4" pbc="T T T" energy=-1.5';
  const atoms = 'H 0 0 0 0.5 0.25 -1\nH 1 0 0 -0.5 -0.25 1\n';

  test('6-number (Voigt) stress and virial -> stress = -virial / V', () => {
    const [a] = parseExtxyzText(`2\n${head} stress="1 2 3 4 5 6" Properties=species:S:1:pos:R:3:forces:R:3\n${atoms}`);
    expectClose(a.stress, [1, 2, 3, 4, 5, 6]);
    const [b] = parseExtxyzText(`2\n${head} virial="24 1 2 1 48 3 2 3 72" Properties=species:S:1:pos:R:3:forces:R:3\n${atoms}`);
    // V = 24: xx yy zz yz xz xy = -(24, 48, 72, 3, 2, 1) / 24
    expectClose(b.stress, [-1, -2, -3, -3 / 24, -2 / 24, -1 / 24]);
    expect(b.info?.virial).toBeUndefined();
    expect(b.targets.energy).toBe(-1.5);
  });

  test('written frames read back with the same forces and stress', () => {
    const s: Structure = {
      id: 'x', numbers: Uint8Array.of(1, 8), positions: Float64Array.of(0, 0, 0, 0.9, 0.1, 0), cell: Float64Array.of(5, 0, 0, 0, 5, 0, 0, 0, 5),
      pbc: [true, true, true], targets: { energy: -3.25 }, forces: Float64Array.of(0.125, -1.5, 2, -0.125, 1.5, -2), stress: Float64Array.of(0.1, 0.2, 0.3, 0.04, 0.05, 0.06),
    };
    const [r] = parseExtxyzText(formatExtxyzFrame(s));
    expect(Array.from(r.forces ?? [])).toEqual(Array.from(s.forces ?? []));
    expectClose(r.stress, Array.from(s.stress ?? []), 1e-15);
    expect(r.targets.energy).toBe(-3.25);
  });

  test('located errors: forces of the wrong width, non-finite, missing on a line; bad stress and virial', () => {
    const frame = (props: string, lines: string, extra = '') => `2\n${head}${extra} Properties=${props}\n${lines}`;
    let e = errorOf(() => parseExtxyzText(frame('species:S:1:pos:R:3:forces:R:2', 'H 0 0 0 1 2\nH 1 0 0 1 2\n'), 'bad.xyz'));
    expect(e.code).toBe('ERR_GNN_DATA_FORMAT');
    expect(e.message).toMatch(/bad\.xyz.*line 2.*forces.*'forces:R:3'.*'forces:R:2'/);
    e = errorOf(() => parseExtxyzText(frame('species:S:1:pos:R:3:forces:R:3', 'H 0 0 0 1 2 3\nH 1 0 0 1 nan 3\n'), 'bad.xyz'));
    expect(e.code).toBe('ERR_GNN_DATA_FORMAT');
    expect(e.message).toMatch(/line 4.*forces.*component y of atom 1 is not a finite number: 'nan'/);
    e = errorOf(() => parseExtxyzText(frame('species:S:1:pos:R:3:forces:R:3', 'H 0 0 0 1 2 3\nH 1 0 0 1 2\n'), 'bad.xyz'));
    expect(e.code).toBe('ERR_GNN_DATA_FORMAT');
    expect(e.message).toMatch(/line 4.*expected 7 columns.*found 6/);
    e = errorOf(() => parseExtxyzText(frame('species:S:1:pos:R:3', 'H 0 0 0\nH 1 0 0\n', ' stress="1 2 3 4"'), 'bad.xyz'));
    expect(e.message).toMatch(/line 2.*stress.*9 \(3x3\) or 6 \(Voigt\) numbers/);
    e = errorOf(() => parseExtxyzText(frame('species:S:1:pos:R:3', 'H 0 0 0\nH 1 0 0\n', ' stress="1 2 3 4 5 inf"'), 'bad.xyz'));
    expect(e.message).toMatch(/stress.*component 5 is not a finite number/);
    e = errorOf(() => parseExtxyzText(`2\nvirial="1 0 0 0 1 0 0 0 1" Properties=species:S:1:pos:R:3\nH 0 0 0\nH 1 0 0\n`, 'bad.xyz'));
    expect(e.message).toMatch(/virial.*needs the cell volume/);
  });
});

describe('ASE .db with forces and stress (written by ASE 3.22)', () => {
  test('forces, stress and energy per row; rows without a calculator have none', async () => {
    const [mol, si, ar] = await all(readAseDb(path.join(FIX, 'ase-forces.db')));
    expect(mol.targets.energy).toBe(-14.25);
    expectClose(mol.forces, [0.1, -0.2, 0.3, -0.05, 0.15, -0.25, -0.05, 0.05, -0.05]);
    expect(mol.stress).toBeUndefined();
    expectClose(si.forces, [0.01, 0.02, 0.03, -0.01, -0.02, -0.03]);
    expectClose(si.stress, [0.011, 0.012, 0.013, 0.004, 0.005, 0.006]);
    expect(ar.forces).toBeUndefined();
    expect(ar.stress).toBeUndefined();
  });

  test('a forces blob of the wrong size and a non-finite force are located errors', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Database = require('better-sqlite3');
    for (const [name, blob, re] of [
      ['short', Buffer.alloc(8 * 8), /forces.*row id 1: forces blob of 64 bytes, expected 3 atoms x 3 float64 \(72 bytes\)/],
      ['nan', Buffer.from(Float64Array.of(0, 0, 0, 0, NaN, 0, 0, 0, 0).buffer), /forces.*row id 1: atom 1, component y is not finite/],
    ] as const) {
      const file = path.join(tmpDir, `${name}.db`);
      fs.copyFileSync(path.join(FIX, 'ase-forces.db'), file);
      const db = new Database(file);
      db.prepare('UPDATE systems SET forces = ? WHERE id = 1').run(blob);
      db.close();
      await expect(all(readAseDb(file))).rejects.toMatchObject({ code: 'ERR_GNN_DATA_FORMAT', message: expect.stringMatching(re) });
    }
  });
});

describe('store columns and the .gnb cache (version 2)', () => {
  async function fixtureStructures(): Promise<Structure[]> {
    return all(readAseDb(path.join(FIX, 'ase-forces.db')));
  }

  test('forces [nodes x 3] and stress [graphs x 6] columns, NaN where a structure has none; absent when none has', async () => {
    const structures = await fixtureStructures();
    const { store } = buildStore(structures, { graph: parseGraphRule('cutoff:3'), source: 'fixture' });
    expect(store.forces).toBeInstanceOf(Float32Array);
    expect(store.forces?.length).toBe(3 * 6);
    expect(store.forces?.[0]).toBe(Math.fround(0.1));
    expect(store.forces?.[3 * 3 + 2]).toBe(Math.fround(0.03));
    expect(Number.isNaN(store.forces?.[3 * 5] as number)).toBe(true);
    expect(Number.isNaN(store.stress?.[0] as number)).toBe(true);
    expect(store.stress?.[6]).toBe(Math.fround(0.011));
    const back = [...structuresFromStore(store)];
    expect(back[0].forces?.length).toBe(9);
    expect(back[0].stress).toBeUndefined();
    expect(back[2].forces).toBeUndefined();
    const plain = buildStore([{ ...structures[2] }], { graph: parseGraphRule('fc') }).store;
    expect(plain.forces).toBeUndefined();
    expect(plain.stress).toBeUndefined();
  });

  test('a forces array of the wrong length is a located error naming the structure', () => {
    const s: Structure = { id: 'w', numbers: Uint8Array.of(1, 1), positions: Float64Array.of(0, 0, 0, 1, 0, 0), cell: null, pbc: [false, false, false], targets: {}, forces: new Float64Array(5) };
    const e = errorOf(() => buildStore([s], { graph: parseGraphRule('fc') }));
    expect(e.code).toBe('ERR_GNN_DATA_FORMAT');
    expect(e.message).toMatch(/structure 0 \('w'\): 5 force components for 2 atoms \(expected 6/);
  });

  test('round trip: forces and stress survive save and load bit for bit; the file is version 2', async () => {
    expect(GNB_VERSION).toBe(2);
    const { store } = buildStore(await fixtureStructures(), { graph: parseGraphRule('cutoff:3'), source: 'fixture' });
    const file = path.join(tmpDir, 'f.gnb');
    saveStore(store, file);
    expect(fs.readFileSync(file).readUInt32LE(8)).toBe(2);
    const back = loadStore(file);
    expect(Buffer.from((back.forces as Float32Array).buffer, (back.forces as Float32Array).byteOffset, 72)).toEqual(Buffer.from((store.forces as Float32Array).buffer, 0, 72));
    expect(Array.from(back.stress ?? [])).toEqual(Array.from(store.stress ?? []));
  });

  test('a version 1 file (written before forces existed) still reads, without forces', () => {
    const file = path.join(FIX, 'gnb-v1.gnb');
    expect(fs.readFileSync(file).readUInt32LE(8)).toBe(1);
    const s = loadStore(file);
    expect(s.numGraphs).toBe(3);
    expect(s.forces).toBeUndefined();
    expect(s.stress).toBeUndefined();
  });

  test('a forces array of the wrong length or with an infinity is ERR_GNN_CACHE_CORRUPT', async () => {
    const { store } = buildStore(await fixtureStructures(), { graph: parseGraphRule('cutoff:3'), source: 'fixture' });
    const file = path.join(tmpDir, 'bad.gnb');
    saveStore({ ...store, forces: (store.forces as Float32Array).slice(0, 15) }, file);
    expect(() => loadStore(file)).toThrow(expect.objectContaining({ code: 'ERR_GNN_CACHE_CORRUPT', message: expect.stringMatching(/'forces' has 15 values, 6 atoms need 18/) }));
    const f = (store.forces as Float32Array).slice();
    f[4] = Infinity;
    saveStore({ ...store, forces: f }, file);
    expect(() => loadStore(file)).toThrow(expect.objectContaining({ code: 'ERR_GNN_CACHE_CORRUPT', message: expect.stringMatching(/forces\[4\] is not finite/) }));
  });
});
