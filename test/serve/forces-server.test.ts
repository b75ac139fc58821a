/**
 * `POST /v1/predict` with `"properties"` (issue 24 item 1): forces [atoms][3] and stress ([6] or
 * null) in the answer, equal to loadModel().predict of each structure alone; the answer without
 * properties is unchanged; the schema takes properties as sent (no coercion, unique names); a
 * text body names them in the query; metrics count structures by property; PaiNN answers 501.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildStore, formatExtxyzFrame, qm9Like, type Structure } from '../../src/data';
import { startServer, type RunningServer } from '../../src/serve';
import { loadModel } from '../../src/inference/load-model';
import { train } from '../../src/train/trainer';
import { molecules, smallCheckpoint } from './helpers';

let ck: string;
let server: RunningServer;
beforeAll(async () => {
  ck = await smallCheckpoint({ steps: 20, atomref: true });
  server = await startServer(ck, { port: 0, maxQueueDelayMs: 10 });
}, 120_000);
afterAll(() => server.close());

const asJson = (mols: Structure[]) => mols.map((m) => ({ numbers: Array.from(m.numbers), positions: Array.from(m.positions), id: m.id }));

async function post(url: string, body: unknown, contentType = 'application/json', query = ''): Promise<{ status: number; json: any }> {
  const r = await fetch(`${url}/v1/predict${query}`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

test('properties: forces [atoms][3] and stress (null for molecules) equal loadModel().predict alone; predictions stay the energies', async () => {
  const mols = molecules(6, 31);
  const [a, b, plain] = await Promise.all([
    post(server.url, { structures: asJson(mols.slice(0, 3)), properties: ['energy', 'forces', 'stress'] }),
    post(server.url, { structures: asJson(mols.slice(3)), properties: ['forces'] }),
    post(server.url, { structures: asJson(mols) }),
  ]);
  expect([a.status, b.status, plain.status]).toEqual([200, 200, 200]);
  // Unchanged shape without properties.
  // Unchanged shape without properties (out_of_domain: the checkpoint records its training elements).
  expect(Object.keys(plain.json).sort()).toEqual(['out_of_domain', 'predictions', 'step', 'target']);
  expect(a.json.properties).toEqual(['energy', 'forces', 'stress']);
  expect(b.json.properties).toEqual(['forces']);
  expect(b.json.stress).toBeUndefined();
  const model = loadModel(ck);
  const check = (r: { json: any }, part: Structure[], stress: boolean): void => {
    part.forEach((s, k) => {
      const ref = model.predict([s], { properties: ['energy', 'forces', 'stress'] });
      expect(r.json.predictions[k]).toBe(ref.energy[0]);
      expect(r.json.forces[k]).toHaveLength(s.numbers.length);
      expect(r.json.forces[k].flat()).toEqual(Array.from(ref.forces![0]));
      if (stress) expect(r.json.stress[k]).toBeNull();
    });
  };
  check(a, mols.slice(0, 3), true);
  check(b, mols.slice(3), false);
  expect(plain.json.predictions).toEqual(Array.from(model.predict(mols)));
  model.close();
}, 60_000);

test('the schema takes properties as sent: an array of unique known names, nothing coerced', async () => {
  const good = asJson(molecules(1, 2));
  for (const properties of ['forces', ['forces', 'forces'], ['charge'], [], [1], 'energy,forces', null]) {
    const r = await post(server.url, { structures: good, properties });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('ERR_GNN_REQUEST');
    expect(r.json.error.message).toMatch(/properties/);
  }
});

test('a text (extended XYZ) body names the properties in the query', async () => {
  const mols = molecules(2, 41);
  const text = mols.map(formatExtxyzFrame).join('');
  const r = await post(server.url, text, 'text/plain', '?properties=energy,forces');
  expect(r.status).toBe(200);
  expect(r.json.forces).toHaveLength(2);
  expect(r.json.forces[1]).toHaveLength(mols[1].numbers.length);
  for (const bad of ['?properties=forces,forces', '?properties=charge', '?properties=']) {
    const x = await post(server.url, text, 'text/plain', bad);
    expect(x.status).toBe(400);
  }
  const both = await post(server.url, { extxyz: text, properties: ['forces'] }, 'application/json', '?properties=forces');
  expect(both.status).toBe(400);
});

test('metrics count structures by property and force batches', async () => {
  await post(server.url, { structures: asJson(molecules(3, 51)), properties: ['energy', 'stress'] });
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const count = (p: string): number => Number(new RegExp(`gnnbatch_structure_properties_total\\{property="${p}"\\} (\\d+)`).exec(text)?.[1] ?? 'NaN');
  expect(count('stress')).toBeGreaterThanOrEqual(3);
  expect(count('forces')).toBeGreaterThanOrEqual(3);
  expect(count('energy')).toBeGreaterThan(count('stress'));
  expect(Number(/gnnbatch_force_batches_total (\d+)/.exec(text)?.[1])).toBeGreaterThan(0);
});

test('PaiNN: forces are served (its force pass) and equal loadModel().predict alone; energies unchanged', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-serve-forces-painn-'));
  try {
    const painn = path.join(dir, 'ck');
    const { store } = buildStore([...qm9Like(40, 3)], { graph: { kind: 'fc' }, directions: true });
    await train({ store, target: 'U0', model: { kind: 'painn', latent: 8, passes: 2, basis: 6, readoutHidden: 8 }, policy: 'dynamic', batchSize: 4, steps: 2, seed: 1, skipEval: true, checkpointDir: painn });
    const s = await startServer(painn, { port: 0 });
    try {
      const good = asJson(molecules(2, 3));
      const r = await post(s.url, { structures: good, properties: ['energy', 'forces'] });
      expect(r.status).toBe(200);
      const model = loadModel(painn);
      try {
        molecules(2, 3).forEach((m, k) => {
          const ref = model.predict([m], { properties: ['energy', 'forces'] });
          expect(r.json.predictions[k]).toBe(ref.energy[0]);
          expect(r.json.forces[k]).toHaveLength(m.numbers.length);
          expect(r.json.forces[k].flat()).toEqual(Array.from(ref.forces![0]));
        });
        // Forces of a molecule sum to zero (translation invariance).
        const sum = [0, 1, 2].map((c) => r.json.forces[0].reduce((acc: number, f: number[]) => acc + f[c], 0));
        for (const v of sum) expect(Math.abs(v)).toBeLessThan(1e-3);
      } finally {
        model.close();
      }
      const e = await post(s.url, { structures: good, properties: ['energy'] });
      expect(e.status).toBe(200);
      expect(e.json.predictions).toEqual(r.json.predictions);
    } finally {
      await s.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
