/**
 * `data get rmd17` (issue 22 item 4) on a loopback server serving a small
 * archive made by numpy and Python's tarfile (test/fixtures/forces/
 * rmd17-fixture.tar.bz2: 10 molecules x 4 frames, np.savez and
 * np.savez_compressed members): npz/npy read, kcal/mol -> eV, stores with
 * forces, resume of a cut transfer, cached re-run, damaged archive refused.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import type { AddressInfo } from 'net';
import { loadStore } from '../../src/data/cache';
import { crc32, parseNpy, readZip } from '../../src/data/formats/npz';
import { EV_PER_KCAL_MOL, getRmd17, RMD17_MOLECULES } from '../../src/data/download/rmd17';

const ARCHIVE = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'forces', 'rmd17-fixture.tar.bz2'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-rmd17-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const FAST = { retries: 2, backoffMs: 10, maxBackoffMs: 20, timeoutMs: 5000 };

async function serve(body: Buffer, opts: { cutFirstAt?: number } = {}) {
  const hits: { range?: string }[] = [];
  const server = http.createServer((req, res) => {
    hits.push({ range: req.headers.range });
    const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const from = m ? Number(m[1]) : 0;
    res.writeHead(m ? 206 : 200, { 'Content-Length': String(body.length - from), ETag: '"v1"', 'Accept-Ranges': 'bytes', ...(m ? { 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` } : {}) });
    if (hits.length === 1 && opts.cutFirstAt) {
      res.write(body.subarray(0, opts.cutFirstAt));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    res.end(body.subarray(from));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { env: { GNNBATCH_RMD17_URL: `http://127.0.0.1:${port}/files` }, hits, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

test('crc32 and a damaged zip member', () => {
  expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  expect(() => readZip(Buffer.from('not a zip at all, clearly not'), 'x.npz')).toThrow(expect.objectContaining({ code: 'ERR_GNN_DATA_ARCHIVE' }));
  expect(() => parseNpy(Buffer.from('\x93NUMPY\x01\x00'), 'a.npy')).toThrow(/not a readable .npy/);
  // A stored one-member zip with a wrong CRC.
  const data = Buffer.from('hello');
  const name = Buffer.from('a.npy');
  const local = Buffer.alloc(30); local.writeUInt32LE(0x04034b50, 0); local.writeUInt32LE(5, 18); local.writeUInt32LE(5, 22); local.writeUInt16LE(name.length, 26);
  const cd = Buffer.alloc(46); cd.writeUInt32LE(0x02014b50, 0); cd.writeUInt32LE(crc32(data) ^ 1, 16); cd.writeUInt32LE(5, 20); cd.writeUInt32LE(5, 24); cd.writeUInt16LE(name.length, 28);
  const eocd = Buffer.alloc(22); eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(1, 8); eocd.writeUInt16LE(1, 10); eocd.writeUInt32LE(46 + name.length, 12); eocd.writeUInt32LE(30 + name.length + 5, 16);
  const zip = Buffer.concat([local, name, data, cd, name, eocd]);
  expect(() => readZip(zip, 'c.npz')).toThrow(/member 'a.npy': CRC-32 mismatch/);
});

test('data get rmd17 on a loopback server: resumed after a cut, stores with forces in eV/Å, cached re-run', async () => {
  const s = await serve(ARCHIVE, { cutFirstAt: 4000 });
  const dir = path.join(tmp, 'a');
  try {
    const r = await getRmd17({ env: s.env, ...FAST, molecules: ['ethanol', 'aspirin'] }, dir);
    expect(r.files[0].resumed).toBe(true);
    expect(s.hits.some((h) => h.range === 'bytes=4000-')).toBe(true);
    expect(r.stores.map((x) => x.molecule)).toEqual(['ethanol', 'aspirin']);
    const ethanol = loadStore(r.stores[0].file);
    expect(ethanol.numGraphs).toBe(4);
    expect(ethanol.targetNames).toEqual(['energy']);
    // Values numpy wrote (kcal/mol), converted to eV: ethanol frame 2's energy, frame 2 atom 1 force z.
    expect(ethanol.targets[2]).toBeCloseTo(-1006.8425732690331 * EV_PER_KCAL_MOL, 9);
    expect(ethanol.forces?.[3 * (2 * 9 + 1) + 2]).toBe(Math.fround(0.7424462498750674 * EV_PER_KCAL_MOL));
    expect(ethanol.positions[3 * (3 * 9 + 8)]).toBe(Math.fround(-1.602226048350144));
    const hitsBefore = s.hits.length;
    const again = await getRmd17({ env: s.env, ...FAST, molecules: ['benzene'] }, dir);
    expect(again.files[0].cached).toBe(true);
    expect(s.hits.length).toBe(hitsBefore);
    expect(loadStore(again.stores[0].file).forces?.length).toBe(3 * 3 * 4);
  } finally {
    await s.close();
  }
  expect(EV_PER_KCAL_MOL).toBeCloseTo(0.0433641, 7);
  expect(RMD17_MOLECULES).toHaveLength(10);
});

test('a damaged archive is refused (ERR_GNN_DOWNLOAD_VERIFY) and not kept', async () => {
  const bad = Buffer.from(ARCHIVE);
  bad[bad.length >> 1] ^= 0xff;
  const s = await serve(bad);
  const dir = path.join(tmp, 'b');
  try {
    await expect(getRmd17({ env: s.env, ...FAST, retries: 0 }, dir)).rejects.toMatchObject({ code: 'ERR_GNN_DOWNLOAD_VERIFY' });
    expect(fs.existsSync(path.join(dir, 'rmd17.tar.bz2'))).toBe(false);
  } finally {
    await s.close();
  }
});
