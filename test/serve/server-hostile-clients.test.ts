/**
 * Slow and hostile clients against `gnnbatch serve` (issue 21, items 3 and 5),
 * through the loopback harness in test/helpers/hostile-http.ts: dripping
 * headers and bodies meet the timeouts, a connection cap sheds the oldest
 * drippers so real clients are answered, the request deadline answers 504,
 * and the shutdown answers keep-alive requests that were already sent instead
 * of resetting them, and is not held open by a dripping client.
 */
import { spawn } from 'child_process';
import { startServer, type RunningServer } from '../../src/serve';
import { CLI, ensureDist } from '../cli/dist-cli';
import { connectRaw, dripClient, rawRequest, sleep, type RawClient } from '../helpers/hostile-http';
import { molecules, smallCheckpoint } from './helpers';

let ck: string;
beforeAll(async () => {
  ck = await smallCheckpoint();
}, 60_000);

const asJson = (n: number, seed = 3): string =>
  JSON.stringify({ structures: molecules(n, seed).map((m) => ({ numbers: Array.from(m.numbers), positions: Array.from(m.positions), id: m.id })) });

async function metric(url: string, pattern: RegExp): Promise<number> {
  const hit = pattern.exec(await (await fetch(`${url}/metrics`)).text());
  return hit ? Number(hit[1]) : 0;
}

async function withServer(options: Parameters<typeof startServer>[1], body: (s: RunningServer) => Promise<void>): Promise<void> {
  const s = await startServer(ck, { port: 0, ...options });
  try {
    await body(s);
  } finally {
    await Promise.race([s.close(), sleep(5000)]);
  }
}

describe('timeouts', () => {
  test('a body dripped a byte at a time gets 408 at the body timeout, counted in the metrics', () =>
    withServer({ bodyTimeoutMs: 600, headersTimeoutMs: 300 }, async (s) => {
      const body = asJson(1);
      const c = await dripClient(s.url, rawRequest('POST', '/v1/predict', body).slice(0, -body.length), body, 100);
      const out = await Promise.race([c.done, sleep(4000).then(() => null)]);
      c.destroy();
      expect(out).not.toBeNull();
      expect(out!.statuses).toEqual([408]);
      expect(out!.text).toContain('ERR_GNN_TIMEOUT');
      expect(out!.ms).toBeLessThan(2000);
      expect(await metric(s.url, /gnnbatch_requests_total\{status="408"\} (\d+)/)).toBe(1);
    }));

  test('headers dripped a byte at a time, and a connection that sends nothing, are closed at the headers timeout', () =>
    withServer({ bodyTimeoutMs: 2000, headersTimeoutMs: 300 }, async (s) => {
      const dripper = await dripClient(s.url, 'POST /v1/predict HTTP/1.1\r\n', 'X-Slow: ' + 'a'.repeat(100), 50);
      const silent = await connectRaw(s.url);
      const outs = await Promise.race([Promise.all([dripper.done, silent.done]), sleep(4000).then(() => null)]);
      dripper.destroy();
      silent.destroy();
      expect(outs).not.toBeNull();
      for (const o of outs!) expect(o.ms).toBeLessThan(1500);
    }));

  test('a request not answered within the deadline gets 504 ERR_GNN_TIMEOUT', () =>
    withServer({ requestDeadlineMs: 1 }, async (s) => {
      const r = await fetch(`${s.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: asJson(1500) });
      expect(r.status).toBe(504);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('ERR_GNN_TIMEOUT');
      // The server still answers in time afterwards.
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    }));
});

describe('connection cap', () => {
  test('40 dripping clients on a server capped at 16 connections: never more than 16 open, real clients answered', () =>
    withServer({ maxConnections: 16, bodyTimeoutMs: 30_000, headersTimeoutMs: 30_000 }, async (s) => {
      const body = asJson(1);
      const head = rawRequest('POST', '/v1/predict', body).slice(0, -body.length);
      const drippers: RawClient[] = [];
      let most = 0;
      const open = (): Promise<number> => new Promise((r) => s.app.server.getConnections((_e, n) => r(n)));
      for (let i = 0; i < 40; i++) {
        drippers.push(await dripClient(s.url, head, body, 200));
        most = Math.max(most, await open());
      }
      await sleep(50);
      most = Math.max(most, await open());
      expect(most).toBeLessThanOrEqual(16);
      // Real clients (fresh connections each) still get their answers while the drippers keep coming.
      const more = dripClient(s.url, head, body, 200);
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => fetch(`${s.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body }).then((r) => r.status)),
      );
      expect(answers).toEqual([200, 200, 200, 200, 200]);
      drippers.push(await more);
      expect(await metric(s.url, /gnnbatch_connections_dropped_total\{reason="evicted"\} (\d+)/)).toBeGreaterThanOrEqual(24);
      for (const d of drippers) d.destroy();
    }));
});

