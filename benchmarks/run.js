#!/usr/bin/env node
// Benchmark runner: `npm run bench -- <name...> [--json] [--threads N]`.
// Each benchmark is benchmarks/<name>.js exporting `run({ json }) -> { markdown, data }`;
// the runner prints the figures (or one JSON document with --json) and writes
// the benchmark's own section of benchmarks/RESULTS.md between its markers.
'use strict';
const fs = require('fs');
const path = require('path');

const RESULTS = path.join(__dirname, 'RESULTS.md');

/** Replaces (or appends) the section between `<!-- name:begin -->` and `<!-- name:end -->`. */
function writeSection(name, markdown) {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  let text = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8') : '# Benchmark results\n\nEach section is written by `npm run bench -- <name>`; do not edit inside the markers.\n';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + end.length);
  else text = text.replace(/\s*$/, '\n\n') + block + '\n';
  fs.writeFileSync(RESULTS, text);
}

async function main() {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  // Benchmark names are the leading bare words; options (--json, --threads N) follow.
  const names = [];
  for (let i = 0; i < args.length && !args[i].startsWith('--'); i++) names.push(args[i]);
  if (names.length === 0) names.push('kernels');
  const all = {};
  for (const name of names) {
    const file = path.join(__dirname, `${name}.js`);
    if (!/^[a-z0-9_-]+$/i.test(name) || !fs.existsSync(file)) {
      console.error(`unknown benchmark "${name}" (expected benchmarks/${name}.js)`);
      process.exit(2);
    }
    const { run } = require(file);
    const result = await run({ json, args, log: json ? () => {} : (s) => console.log(s) });
    writeSection(result.section ?? name, result.markdown);
    all[name] = result.data;
  }
  if (json) process.stdout.write(JSON.stringify(all, null, 2) + '\n');
  else console.log(`\nwrote ${path.relative(process.cwd(), RESULTS)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
