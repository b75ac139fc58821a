/**
 * AFLOW JSON: an AFLUX/REST response, i.e. an array of entries (an object of
 * entries, or `{ "entries": [...] }`, is accepted too). Each entry needs
 * `geometry` (a, b, c in Å, alpha, beta, gamma in degrees; an array or a comma
 * separated string), `positions_fractional` ([[x, y, z], ...]) and the species:
 * `species` per atom, or the distinct `species` with `composition` counts, or
 * the `compound` formula (e.g. `Ag1Al3`) in the atoms' order. Numeric fields
 * (`enthalpy_formation_atom`, `Egap`, ...) become targets; `auid` is the id.
 * The cell follows the usual convention: a along x, b in the xy plane.
 */
import * as fs from 'fs';
import { atomicNumberOf } from '../elements';
import { DataFormatError } from '../errors';
import type { Structure } from '../types';

/** Lattice vectors (rows) from cell parameters (Å, degrees). */
export function cellFromParameters(a: number, b: number, c: number, alpha: number, beta: number, gamma: number): Float64Array {
  const r = Math.PI / 180;
  const ca = Math.cos(alpha * r), cb = Math.cos(beta * r), cg = Math.cos(gamma * r), sg = Math.sin(gamma * r);
  const cx = c * cb;
  const cy = (c * (ca - cb * cg)) / sg;
  const cz2 = c * c - cx * cx - cy * cy;
  return Float64Array.from([a, 0, 0, b * cg, b * sg, 0, cx, cy, Math.sqrt(Math.max(0, cz2))]);
}

function numberList(v: unknown): number[] | null {
  if (Array.isArray(v)) return v.map((x) => Number(x));
  if (typeof v === 'string') return v.split(/[,\s]+/).filter((s) => s !== '').map(Number);
  return null;
}

function speciesOfEntry(e: Record<string, unknown>, n: number, err: (field: string, msg: string) => Error): string[] {
  const species = Array.isArray(e.species) ? e.species.map(String) : typeof e.species === 'string' ? e.species.split(/[,\s]+/).filter(Boolean) : null;
  // Counts are checked against the entry's own positions before anything is
  // expanded: a 100-byte entry with composition [1e9, 1] must not allocate 1e9 strings.
  const comp = e.composition === undefined || e.composition === null ? null : numberList(e.composition);
  if (species && comp && comp.length === species.length) {
    const k = comp.findIndex((c) => !Number.isSafeInteger(c) || c < 0);
    if (k >= 0) throw err('composition', `count ${k} is ${comp[k]}, not a non-negative integer`);
    const total = comp.reduce((a, c) => a + c, 0);
    if (total !== n) throw err('composition', `composition sums to ${total} atoms but positions_fractional has ${n}`);
  }
  if (species && species.length === n) return species;
  if (species && comp && comp.length === species.length) {
    const out: string[] = [];
    species.forEach((s, k) => { for (let i = 0; i < comp[k]; i++) out.push(s); });
    return out;
  }
  if (typeof e.compound === 'string') {
    const parts = [...e.compound.matchAll(/([A-Z][a-z]?)(\d*)/g)].map((m) => ({ symbol: m[1], count: m[2] === '' ? 1 : Number(m[2]) }));
    const total = parts.reduce((a, p) => a + p.count, 0);
    if (!Number.isSafeInteger(total) || total !== n) throw err('compound', `'${e.compound}' has ${total} atoms but positions_fractional has ${n}`);
    const out: string[] = [];
    for (const p of parts) for (let i = 0; i < p.count; i++) out.push(p.symbol);
    return out;
  }
  throw err('species', 'missing: need per-atom species, species with composition, or compound');
}

/** Parses the entries of an AFLOW JSON document; `file` names it in errors. */
export function parseAflowJson(text: string, file: string): Structure[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new DataFormatError({ file }, `not valid JSON: ${(e as Error).message}`);
  }
  let entries: unknown[];
  if (Array.isArray(doc)) entries = doc;
  else if (doc && typeof doc === 'object' && Array.isArray((doc as { entries?: unknown }).entries)) entries = (doc as { entries: unknown[] }).entries;
  else if (doc && typeof doc === 'object') entries = Object.values(doc as Record<string, unknown>);
  else throw new DataFormatError({ file }, 'expected an array of AFLOW entries');
  return entries.map((raw, entry) => {
    const err = (field: string, msg: string) => new DataFormatError({ file, entry, field }, msg);
    if (!raw || typeof raw !== 'object') throw err('entry', 'not an object');
    const e = raw as Record<string, unknown>;
    if (e.geometry === undefined || e.geometry === null) throw err('geometry', 'missing (cell parameters a, b, c, alpha, beta, gamma)');
    const g = numberList(e.geometry);
    if (!g || g.length !== 6 || !g.every(Number.isFinite) || g.slice(0, 3).some((x) => x <= 0))
      throw err('geometry', `expected 6 numbers a, b, c, alpha, beta, gamma, found ${JSON.stringify(e.geometry)}`);
    const fr = e.positions_fractional;
    if (!Array.isArray(fr) || fr.length === 0) throw err('positions_fractional', 'missing or empty');
    const n = fr.length;
    const cell = cellFromParameters(g[0], g[1], g[2], g[3], g[4], g[5]);
    const species = speciesOfEntry(e, n, err);
    const numbers = new Uint8Array(n);
    const positions = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      const z = atomicNumberOf(species[i]);
      if (z === 0) throw err('species', `unknown element symbol '${species[i]}' (atom ${i})`);
      numbers[i] = z;
      const f = numberList(fr[i]);
      if (!f || f.length !== 3 || !f.every(Number.isFinite)) throw err('positions_fractional', `atom ${i}: expected 3 numbers, found ${JSON.stringify(fr[i])}`);
      for (let a = 0; a < 3; a++) positions[i * 3 + a] = f[0] * cell[a] + f[1] * cell[3 + a] + f[2] * cell[6 + a];
    }
    const targets: Record<string, number> = {};
    const info: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(e)) {
      if (['geometry', 'positions_fractional', 'positions_cartesian', 'species', 'composition'].includes(k)) continue;
      if (typeof v === 'number' && Number.isFinite(v)) targets[k] = v;
      else if (typeof v === 'string') info[k] = v;
    }
    const id = typeof e.auid === 'string' ? e.auid : typeof e.compound === 'string' ? `${e.compound}#${entry}` : String(entry);
    return { id, numbers, positions, cell, pbc: [true, true, true] as [boolean, boolean, boolean], targets, info };
  });
}

/** Reads an AFLOW JSON file. */
export async function* readAflowJson(file: string): AsyncGenerator<Structure> {
  yield* parseAflowJson(await fs.promises.readFile(file, 'utf8'), file);
}
