/**
 * PaiNN's force pass (issue 22; program_painn.h painnForces): dE/dr per edge
 * from both the distance (basis and cutoff) and the direction u
 * (dE/dr = dE/dd u + (I - u u^T) dE/du / d), scattered to atoms; forces and
 * stress against central finite differences of the native energy in float64,
 * the physics (translation, rotation, permutation) and the engine's
 * guarantees (padding, batch composition and thread count change no bit).
 */
import { native, nativeModel, getThreads, setThreads, type PackOutput, type PackShape, type PlanHandle } from '../../src/native';
import { resolveModelConfig, type ModelConfig } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { testRng } from '../helpers/batch';
import { buildEdges, jitter, packStructures, volume, type TestStructure, type Vec3 } from './forces-reference';

const CUTOFF = 3.0;

function painnConfig(extra: Partial<ModelConfig> = {}): ModelConfig {
  return resolveModelConfig({ kind: 'painn', latent: 6, passes: 2, basis: 6, cutoff: CUTOFF, numClasses: 20, readoutHidden: 5, ...extra });
}

function paramsFor(config: ModelConfig, seed: number): Float64Array {
  const params = initParams(paramLayout(config), seed, 'float64') as Float64Array;
  const rnd = testRng(seed + 100);
  for (let i = 0; i < params.length; i++) params[i] += (rnd() - 0.5) * 0.2;
  return params;
}

/** Molecules and crystals, fc and cutoff graphs; some edges lie beyond the model's cutoff. */
function structures(): { name: string; st: TestStructure }[] {
  return [
    { name: 'molecule fc', st: { z: [1, 6, 8, 7], pos: jitter([[0, 0, 0], [1.2, 0, 0], [0, 1.3, 0.2], [0.4, 0.5, 1.1]], 1, 0.3), rule: { kind: 'fc' } } },
    {
      name: 'molecule fc, edges beyond the cutoff',
      st: { z: [6, 6, 1, 1, 8], pos: jitter([[0, 0, 0], [1.4, 0, 0], [-0.9, 0.8, 0], [2.3, 0.7, 0.3], [0.7, -1.2, 0.9]], 2, 0.3), rule: { kind: 'fc' } },
    },
    {
      name: 'crystal cutoff',
      st: { z: [3, 9], pos: [[0.1, 0.2, 0.05], [1.5, 1.4, 1.7]], cell: [[2.9, 0, 0], [0.3, 3.1, 0], [0.2, -0.1, 3.3]], rule: { kind: 'cutoff', cutoff: 3.2 } },
    },
    {
      name: 'crystal fc (minimum image)',
      st: { z: [11, 17, 11], pos: [[0.2, 0.1, 0.3], [2.1, 1.9, 2.2], [0.3, 2.2, 1.2]], cell: [[4.1, 0.2, 0], [0, 3.9, 0.3], [0.1, 0, 4.2]], rule: { kind: 'fc' } },
    },
  ];
}

const api = nativeModel();

interface ForceResult {
  energy: Float64Array;
  forces: Float64Array;
  stress?: Float64Array;
}

function runForces(plan: PlanHandle, inputs: PackOutput, shape: PackShape, params: Float64Array | Float32Array, volumes?: Float64Array): ForceResult {
  const f32 = params instanceof Float32Array;
  const make = (n: number) => (f32 ? new Float32Array(n) : new Float64Array(n));
  const energy = make(shape.graphs);
  const forces = make(3 * shape.nodes);
  const stress = volumes ? make(6 * shape.graphs) : undefined;
  native().forcesStep(plan, inputs, shape, params, energy, forces, stress, volumes);
  return { energy: Float64Array.from(energy), forces: Float64Array.from(forces), stress: stress && Float64Array.from(stress) };
}

