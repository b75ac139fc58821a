/**
 * One rule in one place: the by-capacity growth of PlanCache, the plans the
 * recommendation's simulation counts, and the model configuration train()
 * and the calibration derive from a store.
 */
import { buildStore, qm9Like } from '../../src/data';
import { createPolicy, sizesOf, POLICY_NAMES } from '../../src/batching';
import { PlanBuildCounter, PlanCache, grownCapacity, plansByCapacity } from '../../src/train/plan';
import { modelConfigForStore, resolveModelConfig } from '../../src/model/config';
import { predictPolicyTimes } from '../../src/experiment/policy-simulation';
import { codeOf } from '../helpers/codes';

const config = resolveModelConfig({ kind: 'schnet', latent: 8, passes: 1, basis: 8, readoutHidden: 8 });

describe('grownCapacity', () => {
  test('null while the current capacity holds the shape, else 25% over the larger of both per dimension', () => {
    const cur = { nodes: 100, edges: 400, graphs: 10 };
    expect(grownCapacity(cur, { nodes: 100, edges: 400, graphs: 10 })).toBeNull();
    expect(grownCapacity(cur, { nodes: 3, edges: 0, graphs: 1 })).toBeNull();
    expect(grownCapacity(cur, { nodes: 101, edges: 10, graphs: 2 })).toEqual({ nodes: 127, edges: 500, graphs: 13 });
    expect(grownCapacity(null, { nodes: 9, edges: 17, graphs: 3 })).toEqual({ nodes: 12, edges: 22, graphs: 4 });
    expect(grownCapacity(null, { nodes: 0, edges: 0, graphs: 0 })).toEqual({ nodes: 0, edges: 0, graphs: 0 });
  });

  test('only the exact policy reuses plans by capacity', () => {
    expect(POLICY_NAMES.filter(plansByCapacity)).toEqual(['exact']);
  });
});

describe('PlanBuildCounter counts what PlanCache builds', () => {
  const { store } = buildStore([...qm9Like(120, 5)], { graph: { kind: 'fc' } });
  const train = Int32Array.from({ length: 100 }, (_, i) => i);
  for (const name of POLICY_NAMES) {
    test(`${name}: the same builds, at the same shapes, over 60 batches`, () => {
      const policy = createPolicy(name, sizesOf(store), train, 8, 3);
      const cache = new PlanCache(config, 'float32', 4 * 1024 ** 3, plansByCapacity(name));
      const counter = new PlanBuildCounter(plansByCapacity(name));
      const simulated: string[] = [];
      const real: string[] = [];
      let builds = 0;
      for (let s = 0; s < 60; s++) {
        const { shape } = policy.next();
        const b = counter.add(shape);
        if (b) simulated.push(`${b.nodes}/${b.edges}/${b.graphs}`);
        const plan = cache.get(shape);
        if (cache.stats().builds > builds) {
          builds = cache.stats().builds;
          real.push(`${plan.capacity.nodes}/${plan.capacity.edges}/${plan.capacity.graphs}`);
        }
      }
      expect(simulated).toEqual(real);
      expect(real.length).toBeGreaterThan(0);
    });
  }

  test('predictPolicyTimes prices each of those builds', () => {
    const cost = { ms_per_edge: 0, ms_per_node: 0, ms_per_step: 0, compile_ms_per_edge: 0, compile_ms_base: 1 };
    const steps = 60;
    for (const p of predictPolicyTimes(sizesOf(store), train, 8, steps, cost, POLICY_NAMES, 3)) {
      const counter = new PlanBuildCounter(plansByCapacity(p.policy));
      const policy = createPolicy(p.policy, sizesOf(store), train, 8, 3);
      let n = 0;
      for (let s = 0; s < steps; s++) if (counter.add(policy.next().shape)) n++;
      expect({ policy: p.policy, compiles: p.compiles, compile_ms: p.compile_ms }).toEqual({ policy: p.policy, compiles: n, compile_ms: n });
    }
  });
});

describe('modelConfigForStore', () => {
  const { store } = buildStore([...qm9Like(10, 1)], { graph: { kind: 'fc' } });

  test('the study defaults with numClasses covering the store (at least 100), overrides kept', () => {
    expect(modelConfigForStore(store)).toEqual(resolveModelConfig({ numClasses: 100 }));
    expect(modelConfigForStore(store, { kind: 'schnet', latent: 16 })).toEqual(resolveModelConfig({ kind: 'schnet', latent: 16, numClasses: 100 }));
    const heavy = { atomicNumber: Uint8Array.from([1, 6, 118]) };
    expect(modelConfigForStore(heavy).numClasses).toBe(119);
  });

  test('a numClasses that cannot embed every atom is an ArgumentError naming the atom', () => {
    const heavy = { atomicNumber: Uint8Array.from([1, 6, 118]) };
    expect(() => modelConfigForStore(heavy, { numClasses: 50 })).toThrow(/atomic number 118 needs numClasses > 118, got 50/);
    expect(codeOf(() => modelConfigForStore(heavy, { numClasses: 50 }))).toMatch(/^ERR_GNN_/);
  });
});
