/**
 * ASE's SQLite database (`ase.db`, the `.db` files the study stored its graphs
 * in), read through better-sqlite3 from ASE's own schema: table `systems` with
 * `numbers` (int32 blob; int64 in very old files), `positions` (float64 blob
 * [natoms x 3]), `cell` (float64 blob [3 x 3]), `pbc` (integer bit mask: bit a
 * set when axis a is periodic), `key_value_pairs` (JSON text), plus the
 * calculator's `energy`, `forces` (float64 blob [natoms x 3]) and `stress`
 * (float64 blob [6], Voigt xx yy zz yz xz xy, ASE's sign and eV/Å^3) and the
 * `unique_id`. Numeric key-value pairs (and `energy`, booleans as 1/0) become
 * targets; strings stay in `info`; forces and stress become
 * {@link Structure.forces} and {@link Structure.stress}.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { ELEMENT_SYMBOLS } from '../elements';
import { DataFormatError } from '../errors';
import type { Structure } from '../types';

interface SystemRow {
  id: number;
  unique_id: string | null;
  numbers: Buffer | null;
  positions: Buffer | null;
  cell: Buffer | null;
  pbc: number | null;
  key_value_pairs: string | null;
  energy: number | null;
  natoms: number | null;
  forces: Buffer | null;
  stress: Buffer | null;
}

function float64s(b: Buffer): Float64Array {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float64Array(copy.buffer, 0, b.byteLength >>> 3);
}

/** The column statements of ASE's `systems` table (schema version 9/10), used to write fixtures and exports. */
export const ASE_SYSTEMS_TABLE = `CREATE TABLE systems (
    id INTEGER PRIMARY KEY AUTOINCREMENT, unique_id TEXT UNIQUE, ctime REAL, mtime REAL, username TEXT,
    numbers BLOB, positions BLOB, cell BLOB, pbc INTEGER, initial_magmoms BLOB, initial_charges BLOB,
    masses BLOB, tags BLOB, momenta BLOB, constraints TEXT, calculator TEXT, calculator_parameters TEXT,
    energy REAL, free_energy REAL, forces BLOB, stress BLOB, dipole BLOB, magmoms BLOB, magmom REAL,
    charges BLOB, key_value_pairs TEXT, data BLOB, natoms INTEGER, fmax REAL, smax REAL, volume REAL,
    mass REAL, charge REAL)`;

let sqlite: typeof BetterSqlite3 | undefined;

/**
 * better-sqlite3, loaded on first use: it is an optional peer dependency (a
 * native module of its own), needed only for ASE `.db` files, so services that
 * never read one do not install or build it.
 */
function betterSqlite3(file: string): typeof BetterSqlite3 {
  if (sqlite) return sqlite;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sqlite = require('better-sqlite3') as typeof BetterSqlite3;
  } catch (e) {
    throw new DataFormatError(
      { file },
      `reading ASE .db files needs the optional package better-sqlite3, which could not be loaded (${(e as Error).message.split('\n')[0]}). ` +
        `Install it next to gnnbatch: npm install better-sqlite3@12`,
      'ERR_GNN_SQLITE_MISSING',
    );
  }
  return sqlite;
}

/** Reads every row of an ASE SQLite database in id order (streamed with a statement iterator). */
export async function* readAseDb(file: string): AsyncGenerator<Structure> {
  const Database = betterSqlite3(file);
  let db: BetterSqlite3.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new DataFormatError({ file }, `cannot open as SQLite: ${(e as Error).message}`, 'ERR_GNN_DATA_OPEN');
  }
  try {
    let cols: Set<string>;
    try {
      cols = new Set((db.prepare('PRAGMA table_info(systems)').all() as { name: string }[]).map((r) => r.name));
    } catch (e) {
      throw new DataFormatError({ file }, `not an ASE database: ${(e as Error).message}`, 'ERR_GNN_DATA_OPEN');
    }
    for (const c of ['id', 'numbers', 'positions'])
      if (!cols.has(c)) throw new DataFormatError({ file, field: c }, "not an ASE database: table 'systems' with this column is missing");
    const pick = (c: string) => (cols.has(c) ? c : `NULL AS ${c}`);
    const sql = `SELECT id, ${pick('unique_id')}, numbers, positions, ${pick('cell')}, ${pick('pbc')}, ${pick('key_value_pairs')}, ${pick('energy')}, ${pick('natoms')}, ${pick('forces')}, ${pick('stress')} FROM systems ORDER BY id`;
    let entry = 0;
    for (const row of db.prepare(sql).iterate() as IterableIterator<SystemRow>) {
      yield rowToStructure(row, file, entry++);
    }
  } finally {
    db.close();
  }
}

