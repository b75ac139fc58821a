/**
 * Runs `gnnbatch` from src/ as a separate Node process (TypeScript
 * transpiled on load by ts-register.js), so a test can run shards the way a
 * scheduler does: one process each, with its own environment.
 */
import { spawn } from 'child_process';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** How a child `gnnbatch` ended. */
export interface CliProcessResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Scheduler variables a test must not inherit from the machine it runs on. */
const SCHEDULER_VARS = /^(SLURM_|JOB_COMPLETION_INDEX$)/;

/** Runs `gnnbatch ...args` with `env` added to a scheduler-free copy of this process's environment. */
export function runCliProcess(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliProcessResult> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !SCHEDULER_VARS.test(k)) base[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', path.join(__dirname, 'ts-register.js'), path.join(ROOT, 'src', 'cli', 'main.ts'), ...args], {
      cwd: ROOT,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
