/**
 * Extended XYZ as ASE and most materials tools write it. Each frame:
 *
 *   line 1   atom count n
 *   line 2   key=value pairs: `Lattice="ax ay az bx by bz cx cy cz"`,
 *            `Properties=species:S:1:pos:R:3[:name:T:m]...`, `pbc="T T T"`,
 *            and info values: numbers, quoted strings ("..." with \" escapes),
 *            booleans (T/F/True/False), bare keys (= True)
 *   n lines  one atom per line, columns as `Properties` says
 *            (default `species:S:1:pos:R:3`; `Z:I:1` may replace species)
 *
 * Unquoted scalar numbers become targets (ASE's per-frame `energy` among
 * them), booleans go to both `info` and targets (1/0); quoted values (strings,
 * vectors, quoted numbers) stay in `info`, except `stress` (9 numbers, 3x3, or
 * 6, Voigt) and `virial` (9 numbers; stress = -virial / V), which become
 * {@link Structure.stress}. A `forces:R:3` column becomes {@link Structure.forces}.
 * Frames are streamed one at a time.
 */
import { atomicNumberOf, ELEMENT_SYMBOLS } from '../elements';
import { DataFormatError, parseNumber } from '../errors';
import type { Structure } from '../types';
import { cellVolume } from '../cell';
import { readLines } from './lines';
import { DurableWriteError, openDurable } from '../../util/durable';

type InfoValue = string | number | boolean;

/**
 * Splits an extxyz comment line into [key, value, quoted] triples (values
 * unquoted; a bare key has the value `true`).
 */
export function parseKeyValues(line: string): Array<[string, string | true, boolean]> {
  const out: Array<[string, string | true, boolean]> = [];
  let i = 0;
  const n = line.length;
  let quoted = false;
  const readToken = (): string => {
    let s = '';
    quoted = false;
    if (line[i] === '"' || line[i] === "'") {
      quoted = true;
      const q = line[i++];
      while (i < n && line[i] !== q) {
        if (line[i] === '\\' && i + 1 < n) i++;
        s += line[i++];
      }
      i++;
      return s;
    }
    if (line[i] === '{' || line[i] === '[') {
      const close = line[i] === '{' ? '}' : ']';
      i++;
      while (i < n && line[i] !== close) s += line[i++];
      i++;
      return s.replace(/,/g, ' ').trim();
    }
    while (i < n && !/[\s=]/.test(line[i])) s += line[i++];
    return s;
  };
  while (i < n) {
    while (i < n && /\s/.test(line[i])) i++;
    if (i >= n) break;
    const key = readToken();
    while (i < n && line[i] === ' ') i++;
    if (line[i] === '=') {
      i++;
      while (i < n && line[i] === ' ') i++;
      const v = readToken();
      out.push([key, v, quoted]);
    } else {
      out.push([key, true, false]);
    }
  }
  return out;
}

function parseBool(s: string): boolean | undefined {
  if (/^(T|True|true|TRUE)$/.test(s)) return true;
  if (/^(F|False|false|FALSE)$/.test(s)) return false;
  return undefined;
}

interface Column {
  name: string;
  type: 'S' | 'R' | 'I' | 'L';
  count: number;
}

function parseProperties(spec: string, loc: { file: string; line: number }): Column[] {
  const parts = spec.split(':');
  if (parts.length % 3 !== 0) throw new DataFormatError({ ...loc, field: 'Properties' }, `'${spec}' is not name:type:count triples`);
  const cols: Column[] = [];
  for (let k = 0; k < parts.length; k += 3) {
    const type = parts[k + 1].toUpperCase();
    const count = Number(parts[k + 2]);
    if (!'SRIL'.includes(type) || type.length !== 1 || !Number.isInteger(count) || count < 1)
      throw new DataFormatError({ ...loc, field: 'Properties' }, `bad column spec '${parts.slice(k, k + 3).join(':')}'`);
    cols.push({ name: parts[k], type: type as Column['type'], count });
  }
  return cols;
}

