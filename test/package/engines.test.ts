/**
 * The Node versions package.json's `engines` admits are admitted by every production dependency the
 * lockfile installs (a consumer on the oldest admitted Node gets no EBADENGINE warning and no package
 * that may not run). cookie@2, pulled in by fastify through light-my-request 6.8, wants Node >= 22:
 * package.json overrides light-my-request to 6.6 (cookie@1, Node >= 18), and the floor is Node 20.19
 * because cmake-js, which and vega-lite's yargs need ^20.17 / ^20.19.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as semver from 'semver';

const root = path.join(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dev?: boolean; engines?: { node?: string } | string[] }>;
};

/** The lowest version of each major line that `range` admits (20.19.0, 22.12.0, ...), up to major 26. */
function floors(range: string): string[] {
  const out: string[] = [];
  for (let major = 18; major <= 26; major++) {
    for (let minor = 0; minor <= 40; minor++) {
      const v = `${major}.${minor}.0`;
      if (semver.satisfies(v, range)) { out.push(v); break; }
    }
  }
  return out;
}

test('engines names real floors', () => {
  expect(floors(pkg.engines.node)).toEqual(expect.arrayContaining(['20.19.0', '22.12.0']));
});

test('every production dependency admits every Node version engines admits', () => {
  const bad: string[] = [];
  for (const v of floors(pkg.engines.node)) {
    for (const [name, entry] of Object.entries(lock.packages)) {
      if (name === '' || entry.dev || !entry.engines || Array.isArray(entry.engines)) continue;
      const node = entry.engines.node;
      if (node && !semver.satisfies(v, node)) bad.push(`${name} wants node ${node}, engines admits ${v}`);
    }
  }
  expect(bad).toEqual([]);
});
