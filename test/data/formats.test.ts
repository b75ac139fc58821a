import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DataFormatError } from '../../src/data/errors';
import { readAflowJson } from '../../src/data/formats/aflow-json';
import { readAseDb } from '../../src/data/formats/ase-db';
import { detectFormat } from '../../src/data/formats/detect';
import { readExtxyz, writeExtxyz, parseKeyValues } from '../../src/data/formats/extxyz';
import { QM9_PROPERTIES, readQm9 } from '../../src/data/formats/qm9-xyz';
import { loadSource, readStructures } from '../../src/data/source';
import type { Structure } from '../../src/data/types';

const FIX = path.join(__dirname, '..', 'fixtures');
const fx = (...p: string[]) => path.join(FIX, ...p);

async function all(it: AsyncIterable<Structure>): Promise<Structure[]> {
  const out: Structure[] = [];
  for await (const s of it) out.push(s);
  return out;
}

async function failure(p: Promise<unknown>): Promise<DataFormatError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DataFormatError);
    return e as DataFormatError;
  }
  throw new Error('expected a DataFormatError');
}

describe('QM9 original layout', () => {
  test('single file: 15 properties, id, SMILES, geometry', async () => {
    const [m] = await all(readQm9(fx('qm9', 'dir', 'dsgdb9nsd_000001.xyz')));
    expect(m.id).toBe('1');
    expect(Object.keys(m.targets)).toEqual([...QM9_PROPERTIES]);
    expect(m.targets.U0).toBeCloseTo(-40.47893, 6);
    expect(m.targets.Cv).toBeCloseTo(6.469, 6);
    expect(Array.from(m.numbers)).toEqual([6, 1, 1, 1, 1]);
    expect(m.positions[1]).toBeCloseTo(1.0858041578, 9);
    expect(m.info?.smiles).toBe('C');
    expect(m.info?.inchi).toBe('InChI=1S/CH4/h1H4');
  });

  test("Mathematica exponents '*^' parse", async () => {
    const [m] = await all(readQm9(fx('qm9', 'mathematica-exponent.xyz')));
    expect(m.positions[0]).toBeCloseTo(-0.0126981359, 12);
    expect(m.positions[3]).toBeCloseTo(0.002150416, 12);
  });

  test('directory and streamed .tar.bz2 give the same molecules', async () => {
    const dir = await all(readQm9(fx('qm9', 'dir')));
    const tar = await all(readQm9(fx('qm9', 'qm9-mini.tar.bz2')));
    expect(dir.map((m) => m.id)).toEqual(['1', '2', '3']);
    expect(tar.map((m) => [m.id, m.targets.U0, Array.from(m.positions)])).toEqual(dir.map((m) => [m.id, m.targets.U0, Array.from(m.positions)]));
  });

  test('a multi-block bzip2 archive streams through every block', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnb-qm9-'));
    try {
      const src = fs.readFileSync(fx('qm9', 'dir', 'dsgdb9nsd_000001.xyz'), 'utf8');
      const members = path.join(tmp, 'm');
      fs.mkdirSync(members);
      for (let i = 1; i <= 400; i++)
        fs.writeFileSync(path.join(members, `dsgdb9nsd_${String(i).padStart(6, '0')}.xyz`), src.replace('gdb 1\t', `gdb ${i}\t`));
      execFileSync('tar', ['cf', path.join(tmp, 'big.tar'), '-C', members, '.']);
      execFileSync('bzip2', ['-1', path.join(tmp, 'big.tar')]); // 100 kB blocks: several blocks
      const got = await all(readQm9(path.join(tmp, 'big.tar.bz2')));
      expect(got.length).toBe(400);
      expect(new Set(got.map((m) => m.id)).size).toBe(400);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test.each([
    ['truncated.xyz', /line 6, field 'atoms': truncated/],
    ['count-too-high.xyz', /line 8, field 'element'.*atom count disagrees/],
    ['count-too-low.xyz', /line 7, field 'atoms'.*atom count disagrees/],
    ['non-numeric.xyz', /line 4, field 'x': not a number: '0.00x2150416'/],
    ['unknown-element.xyz', /line 3, field 'element': unknown element symbol 'Qx'/],
  ])('malformed %s names file, line and field', async (name, re) => {
    const e = await failure(all(readQm9(fx('qm9', 'bad', name))));
    expect(e.message).toContain(name);
    expect(e.message).toMatch(re);
  });
});

describe('extended XYZ', () => {
  test('key=value parsing: quotes, escapes, bare keys', () => {
    expect(parseKeyValues('a=1 b="x y" c=\'q\' d e="say \\"hi\\"" f=T')).toEqual([
      ['a', '1', false], ['b', 'x y', true], ['c', 'q', true], ['d', true, false], ['e', 'say "hi"', true], ['f', 'T', false],
    ]);
  });

  test('frames with Properties, Lattice, pbc, info of every kind', async () => {
    const f = await all(readExtxyz(fx('extxyz', 'quirks.extxyz')));
    expect(f.length).toBe(3);
    expect(f[0].id).toBe('000123');
    expect(f[0].targets).toEqual({ energy: -14.25, converged: 1, relaxed: 0 });
    expect(f[0].info).toMatchObject({ name: 'water molecule', converged: true, relaxed: false, dipole: '0.1 0.2 0.3' });
    expect(f[0].pbc).toEqual([false, false, false]);
    expect(f[0].cell).toBeNull();
    expect(Array.from(f[0].numbers)).toEqual([8, 1, 1]);
    expect(f[1].pbc).toEqual([true, true, true]);
    expect(Array.from(f[1].cell ?? [])).toEqual([3.52, 0, 0, 0, 3.52, 0, 0, 0, 3.52]);
    expect(f[1].targets).toMatchObject({ energy: -9.5, stress_free: 1, bandgap: 0 });
    // Lattice without pbc means periodic (ASE's convention); Z column instead of species.
    expect(f[2].pbc).toEqual([true, true, true]);
    expect(Array.from(f[2].numbers)).toEqual([26]);
    expect(f[2].info?.comment).toBe('a "quoted" word');
  });

  test('write then read round-trips every frame', async () => {
    const tmp = path.join(os.tmpdir(), `gnb-rt-${process.pid}.extxyz`);
    try {
      const frames = await all(readExtxyz(fx('extxyz', 'quirks.extxyz')));
      expect(await writeExtxyz(tmp, frames)).toBe(3);
      const back = await all(readExtxyz(tmp));
      // The writer always stores the id (as info `id`), so frames that had none gain it.
      const infoNoId = (s: Structure) => Object.fromEntries(Object.entries(s.info ?? {}).filter(([k]) => k !== 'id'));
      const view = (s: Structure) => [s.id, Array.from(s.numbers), Array.from(s.positions), s.cell && Array.from(s.cell), s.pbc, s.targets, infoNoId(s)];
      expect(back.map(view)).toEqual(frames.map(view));
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  });

  test.each([
    ['truncated.extxyz', /line 5, entry 0, field 'atoms': truncated/],
    ['non-numeric.extxyz', /line 4, entry 0, field 'pos': not a number: 'zero'/],
    ['unknown-element.extxyz', /line 4, entry 0, field 'species': unknown element symbol 'Xq'/],
    ['bad-columns.extxyz', /line 4, entry 0, field 'atoms': expected 4 columns/],
  ])('malformed %s names file, line and field', async (name, re) => {
    const e = await failure(all(readExtxyz(fx('extxyz', name))));
    expect(e.message).toContain(name);
    expect(e.message).toMatch(re);
  });
});

describe('ASE SQLite database', () => {
  test("reads ASE's schema: blobs, pbc mask, cell, key_value_pairs, energy", async () => {
    const rows = await all(readAseDb(fx('ase', 'small.db')));
    expect(rows.map((r) => r.id)).toEqual(['a1b2c3', 'd4e5f6', 'g7h8i9']);
    expect(Array.from(rows[0].numbers)).toEqual([8, 1, 1]);
    expect(rows[0].positions[4]).toBeCloseTo(0.763239, 12);
    expect(rows[0].pbc).toEqual([false, false, false]);
    expect(rows[0].targets).toEqual({ U0: -76.4, relaxed: 1 });
    expect(rows[0].info).toMatchObject({ name: 'water', relaxed: true });
    expect(rows[1].pbc).toEqual([true, true, true]);
    expect(Array.from(rows[1].cell ?? [])).toEqual([0, 2.715, 2.715, 2.715, 0, 2.715, 2.715, 2.715, 0]);
    expect(rows[1].targets).toEqual({ energy: -10.84, enthalpy_formation_atom: 0, U0: -10.8 });
    expect(rows[2].pbc).toEqual([true, true, false]);
  });

  test('a file that is not an ASE db is named', async () => {
    const e = await failure(all(readAseDb(fx('aflow', 'entries.json'))));
    expect(e.message).toContain('entries.json');
  });
});

describe('AFLOW JSON', () => {
  test('entries: geometry as array or string, species by composition, compound or per atom', async () => {
    const e = await all(readAflowJson(fx('aflow', 'entries.json')));
    expect(e.map((s) => s.id)).toEqual(['aflow:0001', 'aflow:0002', 'aflow:0003']);
    expect(Array.from(e[0].numbers)).toEqual([47, 13, 13, 13]);
    expect(e[0].targets).toMatchObject({ enthalpy_formation_atom: -0.0312, Egap: 0, spacegroup_relax: 221 });
    expect(e[0].info?.compound).toBe('Ag1Al3');
    expect(e[0].positions[4]).toBeCloseTo(2.025, 10);
    expect(Array.from(e[1].numbers)).toEqual([11, 17]);
    // fcc primitive cell from (a, a, a, 60, 60, 60): every vector has length a.
    const c = e[1].cell ?? new Float64Array(9);
    for (let v = 0; v < 3; v++) expect(Math.hypot(c[v * 3], c[v * 3 + 1], c[v * 3 + 2])).toBeCloseTo(3.99, 10);
    expect(Array.from(e[2].numbers)).toEqual([14, 14]);
  });

  test('an entry without geometry names entry and field', async () => {
    const e = await failure(all(readAflowJson(fx('aflow', 'no-geometry.json'))));
    expect(e.message).toMatch(/no-geometry.json, entry 1, field 'geometry': missing/);
  });
});

describe('detection and loadSource', () => {
  test('formats detected from name, extension and content', () => {
    expect(detectFormat('qm9-like:10')).toBe('qm9-like');
    expect(detectFormat('aflow-like')).toBe('aflow-like');
    expect(detectFormat(fx('qm9', 'dir'))).toBe('qm9-xyz');
    expect(detectFormat(fx('qm9', 'qm9-mini.tar.bz2'))).toBe('qm9-xyz');
    expect(detectFormat(fx('qm9', 'mathematica-exponent.xyz'))).toBe('qm9-xyz');
    expect(detectFormat(fx('extxyz', 'quirks.extxyz'))).toBe('extxyz');
    expect(detectFormat(fx('ase', 'small.db'))).toBe('ase-db');
    expect(detectFormat(fx('aflow', 'entries.json'))).toBe('aflow-json');
    expect(() => detectFormat(fx('nope.xyz'))).toThrow(/no such file/);
  });

  test('--format overrides detection', async () => {
    const tmp = path.join(os.tmpdir(), `gnb-frames-${process.pid}.txt`);
    fs.copyFileSync(fx('extxyz', 'quirks.extxyz'), tmp);
    try {
      expect(() => detectFormat(tmp)).toThrow(/pass --format/);
      expect((await all(readStructures(tmp, { format: 'extxyz' }))).length).toBe(3);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  });

  test('every format loads through loadSource', async () => {
    for (const [src, graph] of [
      [fx('qm9', 'qm9-mini.tar.bz2'), 'fc'], [fx('extxyz', 'quirks.extxyz'), 'cutoff:3'], [fx('ase', 'small.db'), 'knn:4'],
      [fx('aflow', 'entries.json'), 'knn:12'], ['qm9-like:20', 'fc'], ['aflow-like:5', 'knn:12'],
    ]) {
      const { store } = await loadSource(src, { graph });
      expect(store.numGraphs).toBeGreaterThan(0);
      expect(store.graphRule).toBe(graph);
    }
  });

  test('a missing target names the file, entry and field', async () => {
    const e = await failure(loadSource(fx('ase', 'small.db'), { target: 'energy' }));
    expect(e.message).toMatch(/small.db, entry 0, field 'energy': missing target/);
    expect(e.code).toBe('ERR_GNN_DATA_TARGET');
  });
});
