/**
 * The i-PI client against a scripted server on a loopback Unix socket: the message sequence, the
 * units and layouts on the wire, and every way a server can misbehave (each ends with a coded error
 * or a clean stop, never a hang).
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { BOHR_IN_ANGSTROM, HARTREE_IN_EV, runIpiDriver, parseInetAddress, unixSocketPath, type DriverGeometry, type DriverResult } from '../../src/drive/ipi';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-ipi-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const socketPath = (): string => path.join(dir, `s${n++}`);

const hdr = (t: string): Buffer => Buffer.from(t.padEnd(12, ' '), 'ascii');
const i32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32LE(v); return b; };
const f64 = (xs: number[]): Buffer => { const b = Buffer.alloc(8 * xs.length); xs.forEach((x, k) => b.writeDoubleLE(x, 8 * k)); return b; };

/** A server that runs `script` on the first connection; `read(n)` reads exactly n bytes. */
function server(file: string, script: (io: { send: (b: Buffer) => void; read: (n: number) => Promise<Buffer>; sock: net.Socket }) => Promise<void>): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      let want: { n: number; resolve: (b: Buffer) => void } | null = null;
      const pump = (): void => {
        if (want && buf.length >= want.n) {
          const out = buf.subarray(0, want.n);
          buf = buf.subarray(want.n);
          const w = want;
          want = null;
          w.resolve(out);
        }
      };
      sock.on('data', (d) => { buf = Buffer.concat([buf, d]); pump(); });
      sock.on('error', () => undefined);
      void script({ send: (b) => sock.write(b), read: (k) => new Promise((r) => { want = { n: k, resolve: r }; pump(); }), sock }).catch(() => undefined);
    });
    srv.listen(file, () => resolve(srv));
  });
}

const water = { positions: [0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0] };
const engine = (seen: DriverGeometry[]) => (g: DriverGeometry): DriverResult => {
  seen.push({ step: g.step, positions: Float64Array.from(g.positions), cell: Float64Array.from(g.cell) });
  return { energy: -2.5 + g.step, forces: Float64Array.from(g.positions, (x, k) => -x + k * 0.01), stress: Float64Array.of(0.01, 0.02, 0.03, 0.004, 0.005, 0.006) };
};

function posdata(cellRows: number[], positionsA: number[]): Buffer {
  // h = cell^T (columns are lattice vectors), row-major, in Bohr
  const h: number[] = [];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) h.push(cellRows[3 * j + i] / BOHR_IN_ANGSTROM);
  return Buffer.concat([hdr('POSDATA'), f64(h), f64(new Array(9).fill(0)), i32(positionsA.length / 3), f64(positionsA.map((x) => x / BOHR_IN_ANGSTROM))]);
}

test('a full exchange: STATUS/INIT/POSDATA/GETFORCE/EXIT, atomic units and the cell layout', async () => {
  const file = socketPath();
  const seen: DriverGeometry[] = [];
  const cell = [10, 0, 0, 1, 9, 0, 0.5, 0.25, 8]; // triclinic rows a, b, c
  const replies: Buffer[] = [];
  const srv = await server(file, async ({ send, read }) => {
    send(hdr('STATUS')); replies.push(await read(12));
    send(Buffer.concat([hdr('INIT'), i32(0), i32(1), Buffer.from([0])]));
    send(hdr('STATUS')); replies.push(await read(12));
    send(posdata(cell, water.positions));
    send(hdr('STATUS')); replies.push(await read(12));
    send(hdr('GETFORCE'));
    const head = await read(12 + 8 + 4);
    replies.push(head.subarray(0, 12));
    const natoms = head.readInt32LE(20);
    const rest = await read(24 * natoms + 72 + 4);
    replies.push(Buffer.concat([head.subarray(12), rest]));
    send(hdr('STATUS')); replies.push(await read(12));
    send(hdr('EXIT'));
  });
  try {
    const summary = await runIpiDriver({ kind: 'unix', name: file }, engine(seen), { connectTimeoutMs: 2000 });
    expect(summary).toEqual({ steps: 1, reason: 'exit' });
  } finally {
    srv.close();
  }
  expect(replies.slice(0, 3).map((b) => b.toString().trimEnd())).toEqual(['NEEDINIT', 'READY', 'HAVEDATA']);
  expect(replies[3].toString().trimEnd()).toBe('FORCEREADY');
  expect(replies[5].toString().trimEnd()).toBe('READY');
  // What the engine saw: Å and the cell's rows as sent.
  for (let k = 0; k < 9; k++) expect(seen[0].positions[k]).toBeCloseTo(water.positions[k], 12);
  for (let k = 0; k < 9; k++) expect(seen[0].cell[k]).toBeCloseTo(cell[k], 12);
  // What the server got: Hartree, Hartree/Bohr, virial = -V stress in Hartree (symmetric).
  const body = replies[4];
  expect(body.readDoubleLE(0)).toBeCloseTo(-2.5 / HARTREE_IN_EV, 14);
  expect(body.readInt32LE(8)).toBe(3);
  const f = (k: number): number => body.readDoubleLE(12 + 8 * k);
  for (let k = 0; k < 9; k++) expect(f(k)).toBeCloseTo((-water.positions[k] + k * 0.01) * BOHR_IN_ANGSTROM / HARTREE_IN_EV, 14);
  const vol = 10 * 9 * 8;
  const w = (k: number): number => body.readDoubleLE(12 + 72 + 8 * k);
  const full = [0.01, 0.006, 0.005, 0.006, 0.02, 0.004, 0.005, 0.004, 0.03];
  for (let k = 0; k < 9; k++) expect(w(k)).toBeCloseTo((-vol * full[k]) / HARTREE_IN_EV, 12);
  expect(body.readInt32LE(12 + 72 + 72)).toBe(0);
});

