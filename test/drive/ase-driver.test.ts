/**
 * ASE drives a gnnbatch model trained on energies and forces through `gnnbatch drive` (issue 24): ASE's SocketIOCalculator
 * over a Unix socket gets the model's own energies and forces (equal to loadModel().predict with
 * properties, to float32 precision), NVE dynamics conserves energy, BFGS converges, and a periodic
 * model's stress equals finite strain differences of its energy through ASE.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { loadSource } from '../../src/data/source';
import { train } from '../../src/train/trainer';
import { loadModel } from '../../src/inference/load-model';
import { createDriver } from '../../src/drive/driver';
import type { Structure } from '../../src/data';
import { asePython, runPython } from '../helpers/ase';
import { CLI, ensureDist } from '../cli/dist-cli';

const script = path.join(__dirname, 'ase_client.py');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-drive-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const name = (): string => `gnnbatch-drive-${process.pid}-${n++}`;
const molecule = path.join(tmp, 'mol');
const crystal = path.join(tmp, 'crystal');

beforeAll(async () => {
  asePython(); // fails with the install command when ASE is missing
  // Small models, briefly trained on the built-in data: a smooth energy surface is all these tests need.
  // The molecule model is trained on energies and forces of the built-in data (qm9-like carries the
  // exact forces of its U0), as a user would train a potential for MD.
  const mol = await loadSource('qm9-like:400', { graph: 'fc', target: 'U0', directions: true });
  const { result } = await train({ store: mol.store, target: 'U0', model: { kind: 'mpeu', latent: 16, passes: 2 }, policy: 'dynamic', batchSize: 16, steps: 60, atomref: true, forces: true, checkpointDir: molecule, seed: 3 });
  expect(result.force_training).toBeTruthy();
  const cry = await loadSource('aflow-like:200', { graph: 'cutoff:4' });
  const target = cry.store.targetNames[0];
  await train({ store: cry.store, target, model: { kind: 'schnet', latent: 16, passes: 2 }, policy: 'dynamic', batchSize: 8, steps: 30, checkpointDir: crystal, seed: 3 });
}, 300_000);

test('ASE gets the model energies and forces, equal to loadModel().predict with properties', async () => {
  const socket = name();
  const driver = createDriver(molecule, { numbers: [8, 1, 1] });
  const served = driver.run({ kind: 'unix', name: socket });
  const doc = JSON.parse(await runPython([script, socket, 'points']));
  expect(['exit', 'closed']).toContain((await served).reason);
  driver.close();
  const model = loadModel(molecule);
  for (const p of doc.points as { positions: number[][]; energy: number; forces: number[][] }[]) {
    const s: Structure = { id: 'p', numbers: Uint8Array.of(8, 1, 1), positions: Float64Array.from(p.positions.flat()), cell: null, pbc: [false, false, false], targets: {} };
    const ref = model.predict([s], { properties: ['energy', 'forces'] });
    expect(p.energy).toBeCloseTo(ref.energy[0], 9);
    p.forces.flat().forEach((f, k) => expect(f).toBeCloseTo(ref.forces![0][k], 9));
    // The force is the energy's gradient (the native pass is checked against finite differences in float64 elsewhere).
    expect(Math.max(...p.forces.flat().map(Math.abs))).toBeGreaterThan(0);
  }
  model.close();
});

test('NVE through the real CLI: 200 velocity-Verlet steps conserve the total energy', async () => {
  ensureDist();
  const socket = name();
  const child = spawn(process.execPath, [CLI, 'drive', molecule, '--unix', socket, '--numbers', '8,1,1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  const doc = JSON.parse(await runPython([script, socket, 'md']));
  expect(await exited).toBe(0);
  expect(err).toMatch(/connected to \/tmp\/ipi_.*\(3 atoms\)/);
  expect(err).toMatch(/200 steps|20\d steps/);
  const total = doc.total as number[];
  const drift = Math.max(...total) - Math.min(...total);
  // Bound: 2% of the kinetic energy put in (300 K) over 50 fs in float32 forces with a 0.25 fs step.
  expect(drift).toBeLessThan(0.02 * (doc.kinetic_start as number));
}, 120_000);

test('BFGS converges on the model surface', async () => {
  const socket = name();
  const driver = createDriver(molecule, { numbers: [8, 1, 1] });
  const served = driver.run({ kind: 'unix', name: socket });
  const doc = JSON.parse(await runPython([script, socket, 'bfgs']));
  await served;
  driver.close();
  expect(doc.converged).toBe(true);
  expect(doc.fmax).toBeLessThan(0.01);
}, 120_000);

test('a periodic model: the stress ASE derives from the virial equals finite strain differences', async () => {
  const socket = name();
  const driver = createDriver(crystal, { numbers: [1, 1, 1, 1], pbc: [true, true, true] });
  const served = driver.run({ kind: 'unix', name: socket });
  const doc = JSON.parse(await runPython([script, socket, 'stress', '1e-3']));
  await served;
  driver.close();
  const s = doc.stress as number[], fd = doc.finite_difference as number[];
  const scale = Math.max(...fd.map(Math.abs));
  expect(scale).toBeGreaterThan(0);
  for (let k = 0; k < 6; k++) expect(Math.abs(s[k] - fd[k])).toBeLessThan(2e-2 * scale + 1e-5);
}, 120_000);
