/**
 * ASE itself (SocketIOCalculator, the i-PI server side) drives the i-PI client over a Unix socket,
 * with an analytic Morse engine: what ASE receives equals what the engine computed (units, cell
 * layout, virial sign), NVE dynamics conserves energy, BFGS converges, and the stress ASE derives
 * from the virial equals finite strain differences of the energy. The same client serves gnnbatch
 * models in ase-driver.test.ts.
 */
import * as path from 'path';
import { runIpiDriver, type DriverGeometry } from '../../src/drive/ipi';
import { asePython, runPython } from '../helpers/ase';
import { morse } from './morse';

const script = path.join(__dirname, 'ase_client.py');
let n = 0;
const name = (): string => `gnnbatch-test-${process.pid}-${n++}`;

/** Runs the ASE script in `mode` against a driver serving `engine`; both must finish. */
async function drive(mode: string, periodic: boolean, extra: string[] = []) {
  const socket = name();
  const seen: DriverGeometry[] = [];
  const driver = runIpiDriver({ kind: 'unix', name: socket }, (g) => (seen.push(g), morse(g, periodic)), { connectTimeoutMs: 60_000 });
  const out = await runPython([script, socket, mode, ...extra]);
  const summary = await driver;
  return { doc: JSON.parse(out), summary, seen };
}

beforeAll(() => {
  asePython(); // fails here, with the install command, when ASE is missing
});

test.each([false, true])('ASE receives exactly what the engine computed (periodic: %s)', async (periodic) => {
  const { doc, summary, seen } = await drive('points', periodic, periodic ? ['periodic'] : []);
  expect(['exit', 'closed']).toContain(summary.reason); // ASE 3.22 closes the socket after its last GETFORCE
  const points = doc.points as { positions: number[][]; cell: number[][]; energy: number; forces: number[][]; stress?: number[] }[];
  expect(points).toHaveLength(3);
  for (const p of points) {
    // The geometry the engine saw is ASE's, so the engine's answer for it is the reference.
    const g = seen.find((s) => Math.abs(s.positions[0] - p.positions[0][0]) < 1e-12 && Math.abs(s.positions[4] - p.positions[1][1]) < 1e-12);
    expect(g).toBeDefined();
    for (let k = 0; k < 9; k++) expect(g!.cell[k]).toBeCloseTo(p.cell[Math.floor(k / 3)][k % 3], 12);
    const ref = morse(g!, periodic);
    expect(p.energy).toBeCloseTo(ref.energy, 12);
    p.forces.flat().forEach((f, k) => expect(f).toBeCloseTo(ref.forces[k], 11));
    if (periodic) p.stress!.forEach((s, k) => expect(s).toBeCloseTo(ref.stress![k], 12));
    else expect(p.stress).toBeUndefined();
  }
});

test('NVE: 200 velocity-Verlet steps of 0.25 fs conserve the total energy', async () => {
  const { doc } = await drive('md', false);
  const total = doc.total as number[];
  expect(total.length).toBeGreaterThanOrEqual(200);
  const drift = Math.max(...total) - Math.min(...total);
  // Bound: 1e-3 of the kinetic energy put in (300 K) over 50 fs with a 0.25 fs step.
  expect(drift).toBeLessThan(1e-3 * Math.max(doc.kinetic_start as number, 0.01));
});

test('BFGS converges', async () => {
  const { doc } = await drive('bfgs', false);
  expect(doc.converged).toBe(true);
  expect(doc.fmax).toBeLessThan(0.01);
});

test('the stress ASE derives from the virial equals finite strain differences', async () => {
  const { doc } = await drive('stress', true);
  const s = doc.stress as number[], fd = doc.finite_difference as number[];
  for (let k = 0; k < 6; k++) expect(Math.abs(s[k] - fd[k])).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd[k])) + 1e-7);
});
