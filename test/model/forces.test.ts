/**
 * The native force pass (issue 22; docs/forces.md): forces and stress of MPEU
 * and SchNet against central finite differences of the native energy in
 * float64, a TypeScript oracle of the SchNet force, the physics (translation,
 * rotation, permutation) and the engine's guarantees (padding, batch
 * composition and thread count change no bit).
 */
import { native, nativeModel, getThreads, setThreads, type PackOutput, type PackShape, type PlanHandle } from '../../src/native';
import { resolveModelConfig, type ModelConfig, type ModelKind } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { testRng } from '../helpers/batch';
import { computeForces, energyScale } from '../../src/model/forces';
import { buildEdges, packStructures, referenceSchnetForces, volume, type TestStructure, type Vec3 } from './forces-reference';

function smallConfig(kind: ModelKind, extra: Partial<ModelConfig> = {}): ModelConfig {
  return resolveModelConfig({ kind, latent: 6, passes: 2, basis: 10, rbfSpacing: 0.4, rbfGamma: 2, numClasses: 20, readoutHidden: 5, ...extra });
}

function paramsFor(config: ModelConfig, seed: number): Float64Array {
  const params = initParams(paramLayout(config), seed, 'float64') as Float64Array;
  const rnd = testRng(seed + 100);
  for (let i = 0; i < params.length; i++) params[i] += (rnd() - 0.5) * 0.2;
  return params;
}

function jitter(base: Vec3[], seed: number, amp: number): Vec3[] {
  const rnd = testRng(seed);
  return base.map((p) => [p[0] + (rnd() - 0.5) * amp, p[1] + (rnd() - 0.5) * amp, p[2] + (rnd() - 0.5) * amp] as Vec3);
}