/** Parses one frame from its header (comment) line and atom lines. */
function parseFrame(n: number, comment: string, atomLines: string[], file: string, firstLine: number, frame: number): Structure {
  const loc = { file, line: firstLine + 1 };
  let columns: Column[] = [{ name: 'species', type: 'S', count: 1 }, { name: 'pos', type: 'R', count: 3 }];
  let cell: Float64Array | null = null;
  let pbc: [boolean, boolean, boolean] | null = null;
  const targets: Record<string, number> = {};
  const info: Record<string, InfoValue> = {};
  for (const [key, raw, quoted] of parseKeyValues(comment)) {
    const lower = key.toLowerCase();
    if (raw === true) {
      info[key] = true;
      targets[key] = 1;
      continue;
    }
    if (lower === 'properties') columns = parseProperties(raw, loc);
    else if (lower === 'lattice') {
      const v = raw.trim().split(/\s+/).map(parseNumber);
      if (v.length !== 9 || !v.every(Number.isFinite)) throw new DataFormatError({ ...loc, field: 'Lattice' }, `expected 9 numbers, found '${raw}'`);
      cell = Float64Array.from(v);
    } else if (lower === 'pbc') {
      const v = raw.trim().split(/\s+/).map(parseBool);
      if (v.length !== 3 || v.some((b) => b === undefined)) throw new DataFormatError({ ...loc, field: 'pbc' }, `expected three of T/F, found '${raw}'`);
      pbc = [v[0] as boolean, v[1] as boolean, v[2] as boolean];
    } else if (quoted) {
      // Quoted values stay strings (ids such as "000123", vectors such as "1 2 3").
      info[key] = raw;
    } else {
      const b = parseBool(raw);
      const num = parseNumber(raw);
      if (b !== undefined) {
        info[key] = b;
        targets[key] = b ? 1 : 0;
      } else if (Number.isFinite(num) && !/^\s*$/.test(raw) && !/\s/.test(raw.trim())) {
        targets[key] = num;
      } else {
        info[key] = raw;
      }
    }
  }
  if (!pbc) pbc = cell ? [true, true, true] : [false, false, false];
  if (pbc.some((p) => p) && !cell) throw new DataFormatError({ ...loc, field: 'Lattice' }, 'pbc is set but the frame has no Lattice');
  const stress = frameStress(info, cell, { ...loc, entry: frame });
  const width = columns.reduce((s, c) => s + c.count, 0);
  let speciesCol = -1, zCol = -1, posCol = -1, forcesCol = -1, at = 0;
  for (const c of columns) {
    if (c.name === 'species' && c.type === 'S') speciesCol = at;
    if (c.name === 'Z' && c.type === 'I') zCol = at;
    if ((c.name === 'pos' || c.name === 'positions') && c.type === 'R' && c.count === 3) posCol = at;
    if (c.name === 'forces') {
      if (c.type !== 'R' || c.count !== 3)
        throw new DataFormatError({ ...loc, entry: frame, field: 'forces' }, `the forces column must be 'forces:R:3' (three reals per atom), found 'forces:${c.type}:${c.count}'`);
      forcesCol = at;
    }
    at += c.count;
  }
  if (posCol < 0) throw new DataFormatError({ ...loc, field: 'Properties' }, "no 'pos:R:3' column");
  if (speciesCol < 0 && zCol < 0) throw new DataFormatError({ ...loc, field: 'Properties' }, "no 'species:S:1' or 'Z:I:1' column");
  const numbers = new Uint8Array(n);
  const positions = new Float64Array(n * 3);
  const forces = forcesCol >= 0 ? new Float64Array(n * 3) : undefined;
  for (let i = 0; i < n; i++) {
    const ln = firstLine + 2 + i;
    const tok = atomLines[i].trim().split(/\s+/);
    if (tok.length !== width)
      throw new DataFormatError({ file, line: ln, entry: frame, field: 'atoms' }, `expected ${width} columns (Properties), found ${tok.length}: the atom count or the columns disagree with the lines`);
    let z: number;
    if (speciesCol >= 0) {
      z = atomicNumberOf(tok[speciesCol]);
      if (z === 0) throw new DataFormatError({ file, line: ln, entry: frame, field: 'species' }, `unknown element symbol '${tok[speciesCol]}'`);
    } else {
      z = Number(tok[zCol]);
      if (!Number.isInteger(z) || z < 1 || z >= ELEMENT_SYMBOLS.length) throw new DataFormatError({ file, line: ln, entry: frame, field: 'Z' }, `not an atomic number: '${tok[zCol]}'`);
    }
    numbers[i] = z;
    for (let a = 0; a < 3; a++) {
      const v = parseNumber(tok[posCol + a]);
      if (!Number.isFinite(v)) throw new DataFormatError({ file, line: ln, entry: frame, field: 'pos' }, `not a number: '${tok[posCol + a]}'`);
      positions[i * 3 + a] = v;
    }
    if (forces)
      for (let a = 0; a < 3; a++) {
        const v = parseNumber(tok[forcesCol + a]);
        if (!Number.isFinite(v)) throw new DataFormatError({ file, line: ln, entry: frame, field: 'forces' }, `force component ${'xyz'[a]} of atom ${i} is not a finite number: '${tok[forcesCol + a]}'`);
        forces[i * 3 + a] = v;
      }
  }
  const id = typeof info.id === 'string' ? info.id : typeof info.name === 'string' ? info.name : String(targets.id ?? frame);
  const s: Structure = { id, numbers, positions, cell, pbc, targets, info };
  if (forces) s.forces = forces;
  if (stress) s.stress = stress;
  return s;
}


