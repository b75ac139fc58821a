/**
 * `gnnbatch data get` against a loopback HTTP server (no internet): verified
 * download, checksum mismatch, resume by Range after a dropped connection,
 * 503/429 retried, 404 and connection refused as one clear coded error,
 * AFLUX paging with resume from the last complete page, and the stores built.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { registerDataCommands } from '../../src/cli/data';
import { loadStore } from '../../src/data/cache';
import { cacheRoot, datasetDir, downloadFile, getDataset, aflowMatchbook, aflowPageUrl, parseUncharacterized, USER_AGENT, type AflowResult, type Qm9Result } from '../../src/data/download';
import { DataFormatError, GnnError } from '../../src/errors';
import { runCli } from '../helpers/cli';

const FIX = path.join(__dirname, '..', 'fixtures');
const ARCHIVE = fs.readFileSync(path.join(FIX, 'qm9', 'qm9-mini.tar.bz2'));
const ARCHIVE_SHA256 = crypto.createHash('sha256').update(ARCHIVE).digest('hex');
const UNCHARACTERIZED = fs.readFileSync(path.join(FIX, 'download', 'uncharacterized.txt'));
const AFLUX_ENTRIES = JSON.parse(fs.readFileSync(path.join(FIX, 'download', 'aflux-entries.json'), 'utf8')) as unknown[];
const AFLUX_MISSING = JSON.parse(fs.readFileSync(path.join(FIX, 'download', 'aflux-missing-field.json'), 'utf8')) as unknown[];
const FAST = { retries: 3, backoffMs: 5, maxBackoffMs: 20 };

interface Hit { url: string; range?: string; userAgent?: string }
interface Server { base: string; hits: Hit[]; close(): Promise<void> }

async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void): Promise<Server> {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    hits.push({ url: req.url ?? '', range: req.headers.range, userAgent: req.headers['user-agent'] });
    handler(req, res, hits.length - 1);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** The fixture's entity tag (a part is resumed only under the validator recorded when it was started). */
const ETAG = '"fixture-1"';