/** Four structures: fc and cutoff, non-periodic and periodic. */
function structures(): { name: string; st: TestStructure }[] {
  return [
    { name: 'molecule fc', st: { z: [1, 6, 8, 7], pos: jitter([[0, 0, 0], [1.2, 0, 0], [0, 1.3, 0.2], [0.4, 0.5, 1.1]], 1, 0.3), rule: { kind: 'fc' } } },
    {
      name: 'molecule cutoff',
      st: { z: [6, 6, 1, 1, 8], pos: jitter([[0, 0, 0], [1.4, 0, 0], [-0.9, 0.8, 0], [2.3, 0.7, 0.3], [0.7, -1.2, 0.9]], 2, 0.3), rule: { kind: 'cutoff', cutoff: 2.2 } },
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

/** Energy of one structure (float64, edges kept, geometry recomputed). */
function energyOf(config: ModelConfig, params: Float64Array, st: TestStructure): number {
  const packed = packStructures([st], [0], 'exact');
  const plan = api.createPlan(config, packed.shape, 'float64');
  const pred = new Float64Array(1);
  api.predict(plan, packed.inputs, packed.shape, params, pred);
  api.releasePlan(plan);
  return pred[0];
}

const sameEdges = (a: TestStructure, b: TestStructure): boolean => JSON.stringify(buildEdges(a)) === JSON.stringify(buildEdges(b));

describe('test structures', () => {
  it.each(structures().map((s) => [s.name, s.st] as const))('%s: the TypeScript edges are the native builder\'s', (_n, st) => {
    const cells = new Float64Array(9);
    if (st.cell) st.cell.forEach((row, i) => row.forEach((x, a) => (cells[3 * i + a] = x)));
    const nb = native().buildNeighbours(
      { atomOffset: Int32Array.from([0, st.z.length]), positions: Float64Array.from(st.pos.flat()), cells, pbc: Uint8Array.from(st.cell ? [1, 1, 1] : [0, 0, 0]) },
      st.rule.kind === 'fc' ? { kind: 'fc' } : { kind: 'cutoff', cutoff: st.rule.cutoff },
    );
    const ours = buildEdges(st);
    const key = (s: number, r: number, d: number) => `${r}:${s}:${d.toFixed(4)}`;
    const theirs = Array.from(nb.senders, (s, k) => key(s, nb.receivers[k], nb.distance[k])).sort();
    const mine = ours.map((e) => {
      const v = st.pos[e.s].map((x, a) => x - st.pos[e.r][a] + (st.cell ? e.n[0] * st.cell[0][a] + e.n[1] * st.cell[1][a] + e.n[2] * st.cell[2][a] : 0));
      return key(e.s, e.r, Math.hypot(v[0], v[1], v[2]));
    }).sort();
    expect(mine).toEqual(theirs);
    expect(mine.length).toBeGreaterThan(0);
    // No edge within 1e-3 Å of the cutoff (finite differences keep the topology).
    if (st.rule.kind === 'cutoff') for (const k of theirs) expect(Math.abs(Number(k.split(':')[2]) - st.rule.cutoff)).toBeGreaterThan(1e-3);
  });
});

describe.each([['mpeu'], ['schnet']] as [ModelKind][])('forces vs finite differences (%s, float64)', (kind) => {
  const config = smallConfig(kind);
  const params = paramsFor(config, 7);
  it.each(structures().map((s) => [s.name, s.st] as const))('%s', (_n, st) => {
    const packed = packStructures([st], [0], 'exact');
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

describe.each([['mpeu'], ['schnet']] as [ModelKind][])('stress vs finite strain differences (%s, float64)', (kind) => {
  const config = smallConfig(kind, { readout: 'sum' });
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
    const E = (s: TestStructure): number => {
      const pk = packStructures([s], [0], 'exact', [edges]);
      const pl = api.createPlan(config, pk.shape, 'float64');
      const pred = new Float64Array(1);
      api.predict(pl, pk.inputs, pk.shape, params, pred);
      return pred[0];
    };
    const h = 1e-5;
    const voigt: [number, number][] = [[0, 0], [1, 1], [2, 2], [1, 2], [0, 2], [0, 1]];
    voigt.forEach(([a, b], v) => {
      const x = (s: number) => {
        const m = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
        m[a][b] += s;
        if (a !== b) m[b][a] += s;
        return m;
      };
      const fd = (E(strained(x(h))) - E(strained(x(-h)))) / ((a === b ? 2 : 4) * h * V);
      expect(Math.abs(fd - (stress as Float64Array)[v])).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(fd), 1e-4));
    });
  });
});

describe('the SchNet oracle (TypeScript float64, forward-mode)', () => {
  it.each([['mean', 'mean'], ['sum', 'sum']] as const)('native forces equal the reference (aggregation %s, readout %s)', (aggregation, readout) => {
    const config = smallConfig('schnet', { aggregation, readout });
    const params = paramsFor(config, 13);
    for (const { st } of structures()) {
      const packed = packStructures([st], [0], 'exact');
      const plan = api.createPlan(config, packed.shape, 'float64', { forces: true });
      const { energy, forces } = runForces(plan, packed.inputs, packed.shape, params);
      const ref = referenceSchnetForces(config, paramLayout(config), params, st, packed.edges[0]);
      expect(Math.abs(ref.energy - energy[0])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(ref.energy)));
      ref.forces.forEach((f, i) => f.forEach((x, a) => expect(Math.abs(x - forces[3 * i + a])).toBeLessThanOrEqual(1e-10 * Math.max(1, Math.abs(x)))));
    }
  });
});

describe.each([['mpeu'], ['schnet']] as [ModelKind][])('physics (%s, float64)', (kind) => {
  const config = smallConfig(kind);
  const params = paramsFor(config, 17);
  const all = structures();
  const run = (st: TestStructure) => {
    const packed = packStructures([st], [0], 'exact');
    return runForces(api.createPlan(config, packed.shape, 'float64', { forces: true }), packed.inputs, packed.shape, params);
  };

  it('the forces of a molecule sum to zero (translation invariance)', () => {
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
    // R = Rz(t) Rx(p)
    const Rz = [[Math.cos(t), -Math.sin(t), 0], [Math.sin(t), Math.cos(t), 0], [0, 0, 1]];
    const Rx = [[1, 0, 0], [0, Math.cos(p), -Math.sin(p)], [0, Math.sin(p), Math.cos(p)]];
    const R = Rz.map((row) => [0, 1, 2].map((j) => row[0] * Rx[0][j] + row[1] * Rx[1][j] + row[2] * Rx[2][j]));
    const rot = (v: Vec3): Vec3 => [0, 1, 2].map((i) => R[i][0] * v[0] + R[i][1] * v[1] + R[i][2] * v[2]) as Vec3;
    for (const { st } of all) {
      const a = run(st);
      const rs: TestStructure = { ...st, pos: st.pos.map(rot), cell: st.cell && (st.cell.map(rot) as [Vec3, Vec3, Vec3]) };
      const b = run(rs);
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
      const perm = Array.from({ length: n }, (_, i) => (i * 2 + 1) % n === i ? (i + 1) % n : (i * 2 + 1) % n);
      if (new Set(perm).size !== n) perm.splice(0, n, ...Array.from({ length: n }, (_, i) => n - 1 - i));
      const ps: TestStructure = { ...st, z: perm.map((j) => st.z[j]), pos: perm.map((j) => st.pos[j]) };
      const a = run(st);
      const b = run(ps);
      expect(Math.abs(a.energy[0] - b.energy[0])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(a.energy[0])));
      perm.forEach((j, i) => {
        for (let c = 0; c < 3; c++) expect(Math.abs(b.forces[3 * i + c] - a.forces[3 * j + c])).toBeLessThanOrEqual(1e-12);
      });
    }
  });
});

describe.each([
  ['mpeu', 'float32'],
  ['mpeu', 'float64'],
  ['schnet', 'float32'],
  ['schnet', 'float64'],
] as [ModelKind, 'float32' | 'float64'][])('engine guarantees (%s, %s)', (kind, dtype) => {
  const config = smallConfig(kind);
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
  /** Forces of structure `g` of a batch of `ids` (its atoms' rows). */
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
    // Padding atoms and graphs get exactly zero.
    const realAtoms = structs[3].z.length + structs[1].z.length;
    for (let k = 3 * realAtoms; k < b.forces.length; k++) expect(b.forces[k]).toBe(0);
    for (let k = 12; k < (b.stress as Float64Array).length; k++) expect((b.stress as Float64Array)[k]).toBe(0);
  });

  it('1 and 2 threads give the same bits', () => {
    const before = getThreads();
    try {
      setThreads(1);
      const one = run([0, 1, 2, 3], { nodes: 24, edges: 200, graphs: 5 });
      setThreads(2);
      const two = run([0, 1, 2, 3], { nodes: 24, edges: 200, graphs: 5 });
      expect(Array.from(two.forces)).toEqual(Array.from(one.forces));
      expect(Array.from(two.energy)).toEqual(Array.from(one.energy));
      expect(Array.from(two.stress as Float64Array)).toEqual(Array.from(one.stress as Float64Array));
    } finally {
      setThreads(before);
    }
  });
});

