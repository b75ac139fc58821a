#!/usr/bin/env node
// Loads Chrome trace files (what `gnnbatch profile --trace` and `train --trace` write) with the
// trace engine of Chrome DevTools' Performance panel (@paulirish/trace_engine, the panel's own
// importer published on npm) and prints what a viewer sees: processes, tracks, their events and
// how many top-level spans nest the rest. Exits 1 when a file does not parse or a track is empty.
// A devDependency of this repository (not of the published package): after `npm install` in a checkout,
//   node scripts/check-trace.mjs trace.json
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const files = process.argv.slice(2);
if (!files.length) {
  console.error('usage: node scripts/check-trace.mjs TRACE.json...');
  process.exit(2);
}
let engine;
try {
  const req = createRequire(path.join(process.cwd(), 'index.js'));
  const dir = path.dirname(req.resolve('@paulirish/trace_engine/package.json'));
  engine = await import(pathToFileURL(path.join(dir, 'analyze-trace.mjs')).href);
} catch (e) {
  console.error(`cannot load @paulirish/trace_engine from ${process.cwd()} (${e.message}): npm install --no-save @paulirish/trace_engine@0.0.65`);
  process.exit(2);
}
let bad = 0;
for (const file of files) {
  try {
    const { parsedTrace } = await engine.analyzeTrace(file);
    const d = parsedTrace.data;
    const names = d.Meta.processNames;
    const tracks = [];
    for (const [pid, p] of d.Renderer.processes) {
      for (const [tid, t] of p.threads) tracks.push({ pid, tid, process: names.get(pid)?.args?.name ?? '?', thread: t.name, events: t.entries?.length ?? 0, roots: t.tree?.roots?.size ?? 0 });
    }
    const range = d.Meta.traceBounds.range / 1000;
    console.log(`${file}: parsed by the DevTools trace engine; ${tracks.length} tracks over ${range.toFixed(1)} ms`);
    for (const t of tracks) console.log(`  pid ${t.pid} "${t.process}" / tid ${t.tid} "${t.thread}": ${t.events} events, ${t.roots} top-level`);
    if (!tracks.length || tracks.some((t) => t.events === 0)) {
      console.log('  FAIL: an empty track (or none)');
      bad++;
    }
  } catch (e) {
    console.log(`${file}: FAIL: ${e.message}`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