/** Energy of one structure (float64, the edges of `edges` kept, geometry recomputed). */
function energyOf(config: ModelConfig, params: Float64Array, st: TestStructure, edges = buildEdges(st)): number {
  const packed = packStructures([st], [0], 'exact', [edges]);
  const plan = api.createPlan(config, packed.shape, 'float64');
  const pred = new Float64Array(1);
  api.predict(plan, packed.inputs, packed.shape, params, pred);
  api.releasePlan(plan);
  return pred[0];
}

const sameEdges = (a: TestStructure, b: TestStructure): boolean => JSON.stringify(buildEdges(a)) === JSON.stringify(buildEdges(b));

describe.each([
  ['per-block filters, sum', painnConfig()],
  ['shared filters, mean aggregation', painnConfig({ sharedFilters: true, aggregation: 'mean', passes: 3 })],
])('PaiNN forces vs finite differences (%s, float64)', (_c, config) => {
  const params = paramsFor(config, 7);
  it.each(structures().map((s) => [s.name, s.st] as const))('%s', (_n, st) => {
    const packed = packStructures([st], [0], 'exact');
    // No edge within 1e-3 Å of the model's cutoff (the finite differences stay on one side).
    for (const d of packed.inputs.distance) expect(Math.abs(d - CUTOFF)).toBeGreaterThan(1e-3);
    const plan = api.createPlan(config, packed.shape, 'float64', { forces: true });
    const { energy, forces } = runForces(plan, packed.inputs, packed.shape, params);
    expect(Math.abs(energy[0] - energyOf(config, params, st))).toBeLessThanOrEqual(1e-14 * Math.max(1, Math.abs(energy[0])));
    const h = 1e-5;
    let scale = 0;
    for (const f of forces) scale = Math.max(scale, Math.abs(f));
    expect(scale).toBeGreaterThan(1e-4);
    for (let i = 0; i < st.z.length; i++)
      for (let a = 0; a < 3; a++) {
        const at = (s: number): TestStructure => ({ ...st, pos: st.pos.map((p, j) => (j === i ? (p.map((x, b) => (b === a ? x + s : x)) as Vec3) : p)) });
        expect(sameEdges(at(h), st) && sameEdges(at(-h), st)).toBe(true);
        const fd = -(energyOf(config, params, at(h)) - energyOf(config, params, at(-h))) / (2 * h);
        const f = forces[3 * i + a];
        expect(Math.abs(fd - f)).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(f), 0.1 * scale) + 1e-11);
      }
  });
});

describe('PaiNN stress vs finite strain differences (float64)', () => {
  const config = painnConfig();
  const params = paramsFor(config, 9);
  it.each(structures().filter((s) => s.st.cell).map((s) => [s.name, s.st] as const))('%s', (_n, st) => {
    const cell = st.cell as [Vec3, Vec3, Vec3];
    const packed = packStructures([st], [0], 'exact');
    const plan = api.createPlan(config, packed.shape, 'float64', { forces: true });
    const V = volume(cell);
    const { stress } = runForces(plan, packed.inputs, packed.shape, params, Float64Array.from([V]));
    const edges = buildEdges(st);
    // ASE's numerical stress: x = I + strain (symmetric), positions and cell scaled.
    const strained = (eps: number[][]): TestStructure => {
      const m = (p: Vec3): Vec3 => [0, 1, 2].map((b) => p[0] * eps[0][b] + p[1] * eps[1][b] + p[2] * eps[2][b]) as Vec3;
      return { ...st, pos: st.pos.map(m), cell: cell.map(m) as [Vec3, Vec3, Vec3] };
    };
    const h = 1e-5;
    const voigt: [number, number][] = [[0, 0], [1, 1], [2, 2], [1, 2], [0, 2], [0, 1]];
    let nonzero = 0;
    voigt.forEach(([a, b], v) => {
      const x = (s: number) => {
        const m = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
        m[a][b] += s;
        if (a !== b) m[b][a] += s;
        return m;
      };
      const fd = (energyOf(config, params, strained(x(h)), edges) - energyOf(config, params, strained(x(-h)), edges)) / ((a === b ? 2 : 4) * h * V);
      expect(Math.abs(fd - (stress as Float64Array)[v])).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(fd), 1e-4));
      if (Math.abs(fd) > 1e-6) nonzero++;
    });
    expect(nonzero).toBeGreaterThan(0);
  });
});

