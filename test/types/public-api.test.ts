/**
 * The public surface: a small documented top level, the raw binding and the
 * internals under subpath exports, and nothing lost on the way.
 */
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { exportedNames } = require('../../scripts/count-exports.js') as {
  exportedNames(files: string[]): Record<string, { values: string[]; types: string[] }>;
};
const names = exportedNames(['src/index.ts', 'src/native.ts', 'src/internals.ts']);
const all = (f: string) => [...names[f].values, ...names[f].types].sort();

describe('the top level', () => {
  test('names exactly what docs/api.md lists', () => {
    const doc = fs.readFileSync(path.join(root, 'docs', 'api.md'), 'utf8');
    const section = doc.split('## The top level')[1].split('\n## ')[0];
    const documented = [...section.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)`/g)].map((m) => m[1]).sort();
    expect(new Set(documented).size).toBe(documented.length); // each name once
    expect(documented).toEqual(all('src/index.ts'));
  });

  test('is small, and every top-level name is also under a subpath', () => {
    expect(all('src/index.ts').length).toBeLessThanOrEqual(120);
    const below = new Set([...all('src/native.ts'), ...all('src/internals.ts')]);
    expect(all('src/index.ts').filter((n) => !below.has(n))).toEqual([]);
    // The raw binding is not at the top level.
    for (const n of ['native', 'nativeModel', 'nativeCuda', 'NativeAddon', 'PlanCache', 'leastSquares', 'writeFileAtomic']) expect(all('src/index.ts')).not.toContain(n);
  });

  test('the runtime module has exactly the typed values', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const api = require('../../src') as Record<string, unknown>;
    expect(Object.keys(api).sort()).toEqual(names['src/index.ts'].values);
  });
});

describe('package.json', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { types: string; default: string }>;
    typesVersions: Record<string, Record<string, string[]>>;
  };

  test('exports the top level, gnnbatch/native, gnnbatch/internals and package.json, each built from its source file', () => {
    expect(Object.keys(pkg.exports)).toEqual(['.', './native', './internals', './package.json']);
    expect(pkg.exports['./package.json']).toBe('./package.json');
    for (const [sub, srcFile] of [['.', 'index'], ['./native', 'native'], ['./internals', 'internals']]) {
      expect(pkg.exports[sub]).toEqual({ types: `./dist/${srcFile}.d.ts`, default: `./dist/${srcFile}.js` });
      expect(fs.existsSync(path.join(root, 'src', `${srcFile}.ts`))).toBe(true);
    }
  });

  test('typesVersions resolves the subpaths for node10 type resolution too', () => {
    expect(pkg.typesVersions).toEqual({ '*': { native: ['./dist/native.d.ts'], internals: ['./dist/internals.d.ts'] } });
  });
});
