/**
 * Errors of the data layer (defined with every other error in ../errors): a
 * {@link DataFormatError} names where the input is wrong (file, line or entry,
 * field) so a user can go and fix it; a {@link CacheError} names the .gnb file.
 */
export { DataFormatError, DataLimitError, CacheError, type DataLocation } from '../errors';

/** Parses a number strictly (whole token), accepting Mathematica's `1.2*^-6`. */
export function parseNumber(token: string | undefined): number {
  if (token === undefined) return NaN;
  const t = token.includes('*^') ? token.replace('*^', 'e') : token;
  if (t.trim() === '') return NaN;
  const v = Number(t);
  return v;
}
