/** Source format detection from the source string, its extension and, for `.xyz`, its second line. */
import * as fs from 'fs';
import { isGnbFile } from '../cache';
import { DataFormatError } from '../errors';
import { parseGeneratorSpec } from '../synthetic';

/** Every source format `loadSource` understands. */
export const SOURCE_FORMATS = ['qm9-xyz', 'extxyz', 'ase-db', 'aflow-json', 'gnb', 'qm9-like', 'aflow-like'] as const;
/** A source format name (the values of `--format`). */
export type SourceFormat = (typeof SOURCE_FORMATS)[number];

/** True when `s` names a format. */
export function isSourceFormat(s: string): s is SourceFormat {
  return (SOURCE_FORMATS as readonly string[]).includes(s);
}

/** Detects the format of a source; throws a DataFormatError when it cannot. */
export function detectFormat(source: string): SourceFormat {
  const gen = parseGeneratorSpec(source);
  if (gen) return gen.name;
  if (!fs.existsSync(source)) throw new DataFormatError({ file: source }, 'no such file or directory (and not a generator spec such as qm9-like:1000)', 'ERR_GNN_DATA_NOT_FOUND');
  if (fs.statSync(source).isDirectory()) return 'qm9-xyz';
  const lower = source.toLowerCase();
  if (lower.endsWith('.gnb') || isGnbFile(source)) return 'gnb';
  if (lower.endsWith('.db') || lower.endsWith('.sqlite') || lower.endsWith('.sqlite3')) return 'ase-db';
  if (lower.endsWith('.json')) return 'aflow-json';
  if (lower.endsWith('.extxyz')) return 'extxyz';
  if (/\.(tar|tbz2?|tar\.bz2)$/.test(lower)) return 'qm9-xyz';
  if (lower.endsWith('.xyz')) {
    const fd = fs.openSync(source, 'r');
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    const second = buf.toString('utf8', 0, n).split(/\r?\n/)[1] ?? '';
    return /^\s*gdb\s/.test(second) ? 'qm9-xyz' : 'extxyz';
  }
  throw new DataFormatError({ file: source }, `cannot tell the format from the name; pass --format (one of ${SOURCE_FORMATS.join(', ')})`, 'ERR_GNN_DATA_FORMAT_UNKNOWN');
}
