/**
 * The `.gnb` binary cache of a {@link GraphStore}.
 *
 * Layout (little-endian): 8-byte magic `GNNBSTOR`, u32 format version, u32
 * header byte length, the header as UTF-8 JSON (counts, names, ids, rule,
 * source, and for each array its name, element type, byte offset, length and
 * checksum), zero padding to 8 bytes, then the raw arrays, each starting at a
 * multiple of 8. Loading maps typed arrays straight onto the file's bytes (no
 * parsing of the arrays); the structure is then checked natively.
 * Writes are durable (src/util/durable.ts: a temporary file in the same
 * folder, fsynced and renamed over the target, then the folder fsynced), so a
 * crash never leaves a half-written cache under the real name.
 */
import * as fs from 'fs';
import { native } from '../native';
import { CacheError } from './errors';
import { parseGraphRule } from './graph-rule';
import type { GraphStore } from './types';
import { openDurable, type WriteFailure } from '../util/durable';

/**
 * The format version this gnnbatch writes. Version 2 (forces and stress,
 * issue 22) adds the optional arrays `forces` and `stress`; version 1 files
 * (without them) are still read. Other versions are refused.
 */
export const GNB_VERSION = 2;
/** The versions {@link loadStore} reads. */
const READABLE_VERSIONS: readonly number[] = [1, 2];
const MAGIC = 'GNNBSTOR';

type ArrayName = 'nodeOffset' | 'edgeOffset' | 'atomicNumber' | 'positions' | 'senders' | 'receivers' | 'distance' | 'senderPerm' | 'targets' | 'cells' | 'pbc' | 'directions' | 'forces' | 'stress';
const ARRAYS: { name: ArrayName; dtype: 'i32' | 'u8' | 'f32' | 'f64'; optional?: boolean }[] = [
  { name: 'nodeOffset', dtype: 'i32' },
  { name: 'edgeOffset', dtype: 'i32' },
  { name: 'atomicNumber', dtype: 'u8' },
  { name: 'positions', dtype: 'f32' },
  { name: 'senders', dtype: 'i32' },
  { name: 'receivers', dtype: 'i32' },
  { name: 'distance', dtype: 'f32' },
  { name: 'senderPerm', dtype: 'i32' },
  { name: 'targets', dtype: 'f64' },
  { name: 'cells', dtype: 'f64', optional: true },
  { name: 'pbc', dtype: 'u8', optional: true },
  // Unit edge vectors (PaiNN), only in stores built with directions. Last, so
  // that a reader that does not know the entry still finds every other array.
  { name: 'directions', dtype: 'f32', optional: true },
  // Version 2: per-atom forces [nodes x 3] and per-graph stress [graphs x 6]
  // (Voigt), only in stores of data that has them (NaN = missing).
  { name: 'forces', dtype: 'f32', optional: true },
  { name: 'stress', dtype: 'f32', optional: true },
];

interface ArrayEntry {
  name: ArrayName;
  dtype: string;
  offset: number;
  length: number;
  checksum: number;
}
interface Header {
  numGraphs: number;
  graphRule: string;
  source: string;
  targetNames: string[];
  ids: string[];
  arrays: ArrayEntry[];
}

