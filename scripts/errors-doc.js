#!/usr/bin/env node
/**
 * Generates docs/errors.md, the catalogue of gnnbatch's error codes, from the
 * code itself: the members of the GnnErrorCode union in src/errors.ts (with
 * the one-line meaning written after each), the error class that carries each
 * code, and the source files (TypeScript under src/, C++/CUDA under native/)
 * that throw it.
 *
 *   node scripts/errors-doc.js           write docs/errors.md
 *   node scripts/errors-doc.js --check   exit 1 when docs/errors.md is out of date
 *
 * test/errors.test.ts runs the check, and also asserts that every ERR_GNN_
 * string in src/ and native/ is a member of the union.
 */
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const ERRORS_TS = path.join(root, 'src/errors.ts');
const DOC = path.join(root, 'docs/errors.md');

/** Sections and members of the union: [{ section, codes: [{ code, meaning }] }]. */
function parseUnion(text = fs.readFileSync(ERRORS_TS, 'utf8')) {
  const start = text.indexOf('export type GnnErrorCode =');
  if (start < 0) throw new Error('src/errors.ts: GnnErrorCode union not found');
  const last = /'ERR_GNN_[A-Z0-9_]+';/g;
  last.lastIndex = start;
  const end = last.exec(text);
  if (!end) throw new Error('src/errors.ts: the GnnErrorCode union does not end');
  const body = text.slice(start, text.indexOf('\n', end.index) + 1);
  const sections = [];
  let current = { section: 'General', codes: [] };
  for (const line of body.split('\n')) {
    const head = /^\s*\/\/\s*---\s*(.+?)\s*---\s*$/.exec(line);
    if (head) {
      if (current.codes.length) sections.push(current);
      current = { section: head[1][0].toUpperCase() + head[1].slice(1), codes: [] };
      continue;
    }
    const m = /^\s*\|\s*'(ERR_GNN_[A-Z0-9_]+)'\s*;?\s*(?:\/\/\s*(.*))?$/.exec(line);
    if (m) current.codes.push({ code: m[1], meaning: (m[2] ?? '').trim() });
  }
  if (current.codes.length) sections.push(current);
  return sections;
}

function walk(dir, exts, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, exts, out);
    else if (exts.some((x) => e.name.endsWith(x))) out.push(p);
  }
  return out.sort();
}

/** The source files that may throw errors: src/ TypeScript (not errors.ts itself) and native/ C++/CUDA. */
function sourceFiles() {
  const nativeTests = path.join(root, 'native/tests') + path.sep; // test drivers throw nothing at users
  return [
    ...walk(path.join(root, 'src'), ['.ts']).filter((f) => f !== ERRORS_TS),
    ...walk(path.join(root, 'native'), ['.cpp', '.h', '.cu', '.cuh']).filter((f) => !f.startsWith(nativeTests)),
  ];
}

/** Default codes of the error classes (`code: GnnErrorCode = 'ERR_GNN_X'` in a constructor). */
function defaultCodes(text = fs.readFileSync(ERRORS_TS, 'utf8')) {
  const out = {};
  const re = /export class (\w+) extends \w+ \{[\s\S]*?constructor\(([^)]*)\)/g;
  for (let m; (m = re.exec(text)); ) {
    const d = /code: GnnErrorCode = '(ERR_GNN_[A-Z0-9_]+)'/.exec(m[2]);
    if (d) out[m[1]] = d[1];
  }
  return out;
}

/**
 * Which class carries a code found on line `i` of a TypeScript file: the error
 * constructed on that line or a few lines above (multi-line calls), else the
 * class the file constructs with a code passed in a variable (helpers such as
 * `fail(code, message)`), else Error.
 */
