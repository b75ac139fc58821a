#!/usr/bin/env node
// Prints the C++ sources node-gyp compiles (binding.gyp has no glob): every
// .cpp of the CPU core (native/core, native/core/models) and of the addon,
// so new files are picked up exactly as CMakeLists.txt's file(GLOB) does,
// plus the CUDA interface's stub (node-gyp builds are CPU only).
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const dirs = ['native/core', 'native/core/models', 'native/addon'];
const sources = [];
for (const dir of dirs) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) continue;
  for (const f of fs.readdirSync(abs).sort()) {
    if (f.endsWith('.cpp')) sources.push(`${dir}/${f}`);
  }
}
sources.push('native/cuda/stub.cpp');
process.stdout.write(sources.join('\n') + '\n');
