/** Shared CLI helpers: option parsers that name the option, and plain tables. */
import { UsageError } from '../errors';

/** Parser for an integer option >= min; the error (a usage error, exit 2) names the option. */
export function intOption(name: string, min: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`${name} ${v}: expected an integer >= ${min}`);
    return n;
  };
}

/** Parser for a finite number option. */
export function numberOption(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${name} ${v}: expected a number`);
    return n;
  };
}

/** Parser for a comma-separated list of integers >= min. */
export function intListOption(name: string, min: number): (v: string) => number[] {
  return (v: string) => v.split(',').map((s) => intOption(name, min)(s.trim()));
}

/** A plain aligned text table (header, separator, rows), ending with a newline. */
export function formatTable(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(header), w.map((x) => '-'.repeat(x)).join('  '), ...rows.map(line)].join('\n') + '\n';
}
