/**
 * Structures from request payloads: JSON objects (`{numbers, positions, cell?,
 * pbc?, id?}`) and extended XYZ text, validated with errors that name the
 * structure's index and the field (code `ERR_GNN_STRUCTURE`).
 */
import { ELEMENT_SYMBOLS, type Structure } from '../data';
import { ExtxyzTextReader } from '../data/formats/extxyz';
import { GnnError, isGnnError } from '../errors';

/** One structure as a JSON request carries it. */
export interface StructureJson {
  /** Atomic numbers, one per atom (1..118). */
  numbers: readonly number[];
  /** Cartesian positions in Å: `[[x, y, z], ...]` or a flat `[x0, y0, z0, x1, ...]`. */
  positions: readonly (readonly number[])[] | readonly number[];
  /** Lattice vectors as rows (`[[ax, ay, az], [bx, ...], [cx, ...]]` or 9 numbers); required where any pbc flag is set. */
  cell?: readonly (readonly number[])[] | readonly number[] | null;
  /** Periodic axes: three booleans, or one for all axes (default: periodic on all axes when a cell is given). */
  pbc?: readonly boolean[] | boolean;
  /** Caller's identifier, echoed in errors. */
  id?: string;
}

/** Limits applied while reading request structures. */
export interface StructureLimits {
  /** Most structures in one payload (default 10,000). */
  maxStructures?: number;
  /** Most atoms in one structure (default 5,000). */
  maxAtoms?: number;
}

/**
 * Largest coordinate magnitude accepted (Å). Far beyond any real structure,
 * and small enough that the neighbour search's cell arithmetic stays exact.
 */
export const MAX_COORDINATE = 1e6;

function fail(where: string, message: string): never {
  throw new GnnError('ERR_GNN_STRUCTURE', `${where}: ${message}`);
}

function isNumberArray(x: unknown): x is number[] {
  return Array.isArray(x);
}

/** Flattens positions/cell given as rows or flat, checking every value. */
function flatVectors(value: unknown, rows: number, where: string, field: string, limit: number): Float64Array {
  if (!Array.isArray(value)) fail(where, `'${field}' must be an array, got ${value === null ? 'null' : typeof value}`);
  const out = new Float64Array(rows * 3);
  const nested = value.length > 0 && Array.isArray(value[0]);
  if (nested) {
    if (value.length !== rows) fail(where, `'${field}' has ${value.length} rows, expected ${rows}`);
    for (let i = 0; i < rows; i++) {
      const row: unknown = value[i];
      if (!isNumberArray(row) || row.length !== 3) fail(where, `'${field}[${i}]' must be an array of 3 numbers`);
      for (let a = 0; a < 3; a++) {
        const v: unknown = row[a];
        if (typeof v !== 'number' || !Number.isFinite(v)) fail(where, `'${field}[${i}][${a}]' is not a finite number (${JSON.stringify(v)})`);
        if (Math.abs(v) > limit) fail(where, `'${field}[${i}][${a}]' = ${v} is beyond ±${limit} Å`);
        out[i * 3 + a] = v;
      }
    }
  } else {
    if (value.length !== rows * 3) fail(where, `'${field}' has ${value.length} numbers, expected ${rows * 3} (${rows} x 3)`);
    for (let k = 0; k < rows * 3; k++) {
      const v: unknown = value[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(where, `'${field}[${k}]' is not a finite number (${JSON.stringify(v)})`);
      if (Math.abs(v) > limit) fail(where, `'${field}[${k}]' = ${v} is beyond ±${limit} Å`);
      out[k] = v;
    }
  }
  return out;
}

/** One validated structure from its JSON form; `index` names it in errors. */
export function structureFromJson(value: unknown, index: number, limits: StructureLimits = {}): Structure {
  const maxAtoms = limits.maxAtoms ?? 5000;
  const label = `structures[${index}]`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(label, 'must be an object with numbers and positions');
  const o = value as Record<string, unknown>;
  const id = o.id === undefined ? String(index) : typeof o.id === 'string' ? o.id : fail(label, "'id' must be a string");
  const where = o.id === undefined ? label : `${label} (${id})`;
  const numbersIn = o.numbers;
  if (!Array.isArray(numbersIn)) fail(where, `'numbers' must be an array of atomic numbers, got ${numbersIn === undefined ? 'nothing' : typeof numbersIn}`);
  const n = numbersIn.length;
  if (n === 0) fail(where, "'numbers' is empty: a structure needs at least one atom");
  if (n > maxAtoms) fail(where, `${n} atoms is more than the limit of ${maxAtoms} per structure`);
  const numbers = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const z: unknown = numbersIn[i];
    if (typeof z !== 'number' || !Number.isInteger(z) || z < 1 || z >= ELEMENT_SYMBOLS.length) {
      fail(where, `'numbers[${i}]' = ${JSON.stringify(z)} is not an atomic number (1..${ELEMENT_SYMBOLS.length - 1})`);
    }
    numbers[i] = z;
  }
  if (o.positions === undefined) fail(where, "'positions' is missing");
  const positions = flatVectors(o.positions, n, where, 'positions', MAX_COORDINATE);
  let cell: Float64Array | null = null;
  if (o.cell !== undefined && o.cell !== null) cell = flatVectors(o.cell, 3, where, 'cell', MAX_COORDINATE);
  let pbc: [boolean, boolean, boolean];
  if (o.pbc === undefined) pbc = cell ? [true, true, true] : [false, false, false];
  else if (typeof o.pbc === 'boolean') pbc = [o.pbc, o.pbc, o.pbc];
  else if (Array.isArray(o.pbc) && o.pbc.length === 3 && o.pbc.every((b) => typeof b === 'boolean')) pbc = [o.pbc[0], o.pbc[1], o.pbc[2]];
  else fail(where, "'pbc' must be a boolean or an array of 3 booleans");
  if (pbc.some((p) => p) && !cell) fail(where, "'pbc' is set but there is no 'cell'");
  return { id, numbers, positions, cell, pbc, targets: {}, info: {} };
}

