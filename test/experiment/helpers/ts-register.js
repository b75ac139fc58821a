/**
 * Minimal require hook for test child processes: `.ts` files are transpiled
 * on load with TypeScript's transpileModule (no type check; jest's ts-jest
 * type-checks the same sources). Lets a test run the CLI from src/ as a real
 * separate process: `node -r test/experiment/helpers/ts-register.js src/cli/main.ts ...`.
 *
 * Transpiled output is cached under the OS temp folder, keyed by the source
 * text, the options and the TypeScript version, so only the first child pays
 * for loading the compiler (seconds); entries are written atomically because
 * children run in parallel.
 */
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const tsVersion = require('typescript/package.json').version;
const cacheDir = path.join(os.tmpdir(), `gnnbatch-ts-register-${process.getuid ? process.getuid() : 'user'}`);
let ts = null;

const compilerOptions = {
  module: 'CommonJS',
  target: 'ES2022',
  esModuleInterop: true,
  resolveJsonModule: true,
  sourceMap: false,
  inlineSourceMap: false,
};

function transpile(source, filename) {
  const key = crypto.createHash('sha256').update(`${tsVersion}\0${JSON.stringify(compilerOptions)}\0${filename}\0${source}`).digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  try {
    return fs.readFileSync(cached, 'utf8');
  } catch {
    /* not cached yet */
  }
  if (!ts) ts = require('typescript');
  const options = ts.convertCompilerOptionsFromJson(compilerOptions, path.dirname(filename)).options;
  const { outputText } = ts.transpileModule(source, { compilerOptions: options, fileName: filename });
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, outputText);
    fs.renameSync(tmp, cached);
  } catch {
    /* a read-only temp folder only costs speed */
  }
  return outputText;
}

require.extensions['.ts'] = function compileTs(module, filename) {
  module._compile(transpile(fs.readFileSync(filename, 'utf8'), filename), filename);
};
