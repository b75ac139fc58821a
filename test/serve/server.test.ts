import { spawn } from 'child_process';
import { formatExtxyzFrame } from '../../src/data';
import { startServer, type RunningServer } from '../../src/serve';
import { loadModel } from '../../src/inference/load-model';
import { CLI, ensureDist } from '../cli/dist-cli';
import { molecules, smallCheckpoint } from './helpers';

let ck: string;
let server: RunningServer;
beforeAll(async () => {
  ck = await smallCheckpoint();
  server = await startServer(ck, { port: 0 });
});
afterAll(() => server.close());

const asJson = (mols: ReturnType<typeof molecules>) => mols.map((m) => ({ numbers: Array.from(m.numbers), positions: Array.from(m.positions), id: m.id }));

async function post(body: unknown, contentType = 'application/json'): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, json: await r.json(), headers: r.headers };
}

describe('gnnbatch serve (HTTP)', () => {
  test('POST /v1/predict with JSON structures answers in target units, equal to loadModel', async () => {
    const mols = molecules(5, 21);
    const r = await post({ structures: asJson(mols) });
    expect(r.status).toBe(200);
    expect(r.json.target).toBe('U0');
    expect(r.json.predictions).toEqual(Array.from(loadModel(ck).predict(mols)));
  });

  test('extxyz text, as a JSON field or a text/plain body', async () => {
    const mols = molecules(3, 22);
    const text = mols.map(formatExtxyzFrame).join('');
    const a = await post({ extxyz: text });
    const b = await post(text, 'text/plain');
    expect(a.status).toBe(200);
    expect(b.json.predictions).toEqual(a.json.predictions);
    expect(a.json.predictions).toHaveLength(3);
  });

  test('bad requests get 400 naming the field', async () => {
    const good = asJson(molecules(2, 1));
    const cases: [unknown, string][] = [
      [{ structures: [good[0], { ...good[1], positions: [1, 2] }] }, 'structures[1]'],
      [{ structures: [{ ...good[0], numbers: [1, 500] }] }, 'numbers[1]'],
      [{ structures: [{ ...good[0], positions: good[0].positions.map(() => 'x') }] }, 'positions[0]'],
      [{ structures: [{ positions: [] }] }, 'numbers'],
      [{ nothing: true }, 'invalid request'],
      ['3\n\nH 0 0 0\n', 'extxyz'],
    ];
    for (const [body, needle] of cases) {
      const r = await post(body, typeof body === 'string' ? 'text/plain' : 'application/json');
      expect(r.status).toBe(400);
      expect(r.json.error.message).toContain(needle);
      expect(r.json.error.code).toMatch(/^ERR_GNN_/);
    }
    const notJson = await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"structures": [' });
    expect(notJson.status).toBe(400);
  });

  test('GET /healthz and GET /metrics (Prometheus text)', async () => {
    const h = await fetch(`${server.url}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: 'ok', target: 'U0' });
    const m = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of ['gnnbatch_requests_total', 'gnnbatch_request_duration_seconds_bucket', 'gnnbatch_batch_graphs_bucket', 'gnnbatch_queue_depth', 'gnnbatch_native_forward_seconds_bucket']) {
      expect(m).toContain(name);
    }
    expect(m).toMatch(/gnnbatch_requests_total\{status="200"\} [1-9]/);
  });

  test('a full queue answers 503 with Retry-After', async () => {
    const small = await startServer(ck, { port: 0, maxQueue: 1 });
    try {
      // Requests heavy enough that the first one's forward is still running while the others
      // arrive (a request of 6 molecules could be answered before the next was read).
      const body = JSON.stringify({ structures: asJson(molecules(96, 5)) });
      const rs = await Promise.all(Array.from({ length: 30 }, () => fetch(`${small.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })));
      const statuses = rs.map((r) => r.status);
      expect(statuses).toContain(503);
      expect(statuses).toContain(200);
      const busy = rs.find((r) => r.status === 503)!;
      expect(busy.headers.get('retry-after')).toBe('1');
      expect(((await busy.json()) as { error: { code: string } }).error.code).toBe('ERR_GNN_QUEUE_FULL');
    } finally {
      await small.close();
    }
  });
});

test('SIGTERM drains in-flight requests and exits 0', async () => {
  // The compiled CLI, as a user runs it (rebuilt when src/ is newer).
  ensureDist();
  const cli = CLI;
  const child = spawn(process.execPath, [cli, 'serve', ck, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /on (http:\/\/[^\s]+)/.exec(stderr);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  // Large requests (hundreds of molecules: a forward pass of well over 100 ms), so they
  // are inside the predictor when SIGTERM arrives.
  const body = JSON.stringify({ structures: asJson(molecules(1500, 9)) });
  const post1 = () => fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (r) => ({ status: r.status, n: ((await r.json()) as { predictions?: number[] }).predictions?.length }));
  const inflight = [post1(), post1(), post1()];
  await new Promise((r) => setTimeout(r, 150));
  child.kill('SIGTERM');
  const [answers, code] = await Promise.all([Promise.all(inflight), new Promise<number | null>((r) => child.on('exit', (c) => r(c)))]);
  expect(code).toBe(0);
  // Every request accepted before SIGTERM was answered in full.
  expect(answers).toEqual([{ status: 200, n: 1500 }, { status: 200, n: 1500 }, { status: 200, n: 1500 }]);
  expect(stderr).toMatch(/SIGTERM, draining [1-9]/);
  expect(stderr).toContain('stopped');
});
