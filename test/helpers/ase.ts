/**
 * Test helper: the Python interpreter that has ASE (Debian's python3-ase; .ci/run installs it when
 * missing). Tests that need ASE fail, with this message, when none is found: they are never skipped.
 */
import { spawn, spawnSync } from 'child_process';

let found: string | null | undefined;

/** The first of /usr/bin/python3, python3 that imports ase, or throws with the way to install it. */
export function asePython(): string {
  if (found === undefined) {
    found = null;
    for (const py of ['/usr/bin/python3', 'python3']) {
      const r = spawnSync(py, ['-c', 'import ase, numpy; print(ase.__version__)'], { encoding: 'utf8' });
      if (r.status === 0) { found = py; break; }
    }
  }
  if (!found) throw new Error('these tests drive gnnbatch from ASE, which is not installed: apt-get install -y python3-ase (.ci/run does this)');
  return found;
}

/** Runs a Python script to completion without blocking the event loop; resolves with stdout, rejects on a non-zero exit. */
export function runPython(args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(asePython(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`python ${args.join(' ')} exited ${code ?? signal}: ${err.slice(-3000)}`));
    });
  });
}
