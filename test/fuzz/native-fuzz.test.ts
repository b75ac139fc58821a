/**
 * Fuzz test of every native export (issue 14, "make it stay fixed"): fast-check
 * drives each export with valid calls mutated adversarially and with random
 * arguments (test/helpers/child-fuzz.ts says how). Each fuzz run is a child
 * process, so a crash or a hang is a failed test that names the case.
 *
 * Budget: short in `npm test` (4 children x 8 s, fixed seeds: reproducible);
 * GNN_FUZZ=long (npm run fuzz) runs 8 children x 120 s with seeds from
 * GNN_FUZZ_SEED (default: the clock). GNN_FUZZ_REPORT=<file> writes the totals
 * as JSON. The number of calls made is printed either way.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { describeChild, exitedCleanly, runInChild } from '../helpers/child';
import { FUZZ_CHILD_BODY } from '../helpers/child-fuzz';

const long = process.env.GNN_FUZZ === 'long';
const children = Number(process.env.GNN_FUZZ_CHILDREN ?? (long ? 8 : 4));
const msPerChild = Number(process.env.GNN_FUZZ_MS ?? (long ? 120_000 : 8_000));
const baseSeed = Number(process.env.GNN_FUZZ_SEED ?? (long ? Date.now() % 1e9 : 20261201));

interface ChildValue {
  calls: number;
  runs: number;
  perExport: Record<string, number>;
  violation: string | null;
  missing?: string[];
}

const totals = { calls: 0, children: 0, perExport: {} as Record<string, number>, seeds: [] as number[] };

afterAll(() => {
  const line = `native fuzz: ${totals.calls} calls to ${Object.keys(totals.perExport).length} exports in ${totals.children} children (seeds ${totals.seeds.join(',')}), 0 crashes, 0 hangs, 0 uncoded errors`;
  process.stdout.write(`${line}\n`);
  if (process.env.GNN_FUZZ_REPORT) fs.writeFileSync(process.env.GNN_FUZZ_REPORT, JSON.stringify({ ...totals, summary: line }, null, 2));
});

describe('native fuzz', () => {
  const seeds = Array.from({ length: children }, (_, i) => baseSeed + i);
  test.each(seeds)('seed %i: every call returns or throws a coded error; no crash, no hang', (seed) => {
    const caseFile = path.join(os.tmpdir(), `gnn-fuzz-case-${process.pid}-${seed}.json`);
    const r = runInChild(FUZZ_CHILD_BODY, {
      timeoutMs: msPerChild + 90_000,
      env: { GNN_FUZZ_SEED: String(seed), GNN_FUZZ_MS: String(msPerChild), GNN_FUZZ_CASE_FILE: caseFile },
    });
    const lastCase = fs.existsSync(caseFile) ? fs.readFileSync(caseFile, 'utf8') : '(none)';
    fs.rmSync(caseFile, { force: true });
    if (!exitedCleanly(r)) throw new Error(`fuzz child (seed ${seed}) ${describeChild(r)}\nlast case: ${lastCase}`);
    const v = r.value as ChildValue;
    expect(v.missing).toBeUndefined();  // every export needs a base call in child-fuzz.ts
    if (v.violation) throw new Error(`fuzz seed ${seed}: ${v.violation}`);
    totals.calls += v.calls;
    totals.children++;
    totals.seeds.push(seed);
    for (const [k, n] of Object.entries(v.perExport)) totals.perExport[k] = (totals.perExport[k] ?? 0) + n;
    expect(v.calls).toBeGreaterThan(100);
  });

  test('every export was called', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require('../../src/native').native() as Record<string, unknown>;
    const names = Object.keys(addon).filter((k) => typeof addon[k] === 'function');
    expect(names.filter((k) => !(k in totals.perExport))).toEqual([]);
  });
});
