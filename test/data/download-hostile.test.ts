/**
 * Downloads against a hostile loopback server (issue 21, items 7 and 8):
 * nothing corrupt becomes the verified cache (stale `.part` files, a part of
 * the remote size, truncated bodies with a matching Content-Length, corrupt
 * cached files, https -> http redirects), and every transfer is bounded in
 * bytes, pages and time (endless bodies, endless AFLUX pages and listings,
 * drips, silent servers), each bound a coded error that names its option.
 */
import * as fs from 'fs';
import type * as http from 'http';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { registerDataCommands } from '../../src/cli/data';
import { loadStore } from '../../src/data/cache';
import { downloadFile, getDataset, type AflowResult, type Qm9Result } from '../../src/data/download';
import { GnnError } from '../../src/errors';
import { runCli } from '../helpers/cli';
import { dripBody, endlessBody, selfSignedCert, serveEntity, startHostileServer, within, type HostileServer } from '../helpers/hostile-download-server';

const FIX = path.join(__dirname, '..', 'fixtures');
const ARCHIVE = fs.readFileSync(path.join(FIX, 'qm9', 'qm9-mini.tar.bz2'));
/** The archive with its last 10 bytes cut (the bzip2 end-of-stream marker and CRC): every molecule decodes. */
const CUT_END = ARCHIVE.subarray(0, ARCHIVE.length - 10);
/** The archive cut in the middle of its only bzip2 block. */
const CUT_MID = ARCHIVE.subarray(0, 600);
/** Another entity of the same length (what the server holds after an update). */
const OTHER = Buffer.from(ARCHIVE.map((b) => b ^ 0x5a));
const AFLUX_ENTRIES = JSON.parse(fs.readFileSync(path.join(FIX, 'download', 'aflux-entries.json'), 'utf8')) as unknown[];
const FAST = { retries: 2, backoffMs: 5, maxBackoffMs: 20 };
const QM9_ARCHIVE = 'dsgdb9nsd.xyz.tar.bz2';

async function failure(p: Promise<unknown>, ms = 10000): Promise<GnnError> {
  try {
    await within(ms, p);
  } catch (e) {
    if (!(e instanceof GnnError)) throw e;
    return e;
  }
  throw new Error('expected a GnnError');
}