/**
 * The frame's stress in Voigt order (xx yy zz yz xz xy), taken out of `info`:
 * ASE writes `stress` as the full 3x3 matrix (9 numbers, row-major) or in
 * Voigt form (6 numbers), and some codes `virial` (9 numbers, energy units),
 * which is converted as stress = -virial / V (needs the Lattice). `stress`
 * wins when both are given. Undefined when the frame has neither.
 */
function frameStress(info: Record<string, InfoValue>, cell: Float64Array | null, loc: { file: string; line: number; entry: number }): Float64Array | undefined {
  const read = (key: string): number[] | undefined => {
    const raw = info[key];
    if (raw === undefined) return undefined;
    const v = typeof raw === 'string' ? raw.trim().split(/\s+/).map(parseNumber) : [Number.NaN];
    if ((v.length !== 9 && (key !== 'stress' || v.length !== 6)))
      throw new DataFormatError({ ...loc, field: key }, `expected ${key === 'stress' ? '9 (3x3) or 6 (Voigt)' : '9 (3x3)'} numbers, found '${String(raw).slice(0, 80)}'`);
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new DataFormatError({ ...loc, field: key }, `component ${bad} is not a finite number in '${String(raw).slice(0, 80)}'`);
    delete info[key];
    return v;
  };
  const voigt = (m: number[]): Float64Array => Float64Array.of(m[0], m[4], m[8], m[5], m[2], m[1]);
  const stress = read('stress');
  const virial = read('virial');
  if (stress) return stress.length === 6 ? Float64Array.from(stress) : voigt(stress);
  if (!virial) return undefined;
  const volume = cell ? cellVolume(cell) : 0;
  if (!(volume > 0)) throw new DataFormatError({ ...loc, field: 'virial' }, 'a virial needs the cell volume (stress = -virial / V), but the frame has no Lattice of non-zero volume');
  return voigt(virial.map((x) => -x / volume));
}

/** Streams the frames of an extended XYZ file. */
export async function* readExtxyz(file: string): AsyncGenerator<Structure> {
  yield* extxyzFramesAsync(readLines(file), file);
}

/** Ceilings applied while extended XYZ text is read (each checked before the work it bounds). */
export interface ExtxyzReadLimits {
  /** Most frames; the count line of one more frame throws (default: no limit). */
  maxFrames?: number;
  /** Most atoms in one frame, checked on its count line before any atom line is kept (default: no limit). */
  maxAtoms?: number;
  /** Longest line in characters, checked while a line is still incomplete (default: no limit). */
  maxLineLength?: number;
}

/**
 * The frames of extended XYZ text held in memory (a request body, say); `name`
 * stands in for the file in error locations. Same rules as {@link readExtxyz};
 * `limits` stop the reading at the first frame, atom count or line beyond them.
 */