describe('forcesStep arguments', () => {
  const config = smallConfig('schnet');
  const params = paramsFor(config, 3);
  const st = structures()[0].st;
  const packed = packStructures([st], [0], 'exact');
  const out = () => [new Float64Array(1), new Float64Array(3 * packed.shape.nodes)] as const;

  it('refuses a plan built without forces (ERR_GNN_FORCES_PLAN)', () => {
    const plan = api.createPlan(config, packed.shape, 'float64');
    expect(() => native().forcesStep(plan, packed.inputs, packed.shape, params, ...out())).toThrow(expect.objectContaining({ code: 'ERR_GNN_FORCES_PLAN' }));
  });
  it('refuses a batch without directions (ERR_GNN_DATA_DIRECTIONS)', () => {
    const plan = api.createPlan(config, packed.shape, 'float64', { forces: true });
    const { direction: _d, ...noDir } = packed.inputs;
    expect(() => native().forcesStep(plan, noDir, packed.shape, params, ...out())).toThrow(expect.objectContaining({ code: 'ERR_GNN_DATA_DIRECTIONS' }));
  });
  it('takes stressOut and volumes together, volumes > 0 for real graphs', () => {
    const plan = api.createPlan(config, packed.shape, 'float64', { forces: true });
    expect(() => native().forcesStep(plan, packed.inputs, packed.shape, params, ...out(), new Float64Array(6))).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT' }));
    expect(() => native().forcesStep(plan, packed.inputs, packed.shape, params, ...out(), new Float64Array(6), new Float64Array(1))).toThrow(expect.objectContaining({ code: 'ERR_GNN_RANGE' }));
    expect(() => native().forcesStep(plan, packed.inputs, packed.shape, params, new Float64Array(1), new Float64Array(3))).toThrow(expect.objectContaining({ code: 'ERR_GNN_LENGTH' }));
  });
  it('plans with forces report their extra buffers', () => {
    const a = api.planInfo(api.createPlan(config, packed.shape, 'float64')).bytes;
    const b = api.planInfo(api.createPlan(config, packed.shape, 'float64', { forces: true })).bytes;
    expect(b - a).toBe(8 * packed.shape.edges * (config.basis + 1));
  });
});

