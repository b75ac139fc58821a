/** `gnnbatch data build|stats|export|get`: the data layer on the command line. */
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { GnnError } from '../errors';
import { saveStore } from '../data/cache';
import { writeExtxyz } from '../data/formats/extxyz';
import { formatStats, storeStats } from '../data/stats';
import { structuresFromStore } from '../data/store';
import { addSourceOptions, loadSourceFromCli, type SourceOptionValues } from './source-options';
import { registerDataGet } from './data-get';

/**
 * Checks before any reading that `file` can be created (its folder exists, is
 * a folder and is writable), so a bad -o fails at once, not after the work.
 */
export function checkOutputFile(file: string): void {
  const dir = path.dirname(path.resolve(file));
  let why: string | null = null;
  try {
    if (!fs.statSync(dir).isDirectory()) why = `${dir} is not a directory`;
    else if (fs.existsSync(file) && fs.statSync(file).isDirectory()) why = 'it is a directory';
    else fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    why = code === 'ENOENT' ? `the folder ${dir} does not exist` : code === 'ENOTDIR' ? 'a part of the path is a file, not a directory' : `cannot write in ${dir} (${code ?? (e as Error).message})`;
  }
  if (why) throw new GnnError('ERR_GNN_OUTPUT_PATH', `-o ${file}: cannot be written: ${why}`);
}

/** Adds the `data` command group to a commander program. */
export function registerDataCommands(program: Command): Command {
  const data = program.command('data').description('read sources, build and inspect graph stores');

  addSourceOptions(
    data
      .command('build')
      .description('build the graph store of SOURCE and write it as a .gnb cache')
      .argument('<source>', 'file, directory, archive, generator spec (qm9-like[:N], aflow-like[:N]) or .gnb')
      .requiredOption('-o, --output <file>', 'output .gnb file (written atomically)'),
  ).action(async (source: string, opts: SourceOptionValues & { output: string }) => {
    const t0 = Date.now();
    checkOutputFile(opts.output);
    const loaded = await loadSourceFromCli(source, opts);
    saveStore(loaded.store, opts.output);
    const s = loaded.store;
    const bytes = fs.statSync(opts.output).size;
    process.stdout.write(
      `wrote ${opts.output}: ${s.numGraphs} graphs, ${s.atomicNumber.length} atoms, ${s.senders.length} edges (${s.graphRule}), ` +
        `targets ${s.targetNames.join(', ') || '(none)'}; ${(bytes / 1e6).toFixed(1)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  });

  addSourceOptions(
    data
      .command('stats')
      .description('graphs, atoms and edges per graph, element counts and target summary of SOURCE')
      .argument('<source>', 'file, directory, archive, generator spec or .gnb')
      .option('--json', 'print one JSON document'),
  ).action(async (source: string, opts: SourceOptionValues & { json?: boolean }) => {
    const loaded = await loadSourceFromCli(source, opts);
    const stats = storeStats(loaded.store);
    const doc = { ...stats, format: loaded.format, dropped: loaded.dropped };
    process.stdout.write(opts.json ? JSON.stringify(doc, null, 2) + '\n' : formatStats(stats) + '\n');
  });

  addSourceOptions(
    data
      .command('export')
      .description('write the structures of SOURCE (or of a .gnb store) as extended XYZ')
      .argument('<source>', 'file, directory, archive, generator spec or .gnb')
      .requiredOption('-o, --output <file>', 'output .extxyz file'),
  ).action(async (source: string, opts: SourceOptionValues & { output: string }) => {
    checkOutputFile(opts.output);
    const loaded = await loadSourceFromCli(source, opts);
    const n = await writeExtxyz(opts.output, structuresFromStore(loaded.store));
    process.stdout.write(`wrote ${n} frames to ${opts.output}\n`);
  });
  registerDataGet(data);
  return data;
}
