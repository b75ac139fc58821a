/** Every `npx gnnbatch` line of the README template is known to benchmarks/commands.js (timed, or listed with the reason it is not). */
import * as fs from 'fs';
import * as path from 'path';

// benchmarks/ is plain CommonJS (run with node, not compiled).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bench = require('../../benchmarks/commands.js') as {
  COMMANDS: { id: string; readme: string | null; args: string[] | null; why?: string }[];
  readmeCommandLines: (text?: string) => string[];
};

test('the README template and the commands benchmark list the same commands', () => {
  const lines = bench.readmeCommandLines();
  expect(lines).toContain('npx gnnbatch study');
  const known = bench.COMMANDS.map((c) => c.readme).filter((x): x is string => x !== null);
  expect(lines.filter((l) => !known.includes(l))).toEqual([]);
  expect(known.filter((l) => !lines.includes(l))).toEqual([]);
  for (const c of bench.COMMANDS) if (!c.args) expect(c.why).toBeTruthy();
  // The README includes the benchmark's section.
  expect(fs.readFileSync(path.join(__dirname, '../../docs/README.template.md'), 'utf8')).toContain('<!-- include: benchmarks/RESULTS.md#commands -->');
});

test('command lines are read from code blocks only, comments stripped', () => {
  const text = 'npx gnnbatch outside\n```sh\nnpx gnnbatch a --x 1   # note\n# npx gnnbatch commented\nnpm test\n```\n';
  expect(bench.readmeCommandLines(text)).toEqual(['npx gnnbatch a --x 1']);
});