describe('graceful shutdown', () => {
  test('keep-alive requests written before close() are all answered (200, Connection: close), none reset', async () => {
    const s = await startServer(ck, { port: 0 });
    const body = asJson(2);
    const request = rawRequest('POST', '/v1/predict', body);
    const clients = await Promise.all(Array.from({ length: 60 }, () => connectRaw(s.url)));
    // One answered request each: the sockets are now idle keep-alive connections.
    await Promise.all(clients.map(async (c) => {
      await c.write(request);
      expect(await c.waitFor(/"predictions"/, 10_000)).not.toBeNull();
    }));
    // The second request is in the kernel's buffers of every socket when the shutdown begins.
    await Promise.all(clients.map((c) => c.write(request)));
    const closed = s.close();
    const outs = await Promise.all(clients.map((c) => c.done));
    await closed;
    for (const o of outs) {
      expect(o.reset).toBe(false);
      expect(o.statuses).toEqual([200, 200]);
      expect(o.text.split('HTTP/1.1 200')[2]).toMatch(/connection: close/i);
    }
  });

  test('idle keep-alive connections are closed at once; a dripping client is destroyed at the drain deadline', async () => {
    const s = await startServer(ck, { port: 0, drainTimeoutMs: 400, bodyTimeoutMs: 60_000, headersTimeoutMs: 60_000 });
    const idle = await connectRaw(s.url);
    await idle.write(rawRequest('GET', '/healthz'));
    expect(await idle.waitFor(/"status":"ok"/, 5000)).not.toBeNull();
    const body = asJson(1);
    const dripper = await dripClient(s.url, rawRequest('POST', '/v1/predict', body).slice(0, -body.length), body, 100);
    await sleep(50);
    const t0 = Date.now();
    const idleClosed = idle.done.then((o) => ({ ...o, after: Date.now() - t0 }));
    const closed = await Promise.race([s.close().then(() => Date.now() - t0), sleep(5000).then(() => null)]);
    const idleOut = await idleClosed;
    expect(idleOut.reset).toBe(false);
    // Closed in the drain's first moments, not at its deadline (400 ms).
    expect(idleOut.after).toBeLessThan(250);
    expect(closed).not.toBeNull();
    expect(closed!).toBeLessThan(1500);
    expect((await dripper.done).statuses).toEqual([]);
  });

  test('serve: SIGTERM ends within the drain deadline despite a dripping client; a second signal exits at once', async () => {
    ensureDist();
    const start = async (drainMs: number): Promise<{ child: ReturnType<typeof spawn>; url: string; stderr: () => string }> => {
      const child = spawn(process.execPath, [CLI, 'serve', ck, '--port', '0', '--drain-timeout-ms', String(drainMs), '--body-timeout-ms', '60000', '--headers-timeout-ms', '60000'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /on (http:\/\/[^\s]+)/.exec(stderr);
          if (m) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
      });
      return { child, url, stderr: () => stderr };
    };
    const exited = (child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: string | null; at: number }> =>
      new Promise((r) => child.on('exit', (code, signal) => r({ code, signal, at: Date.now() })));
    const body = asJson(1);

    // One SIGTERM: the drip holds the drain only until the drain deadline (500 ms).
    const a = await start(500);
    const dripA = await dripClient(a.url, rawRequest('POST', '/v1/predict', body).slice(0, -body.length), body, 100);
    await sleep(100);
    const t0 = Date.now();
    const endA = exited(a.child);
    a.child.kill('SIGTERM');
    const exitA = await Promise.race([endA, sleep(5000).then(() => null)]);
    dripA.destroy();
    if (!exitA) a.child.kill('SIGKILL');
    expect(exitA).toMatchObject({ code: 0 });
    expect(exitA!.at - t0).toBeLessThan(3000);

    // A second signal while draining (deadline 60 s) exits at once.
    const b = await start(60_000);
    const dripB = await dripClient(b.url, rawRequest('POST', '/v1/predict', body).slice(0, -body.length), body, 100);
    await sleep(100);
    const endB = exited(b.child);
    b.child.kill('SIGTERM');
    await sleep(300);
    expect(b.child.exitCode).toBeNull();
    const t1 = Date.now();
    b.child.kill('SIGINT');
    const exitB = await Promise.race([endB, sleep(3000).then(() => null)]);
    dripB.destroy();
    if (!exitB) b.child.kill('SIGKILL');
    expect(exitB).not.toBeNull();
    expect(exitB!.code).toBe(130);
    expect(exitB!.at - t1).toBeLessThan(1000);
    expect(b.stderr()).toMatch(/second signal/);
  }, 30_000);
});
