/**
 * QM9 in its original layout (Ramakrishnan et al. 2014, `dsgdb9nsd.xyz.tar.bz2`):
 * one molecule per `dsgdb9nsd_NNNNNN.xyz`:
 *
 *   line 1        atom count n
 *   line 2        `gdb <id>` then 15 properties A B C mu alpha homo lumo gap r2 zpve U0 U H G Cv
 *   lines 3..n+2  `element x y z mulliken_charge` (Å, e)
 *   line n+3      harmonic vibrational frequencies
 *   line n+4      SMILES (GDB-17 geometry, relaxed geometry), tab separated
 *   line n+5      InChI (GDB-17, relaxed)
 *
 * Numbers may use Mathematica's exponent form `1.2345*^-6`. Properties are kept
 * in the file's units (energies in Hartree, mu in Debye, alpha in bohr^3, ...).
 * Readers: a single file, a directory of `.xyz` files (sorted by name), and the
 * `.tar.bz2` (or `.tar`) archive, streamed without unpacking to disk.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import * as tar from 'tar-stream';
import { atomicNumberOf } from '../elements';
import { DataFormatError, DataLimitError, parseNumber } from '../errors';
import { resolveLimits, type DataLimits } from '../limits';
import type { Structure } from '../types';
import { bunzip2Blocks } from './bzip2';

/** The 15 QM9 property names, in file order. */
export const QM9_PROPERTIES = ['A', 'B', 'C', 'mu', 'alpha', 'homo', 'lumo', 'gap', 'r2', 'zpve', 'U0', 'U', 'H', 'G', 'Cv'] as const;

/** Parses the text of one QM9 `.xyz` file; `file` names it in errors. */
export function parseQm9Xyz(text: string, file: string): Structure {
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  const err = (line: number, field: string, msg: string) => new DataFormatError({ file, line, field }, msg);
  if (lines.length === 0) throw err(1, 'atom count', 'empty file');
  const n = Number(lines[0].trim());
  if (!Number.isInteger(n) || n < 1) throw err(1, 'atom count', `expected a positive integer, found '${lines[0].trim()}'`);
  if (lines.length < 2) throw err(2, 'properties', 'truncated: the property line is missing');
  const head = lines[1].trim().split(/\s+/);
  if (head[0] !== 'gdb' || head.length < 2 + QM9_PROPERTIES.length)
    throw err(2, 'properties', `expected 'gdb <id>' and ${QM9_PROPERTIES.length} properties, found ${Math.max(0, head.length - 2)} values`);
  const id = head[1];
  const targets: Record<string, number> = {};
  QM9_PROPERTIES.forEach((name, k) => {
    const v = parseNumber(head[2 + k]);
    if (!Number.isFinite(v)) throw err(2, name, `not a number: '${head[2 + k]}'`);
    targets[name] = v;
  });
  const numbers = new Uint8Array(n);
  const positions = new Float64Array(n * 3);
  const charges: number[] = [];
  for (let i = 0; i < n; i++) {
    const ln = 3 + i;
    if (ln > lines.length) throw err(ln, 'atoms', `truncated: the header says ${n} atoms but the file ends after ${i}`);
    const tok = lines[ln - 1].trim().split(/\s+/);
    const z = atomicNumberOf(tok[0] ?? '');
    if (tok.length < 4 || Number.isFinite(parseNumber(tok[0]))) {
      throw err(ln, 'element', `expected atom ${i + 1} of ${n} ('element x y z charge'), found '${lines[ln - 1].trim()}': the atom count disagrees with the lines`);
    }
    if (z === 0) throw err(ln, 'element', `unknown element symbol '${tok[0]}'`);
    numbers[i] = z;
    for (let a = 0; a < 3; a++) {
      const v = parseNumber(tok[1 + a]);
      if (!Number.isFinite(v)) throw err(ln, 'xyz'[a], `not a number: '${tok[1 + a]}'`);
      positions[i * 3 + a] = v;
    }
    charges.push(parseNumber(tok[4]));
  }
  // The three trailer lines must follow the atoms exactly.
  const trailer = lines.slice(n + 2);
  if (trailer.length >= 1) {
    const first = trailer[0].trim().split(/\s+/);
    if (atomicNumberOf(first[0]) > 0 && first.length >= 4)
      throw err(n + 3, 'atoms', `another atom line after the ${n} atoms the header announces: the atom count disagrees with the lines`);
  }
  if (trailer.length < 3) throw err(n + 3 + trailer.length, 'trailer', `truncated: expected frequencies, SMILES and InChI lines after the ${n} atoms`);
  if (trailer.length > 3) throw err(n + 6, 'trailer', `unexpected extra line(s) after the InChI line`);
  const smiles = trailer[1].trim().split(/\s+/);
  const inchi = trailer[2].trim().split(/\s+/);
  return {
    id,
    numbers,
    positions,
    cell: null,
    pbc: [false, false, false],
    targets,
    info: { smiles: smiles[0] ?? '', smilesRelaxed: smiles[1] ?? smiles[0] ?? '', inchi: inchi[0] ?? '', file: path.basename(file) },
  };
}

