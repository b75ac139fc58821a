/** Graph construction rules: `fc`, `cutoff:R` (Å) and `knn:K`. */
import type { NativeGraphRule } from '../native';
import { ArgumentError } from '../errors';

/** A parsed graph rule. */
export type GraphRule = NativeGraphRule;

/** Parses `fc`, `cutoff:R` or `knn:K`; throws a RangeError naming the spec otherwise. */
export function parseGraphRule(spec: string): GraphRule {
  const s = spec.trim();
  if (s === 'fc') return { kind: 'fc' };
  const m = /^(cutoff|knn):(.+)$/.exec(s);
  if (m) {
    const v = Number(m[2]);
    if (m[1] === 'cutoff' && Number.isFinite(v) && v > 0) return { kind: 'cutoff', cutoff: v };
    if (m[1] === 'knn' && Number.isInteger(v) && v >= 1) return { kind: 'knn', k: v };
  }
  throw new ArgumentError(`graph rule '${spec}' is not one of fc, cutoff:R (R > 0 Å), knn:K (integer K >= 1)`);
}

/** The canonical text form of a rule (inverse of {@link parseGraphRule}). */
export function formatGraphRule(rule: GraphRule): string {
  if (rule.kind === 'fc') return 'fc';
  return rule.kind === 'cutoff' ? `cutoff:${rule.cutoff}` : `knn:${rule.k}`;
}
