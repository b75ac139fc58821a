/** Test helper: run `gnnbatch` commands through commander in-process, capturing stdout. */
import { Command } from 'commander';

/**
 * Registers commands with `register`, parses `args` (without the program
 * name), and resolves with everything written to stdout; stderr is silenced.
 * Errors (commander's or the action's) reject.
 */
export async function runCli(register: (program: Command) => void, args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  register(program);
  const out: string[] = [];
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((t: string | Uint8Array) => (out.push(String(t)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
  return out.join('');
}