describe('computeForces (data units)', () => {
  it('scales forces and stress by the target std; mean and atomrefs shift energies only', () => {
    const config = smallConfig('mpeu');
    const params = paramsFor(config, 5);
    const structs = structures().map((s) => s.st);
    const ids = [2, 0];
    const packed = packStructures(structs, ids, { nodes: 12, edges: 200, graphs: 3 });
    const plan = api.createPlan(config, packed.shape, 'float64', { forces: true });
    const volumes = Float64Array.from([volume(structs[2].cell as [Vec3, Vec3, Vec3]), 1, 0]);
    const raw = runForces(plan, packed.inputs, packed.shape, params, volumes);
    const r = computeForces(plan, packed.inputs, packed.shape, params, { targetMean: 3, targetStd: 2.5, offsets: [10, -4] }, volumes);
    expect(r.energy.length).toBe(2);
    expect(r.energy[0]).toBeCloseTo(raw.energy[0] * 2.5 + 3 + 10, 12);
    expect(r.energy[1]).toBeCloseTo(raw.energy[1] * 2.5 + 3 - 4, 12);
    expect(r.forces.length).toBe(3 * (structs[2].z.length + structs[0].z.length));
    r.forces.forEach((f, k) => expect(f).toBe(raw.forces[k] * 2.5));
    (r.stress as Float64Array).forEach((x, k) => expect(x).toBe((raw.stress as Float64Array)[k] * 2.5));
    expect(energyScale({ targetMean: 0, targetStd: 0 })).toBe(1);
  });
});

describe('the force pass in the per-kernel profile', () => {
  it('records its own sites, and its products sum to the native flop counter', () => {
    const config = smallConfig('schnet');
    const params = Float32Array.from(paramsFor(config, 8));
    const st = structures()[1].st;
    const packed = packStructures([st], [0], 'exact');
    const inputs = { ...packed.inputs, distance: Float32Array.from(packed.inputs.distance), target: Float32Array.from(packed.inputs.target), mask: Float32Array.from(packed.inputs.mask), direction: Float32Array.from(packed.inputs.direction as Float64Array) };
    const plan = api.createPlan(config, packed.shape, 'float32', { forces: true });
    api.setProfile(plan, true);
    api.resetFlops();
    runForces(plan, inputs, packed.shape, params);
    const flops = api.flopsCount();
    const rec = api.takeProfileRecords(plan);
    const sites = api.kernelSites();
    const names = new Set(Array.from(rec.site, (s) => sites[s].name));
    for (const n of ['force.seed', 'force.rbf_dx_gemm', 'force.rbf_bwd', 'force.scatter']) expect(names.has(n)).toBe(true);
    expect(names.has('bwd.filter.w1_dw_gemm')).toBe(false); // no parameter gradients in the force pass
    let gemm = 0;
    for (let i = 0; i < rec.count; i++) if (sites[rec.site[i]].gemm) gemm += rec.flops[i];
    expect(gemm).toBe(flops);
  });
});
