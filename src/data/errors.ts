/**
 * Errors of the data layer. A {@link DataFormatError} names where the input is
 * wrong (file, line or entry, field) so a user can go and fix it.
 */

/** Where in a source a problem was found. */
export interface DataLocation {
  /** File (or archive member, as `archive.tar.bz2:member.xyz`). */
  file: string;
  /** 1-based line number, for text formats. */
  line?: number;
  /** 0-based entry / frame / row index, for record formats. */
  entry?: number;
  /** The field that is missing or malformed. */
  field?: string;
}

/** Malformed or unreadable input data; `code` is stable for programs. */
export class DataFormatError extends Error {
  readonly code: string;
  readonly location: DataLocation;
  constructor(location: DataLocation, message: string, code = 'ERR_GNN_DATA_FORMAT') {
    const where = [location.file];
    if (location.line !== undefined) where.push(`line ${location.line}`);
    if (location.entry !== undefined) where.push(`entry ${location.entry}`);
    if (location.field !== undefined) where.push(`field '${location.field}'`);
    super(`${where.join(', ')}: ${message}`);
    this.name = 'DataFormatError';
    this.code = code;
    this.location = location;
  }
}

/** A problem with a `.gnb` cache file (truncated, corrupt, other version). */
export class CacheError extends Error {
  readonly code: string;
  constructor(file: string, message: string, code = 'ERR_GNN_CACHE') {
    super(`${file}: ${message}`);
    this.name = 'CacheError';
    this.code = code;
  }
}

/** Parses a number strictly (whole token), accepting Mathematica's `1.2*^-6`. */
export function parseNumber(token: string | undefined): number {
  if (token === undefined) return NaN;
  const t = token.includes('*^') ? token.replace('*^', 'e') : token;
  if (t.trim() === '') return NaN;
  const v = Number(t);
  return v;
}