/** A fast 32-bit checksum of a byte range (FNV-style over 32-bit words, tail bytewise). */
export function checksum32(bytes: Uint8Array): number {
  let h = 0x811c9dc5 | 0;
  const words = bytes.byteLength >>> 2;
  if (words > 0) {
    const aligned = bytes.byteOffset % 4 === 0;
    const w = aligned ? new Uint32Array(bytes.buffer, bytes.byteOffset, words) : new Uint32Array(bytes.slice(0, words * 4).buffer);
    for (let i = 0; i < words; i++) h = Math.imul(h ^ w[i], 0x01000193);
  }
  for (let i = words * 4; i < bytes.byteLength; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const pad8 = (n: number) => (n + 7) & ~7;

/** What ERR_GNN_CACHE_WRITE says after the path: the reason, and whether anything is left under the name. */
function cacheWriteFailure(f: WriteFailure, mb: number): string {
  if (f.committed) return `was written, but syncing its folder failed: ${f.reason} (it may not survive a power loss)`;
  if (f.stage === 'open') return `cannot be written: ${f.reason}`;
  return `cannot be written: ${f.reason} (the cache needs ${mb.toFixed(1)} MB; nothing was written under this name)`;
}

/**
 * Writes a store to `file` durably (temp file in the same folder, fsync,
 * rename, folder fsync: src/util/durable.ts).
 * A write that fails (disk full, permissions, missing folder) throws
 * CacheError ERR_GNN_CACHE_WRITE naming `file` and the reason; the temporary
 * file is removed and an existing `file` is left as it was.
 */
export function saveStore(store: GraphStore, file: string): void {
  const entries: ArrayEntry[] = [];
  const views: ArrayBufferView[] = [];
  ARRAYS.forEach(({ name, dtype }) => {
    const v = store[name];
    if (!v) return;
    views.push(v);
    entries.push({ name, dtype, offset: 0, length: v.length, checksum: checksum32(bytesOf(v)) });
    return v;
  });
  const header: Header = {
    numGraphs: store.numGraphs,
    graphRule: store.graphRule,
    source: store.source,
    targetNames: store.targetNames,
    ids: store.ids,
    arrays: entries,
  };
  // Offsets depend on the header length, which depends on the offsets' digits:
  // iterate until stable (two rounds in practice).
  let json = '';
  for (let round = 0; round < 4; round++) {
    json = JSON.stringify(header);
    let off = pad8(16 + Buffer.byteLength(json));
    for (const e of entries) {
      e.offset = off;
      off = pad8(off + e.length * elementSize(e.dtype));
    }
    if (JSON.stringify(header) === json) break;
  }
  json = JSON.stringify(header);
  const head = Buffer.alloc(pad8(16 + Buffer.byteLength(json)));
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(GNB_VERSION, 8);
  head.writeUInt32LE(Buffer.byteLength(json), 12);
  head.write(json, 16, 'utf8');
  const mb = (views.reduce((n, v) => n + v.byteLength, 0) + head.byteLength) / 1e6;
  const out = openDurable(file, { error: (f) => new CacheError(file, cacheWriteFailure(f, mb), 'ERR_GNN_CACHE_WRITE') });
  try {
    out.write(head);
    const zeros = new Uint8Array(8);
    views.forEach((v, i) => {
      if (out.bytesWritten !== entries[i].offset) throw new CacheError(file, `internal: offset mismatch writing array '${entries[i].name}'`, 'ERR_GNN_INTERNAL');
      out.write(bytesOf(v));
      const p = pad8(out.bytesWritten) - out.bytesWritten;
      if (p) out.write(zeros.subarray(0, p));
    });
  } catch (e) {
    out.abort();
    throw e;
  }
  out.commit();
}

function elementSize(dtype: string): number {
  return dtype === 'f64' ? 8 : dtype === 'u8' ? 1 : 4;
}

/** Every value finite (and >= 0 when `nonNegative`), else ERR_GNN_CACHE_CORRUPT naming the first bad index. */
function checkValues(file: string, name: string, a: Float32Array | Float64Array, nonNegative: boolean): void {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (!(x >= 0) && (nonNegative || !Number.isFinite(x)))
      throw new CacheError(file, `corrupt: ${name}[${i}] = ${x}${nonNegative ? ' (distances must be finite and >= 0)' : ' is not finite'}`, 'ERR_GNN_CACHE_CORRUPT');
    if (x === Infinity) throw new CacheError(file, `corrupt: ${name}[${i}] is not finite`, 'ERR_GNN_CACHE_CORRUPT');
  }
}

/**
 * Every edge direction a unit vector (|u|^2 within 1e-4 of 1) or exactly the
 * zero vector (an edge of length 0), else ERR_GNN_CACHE_CORRUPT naming the edge.
 */
function checkDirections(file: string, u: Float32Array): void {
  for (let e = 0; 3 * e < u.length; e++) {
    const x = u[3 * e], y = u[3 * e + 1], z = u[3 * e + 2];
    const n2 = x * x + y * y + z * z;
    if (!(Math.abs(n2 - 1) <= 1e-4) && !(x === 0 && y === 0 && z === 0))
      throw new CacheError(file, `corrupt: directions of edge ${e} = (${x}, ${y}, ${z}) is neither a unit vector nor zero (squared norm ${n2})`, 'ERR_GNN_CACHE_CORRUPT');
  }
}

/** Options of {@link loadStore}. */
export interface LoadStoreOptions {
  /** Verify array checksums (default true; ~0.1 s per 100 MB). */
  verify?: boolean;
}

/** True when the file starts with the `.gnb` magic. */
export function isGnbFile(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    const b = Buffer.alloc(8);
    const n = fs.readSync(fd, b, 0, 8, 0);
    fs.closeSync(fd);
    return n === 8 && b.toString('latin1') === MAGIC;
  } catch {
    return false;
  }
}

