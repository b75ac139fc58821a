#!/usr/bin/env node
/**
 * The `gnnbatch` command: a thin layer over the library. Errors print one
 * line naming the problem (no stack trace) and exit with status 1.
 */
import { Command } from 'commander';
import { registerDataCommands } from './data';
import { registerBatchingCommands } from './batching';
import { registerTrainCommand } from './train';
import { registerStudyCommand } from './study';
import { registerReportCommand } from './report';
import { registerRecommendCommand } from './recommend';
import { loadSizesFromCli } from './sizes';
import { nativeInfo } from '../native';

async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program
    .name('gnnbatch')
    .description('fast GNN training on molecular and materials graphs, and the batching study on your data')
    .version(require('../../package.json').version as string)
    .showHelpAfterError();
  program
    .command('info')
    .description('print the native build (threads, SIMD, CUDA)')
    .action(() => {
      process.stdout.write(JSON.stringify(nativeInfo(), null, 1) + '\n');
    });
  registerDataCommands(program);
  registerBatchingCommands(program, loadSizesFromCli);
  registerTrainCommand(program);
  registerStudyCommand(program);
  registerReportCommand(program);
  registerRecommendCommand(program);
  await program.parseAsync(argv);
}

main(process.argv).catch((e: unknown) => {
  const err = e as Error & { code?: string };
  process.stderr.write(`gnnbatch: ${err.message}${err.code && !err.message.includes(err.code) ? ` (${err.code})` : ''}\n`);
  if (process.env.GNNBATCH_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
