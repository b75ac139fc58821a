/**
 * One error class with one code union (issue 14, finding 9): docs/errors.md
 * is generated from the code and up to date, every ERR_GNN_ string in src/
 * and native/ is a member of GnnErrorCode, every error thrown in src/ carries
 * a code, and `instanceof GnnError` holds for native errors too.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as api from '../src';
import { ArgumentError, CacheError, CheckpointError, DataFormatError, GnnError, UsageError, isGnnError } from '../src/errors';
import { GraphTooLargeError } from '../src/batching';
import { native } from '../src/native';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const doc = require('../scripts/errors-doc.js') as {
  render(): string;
  parseUnion(): { section: string; codes: { code: string; meaning: string }[] }[];
  allCodeStrings(): Map<string, string>;
  DOC: string;
};
const root = path.resolve(__dirname, '..');

test('docs/errors.md is generated from the code and up to date (npm run docs:errors)', () => {
  expect(fs.readFileSync(doc.DOC, 'utf8')).toBe(doc.render());
});

test('every ERR_GNN_ string in src/ and native/ is a member of the GnnErrorCode union, with a meaning', () => {
  const union = doc.parseUnion().flatMap((s) => s.codes);
  const members = new Set(union.map((c) => c.code));
  const missing = [...doc.allCodeStrings()].filter(([code]) => !members.has(code)).map(([code, where]) => `${code} (${where})`);
  expect(missing).toEqual([]);
  expect(union.filter((c) => c.meaning === '')).toEqual([]);
  expect(members.size).toBe(union.length); // no duplicates
  expect(members.has('ERR_GNN_GRAPH_TOO_LARGE')).toBe(true);
});

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

test('every error constructed in src/ carries a code (no bare Error/RangeError/TypeError)', () => {
  const bare: string[] = [];
  for (const file of tsFiles(path.join(root, 'src'))) {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line) || !/\bnew (Error|RangeError|TypeError|SyntaxError)\(/.test(line)) return;
      // Accepted: Object.assign(new X(...), { code }) and `e.code = '...'` within the next lines.
      const near = lines.slice(i, i + 8).join('\n');
      if (/Object\.assign\(new \w+\(/.test(line) || /\.code = ['"]ERR_GNN_|code: ['"]ERR_GNN_/.test(near)) return;
      bare.push(`${path.relative(root, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  expect(bare).toEqual([]);
});

describe('GnnError', () => {
  test('is exported from the package with its subclasses', () => {
    expect(api.GnnError).toBe(GnnError);
    expect(api.CheckpointError).toBe(CheckpointError);
  });

  test('instanceof holds for every coded error, native ones included; subclasses keep their own test', () => {
    let nativeErr: unknown;
    try {
      native().segmentSumCsr(new Float32Array(3), new Int32Array([0, 2]), 2, new Float32Array(2));
    } catch (e) {
      nativeErr = e;
    }
    expect(isGnnError(nativeErr)).toBe(true);
    expect(nativeErr).toBeInstanceOf(GnnError);
    expect(new RangeError('plain')).not.toBeInstanceOf(GnnError);
    const c = new CheckpointError('/x', 'bad', 'ERR_GNN_CHECKPOINT_FIELD');
    expect(c).toBeInstanceOf(GnnError);
    expect(c).not.toBeInstanceOf(DataFormatError);
    expect(new CacheError('f', 'm', 'ERR_GNN_CACHE_CORRUPT')).toBeInstanceOf(GnnError);
    expect(new UsageError('u').code).toBe('ERR_GNN_USAGE');
  });

  test('ArgumentError is still a RangeError; GraphTooLargeError has the ERR_GNN_ prefix', () => {
    const a = new ArgumentError('x');
    expect(a).toBeInstanceOf(RangeError);
    expect(a).toBeInstanceOf(GnnError);
    expect(a.code).toBe('ERR_GNN_ARGUMENT');
    const g = new GraphTooLargeError('dynamic', 3, 10, 20, { nodes: 5, edges: 5, graphs: 2 });
    expect(g.code).toBe('ERR_GNN_GRAPH_TOO_LARGE');
    expect(g).toBeInstanceOf(GnnError);
  });
});