test('the server hanging up between messages ends the run cleanly', async () => {
  const file = socketPath();
  const srv = await server(file, async ({ send, read, sock }) => {
    send(hdr('STATUS')); await read(12);
    sock.end();
  });
  try {
    await expect(runIpiDriver({ kind: 'unix', name: file }, engine([]))).resolves.toEqual({ steps: 0, reason: 'closed' });
  } finally { srv.close(); }
});

test.each([
  ['closes in the middle of POSDATA', (send: (b: Buffer) => void, sock: net.Socket) => { send(posdata([5, 0, 0, 0, 5, 0, 0, 0, 5], water.positions).subarray(0, 40)); sock.end(); }, 'ERR_GNN_DRIVER_CLOSED'],
  ['sends a garbage header', (send: (b: Buffer) => void) => send(Buffer.from('HELLO WORLD!')), 'ERR_GNN_DRIVER_PROTOCOL'],
  ['sends GETFORCE before any geometry', (send: (b: Buffer) => void) => send(hdr('GETFORCE')), 'ERR_GNN_DRIVER_PROTOCOL'],
  ['sends a negative atom count', (send: (b: Buffer) => void) => send(Buffer.concat([hdr('POSDATA'), f64(new Array(18).fill(1)), i32(-4)])), 'ERR_GNN_DRIVER_PROTOCOL'],
  ['sends a NaN position', (send: (b: Buffer) => void) => send(Buffer.concat([hdr('POSDATA'), f64(new Array(18).fill(1)), i32(1), f64([0, NaN, 0])])), 'ERR_GNN_DRIVER_PROTOCOL'],
  ['stalls inside a message', (send: (b: Buffer) => void) => send(Buffer.concat([hdr('POSDATA'), f64([1, 2])])), 'ERR_GNN_DRIVER_PROTOCOL'],
])('a server that %s gets a coded error, not a hang', async (_name, misbehave, code) => {
  const file = socketPath();
  const srv = await server(file, async ({ send, read, sock }) => {
    send(Buffer.concat([hdr('STATUS')])); await read(12);
    send(Buffer.concat([hdr('INIT'), i32(0), i32(0)]));
    misbehave(send, sock);
  });
  try {
    const t0 = Date.now();
    await expect(runIpiDriver({ kind: 'unix', name: file }, engine([]), { messageTimeoutMs: 300 })).rejects.toMatchObject({ code });
    expect(Date.now() - t0).toBeLessThan(5000);
  } finally { srv.close(); }
});

test('an atom count that changes between steps is refused', async () => {
  const file = socketPath();
  const srv = await server(file, async ({ send, read }) => {
    send(Buffer.concat([hdr('INIT'), i32(0), i32(0)]));
    send(posdata([5, 0, 0, 0, 5, 0, 0, 0, 5], water.positions));
    send(hdr('GETFORCE')); await read(12 + 8 + 4 + 72 + 72 + 4);
    send(posdata([5, 0, 0, 0, 5, 0, 0, 0, 5], water.positions.slice(0, 6)));
  });
  try {
    await expect(runIpiDriver({ kind: 'unix', name: file }, engine([]))).rejects.toMatchObject({ code: 'ERR_GNN_DRIVER_PROTOCOL', message: expect.stringContaining('changed from 3 to 2') });
  } finally { srv.close(); }
});

test('a server that is not up yet is waited for; one that never comes is a coded error', async () => {
  const file = socketPath();
  let srv: net.Server | null = null;
  setTimeout(() => { void server(file, async ({ send }) => { send(hdr('EXIT')); }).then((s) => { srv = s; }); }, 200);
  await expect(runIpiDriver({ kind: 'unix', name: file }, engine([]), { connectTimeoutMs: 5000 })).resolves.toEqual({ steps: 0, reason: 'exit' });
  (srv as net.Server | null)?.close();
  await expect(runIpiDriver({ kind: 'unix', name: socketPath() }, engine([]), { connectTimeoutMs: 150 })).rejects.toMatchObject({ code: 'ERR_GNN_DRIVER_CONNECT' });
});

test('addresses', () => {
  expect(parseInetAddress('localhost:31415')).toEqual({ kind: 'inet', host: 'localhost', port: 31415 });
  expect(parseInetAddress('[::1]:8')).toEqual({ kind: 'inet', host: '::1', port: 8 });
  for (const bad of ['localhost', ':80', 'h:0', 'h:70000', 'h:1e3']) expect(() => parseInetAddress(bad)).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT' }));
  expect(unixSocketPath('gnn')).toBe('/tmp/ipi_gnn');
  expect(unixSocketPath('/run/x.sock')).toBe('/run/x.sock');
});