function rowToStructure(row: SystemRow, file: string, entry: number): Structure {
  const loc = (field: string) => ({ file, entry, field });
  if (!row.positions) throw new DataFormatError(loc('positions'), `row id ${row.id} has no positions`);
  if (row.positions.byteLength % 24 !== 0) throw new DataFormatError(loc('positions'), `row id ${row.id}: ${row.positions.byteLength} bytes is not natoms x 3 float64`);
  const n = row.natoms ?? row.positions.byteLength / 24;
  if (n * 24 !== row.positions.byteLength) throw new DataFormatError(loc('positions'), `row id ${row.id}: natoms ${n} disagrees with the positions blob`);
  if (!row.numbers) throw new DataFormatError(loc('numbers'), `row id ${row.id} has no atomic numbers`);
  let z: ArrayLike<number>;
  const nb = new Uint8Array(row.numbers.byteLength);
  nb.set(row.numbers);
  if (row.numbers.byteLength === 4 * n) z = new Int32Array(nb.buffer, 0, n);
  else if (row.numbers.byteLength === 8 * n) z = Array.from(new BigInt64Array(nb.buffer, 0, n), (v) => Number(v));
  else throw new DataFormatError(loc('numbers'), `row id ${row.id}: ${row.numbers.byteLength} bytes of numbers for ${n} atoms`);
  const numbers = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (!(z[i] >= 1 && z[i] < ELEMENT_SYMBOLS.length)) throw new DataFormatError(loc('numbers'), `row id ${row.id}, atom ${i}: unknown atomic number ${z[i]}`);
    numbers[i] = z[i];
  }
  const positions = float64s(row.positions);
  const mask = row.pbc ?? 0;
  const pbc: [boolean, boolean, boolean] = [(mask & 1) !== 0, (mask & 2) !== 0, (mask & 4) !== 0];
  let cell: Float64Array | null = null;
  if (row.cell && row.cell.byteLength === 72) cell = float64s(row.cell);
  else if (row.cell && row.cell.byteLength !== 0) throw new DataFormatError(loc('cell'), `row id ${row.id}: cell blob of ${row.cell.byteLength} bytes, expected 72`);
  if (pbc.some((p) => p) && !cell) throw new DataFormatError(loc('cell'), `row id ${row.id} is periodic but has no cell`);
  const targets: Record<string, number> = {};
  const info: Record<string, string | number | boolean> = { dbId: row.id };
  if (row.unique_id) info.uniqueId = row.unique_id;
  if (row.energy !== null && row.energy !== undefined) targets.energy = row.energy;
  if (row.key_value_pairs) {
    let kv: unknown;
    try {
      kv = JSON.parse(row.key_value_pairs);
    } catch {
      throw new DataFormatError(loc('key_value_pairs'), `row id ${row.id}: not valid JSON`);
    }
    if (kv && typeof kv === 'object')
      for (const [k, v] of Object.entries(kv as Record<string, unknown>)) {
        if (typeof v === 'number') targets[k] = v;
        else if (typeof v === 'boolean') { targets[k] = v ? 1 : 0; info[k] = v; }
        else if (typeof v === 'string') info[k] = v;
      }
  }
  const s: Structure = { id: row.unique_id ?? String(row.id), numbers, positions, cell, pbc, targets, info };
  if (row.forces && row.forces.byteLength > 0) {
    if (row.forces.byteLength !== 24 * n)
      throw new DataFormatError(loc('forces'), `row id ${row.id}: forces blob of ${row.forces.byteLength} bytes, expected ${n} atoms x 3 float64 (${24 * n} bytes)`);
    s.forces = float64s(row.forces);
    checkFinite(s.forces, loc('forces'), `row id ${row.id}`, (i) => `atom ${Math.floor(i / 3)}, component ${'xyz'[i % 3]}`);
  }
  if (row.stress && row.stress.byteLength > 0) {
    if (row.stress.byteLength !== 48)
      throw new DataFormatError(loc('stress'), `row id ${row.id}: stress blob of ${row.stress.byteLength} bytes, expected 6 float64 (Voigt, 48 bytes)`);
    s.stress = float64s(row.stress);
    checkFinite(s.stress, loc('stress'), `row id ${row.id}`, (i) => `component ${['xx', 'yy', 'zz', 'yz', 'xz', 'xy'][i]}`);
  }
  return s;
}

function checkFinite(a: Float64Array, where: { file: string; entry: number; field: string }, row: string, what: (i: number) => string): void {
  for (let i = 0; i < a.length; i++)
    if (!Number.isFinite(a[i])) throw new DataFormatError(where, `${row}: ${what(i)} is not finite (${a[i]})`);
}
