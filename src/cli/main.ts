#!/usr/bin/env node
/**
 * The `gnnbatch` command: a thin layer over the library.
 *
 * Exit statuses: 0 success; 1 an error of the run (one line naming the
 * problem and its ERR_GNN_ code, no stack trace unless GNNBATCH_DEBUG is
 * set); 2 a usage error (unknown option, missing argument, bad value: one
 * line naming the problem plus a hint to `--help`, never the whole help);
 * 130 interrupted by Ctrl-C (SIGINT) after the last checkpoint was written.
 */
import { Command, CommanderError } from 'commander';
import { registerDataCommands } from './data';
import { registerBatchingCommands } from './batching';
import { registerTrainCommand } from './train';
import { registerStudyCommand } from './study';
import { registerReportCommand } from './report';
import { registerRecommendCommand } from './recommend';
import { registerServeCommand } from './serve';
import { registerProfileCommand } from './profile';
import { registerDriveCommand } from './drive';
import { loadSizesFromCli } from './sizes';
import { nativeInfo } from '../native';
import { UsageError, isGnnError } from '../errors';

/** Exit status of a usage error. */
export const EXIT_USAGE = 2;
/** Exit status after an interrupt (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/** Where {@link runCli} writes (defaults: process stdout/stderr). */
export interface CliIo {
  out?: (text: string) => void;
  err?: (text: string) => void;
}

/** The full `gnnbatch` program; usage errors throw (exitOverride) instead of exiting. */
export function buildProgram(io: CliIo = {}): Command {
  const err = io.err ?? ((t: string) => void process.stderr.write(t));
  const out = io.out ?? ((t: string) => void process.stdout.write(t));
  const program = new Command();
  // Set before any subcommand is added: commander copies these settings into
  // each subcommand when it is created, so every command reports usage errors
  // the same way (thrown, printed once by runCli, never followed by the help).
  program
    .name('gnnbatch')
    .description('fast GNN training on molecular and materials graphs, and the batching study on your data')
    .version(require('../../package.json').version as string)
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ writeOut: out, writeErr: err, outputError: () => undefined });
  program
    .command('info')
    .description('print the native build (threads, SIMD, CUDA)')
    .action(() => {
      out(JSON.stringify(nativeInfo(), null, 1) + '\n');
    });
  registerDataCommands(program);
  registerBatchingCommands(program, loadSizesFromCli);
  registerTrainCommand(program);
  registerStudyCommand(program);
  registerReportCommand(program);
  registerRecommendCommand(program);
  registerServeCommand(program);
  registerProfileCommand(program);
  registerDriveCommand(program);
  return program;
}

/** The command words of `argv` (e.g. `gnnbatch batching compare`), for the `--help` hint. */
function commandPath(program: Command, args: string[]): string {
  const words = ['gnnbatch'];
  let cmd: Command | undefined = program;
  for (const a of args) {
    const sub: Command | undefined = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    words.push(sub.name());
    cmd = sub;
  }
  return words.join(' ');
}

/** Runs `gnnbatch` on `argv` (node, script, args...) and resolves with the exit status. */
export async function runCli(argv: string[], io: CliIo = {}): Promise<number> {
  const err = io.err ?? ((t: string) => void process.stderr.write(t));
  const program = buildProgram(io);
  const hint = (): string => `see '${commandPath(program, argv.slice(2))} --help'`;
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help, --version and a bare command group have printed what they print.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return e.exitCode;
      err(`gnnbatch: ${e.message.replace(/^error: /, '')} (ERR_GNN_USAGE; ${hint()})\n`);
      return EXIT_USAGE;
    }
    const error = e as Error & { code?: string };
    if (e instanceof UsageError) {
      err(`gnnbatch: ${error.message} (${error.code}; ${hint()})\n`);
      return EXIT_USAGE;
    }
    const code = isGnnError(e) ? error.code : error.code ?? 'ERR_GNN_INTERNAL';
    err(`gnnbatch: ${error.message}${code && !error.message.includes(code) ? ` (${code})` : ''}\n`);
    if (process.env.GNNBATCH_DEBUG) err(`${error.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  runCli(process.argv).then(
    (status) => {
      if (status !== 0) process.exit(status);
    },
    (e: unknown) => {
      process.stderr.write(`gnnbatch: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