describe('PaiNN force physics (float64)', () => {
  const config = painnConfig();
  const params = paramsFor(config, 17);
  const all = structures();
  const run = (st: TestStructure) => {
    const packed = packStructures([st], [0], 'exact');
    return runForces(api.createPlan(config, packed.shape, 'float64', { forces: true }), packed.inputs, packed.shape, params);
  };

  it('the forces sum to zero (translation invariance)', () => {
    for (const { st } of all) {
      const { forces } = run(st);
      let scale = 0;
      for (const f of forces) scale = Math.max(scale, Math.abs(f));
      for (let a = 0; a < 3; a++) {
        let s = 0;
        for (let i = 0; i < st.z.length; i++) s += forces[3 * i + a];
        expect(Math.abs(s)).toBeLessThanOrEqual(1e-12 * Math.max(1, scale));
      }
    }
  });

  it('forces rotate with the structure, energies do not change', () => {
    const t = 0.7;
    const p = 0.4;
    const Rz = [[Math.cos(t), -Math.sin(t), 0], [Math.sin(t), Math.cos(t), 0], [0, 0, 1]];
    const Rx = [[1, 0, 0], [0, Math.cos(p), -Math.sin(p)], [0, Math.sin(p), Math.cos(p)]];
    const R = Rz.map((row) => [0, 1, 2].map((j) => row[0] * Rx[0][j] + row[1] * Rx[1][j] + row[2] * Rx[2][j]));
    const rot = (v: Vec3): Vec3 => [0, 1, 2].map((i) => R[i][0] * v[0] + R[i][1] * v[1] + R[i][2] * v[2]) as Vec3;
    for (const { st } of all) {
      const a = run(st);
      const b = run({ ...st, pos: st.pos.map(rot), cell: st.cell && (st.cell.map(rot) as [Vec3, Vec3, Vec3]) });
      expect(Math.abs(a.energy[0] - b.energy[0])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(a.energy[0])));
      for (let i = 0; i < st.z.length; i++) {
        const f = rot([a.forces[3 * i], a.forces[3 * i + 1], a.forces[3 * i + 2]]);
        for (let c = 0; c < 3; c++) expect(Math.abs(f[c] - b.forces[3 * i + c])).toBeLessThanOrEqual(1e-11);
      }
    }
  });

  it('permuting the atoms permutes the forces', () => {
    for (const { st } of all) {
      const n = st.z.length;
      const perm = Array.from({ length: n }, (_, i) => n - 1 - i);
      const a = run(st);
      const b = run({ ...st, z: perm.map((j) => st.z[j]), pos: perm.map((j) => st.pos[j]) });
      expect(Math.abs(a.energy[0] - b.energy[0])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(a.energy[0])));
      perm.forEach((j, i) => {
        for (let c = 0; c < 3; c++) expect(Math.abs(b.forces[3 * i + c] - a.forces[3 * j + c])).toBeLessThanOrEqual(1e-12);
      });
    }
  });
});

