/**
 * Structures with elements the model never saw in training are flagged (issue 23): the checkpoint
 * records the training split's elements, `loadModel` and the predictor expose them, and `serve`
 * answers `out_of_domain` per structure and counts the flagged ones in /metrics. Checkpoints written
 * before the field existed load as before, with no flag.
 */
import * as fs from 'fs';
import * as path from 'path';
import { startServer, type RunningServer } from '../../src/serve';
import { loadModel } from '../../src/inference/load-model';
import { molecules, smallCheckpoint } from './helpers';

let ck: string;
let server: RunningServer;
beforeAll(async () => {
  ck = await smallCheckpoint();
  server = await startServer(ck, { port: 0 });
});
afterAll(() => server.close());

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

const json = (numbers: number[], positions: number[]) => ({ numbers, positions });

test('the checkpoint records the training elements (qm9-like: H C N O F)', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ck, 'checkpoint.json'), 'utf8'));
  expect(manifest.elements).toEqual([1, 6, 7, 8, 9]);
  expect(loadModel(ck).elements).toEqual([1, 6, 7, 8, 9]);
});

test('serve flags structures with unseen elements and counts them', async () => {
  const [m] = molecules(1, 5);
  const r = await post(server.url, {
    structures: [
      { numbers: Array.from(m.numbers), positions: Array.from(m.positions) },
      json([11, 17], [0, 0, 0, 2.4, 0, 0]), // NaCl: Na was never seen
      json([92, 8], [0, 0, 0, 1.8, 0, 0]), // UO: U was never seen
      json([8, 1, 1], [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0]),
    ],
  });
  expect(r.status).toBe(200);
  expect(r.json.out_of_domain).toEqual([false, true, true, false]);
  expect(r.json.predictions).toHaveLength(4);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  expect(metrics).toMatch(/^gnnbatch_out_of_domain_structures_total 2$/m);
});

test('a checkpoint without the field loads and serves without a flag', async () => {
  const old = path.join(path.dirname(ck), `${path.basename(ck)}-old`);
  fs.cpSync(ck, old, { recursive: true });
  const file = path.join(old, 'checkpoint.json');
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  delete manifest.elements;
  fs.writeFileSync(file, JSON.stringify(manifest));
  expect(loadModel(old).elements).toBeNull();
  const s = await startServer(old, { port: 0 });
  try {
    const r = await post(s.url, { structures: [json([11, 17], [0, 0, 0, 2.4, 0, 0])] });
    expect(r.status).toBe(200);
    expect(r.json.out_of_domain).toBeUndefined();
  } finally {
    await s.close();
  }
});

test('a malformed elements field is a located checkpoint error', () => {
  const bad = path.join(path.dirname(ck), `${path.basename(ck)}-bad`);
  fs.cpSync(ck, bad, { recursive: true });
  const file = path.join(bad, 'checkpoint.json');
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  manifest.elements = [6, 1];
  fs.writeFileSync(file, JSON.stringify(manifest));
  expect(() => loadModel(bad)).toThrow(expect.objectContaining({ code: 'ERR_GNN_CHECKPOINT_FIELD', message: expect.stringContaining('elements') }));
});