export function parseExtxyzText(text: string, name = '<extxyz text>', limits: ExtxyzReadLimits = {}): Structure[] {
  const reader = new ExtxyzTextReader(name, limits);
  reader.write(text);
  return reader.end();
}

/**
 * Incremental extended XYZ reader for text that arrives in pieces (an HTTP body
 * as it streams): {@link write} takes any split of the text (lines may straddle
 * pieces), parses every frame it completes and throws at the first malformed
 * frame or exceeded limit, so the work and memory of a hostile input stop at
 * the limit instead of after the whole input. {@link end} checks the input did
 * not stop inside a frame and returns all frames.
 */
export class ExtxyzTextReader {
  private readonly frames: Structure[] = [];
  private readonly reader: ExtxyzFrameReader;
  private readonly maxLine: number;
  private partial = '';
  constructor(name = '<extxyz text>', limits: ExtxyzReadLimits = {}) {
    this.reader = new ExtxyzFrameReader(name, limits);
    this.maxLine = limits.maxLineLength ?? Infinity;
  }

  /** Frames completed so far. */
  get count(): number {
    return this.frames.length;
  }

  /** Takes the next piece of the text. */
  write(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      let line = text.slice(start, nl);
      if (this.partial) {
        line = this.partial + line;
        this.partial = '';
      }
      this.checkLength(line.length);
      this.take(line.endsWith('\r') ? line.slice(0, -1) : line);
      start = nl + 1;
    }
    if (start < text.length) {
      this.partial += text.slice(start);
      this.checkLength(this.partial.length);
    }
  }

  /** Ends the text; returns every frame. */
  end(): Structure[] {
    if (this.partial) {
      const line = this.partial.endsWith('\r') ? this.partial.slice(0, -1) : this.partial;
      this.partial = '';
      this.take(line);
    }
    this.reader.end();
    return this.frames;
  }

  private take(line: string): void {
    const s = this.reader.push(line);
    if (s) this.frames.push(s);
  }

  private checkLength(length: number): void {
    if (length > this.maxLine) this.reader.fail('line', `a line is longer than the limit of ${this.maxLine} characters`);
  }
}

async function* extxyzFramesAsync(lines: AsyncIterable<string>, file: string): AsyncGenerator<Structure> {
  const frames = new ExtxyzFrameReader(file);
  for await (const line of lines) {
    const s = frames.push(line);
    if (s) yield s;
  }
  frames.end();
}

/** Line-at-a-time frame splitter shared by the file and the text readers. */
class ExtxyzFrameReader {
  private lineNo = 0;
  private frame = 0;
  private state: 'count' | 'comment' | 'atoms' = 'count';
  private n = 0;
  private comment = '';
  private start = 0;
  private atoms: string[] = [];
  constructor(
    private readonly file: string,
    private readonly limits: ExtxyzReadLimits = {},
  ) {}

  /** Throws a located format error at the current line. */
  fail(field: string, message: string): never {
    throw new DataFormatError({ file: this.file, line: this.lineNo + 1, entry: this.frame, field }, message);
  }

  /** Takes one line; returns a frame when the line completes one. */
  push(line: string): Structure | null {
    const file = this.file;
    this.lineNo++;
    if (this.state === 'count') {
      if (line.trim() === '') return null;
      this.n = Number(line.trim());
      if (!Number.isInteger(this.n) || this.n < 0)
        throw new DataFormatError({ file, line: this.lineNo, entry: this.frame, field: 'atom count' }, `expected an atom count, found '${line.trim().slice(0, 40)}'`);
      const { maxFrames, maxAtoms } = this.limits;
      if (maxFrames !== undefined && this.frame >= maxFrames)
        throw new DataFormatError({ file, line: this.lineNo, entry: this.frame, field: 'frames' }, `more than ${maxFrames} frames (the limit)`);
      if (maxAtoms !== undefined && this.n > maxAtoms)
        throw new DataFormatError({ file, line: this.lineNo, entry: this.frame, field: 'atom count' }, `${this.n} atoms is more than the limit of ${maxAtoms} per frame`);
      this.start = this.lineNo;
      this.state = 'comment';
    } else if (this.state === 'comment') {
      this.comment = line;
      this.atoms = [];
      this.state = this.n > 0 ? 'atoms' : 'count';
      if (this.n === 0) return parseFrame(0, this.comment, this.atoms, file, this.start, this.frame++);
    } else {
      this.atoms.push(line);
      if (this.atoms.length === this.n) {
        this.state = 'count';
        return parseFrame(this.n, this.comment, this.atoms, file, this.start, this.frame++);
      }
    }
    return null;
  }