/** Options of the QM9 readers. */
export type Qm9ReadOptions = Pick<DataLimits, 'maxMemberBytes'>;

/** A QM9 molecule file is a few kB: refuse one larger than the ceiling before reading it. */
function memberTooLarge(file: string, bytes: number, limit: number): DataLimitError {
  return new DataLimitError({ file }, `${bytes.toLocaleString('en-US')} bytes or more, larger than the ceiling of ${limit.toLocaleString('en-US')} bytes for one QM9 molecule file (raise it with maxMemberBytes or GNNBATCH_MAX_MEMBER_BYTES)`, 'ERR_GNN_DATA_TOO_LARGE');
}

async function readMolecule(file: string, limit: number): Promise<Structure> {
  const size = (await fs.promises.stat(file)).size;
  if (size > limit) throw memberTooLarge(file, size, limit);
  return parseQm9Xyz(await fs.promises.readFile(file, 'utf8'), file);
}

/** Reads one QM9 `.xyz` file. */
export async function* readQm9File(file: string, options: Qm9ReadOptions = {}): AsyncGenerator<Structure> {
  yield await readMolecule(file, resolveLimits(options).maxMemberBytes);
}

/** Reads every `.xyz` file of a directory, in name order. */
export async function* readQm9Directory(dir: string, options: Qm9ReadOptions = {}): AsyncGenerator<Structure> {
  const limit = resolveLimits(options).maxMemberBytes;
  const names = (await fs.promises.readdir(dir)).filter((f) => f.endsWith('.xyz')).sort();
  for (const name of names) yield await readMolecule(path.join(dir, name), limit);
}

/**
 * Reads the `.xyz` members of a `.tar.bz2` (or plain `.tar`) archive in archive
 * order, streaming: bzip2 blocks are decoded one at a time and fed to the tar
 * parser with backpressure.
 */
export async function* readQm9Archive(file: string, options: Qm9ReadOptions = {}): AsyncGenerator<Structure> {
  const limit = resolveLimits(options).maxMemberBytes;
  const compressed = /\.(tbz2?|tar\.bz2|bz2)$/i.test(file);
  const source = compressed ? Readable.from(bunzip2Blocks(file)) : fs.createReadStream(file);
  const extract = tar.extract();
  source.on('error', (e: Error) => extract.destroy(e));
  source.pipe(extract);
  try {
    for await (const entry of extract) {
      const name = entry.header.name;
      if (entry.header.type !== 'file' || !name.endsWith('.xyz')) {
        entry.resume();
        continue;
      }
      // The tar header announces the size: refuse before reading; count while
      // streaming too (a header can lie, and decoding is bounded by the limit).
      const member = `${file}:${name}`;
      if ((entry.header.size ?? 0) > limit) throw memberTooLarge(member, entry.header.size ?? 0, limit);
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const c of entry) {
        bytes += (c as Buffer).length;
        if (bytes > limit) throw memberTooLarge(member, bytes, limit);
        chunks.push(c as Buffer);
      }
      yield parseQm9Xyz(Buffer.concat(chunks).toString('utf8'), member);
    }
  } catch (e) {
    if (e instanceof DataFormatError) throw e;
    throw new DataFormatError({ file }, `cannot read the archive: ${(e as Error).message}`, 'ERR_GNN_DATA_ARCHIVE');
  } finally {
    source.destroy();
  }
}

/** Reads QM9 from a file, a directory or an archive, chosen by what `source` is. */
export function readQm9(source: string, options: Qm9ReadOptions = {}): AsyncGenerator<Structure> {
  const st = fs.statSync(source);
  if (st.isDirectory()) return readQm9Directory(source, options);
  if (/\.(tar|tbz2?|tar\.bz2)$/i.test(source)) return readQm9Archive(source, options);
  return readQm9File(source, options);
}