function tsClassAt(lines, i) {
  for (let k = i; k >= Math.max(0, i - 3); k--) {
    if (!/\bsuper\(/.test(lines[k])) continue;
    for (let c = k; c >= 0; c--) {
      const m = /class (\w+) extends/.exec(lines[c]);
      if (m) return m[1];
    }
  }
  for (let k = i; k >= Math.max(0, i - 8); k--) {
    const m = /new (\w*Error)\(/.exec(lines[k]);
    if (m) return m[1];
    if (k < i && /;\s*$/.test(lines[k])) break;
  }
  const text = lines.join('\n');
  const viaVariable = /new (\w*Error)\([^;]*?\bcode\b[^;]*?\)/.exec(text);
  return viaVariable ? viaVariable[1] : 'Error';
}

/** Which class throws a code on a given native source line. */
function classOn(line, file) {
  const ts = /new (\w*Error)\(/.exec(line);
  if (ts) return ts[1];
  if (file.endsWith('.ts')) return /Object\.assign\(new (\w+)/.exec(line)?.[1] ?? 'Error';
  if (/typeError\(|ErrorKind::Type|throwType/.test(line)) return 'TypeError';
  if (/rangeError\(|ErrorKind::Range|throwRange/.test(line)) return 'RangeError';
  return 'Error';
}

/** code -> { classes: Set, files: Set } over the whole source tree. */
function usage() {
  const defaults = defaultCodes();
  const use = {};
  const note = (code, cls, file) => {
    const u = (use[code] ??= { classes: new Set(), files: new Set() });
    u.classes.add(cls);
    u.files.add(path.relative(root, file));
  };
  for (const file of sourceFiles()) {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^\s*(\/\/|\*|\/\*)/.test(line)) return; // comments mention codes without throwing them
      const codes = [...line.matchAll(/['"](ERR_GNN_[A-Z0-9_]+)['"]/g)].map((m) => m[1]);
      // Native throws often put the code on the line after the message.
      const context = [lines[i - 1] ?? '', line].join(' ');
      for (const code of codes) note(code, file.endsWith('.ts') ? tsClassAt(lines, i) : classOn(context, file), file);
      for (const [cls, code] of Object.entries(defaults)) {
        if (line.includes(`new ${cls}(`) && codes.length === 0 && !/ERR_GNN_/.test(lines[i + 1] ?? '')) note(code, cls, file);
      }
    });
  }
  return use;
}

/** Every ERR_GNN_ string literal in src/ and native/ (comments included), with one place it occurs. */
function allCodeStrings() {
  const out = new Map();
  for (const file of sourceFiles()) {
    fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      // Whole codes only (not prefixes such as `ERR_GNN_CHECKPOINT_${string}` in a type).
      for (const m of line.matchAll(/\bERR_GNN_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_$])/g)) if (!out.has(m[0])) out.set(m[0], `${path.relative(root, file)}:${i + 1}`);
    });
  }
  return out;
}

function render() {
  const sections = parseUnion();
  const use = usage();
  const defaults = defaultCodes();
  const total = sections.reduce((s, x) => s + x.codes.length, 0);
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated by `npm run docs:errors` (scripts/errors-doc.js) from src/errors.ts and the sources; do not edit by hand. -->',
    '',
    `Every error gnnbatch throws on purpose carries a stable string \`code\` (${total} codes). In TypeScript they are`,
    '`GnnError` objects (or subclasses); the native addon throws `TypeError`/`RangeError` objects with a `code`, and',
    '`err instanceof GnnError` is true for those too. Branch on `code`, not on the message.',
    '',
    '```ts',
    "import { GnnError } from 'gnnbatch';",
    'try { loadModel(dir); } catch (e) {',
    "  if (e instanceof GnnError && e.code === 'ERR_GNN_CHECKPOINT_CHECKSUM') { /* re-download the checkpoint */ }",
    '}',
    '```',
    '',
    'The command line prints `gnnbatch: <message> (<code>)` and exits with status 1; usage errors',
    '(`ERR_GNN_USAGE`) exit with status 2, an interrupted `train` with 130.',
    '',
  ];
  for (const s of sections) {
    lines.push(`## ${s.section}`, '', '| code | class | meaning | thrown in |', '|---|---|---|---|');
    for (const { code, meaning } of s.codes) {
      const u = use[code];
      const owner = Object.keys(defaults).find((c) => defaults[c] === code);
      const classes = u ? [...u.classes].sort().join(', ') : owner ?? 'GnnError';
      const files = u ? [...u.files].sort().map((f) => `\`${f}\``).join(', ') : '(not thrown by this version)';
      lines.push(`| \`${code}\` | ${classes} | ${meaning.replace(/\|/g, '\\|')} | ${files} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

module.exports = { parseUnion, usage, allCodeStrings, defaultCodes, render, DOC };

if (require.main === module) {
  const text = render();
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(DOC) ? fs.readFileSync(DOC, 'utf8') : '';
    if (current !== text) {
      process.stderr.write('docs/errors.md is out of date: run npm run docs:errors\n');
      process.exit(1);
    }
    process.stdout.write('docs/errors.md is up to date\n');
  } else {
    fs.mkdirSync(path.dirname(DOC), { recursive: true });
    fs.writeFileSync(DOC, text);
    const n = parseUnion().reduce((s, x) => s + x.codes.length, 0);
    process.stdout.write(`wrote docs/errors.md (${n} codes)\n`);
  }
}