  /** Checks that the input did not stop inside a frame. */
  end(): void {
    const { state, n, atoms, frame, lineNo, file } = this;
    if (state !== 'count')
      throw new DataFormatError({ file, line: lineNo + 1, entry: frame, field: 'atoms' }, `truncated: frame ${frame} announces ${n} atoms but the input ends after ${state === 'atoms' ? atoms.length : 0}`);
  }
}

function formatValue(v: InfoValue): string {
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  if (typeof v === 'number') return String(v);
  return /^[^\s"'=]+$/.test(v) && parseBool(v) === undefined && !Number.isFinite(parseNumber(v)) ? v : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** One frame in extended XYZ (round-trips through {@link readExtxyz}). */
export function formatExtxyzFrame(s: Structure): string {
  const parts: string[] = [];
  const periodic = s.pbc.some((p) => p);
  if (s.cell && (periodic || s.cell.some((x) => x !== 0))) parts.push(`Lattice="${Array.from(s.cell, (x) => String(x)).join(' ')}"`);
  const withForces = s.forces !== undefined && s.forces.length === 3 * s.numbers.length;
  parts.push(withForces ? 'Properties=species:S:1:pos:R:3:forces:R:3' : 'Properties=species:S:1:pos:R:3');
  if (s.stress && s.stress.length === 6) {
    // ASE's form: the full 3x3 matrix, row-major.
    const [xx, yy, zz, yz, xz, xy] = Array.from(s.stress, (x) => String(x));
    parts.push(`stress="${[xx, xy, xz, xy, yy, yz, xz, yz, zz].join(' ')}"`);
  }
  const infoKeys = new Set(Object.keys(s.info ?? {}));
  for (const [k, v] of Object.entries(s.targets)) if (!infoKeys.has(k)) parts.push(`${k}=${formatValue(v)}`);
  for (const [k, v] of Object.entries(s.info ?? {})) parts.push(`${k}=${formatValue(v)}`);
  if (!infoKeys.has('id') && !('id' in s.targets)) parts.push(`id=${formatValue(String(s.id))}`);
  parts.push(`pbc="${s.pbc.map((p) => (p ? 'T' : 'F')).join(' ')}"`);
  const lines = [String(s.numbers.length), parts.join(' ')];
  for (let i = 0; i < s.numbers.length; i++) {
    const p = s.positions;
    const f = withForces && s.forces ? ` ${s.forces[i * 3]} ${s.forces[i * 3 + 1]} ${s.forces[i * 3 + 2]}` : '';
    lines.push(`${ELEMENT_SYMBOLS[s.numbers[i]]} ${p[i * 3]} ${p[i * 3 + 1]} ${p[i * 3 + 2]}${f}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Writes structures to an extended XYZ file, streamed (about 1 MB at a time)
 * into a durable write (src/util/durable.ts): `file` appears only complete; a
 * failure (of the source or of the disk) leaves no partial file and an
 * existing `file` intact. A disk failure is GnnError ERR_GNN_OUTPUT_PATH
 * naming the file and the reason.
 */
export async function writeExtxyz(file: string, structures: Iterable<Structure> | AsyncIterable<Structure>): Promise<number> {
  const out = openDurable(file, { error: (f) => new DurableWriteError('ERR_GNN_OUTPUT_PATH', f) });
  let count = 0;
  let pending = '';
  try {
    for await (const s of structures) {
      pending += formatExtxyzFrame(s);
      count++;
      if (pending.length >= 1 << 20) {
        out.write(pending);
        pending = '';
      }
    }
    if (pending !== '') out.write(pending);
  } catch (e) {
    out.abort();
    throw e;
  }
  out.commit();
  return count;
}