/** Serves bytes with Range support (206 + Content-Range) under an ETag, honouring If-Range. */
function sendBytes(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && (req.headers['if-range'] === undefined || req.headers['if-range'] === ETAG)) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}`, etag: ETAG });
      res.end();
      return;
    }
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, etag: ETAG });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': body.length, etag: ETAG });
  res.end(body);
}

/** The QM9 figshare layout: /files/3195389 (archive), /files/3195404 (list); figshare redirects, so the archive does too. */
function qm9Routes(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/files/3195389') {
    res.writeHead(302, { location: '/storage/dsgdb9nsd.xyz.tar.bz2' });
    res.end();
  } else if (req.url === '/storage/dsgdb9nsd.xyz.tar.bz2') sendBytes(req, res, ARCHIVE);
  else if (req.url === '/files/3195404') sendBytes(req, res, UNCHARACTERIZED);
  else {
    res.writeHead(404);
    res.end('not found');
  }
}

/** A fake AFLUX: answers `...,$paging(N,SIZE),$format(json)` with slice N of `entries`. */
function afluxRoutes(entries: unknown[], fail?: (page: number) => boolean) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const q = decodeURIComponent(req.url ?? '');
    const m = /\$paging\((\d+),(\d+)\),\$format\(json\)$/.exec(q);
    if (!m || Number(m[1]) < 1) {
      res.writeHead(400);
      res.end('bad paging');
      return;
    }
    const page = Number(m[1]), size = Number(m[2]);
    if (fail?.(page)) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
      res.write('[{"auid":');
      res.destroy();
      return;
    }
    const body = Buffer.from(JSON.stringify(entries.slice((page - 1) * size, page * size)));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  };
}

async function codeOf(p: Promise<unknown>): Promise<GnnError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(GnnError);
    return e as GnnError;
  }
  throw new Error('expected a GnnError');
}

let tmp: string;
let server: Server | null = null;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-get-'));
});
afterEach(async () => {
  await server?.close();
  server = null;
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('cache directory', () => {
  it('resolves flag, then GNNBATCH_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(cacheRoot('/x/flag', { GNNBATCH_CACHE_DIR: '/x/env' })).toBe(path.resolve('/x/flag'));
    expect(cacheRoot(undefined, { GNNBATCH_CACHE_DIR: '/x/env', XDG_CACHE_HOME: '/x/xdg' })).toBe(path.resolve('/x/env'));
    expect(cacheRoot(undefined, { XDG_CACHE_HOME: '/x/xdg' })).toBe(path.join(path.resolve('/x/xdg'), 'gnnbatch'));
    if (process.platform !== 'win32') expect(cacheRoot(undefined, {})).toBe(path.join(os.homedir(), '.cache', 'gnnbatch'));
    expect(datasetDir('qm9', { cacheDir: '/x/c' }, {})).toBe(path.join(path.resolve('/x/c'), 'qm9'));
    expect(datasetDir('qm9', { to: '/x/to', cacheDir: '/x/c' }, {})).toBe(path.resolve('/x/to'));
  });
});

describe('downloadFile', () => {
  it('downloads through a redirect, verifies the SHA-256, leaves no part file, and reuses the verified file', async () => {
    server = await serve(qm9Routes);
    const dest = path.join(tmp, 'a', 'qm9.tar.bz2');
    const r = await downloadFile({ url: `${server.base}/files/3195389`, dest, sha256: ARCHIVE_SHA256, size: ARCHIVE.length, ...FAST });
    expect(r).toMatchObject({ cached: false, resumed: false, bytes: ARCHIVE.length, sha256: ARCHIVE_SHA256, attempts: 1 });
    expect(fs.readFileSync(dest).equals(ARCHIVE)).toBe(true);
    expect(fs.readdirSync(path.dirname(dest))).toEqual(['qm9.tar.bz2']);
    expect(server.hits[0].userAgent).toBe(USER_AGENT);
    expect(USER_AGENT).toMatch(/^gnnbatch\/\d+\.\d+\.\d+ \(\+https:\/\//);
    const n = server.hits.length;
    const again = await downloadFile({ url: `${server.base}/files/3195389`, dest, sha256: ARCHIVE_SHA256, ...FAST });
    expect(again.cached).toBe(true);
    expect(server.hits.length).toBe(n);
  });

  it('rejects a checksum mismatch and leaves nothing behind', async () => {
    server = await serve(qm9Routes);
    const dest = path.join(tmp, 'qm9.tar.bz2');
    const e = await codeOf(downloadFile({ url: `${server.base}/files/3195389`, dest, sha256: '0'.repeat(64), ...FAST }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_VERIFY');
    expect(e.message).toContain(`SHA-256 ${ARCHIVE_SHA256}, expected ${'0'.repeat(64)}`);
    expect(fs.readdirSync(tmp)).toEqual([]);
    const m = await codeOf(downloadFile({ url: `${server.base}/files/3195389`, dest, md5: 'f'.repeat(32), ...FAST }));
    expect(m.code).toBe('ERR_GNN_DOWNLOAD_VERIFY');
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('resumes with a Range request (If-Range: the recorded ETag) after the server drops the connection mid-body', async () => {
    const half = Math.floor(ARCHIVE.length / 2);
    server = await serve((req, res, hit) => {
      if (hit === 0) {
        res.writeHead(200, { 'content-length': ARCHIVE.length, etag: ETAG });
        res.write(ARCHIVE.subarray(0, half), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      sendBytes(req, res, ARCHIVE);
    });
    const dest = path.join(tmp, 'qm9.tar.bz2');
    const r = await downloadFile({ url: `${server.base}/x`, dest, sha256: ARCHIVE_SHA256, ...FAST });
    expect(r).toMatchObject({ resumed: true, attempts: 2, sha256: ARCHIVE_SHA256 });
    expect(server.hits.map((h) => h.range)).toEqual([undefined, `bytes=${half}-`]);
    expect(fs.readFileSync(dest).equals(ARCHIVE)).toBe(true);
    expect(fs.existsSync(`${dest}.part`)).toBe(false);
  });

  it('continues the part file an earlier run left (Range from its length, If-Range its recorded ETag)', async () => {
    server = await serve((req, res, hit) => {
      if (hit === 0) {
        res.writeHead(200, { 'content-length': ARCHIVE.length, etag: ETAG });
        res.write(ARCHIVE.subarray(0, 100), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      sendBytes(req, res, ARCHIVE);
    });
    const dest = path.join(tmp, 'qm9.tar.bz2');
    await expect(downloadFile({ url: `${server.base}/x`, dest, sha256: ARCHIVE_SHA256, ...FAST, retries: 0 })).rejects.toMatchObject({ code: 'ERR_GNN_DOWNLOAD_NETWORK' });
    expect(fs.statSync(`${dest}.part`).size).toBe(100);
    const r = await downloadFile({ url: `${server.base}/x`, dest, sha256: ARCHIVE_SHA256, ...FAST });
    expect(r).toMatchObject({ resumed: true, attempts: 1 });
    expect(server.hits.map((h) => h.range)).toEqual([undefined, 'bytes=100-']);
    expect(fs.readFileSync(dest).equals(ARCHIVE)).toBe(true);
  });

  it('does not resume a part file without a recorded validator (restarts from byte 0)', async () => {
    server = await serve((req, res) => sendBytes(req, res, ARCHIVE));
    const dest = path.join(tmp, 'qm9.tar.bz2');
    fs.writeFileSync(`${dest}.part`, ARCHIVE.subarray(0, 100));
    const r = await downloadFile({ url: `${server.base}/x`, dest, sha256: ARCHIVE_SHA256, ...FAST });
    expect(r).toMatchObject({ resumed: false, attempts: 1 });
    expect(server.hits.map((h) => h.range)).toEqual([undefined]);
  });

  it('refuses a file whose announced size differs from the pinned size, before reading it', async () => {
    server = await serve((req, res) => sendBytes(req, res, ARCHIVE));
    const e = await codeOf(downloadFile({ url: `${server.base}/x`, dest: path.join(tmp, 'f'), size: ARCHIVE.length + 1, ...FAST }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_VERIFY');
    expect(e.message).toContain(`announces ${ARCHIVE.length} bytes, expected ${ARCHIVE.length + 1}`);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('an AbortSignal stops a transfer in flight (coded error, the part kept for a later resume)', async () => {
    const ac = new AbortController();
    server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': ARCHIVE.length });
      res.write(ARCHIVE.subarray(0, 200), () => setTimeout(() => ac.abort(), 20));
    });
    const dest = path.join(tmp, 'f');
    const e = await codeOf(downloadFile({ url: `${server.base}/x`, dest, signal: ac.signal, ...FAST }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_ABORTED');
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.statSync(`${dest}.part`).size).toBe(200);
  });

  it('restarts from byte 0 when the server ignores the range (200 to a Range request)', async () => {
    const half = Math.floor(ARCHIVE.length / 2);
    server = await serve((_req, res, hit) => {
      res.writeHead(200, { 'content-length': ARCHIVE.length, etag: ETAG });
      if (hit === 0) res.write(ARCHIVE.subarray(0, half), () => setTimeout(() => res.destroy(), 20));
      else res.end(ARCHIVE);
    });
    const dest = path.join(tmp, 'qm9.tar.bz2');
    const r = await downloadFile({ url: `${server.base}/x`, dest, sha256: ARCHIVE_SHA256, ...FAST });
    expect(r.sha256).toBe(ARCHIVE_SHA256);
    expect(server.hits[1].range).toBe(`bytes=${half}-`);
  });

  it('retries 503 and 429 (honouring Retry-After) and then succeeds', async () => {
    server = await serve((req, res, hit) => {
      if (hit === 0) {
        res.writeHead(503);
        res.end('busy');
      } else if (hit === 1) {
        res.writeHead(429, { 'retry-after': '0' });
        res.end('slow down');
      } else sendBytes(req, res, ARCHIVE);
    });
    const r = await downloadFile({ url: `${server.base}/x`, dest: path.join(tmp, 'f'), sha256: ARCHIVE_SHA256, ...FAST });
    expect(r.attempts).toBe(3);
    expect(server.hits.length).toBe(3);
  });

  it('gives up after the retries on a server that keeps answering 503', async () => {
    server = await serve((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    const url = `${server.base}/always-busy`;
    const e = await codeOf(downloadFile({ url, dest: path.join(tmp, 'f'), ...FAST, retries: 2 }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_HTTP');
    expect(e.message).toContain(url);
    expect(e.message).toContain('HTTP 503');
    expect(server.hits.length).toBe(3);
  });

  it('turns a 404 into one coded error naming the URL, without retrying', async () => {
    server = await serve(qm9Routes);
    const url = `${server.base}/files/nothing`;
    const e = await codeOf(downloadFile({ url, dest: path.join(tmp, 'f'), ...FAST }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_HTTP');
    expect(e.message).toBe(`cannot download ${url}: HTTP 404 Not Found`);
    expect(server.hits.length).toBe(1);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});

describe('getDataset qm9', () => {
  const env = (s: Server): NodeJS.ProcessEnv => ({ GNNBATCH_QM9_URL: `${s.base}/files` });

  it('offline (connection refused): one clear line naming the URL and how to place the file by hand', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((r) => probe.close(() => r()));
    const dir = path.join(tmp, 'qm9');
    const e = await codeOf(getDataset('qm9', { dir, env: { GNNBATCH_QM9_URL: `http://127.0.0.1:${port}/files` }, ...FAST, retries: 1 }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_NETWORK');
    expect(e.message).toContain(`cannot download http://127.0.0.1:${port}/files/3195389: ECONNREFUSED`);
    expect(e.message).toContain(`download http://127.0.0.1:${port}/files/3195389 to ${path.join(dir, 'dsgdb9nsd.xyz.tar.bz2')}`);
    expect(e.message).toContain('gnnbatch data build FILE');
    expect(e.message).not.toContain('\n');
  });

  it('downloads the archive, records its digest and builds the fully connected store (target U0)', async () => {
    server = await serve(qm9Routes);
    const dir = path.join(tmp, 'qm9');
    const r = (await getDataset('qm9', { dir, env: env(server), ...FAST })) as Qm9Result;
    expect(r.files).toHaveLength(1);
    expect(r.files[0]).toMatchObject({ sha256: ARCHIVE_SHA256, cached: false, file: path.join(dir, 'dsgdb9nsd.xyz.tar.bz2') });
    expect(r.store).toMatchObject({ file: path.join(dir, 'qm9-fc.gnb'), graphs: 3, graphRule: 'fc', target: 'U0', excluded: 0 });
    const store = loadStore(r.store!.file);
    expect(store.numGraphs).toBe(3);
    expect(store.targetNames).toContain('U0');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'download.json'), 'utf8'));
    expect(manifest['dsgdb9nsd.xyz.tar.bz2']).toMatchObject({ sha256: ARCHIVE_SHA256, bytes: ARCHIVE.length });
    // A cached file that no longer matches its first download is fetched again.
    fs.writeFileSync(path.join(dir, 'dsgdb9nsd.xyz.tar.bz2'), 'garbage');
    const again = (await getDataset('qm9', { dir, env: env(server), build: false, ...FAST })) as Qm9Result;
    expect(again.files[0]).toMatchObject({ cached: false, sha256: ARCHIVE_SHA256 });
    expect(again.store).toBeNull();
  });

  it('--exclude-uncharacterized leaves out the listed molecules (CLI, --json)', async () => {
    server = await serve(qm9Routes);
    const dir = path.join(tmp, 'out');
    const saved = process.env.GNNBATCH_QM9_URL;
    process.env.GNNBATCH_QM9_URL = `${server.base}/files`;
    let out: string;
    try {
      out = await runCli(registerDataCommands, ['data', 'get', 'qm9', '--to', dir, '--exclude-uncharacterized', '--sha256', ARCHIVE_SHA256, '--json']);
    } finally {
      if (saved === undefined) delete process.env.GNNBATCH_QM9_URL;
      else process.env.GNNBATCH_QM9_URL = saved;
    }
    const doc = JSON.parse(out) as Qm9Result;
    expect(doc.files.map((f) => path.basename(f.file))).toEqual(['dsgdb9nsd.xyz.tar.bz2', 'uncharacterized.txt']);
    expect(doc.store).toMatchObject({ graphs: 2, excluded: 1, file: path.join(dir, 'qm9-fc-characterized.gnb') });
    expect(loadStore(doc.store!.file).ids).toEqual(['1', '3']);
  });

  it('parses the uncharacterized list by its first column only', () => {
    expect([...parseUncharacterized(UNCHARACTERIZED.toString(), 'u.txt')]).toEqual([2]);
    expect(() => parseUncharacterized('header only\n', 'u.txt')).toThrow(/u\.txt: no molecule index/);
  });

  it('usage errors: unknown data set, flags of the other data set, malformed digests', async () => {
    await expect(runCli(registerDataCommands, ['data', 'get', 'qm10'])).rejects.toMatchObject({ code: 'ERR_GNN_USAGE', message: expect.stringContaining('use one of qm9, aflow') });
    await expect(runCli(registerDataCommands, ['data', 'get', 'qm9', '--limit', '5'])).rejects.toMatchObject({ code: 'ERR_GNN_USAGE', message: '--limit applies to aflow only' });
    await expect(runCli(registerDataCommands, ['data', 'get', 'aflow', '--exclude-uncharacterized'])).rejects.toMatchObject({ message: '--exclude-uncharacterized applies to qm9 only' });
    await expect(runCli(registerDataCommands, ['data', 'get', 'qm9', '--sha256', 'abc'])).rejects.toMatchObject({ code: 'ERR_GNN_USAGE' });
    await expect(runCli(registerDataCommands, ['data', 'get', 'aflow', '--limit', '0'])).rejects.toMatchObject({ code: 'ERR_GNN_USAGE' });
  });
});