/** Validated structures from a JSON array (a parsed request body's `structures`). */
export function structuresFromJson(value: unknown, limits: StructureLimits = {}): Structure[] {
  const max = limits.maxStructures ?? 10000;
  if (!Array.isArray(value)) fail('structures', `must be an array, got ${value === null ? 'null' : typeof value}`);
  if (value.length > max) fail('structures', `${value.length} structures is more than the limit of ${max} per request`);
  return value.map((v, i) => structureFromJson(v, i, limits));
}

/** Checks one extxyz frame of a request against the limits that the reader does not apply. */
function checkExtxyzFrame(s: Structure, i: number): void {
  if (s.numbers.length === 0) fail(`structures[${i}]`, 'a structure needs at least one atom');
  for (let k = 0; k < s.positions.length; k++) {
    if (Math.abs(s.positions[k]) > MAX_COORDINATE) fail(`structures[${i}]`, `position ${s.positions[k]} is beyond ±${MAX_COORDINATE} Å`);
  }
  if (s.cell) for (let k = 0; k < 9; k++) if (Math.abs(s.cell[k]) > MAX_COORDINATE) fail(`structures[${i}]`, `cell value ${s.cell[k]} is beyond ±${MAX_COORDINATE} Å`);
}

/** Longest extxyz line a request may carry (characters): far beyond real comment lines, short enough to parse at once. */
export const MAX_EXTXYZ_LINE = 1 << 20;

/**
 * Extended XYZ of a request read as it arrives: {@link write} takes pieces of
 * the text (an HTTP body's chunks) and stops with `ERR_GNN_STRUCTURE` at the
 * first malformed frame, at one frame more than `maxStructures`, at a count
 * line above `maxAtoms` or at a line longer than {@link MAX_EXTXYZ_LINE}: the
 * work done on a hostile body is bounded by the limits, not by its size.
 */
export class ExtxyzRequestReader {
  private readonly reader: ExtxyzTextReader;
  constructor(limits: StructureLimits = {}) {
    this.reader = new ExtxyzTextReader('extxyz', { maxFrames: limits.maxStructures ?? 10000, maxAtoms: limits.maxAtoms ?? 5000, maxLineLength: MAX_EXTXYZ_LINE });
  }

  /** Takes the next piece of the text. */
  write(text: string): void {
    wrapFormatErrors(() => this.reader.write(text));
  }

  /** Ends the text; returns its validated structures. */
  end(): Structure[] {
    const frames = wrapFormatErrors(() => this.reader.end());
    if (frames.length === 0) fail('extxyz', 'no frames');
    frames.forEach(checkExtxyzFrame);
    return frames;
  }
}

function wrapFormatErrors<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (isGnnError(e) && e.code === 'ERR_GNN_STRUCTURE') throw e;
    throw new GnnError('ERR_GNN_STRUCTURE', (e as Error).message, { cause: e });
  }
}

/**
 * Validated structures from extended XYZ text (several frames allowed). Parse
 * errors keep the reader's location (line, frame, field) and get code
 * `ERR_GNN_STRUCTURE`; reading stops at the first frame beyond the limits.
 */
export function structuresFromExtxyz(text: string, limits: StructureLimits = {}): Structure[] {
  const reader = new ExtxyzRequestReader(limits);
  reader.write(text);
  return reader.end();
}

/**
 * {@link structuresFromExtxyz} in slices of `sliceChars` characters with a turn
 * of the event loop between them, for large texts read on a server's loop;
 * stops between slices once `signal` is aborted (throwing its reason).
 */
export async function structuresFromExtxyzSliced(text: string, limits: StructureLimits = {}, sliceChars = 1 << 16, signal?: AbortSignal): Promise<Structure[]> {
  const reader = new ExtxyzRequestReader(limits);
  for (let at = 0; at < text.length; at += sliceChars) {
    signal?.throwIfAborted();
    reader.write(text.slice(at, at + sliceChars));
    if (at + sliceChars < text.length) await new Promise<void>((r) => setImmediate(r));
  }
  return reader.end();
}