let tmp: string;
let servers: HostileServer[] = [];
async function start(handler: Parameters<typeof startHostileServer>[0], tls?: { key: string; cert: string }): Promise<HostileServer> {
  const s = await startHostileServer(handler, tls);
  servers.push(s);
  return s;
}
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-hostile-'));
});
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The QM9 figshare layout with the archive served by `archive`. */
function qm9Server(archive: (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void): (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void {
  return (req, res, hit) => {
    if (req.url === '/files/3195389') archive(req, res, hit);
    else {
      res.writeHead(404);
      res.end();
    }
  };
}

describe('a stale or unverifiable .part is never resumed', () => {
  it('a part without a recorded validator restarts from byte 0 (no Range)', async () => {
    const s = await start((req, res) => serveEntity(req, res, ARCHIVE));
    const dest = path.join(tmp, 'f.tar.bz2');
    fs.writeFileSync(`${dest}.part`, Buffer.alloc(400, 0x78));
    const r = await within(10000, downloadFile({ url: `${s.base}/x`, dest, ...FAST }));
    expect(s.hits.map((h) => h.range)).toEqual([undefined]);
    expect(r.resumed).toBe(false);
    expect(fs.readFileSync(dest).equals(ARCHIVE)).toBe(true);
  });

  it('a part of the remote size without a validator is not accepted unread', async () => {
    const s = await start((req, res) => serveEntity(req, res, ARCHIVE));
    const dest = path.join(tmp, 'f.tar.bz2');
    fs.writeFileSync(`${dest}.part`, Buffer.alloc(ARCHIVE.length, 0x78));
    await within(10000, downloadFile({ url: `${s.base}/x`, dest, ...FAST }));
    expect(fs.readFileSync(dest).equals(ARCHIVE)).toBe(true);
  });

  it('resumes with If-Range when the entity is unchanged; restarts when its ETag changed (honest and hostile servers)', async () => {
    const half = Math.floor(ARCHIVE.length / 2);
    let body = ARCHIVE, etag = '"v1"', honour = true;
    const s = await start((req, res, hit) => {
      if (hit === 0) {
        res.writeHead(200, { 'content-length': body.length, etag });
        res.write(body.subarray(0, half), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      serveEntity(req, res, body, { etag }, honour);
    });
    const dest = path.join(tmp, 'f.tar.bz2');
    // Same entity: one interrupted attempt, then a resume that names the validator.
    const r = await within(10000, downloadFile({ url: `${s.base}/x`, dest, ...FAST }));
    expect(r).toMatchObject({ resumed: true, attempts: 2 });
    expect(s.hits[1]).toMatchObject({ range: `bytes=${half}-`, ifRange: '"v1"' });
    expect(fs.readFileSync(dest).equals(ARCHIVE)).toBe(true);

    for (const honest of [true, false]) {
      // A first run dies half way; the server then publishes another entity.
      fs.rmSync(dest);
      s.hits.length = 0;
      body = ARCHIVE;
      etag = '"v1"';
      await failure(downloadFile({ url: `${s.base}/x`, dest, ...FAST, retries: 0 }));
      expect(fs.statSync(`${dest}.part`).size).toBe(half);
      body = OTHER;
      etag = '"v2"';
      honour = honest;
      const again = await within(10000, downloadFile({ url: `${s.base}/x`, dest, ...FAST }));
      expect(again.resumed).toBe(false);
      expect(fs.readFileSync(dest).equals(OTHER)).toBe(true);
    }
  });
});

describe('nothing is committed or pinned before the build has checked it (qm9)', () => {
  const env = (s: HostileServer): NodeJS.ProcessEnv => ({ GNNBATCH_QM9_URL: `${s.base}/files` });

  it.each([
    ['cut before the bzip2 end-of-stream marker', CUT_END],
    ['cut in the middle of a bzip2 block', CUT_MID],
  ])('a truncated body with a matching Content-Length (%s) is refused and leaves nothing', async (_what, body) => {
    const s = await start(qm9Server((req, res) => serveEntity(req, res, body, { etag: '"t"' })));
    const dir = path.join(tmp, 'qm9');
    for (const build of [true, false]) {
      const e = await failure(getDataset('qm9', { dir, env: env(s), build, ...FAST }));
      expect(e.code).toBe('ERR_GNN_DOWNLOAD_VERIFY');
      expect(e.message).toContain(`${s.base}/files/3195389`);
      expect(fs.existsSync(path.join(dir, QM9_ARCHIVE))).toBe(false);
      const manifest = path.join(dir, 'download.json');
      expect(fs.existsSync(manifest) ? JSON.parse(fs.readFileSync(manifest, 'utf8'))[QM9_ARCHIVE] : undefined).toBeUndefined();
      expect(fs.readdirSync(dir).filter((f) => f.includes('.part'))).toEqual([]);
    }
  });

  it('a lying Content-Length shorter than the body is refused', async () => {
    const s = await start(qm9Server((_req, res) => {
      res.writeHead(200, { 'content-length': CUT_END.length });
      res.end(ARCHIVE);
    }));
    const e = await failure(getDataset('qm9', { dir: tmp, env: env(s), ...FAST }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_VERIFY');
    expect(fs.existsSync(path.join(tmp, QM9_ARCHIVE))).toBe(false);
  });

  it('a cached archive that fails to build is reported with its path, deleted with its pin, and fetched again next time', async () => {
    const s = await start(qm9Server((req, res) => serveEntity(req, res, ARCHIVE, { etag: '"a"' })));
    const dir = path.join(tmp, 'qm9');
    await within(10000, getDataset('qm9', { dir, env: env(s), build: false, ...FAST }));
    // What an older version could leave: a corrupt archive pinned as verified.
    const file = path.join(dir, QM9_ARCHIVE);
    fs.writeFileSync(file, CUT_MID);
    const { hashFile } = await import('../../src/data/download');
    const h = await hashFile(file);
    const manifestFile = path.join(dir, 'download.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    manifest[QM9_ARCHIVE] = { ...manifest[QM9_ARCHIVE], sha256: h.sha256, md5: h.md5, bytes: h.bytes };
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const e = await failure(getDataset('qm9', { dir, env: env(s), ...FAST }));
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_VERIFY');
    expect(e.message).toContain(file);
    expect(e.message).toMatch(/deleted/);
    expect(fs.existsSync(file)).toBe(false);
    expect(JSON.parse(fs.readFileSync(manifestFile, 'utf8'))[QM9_ARCHIVE]).toBeUndefined();
    const r = (await within(10000, getDataset('qm9', { dir, env: env(s), ...FAST }))) as Qm9Result;
    expect(r.files[0].cached).toBe(false);
    expect(loadStore(r.store!.file).numGraphs).toBe(3);
  });
});

describe('no https -> http downgrade', () => {
  const tls = selfSignedCert();
  (tls ? it : it.skip)('an https server redirecting to http is refused before the http server is asked', async () => {
    const plain = await start((req, res) => serveEntity(req, res, ARCHIVE));
    const secure = await start((_req, res) => {
      res.writeHead(302, { location: `${plain.base}/archive` });
      res.end();
    }, tls!);
    const saved = https.globalAgent.options.ca;
    https.globalAgent.options.ca = tls!.cert;
    try {
      // The https server itself is trusted: a plain download from it works.
      const e = await failure(downloadFile({ url: `${secure.base}/x`, dest: path.join(tmp, 'f'), ...FAST }));
      expect(e.code).toBe('ERR_GNN_DOWNLOAD_REDIRECT');
      expect(e.message).toContain(`${plain.base}/archive`);
      expect(plain.hits).toHaveLength(0);
      expect(fs.readdirSync(tmp)).toEqual([]);
    } finally {
      https.globalAgent.options.ca = saved;
      https.globalAgent.destroy();
    }
  });
});

describe('bytes, pages and time are bounded', () => {
  const limits = (o: Record<string, number>): Record<string, number> => o;

  it('an endless body stops at maxBytes (coded, the option named, nothing left behind)', async () => {
    const s = await start((_req, res) => endlessBody(res, Buffer.alloc(16384)));
    const e = await failure(downloadFile({ url: `${s.base}/x`, dest: path.join(tmp, 'f'), ...FAST, ...limits({ maxBytes: 256 * 1024 }) }), 5000);
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_LIMIT');
    expect(e.message).toContain('maxBytes');
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('an announced size above maxBytes is refused before the body is read', async () => {
    const s = await start((_req, res) => {
      res.writeHead(200, { 'content-length': 10_000_000_000 });
      res.write(Buffer.alloc(1000));
    });
    const e = await failure(downloadFile({ url: `${s.base}/x`, dest: path.join(tmp, 'f'), ...FAST, ...limits({ maxBytes: 4096 }) }), 5000);
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_LIMIT');
    expect(e.message).toContain('10000000000');
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('a 1-byte drip fails after the configured stall timeout', async () => {
    const s = await start((_req, res) => dripBody(res, 20));
    const t0 = Date.now();
    const e = await failure(downloadFile({ url: `${s.base}/x`, dest: path.join(tmp, 'f'), ...FAST, retries: 0, ...limits({ stallTimeoutMs: 300 }) }), 5000);
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_LIMIT');
    expect(e.message).toContain('stallTimeoutMs');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('a server that never answers fails at the total deadline, retries included', async () => {
    const s = await start(() => undefined);
    const e = await failure(downloadFile({ url: `${s.base}/x`, dest: path.join(tmp, 'f'), ...FAST, ...limits({ deadlineMs: 400 }) }), 5000);
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_LIMIT');
    expect(e.message).toContain('deadlineMs');
  });

  it('qm9: the archive has a byte cap (maxBytes), also from the CLI (--max-bytes)', async () => {
    const s = await start(qm9Server((_req, res) => endlessBody(res, Buffer.alloc(16384))));
    const e = await failure(getDataset('qm9', { dir: tmp, env: { GNNBATCH_QM9_URL: `${s.base}/files` }, ...FAST, ...limits({ maxBytes: 100000 }) }), 5000);
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_LIMIT');
    const saved = process.env.GNNBATCH_QM9_URL;
    process.env.GNNBATCH_QM9_URL = `${s.base}/files`;
    try {
      await expect(within(5000, runCli(registerDataCommands, ['data', 'get', 'qm9', '--to', tmp, '--max-bytes', '100000', '--retries', '0']))).rejects.toMatchObject({ code: 'ERR_GNN_DOWNLOAD_LIMIT', message: expect.stringContaining('--max-bytes') });
    } finally {
      if (saved === undefined) delete process.env.GNNBATCH_QM9_URL;
      else process.env.GNNBATCH_QM9_URL = saved;
    }
  });

  it('CLI bound flags are checked (usage errors) and apply to their data set only', async () => {
    for (const flag of ['--max-bytes', '--max-pages', '--max-page-bytes', '--deadline', '--stall-timeout']) {
      const name = flag.includes('page') ? 'aflow' : 'qm9';
      await expect(runCli(registerDataCommands, ['data', 'get', name, flag, '0'])).rejects.toMatchObject({ code: 'ERR_GNN_USAGE', message: expect.stringContaining(flag) });
    }
    await expect(runCli(registerDataCommands, ['data', 'get', 'qm9', '--max-pages', '3'])).rejects.toMatchObject({ code: 'ERR_GNN_USAGE', message: '--max-pages applies to aflow only' });
  });

  it('aflow: an endless listing stops at maxPages', async () => {
    const s = await start((req, res) => {
      const m = /\$paging\((\d+),(\d+)\)/.exec(decodeURIComponent(req.url ?? ''));
      const size = Number(m?.[2] ?? 2);
      const body = Buffer.from(JSON.stringify(Array.from({ length: size }, (_, i) => AFLUX_ENTRIES[i % AFLUX_ENTRIES.length])));
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const dir = path.join(tmp, 'aflow');
    const e = await failure(getDataset('aflow', { dir, env: { GNNBATCH_AFLOW_URL: `${s.base}/aflux/` }, pageSize: 2, ...FAST, ...limits({ maxPages: 5 }) }), 5000);
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_LIMIT');
    expect(e.message).toContain('maxPages');
    const pagesDir = fs.readdirSync(dir).find((f) => f.startsWith('pages-'))!;
    expect(fs.readdirSync(path.join(dir, pagesDir)).filter((f) => f.startsWith('page-')).length).toBeLessThanOrEqual(5);
  });

  it('aflow: an endless page is cut at maxPageBytes while it is read (no heap growth)', async () => {
    const s = await start((_req, res) => endlessBody(res, Buffer.from('{"auid":"aflow:x","compound":"Na1"},'.repeat(400)), { 'content-type': 'application/json' }, Buffer.from('[')));
    const e = await failure(getDataset('aflow', { dir: tmp, env: { GNNBATCH_AFLOW_URL: `${s.base}/aflux/` }, ...FAST, ...limits({ maxPageBytes: 256 * 1024 }) }), 3000);
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_LIMIT');
    expect(e.message).toContain('maxPageBytes');
  });

  it('aflow: a page with more entries than the page size is refused', async () => {
    const s = await start((_req, res) => {
      const body = Buffer.from(JSON.stringify(AFLUX_ENTRIES));
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const e = await failure(getDataset('aflow', { dir: tmp, env: { GNNBATCH_AFLOW_URL: `${s.base}/aflux/` }, pageSize: 2, ...FAST }), 5000);
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_HTTP');
    expect(e.message).toMatch(/7 entries, more than the page size 2/);
  });
});

describe('aflow pages are checked before they are stored', () => {
  it('a page whose entries do not load is not stored; a cached page that fails to build is deleted and fetched again', async () => {
    let bad = true;
    const s = await start((req, res) => {
      const m = /\$paging\((\d+),(\d+)\)/.exec(decodeURIComponent(req.url ?? ''))!;
      const page = Number(m[1]), size = Number(m[2]);
      const entries = AFLUX_ENTRIES.slice((page - 1) * size, page * size).map((e) => (bad ? { ...(e as object), positions_fractional: undefined } : e));
      const body = Buffer.from(JSON.stringify(entries));
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const dir = path.join(tmp, 'aflow');
    const options = { dir, env: { GNNBATCH_AFLOW_URL: `${s.base}/aflux/` }, pageSize: 10, ...FAST };
    const e = await failure(getDataset('aflow', options));
    expect(e.code).toBe('ERR_GNN_DATA_FORMAT');
    const pagesDir = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith('pages-'))!);
    expect(fs.existsSync(path.join(pagesDir, 'page-00001.json'))).toBe(false);

    bad = false;
    const ok = (await within(10000, getDataset('aflow', { ...options, build: false }))) as AflowResult;
    const page = ok.pages[0].file;
    fs.writeFileSync(page, '[{"auid":"aflow:x"}]\n'); // a cached page an older version stored
    const e2 = await failure(getDataset('aflow', options));
    expect(e2.message).toContain(page);
    expect(e2.message).toMatch(/deleted/);
    expect(fs.existsSync(page)).toBe(false);
    const r = (await within(10000, getDataset('aflow', options))) as AflowResult;
    expect(r.pages[0].cached).toBe(false);
    expect(r.store?.graphs).toBe(7);
  });
});
