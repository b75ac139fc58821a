/**
 * Minimal require hook for test child processes: `.ts` files are transpiled
 * on load with TypeScript's transpileModule (no type check; jest's ts-jest
 * type-checks the same sources). Lets a test run the CLI from src/ as a real
 * separate process: `node -r test/experiment/helpers/ts-register.js src/cli/main.ts ...`.
 */
'use strict';
const fs = require('fs');
const ts = require('typescript');

const compilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  esModuleInterop: true,
  resolveJsonModule: true,
  sourceMap: false,
  inlineSourceMap: false,
};

require.extensions['.ts'] = function compileTs(module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions, fileName: filename });
  module._compile(outputText, filename);
};