/**
 * Loads a `.gnb` cache; typed arrays are views of the file's bytes. Throws a
 * {@link CacheError} (codes ERR_GNN_CACHE_MAGIC, _VERSION, _TRUNCATED, _CORRUPT)
 * for anything that is not an intact cache of this version.
 */
export function loadStore(file: string, options: LoadStoreOptions = {}): GraphStore {
  const buf = fs.readFileSync(file);
  if (buf.byteLength < 16 || buf.toString('latin1', 0, 8) !== MAGIC)
    throw new CacheError(file, 'not a gnnbatch .gnb cache (bad magic)', 'ERR_GNN_CACHE_MAGIC');
  const version = buf.readUInt32LE(8);
  if (!READABLE_VERSIONS.includes(version))
    throw new CacheError(file, `cache format version ${version}, this gnnbatch reads versions ${READABLE_VERSIONS.join(' and ')}; rebuild it with "gnnbatch data build"`, 'ERR_GNN_CACHE_VERSION');
  const hlen = buf.readUInt32LE(12);
  if (16 + hlen > buf.byteLength) throw new CacheError(file, 'truncated inside the header', 'ERR_GNN_CACHE_TRUNCATED');
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + hlen)) as Header;
  } catch {
    throw new CacheError(file, 'corrupt header (not valid JSON)', 'ERR_GNN_CACHE_CORRUPT');
  }
  if (!header || !Number.isInteger(header.numGraphs) || header.numGraphs < 0 || !Array.isArray(header.arrays) || !Array.isArray(header.ids) || !Array.isArray(header.targetNames))
    throw new CacheError(file, 'corrupt header (missing fields)', 'ERR_GNN_CACHE_CORRUPT');
  if (!header.ids.every((x) => typeof x === 'string') || !header.targetNames.every((x) => typeof x === 'string') || typeof header.source !== 'string')
    throw new CacheError(file, 'corrupt header (ids, targetNames and source must be strings)', 'ERR_GNN_CACHE_CORRUPT');
  try {
    parseGraphRule(header.graphRule);
  } catch {
    throw new CacheError(file, `corrupt header (graph rule ${JSON.stringify(header.graphRule)})`, 'ERR_GNN_CACHE_CORRUPT');
  }
  // Arrays start after the header, are 8-byte aligned and do not overlap.
  const dataStart = pad8(16 + hlen);
  let dataEnd = dataStart;
  // Typed arrays need aligned offsets: copy once if Node handed us an unaligned buffer.
  const base = buf.byteOffset % 8 === 0 ? buf : Buffer.from(buf);
  const arrays = new Map<string, ArrayBufferView & { length: number }>();
  for (const spec of ARRAYS) {
    const e = header.arrays.find((a) => a.name === spec.name);
    if (!e && spec.optional) continue;
    if (version < 2 && (spec.name === 'forces' || spec.name === 'stress'))
      throw new CacheError(file, `corrupt header (array '${spec.name}' in a version ${version} file)`, 'ERR_GNN_CACHE_CORRUPT');
    if (!e || e.dtype !== spec.dtype || !Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.length) || e.offset % 8 !== 0 || e.length < 0)
      throw new CacheError(file, `corrupt header (array '${spec.name}': dtype, offset or length)`, 'ERR_GNN_CACHE_CORRUPT');
    if (e.offset < dataEnd)
      throw new CacheError(file, `corrupt header (array '${spec.name}' starts at byte ${e.offset}, inside the header or a previous array, which end at ${dataEnd})`, 'ERR_GNN_CACHE_CORRUPT');
    const bytes = e.length * elementSize(e.dtype);
    dataEnd = e.offset + bytes;
    if (e.offset + bytes > base.byteLength)
      throw new CacheError(file, `truncated: array '${spec.name}' needs bytes up to ${e.offset + bytes}, the file has ${base.byteLength}`, 'ERR_GNN_CACHE_TRUNCATED');
    const at = base.byteOffset + e.offset;
    const view =
      spec.dtype === 'i32' ? new Int32Array(base.buffer, at, e.length)
      : spec.dtype === 'u8' ? new Uint8Array(base.buffer, at, e.length)
      : spec.dtype === 'f32' ? new Float32Array(base.buffer, at, e.length)
      : new Float64Array(base.buffer, at, e.length);
    if (options.verify !== false && checksum32(bytesOf(view)) !== e.checksum)
      throw new CacheError(file, `corrupt: checksum mismatch in array '${spec.name}'`, 'ERR_GNN_CACHE_CORRUPT');
    arrays.set(spec.name, view);
  }
  const store: GraphStore = {
    numGraphs: header.numGraphs,
    nodeOffset: arrays.get('nodeOffset') as Int32Array,
    edgeOffset: arrays.get('edgeOffset') as Int32Array,
    atomicNumber: arrays.get('atomicNumber') as Uint8Array,
    positions: arrays.get('positions') as Float32Array,
    senders: arrays.get('senders') as Int32Array,
    receivers: arrays.get('receivers') as Int32Array,
    distance: arrays.get('distance') as Float32Array,
    senderPerm: arrays.get('senderPerm') as Int32Array,
    targets: arrays.get('targets') as Float64Array,
    targetNames: header.targetNames,
    ids: header.ids,
    cells: arrays.get('cells') as Float64Array | undefined,
    pbc: arrays.get('pbc') as Uint8Array | undefined,
    graphRule: header.graphRule,
    source: header.source,
  };
  const directions = arrays.get('directions') as Float32Array | undefined;
  if (directions) store.directions = directions;
  const forces = arrays.get('forces') as Float32Array | undefined;
  if (forces) store.forces = forces;
  const stress = arrays.get('stress') as Float32Array | undefined;
  if (stress) store.stress = stress;
  const G = store.numGraphs;
  if (store.nodeOffset.length !== G + 1 || store.ids.length !== G || store.targets.length !== G * store.targetNames.length ||
      store.positions.length !== store.atomicNumber.length * 3)
    throw new CacheError(file, 'corrupt: array lengths disagree with the graph count', 'ERR_GNN_CACHE_CORRUPT');
  if (store.cells && store.cells.length !== G * 9)
    throw new CacheError(file, `corrupt: array 'cells' has ${store.cells.length} values, ${G} graphs need ${G * 9}`, 'ERR_GNN_CACHE_CORRUPT');
  if (store.pbc && store.pbc.length !== G * 3)
    throw new CacheError(file, `corrupt: array 'pbc' has ${store.pbc.length} values, ${G} graphs need ${G * 3}`, 'ERR_GNN_CACHE_CORRUPT');
  if (directions && directions.length !== 3 * store.senders.length)
    throw new CacheError(file, `corrupt: array 'directions' has ${directions.length} values, ${store.senders.length} edges need ${3 * store.senders.length}`, 'ERR_GNN_CACHE_CORRUPT');
  if (forces && forces.length !== 3 * store.atomicNumber.length)
    throw new CacheError(file, `corrupt: array 'forces' has ${forces.length} values, ${store.atomicNumber.length} atoms need ${3 * store.atomicNumber.length}`, 'ERR_GNN_CACHE_CORRUPT');
  if (stress && stress.length !== 6 * G)
    throw new CacheError(file, `corrupt: array 'stress' has ${stress.length} values, ${G} graphs need ${6 * G}`, 'ERR_GNN_CACHE_CORRUPT');
  // NaN marks a structure without forces or stress; infinities are corrupt.
  for (const [name, a] of [['forces', forces], ['stress', stress]] as const)
    if (a) for (let i = 0; i < a.length; i++) if (a[i] === Infinity || a[i] === -Infinity) throw new CacheError(file, `corrupt: ${name}[${i}] is not finite`, 'ERR_GNN_CACHE_CORRUPT');
  checkValues(file, 'distance', store.distance, true);
  if (directions) checkDirections(file, directions);
  checkValues(file, 'positions', store.positions, false);
  if (store.cells) checkValues(file, 'cells', store.cells, false);
  try {
    native().validateStore({ ...store, target: new Float64Array(G) });
  } catch (e) {
    throw new CacheError(file, `corrupt: ${(e as Error).message}`, 'ERR_GNN_CACHE_CORRUPT');
  }
  return store;
}