describe('getDataset aflow', () => {
  const pageOf = (h: Hit): number => Number(/\$paging\((\d+),/.exec(decodeURIComponent(h.url))?.[1]);

  it('builds AFLUX URLs with 1-based $paging and the study fields after the filters', () => {
    expect(aflowMatchbook('species(Na,Cl),Egap(0*,*5)')).toBe('species(Na,Cl),Egap(0*,*5),auid,compound,geometry,positions_fractional,enthalpy_formation_atom');
    expect(aflowPageUrl('https://aflow.org/API/aflux/v1.0/', 'species(Na,Cl),auid', 2, 500)).toBe('https://aflow.org/API/aflux/v1.0/?species(Na,Cl),auid,$paging(2,500),$format(json)');
    expect(() => aflowPageUrl('https://aflow.org/API/aflux/v1.0/', 'auid', 0, 10)).toThrow(/1-based/);
    expect(() => aflowMatchbook('auid,$paging(0)')).toThrow(/directives/);
  });

  it('pages through AFLUX politely and builds the knn:12 store', async () => {
    const routes = afluxRoutes(AFLUX_ENTRIES);
    let inFlight = 0, maxInFlight = 0;
    server = await serve((req, res) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      setTimeout(() => {
        inFlight--;
        routes(req, res);
      }, 15);
    });
    const dir = path.join(tmp, 'aflow');
    const r = (await getDataset('aflow', { dir, env: { GNNBATCH_AFLOW_URL: `${server.base}/API/aflux/v1.0/` }, pageSize: 3, query: 'species(Na,Cl)', ...FAST })) as AflowResult;
    expect(r.pages.map((p) => [p.page, p.entries])).toEqual([[1, 3], [2, 3], [3, 1]]);
    expect(r.entries).toBe(7);
    // Two pages in flight at most (the default); the wave with the short page 3 also asked for page 4, which is dropped.
    expect(maxInFlight).toBe(2);
    expect(server.hits.map(pageOf).sort()).toEqual([1, 2, 3, 4]);
    expect(fs.readdirSync(path.dirname(r.pages[0].file)).sort()).toEqual(['page-00001.json', 'page-00002.json', 'page-00003.json', 'state.json']);
    expect(server.hits.every((h) => h.userAgent === USER_AGENT)).toBe(true);
    expect(decodeURIComponent(server.hits[0].url)).toContain('species(Na,Cl),auid,compound,geometry,positions_fractional,enthalpy_formation_atom,Egap,$paging(');
    expect(r.store).toMatchObject({ graphs: 7, graphRule: 'knn:12' });
    expect(loadStore(r.store!.file).ids[0]).toBe('aflow:0100');
    // Each page is a JSON file the AFLOW loader reads on its own.
    expect(JSON.parse(fs.readFileSync(r.pages[2].file, 'utf8'))).toHaveLength(1);
    // A second run fetches nothing.
    const n = server.hits.length;
    const again = (await getDataset('aflow', { dir, env: { GNNBATCH_AFLOW_URL: `${server.base}/API/aflux/v1.0/` }, pageSize: 3, query: 'species(Na,Cl)', build: false, ...FAST })) as AflowResult;
    expect(server.hits.length).toBe(n);
    expect(again.pages.every((p) => p.cached)).toBe(true);
  });

  it('resumes an interrupted fetch from the last complete page', async () => {
    const dir = path.join(tmp, 'aflow');
    const options = { dir, pageSize: 3, concurrency: 1, ...FAST, retries: 1 };
    server = await serve(afluxRoutes(AFLUX_ENTRIES, (page) => page === 2));
    const e = await codeOf(getDataset('aflow', { ...options, env: { GNNBATCH_AFLOW_URL: `${server.base}/aflux/` } }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_NETWORK');
    expect(e.message).toContain('$paging(2,3)');
    expect(e.message).toContain('the 1 complete page(s) are kept in');
    const pagesDir = fs.readdirSync(dir).find((f) => f.startsWith('pages-'))!;
    expect(fs.readdirSync(path.join(dir, pagesDir)).sort()).toEqual(['page-00001.json', 'state.json']);
    await server.close();
    server = await serve(afluxRoutes(AFLUX_ENTRIES));
    const r = (await getDataset('aflow', { ...options, env: { GNNBATCH_AFLOW_URL: `${server.base}/aflux/` } })) as AflowResult;
    expect(server.hits.map(pageOf)).toEqual([2, 3]);
    expect(r.pages.map((p) => p.cached)).toEqual([true, false, false]);
    expect(r.store?.graphs).toBe(7);
  });

  it('--limit fetches only the pages it needs and keeps N entries', async () => {
    server = await serve(afluxRoutes(AFLUX_ENTRIES));
    const r = (await getDataset('aflow', { dir: tmp, env: { GNNBATCH_AFLOW_URL: `${server.base}/aflux/` }, pageSize: 3, limit: 4, ...FAST })) as AflowResult;
    expect(server.hits.map(pageOf).sort()).toEqual([1, 2]);
    expect(r.entries).toBe(4);
    expect(r.store?.graphs).toBe(4);
  });

  it('an AFLUX entry with a missing field is the loader\'s located error (page file, entry, field)', async () => {
    server = await serve(afluxRoutes(AFLUX_MISSING));
    const dir = path.join(tmp, 'aflow');
    let err: unknown;
    try {
      await getDataset('aflow', { dir, env: { GNNBATCH_AFLOW_URL: `${server.base}/aflux/` }, pageSize: 10, ...FAST });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataFormatError);
    const loc = (err as DataFormatError).location;
    expect(path.basename(loc.file)).toBe('page-00001.json');
    expect(loc).toMatchObject({ entry: 1, field: 'positions_fractional' });
  });

  it('a page that is not JSON is a coded error naming the URL', async () => {
    server = await serve((_req, res) => {
      res.writeHead(200);
      res.end('ERROR: unknown keyword');
    });
    const e = await codeOf(getDataset('aflow', { dir: tmp, env: { GNNBATCH_AFLOW_URL: `${server.base}/aflux/` }, ...FAST }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_HTTP');
    expect(e.message).toContain(`${server.base}/aflux/?`);
    expect(e.message).toContain('ERROR: unknown keyword');
  });
});