describe.each([['float32'], ['float64']] as ['float32' | 'float64'][])('PaiNN force engine guarantees (%s)', (dtype) => {
  const config = painnConfig();
  const p64 = paramsFor(config, 21);
  const params = dtype === 'float32' ? Float32Array.from(p64) : p64;
  const structs = structures().map((s) => s.st);
  const withVolumes = (shape: PackShape, ids: number[]) => {
    const v = new Float64Array(shape.graphs);
    ids.forEach((g, i) => (v[i] = structs[g].cell ? volume(structs[g].cell as [Vec3, Vec3, Vec3]) : 1));
    return v;
  };
  const run = (ids: number[], shape: PackShape | 'exact') => {
    const packed = packStructures(structs, ids, shape);
    let inputs = packed.inputs;
    if (dtype === 'float32') {
      const c = (x: Float64Array | Float32Array) => Float32Array.from(x);
      inputs = { ...packed.inputs, distance: c(packed.inputs.distance), target: c(packed.inputs.target), mask: c(packed.inputs.mask), direction: c(packed.inputs.direction as Float64Array) };
    }
    const plan = api.createPlan(config, packed.shape, dtype, { forces: true });
    return { ...runForces(plan, inputs, packed.shape, params, withVolumes(packed.shape, ids)), shape: packed.shape };
  };
  const atomsOf = (r: { forces: Float64Array }, ids: number[], g: number): number[] => {
    let start = 0;
    for (const x of ids) {
      if (x === g) return Array.from(r.forces.subarray(3 * start, 3 * (start + structs[g].z.length)));
      start += structs[x].z.length;
    }
    throw new Error('not in batch');
  };

  it('padding and batch composition change no force, energy or stress bit', () => {
    const a = run([0, 1, 2, 3], 'exact');
    const b = run([3, 1], { nodes: 40, edges: 400, graphs: 5 });
    const c = run([2, 0, 1, 3], { nodes: 30, edges: 300, graphs: 6 });
    for (const [ids, r] of [[[3, 1], b], [[2, 0, 1, 3], c]] as const)
      ids.forEach((g, i) => {
        expect(atomsOf(r, [...ids], g)).toEqual(atomsOf(a, [0, 1, 2, 3], g));
        expect(r.energy[i]).toBe(a.energy[g]);
        expect(Array.from((r.stress as Float64Array).subarray(6 * i, 6 * i + 6))).toEqual(Array.from((a.stress as Float64Array).subarray(6 * g, 6 * g + 6)));
      });
    const realAtoms = structs[3].z.length + structs[1].z.length;
    for (let k = 3 * realAtoms; k < b.forces.length; k++) expect(b.forces[k]).toBe(0);
    for (let k = 12; k < (b.stress as Float64Array).length; k++) expect((b.stress as Float64Array)[k]).toBe(0);
  });

  it('1 and 2 threads give the same bits (several sender chunks)', () => {
    const before = getThreads();
    const ids = Array.from({ length: 24 }, (_, i) => i % 4); // 84 atoms: three chunks of 32 senders
    try {
      setThreads(1);
      const one = run(ids, 'exact');
      setThreads(2);
      const two = run(ids, 'exact');
      expect(Array.from(two.forces)).toEqual(Array.from(one.forces));
      expect(Array.from(two.energy)).toEqual(Array.from(one.energy));
      expect(Array.from(two.stress as Float64Array)).toEqual(Array.from(one.stress as Float64Array));
    } finally {
      setThreads(before);
    }
  });
});

describe('PaiNN force plans', () => {
  it('training on forces (the double backward) is accepted: its plan holds the force pass too (test/model/painn-double-backward.test.ts)', () => {
    const h = api.createPlan(painnConfig(), { nodes: 8, edges: 20, graphs: 2 }, 'float64', { forceTraining: true });
    expect(api.planInfo(h).bytes).toBeGreaterThan(0);
    api.releasePlan(h);
  });
  it('the profile of a force step records the force sites and no parameter-gradient kernel', () => {
    const config = painnConfig();
    const structs = structures().map((s) => s.st);
    const packed = packStructures(structs, [0, 1, 2, 3], 'exact');
    const plan = api.createPlan(config, packed.shape, 'float64', { forces: true });
    api.setProfile(plan, true);
    runForces(plan, packed.inputs, packed.shape, paramsFor(config, 3));
    const rec = api.takeProfileRecords(plan);
    const sites = api.kernelSites();
    const names = new Set<string>();
    for (let i = 0; i < rec.count; i++) names.add(sites[rec.site[i]].name);
    for (const s of ['force.seed', 'force.rbf_bwd', 'force.scatter', 'bwd.painn.message.scatter']) expect(names.has(s)).toBe(true);
    expect(names.has('bwd.painn.filter_dw_reduce')).toBe(false); // no parameter gradient in the force pass
  });
});
