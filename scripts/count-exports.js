#!/usr/bin/env node
// Counts (and with --list prints) the names a TypeScript module exports, as the
// type checker sees them (values and types; re-exports followed):
//   node scripts/count-exports.js src/index.ts src/native.ts src/internals.ts [--list]
// test/types/public-api.test.ts uses exportedNames() to keep docs/api.md true.
'use strict';
const path = require('path');
const ts = require('typescript');

/** The exported names of each file: { file: { values: string[], types: string[] } }. */
function exportedNames(files) {
  const root = path.join(__dirname, '..');
  const abs = files.map((f) => path.resolve(root, f));
  const program = ts.createProgram(abs, {
    strict: true, module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true,
    skipLibCheck: true, resolveJsonModule: true, types: ['node'],
  });
  const checker = program.getTypeChecker();
  const out = {};
  files.forEach((f, i) => {
    const sf = program.getSourceFile(abs[i]);
    if (!sf) throw Object.assign(new Error(`count-exports: cannot read ${f}`), { code: 'ERR_GNN_USAGE' });
    const values = [], types = [];
    for (const e of checker.getExportsOfModule(checker.getSymbolAtLocation(sf))) {
      const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
      (target.flags & ts.SymbolFlags.Value ? values : types).push(e.name);
    }
    out[f] = { values: values.sort(), types: types.sort() };
  });
  return out;
}

module.exports = { exportedNames };

if (require.main === module) {
  const args = process.argv.slice(2);
  const list = args.includes('--list');
  const files = args.filter((a) => a !== '--list');
  const r = exportedNames(files.length ? files : ['src/index.ts']);
  for (const [f, { values, types }] of Object.entries(r)) {
    console.log(`${f}: ${values.length + types.length} names (${values.length} values, ${types.length} types only)`);
    if (list) console.log(`  values: ${values.join(' ')}\n  types: ${types.join(' ')}`);
  }
}
