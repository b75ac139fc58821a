/**
 * A small resumable HTTP(S) downloader on Node's built-in `http`/`https`.
 *
 * Contract of {@link downloadFile}:
 * - the bytes go to `<dest>.part`; an interrupted transfer (dropped
 *   connection, timeout, 429/5xx) is retried with exponential backoff and
 *   resumed from the part's length with a `Range` request (a server that
 *   ignores the range is detected by its 200 status and the part restarts);
 * - when the body is complete the part is fsynced, its size and digests are
 *   checked against what the caller pinned, and only then renamed to `dest`:
 *   `dest` exists only when complete and verified; a mismatch deletes the part;
 * - redirects (figshare's ndownloader answers 302 to a storage URL) are
 *   followed, at most 10;
 * - every failure is a {@link GnnError} whose message names the URL:
 *   ERR_GNN_DOWNLOAD_NETWORK (connection refused, DNS, reset, after the
 *   retries), ERR_GNN_DOWNLOAD_HTTP (a status that retrying does not fix, such
 *   as 404), ERR_GNN_DOWNLOAD_VERIFY (size or digest mismatch),
 *   ERR_GNN_DOWNLOAD_ABORTED (the caller's AbortSignal).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import { GnnError } from '../../errors';

/**
 * The User-Agent of every request, so servers can see who is asking (AFLOW and
 * figshare ask for this): `gnnbatch/<version> (+<homepage>)`, the homepage
 * being package.json's `homepage` or `repository`, else the npm package page.
 */
export const USER_AGENT = (() => {
  const pkg = packageJson();
  const repo = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
  const home = (typeof pkg.homepage === 'string' && pkg.homepage) || (repo && repo.replace(/^git\+/, '').replace(/\.git$/, '')) || 'https://www.npmjs.com/package/gnnbatch';
  return `gnnbatch/${typeof pkg.version === 'string' ? pkg.version : '0'} (+${home})`;
})();

function packageJson(): { version?: unknown; homepage?: unknown; repository?: string | { url?: string } } {
  try {
    // dist/data/download/http.js and src/data/download/http.ts both sit three levels below the package root.
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as ReturnType<typeof packageJson>;
  } catch {
    return {};
  }
}

/** Progress of one transfer (bytes include what a resumed part already held). */
export interface DownloadProgress {
  url: string;
  received: number;
  /** Total bytes when the server said (Content-Length / Content-Range), else null. */
  total: number | null;
}

/** Retry and transport settings shared by {@link downloadFile} and {@link fetchText}. */
export interface RequestOptions {
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** First backoff in ms, doubled per retry with jitter (default 1000). */
  backoffMs?: number;
  /** Ceiling of one backoff (and of a server's Retry-After) in ms (default 30000). */
  maxBackoffMs?: number;
  /** Idle socket timeout in ms (default 60000). */
  timeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
}

/** What the file must be; any pin given is checked before the file appears. */
export interface DownloadPins {
  size?: number;
  /** Lower-case hex SHA-256. */
  sha256?: string;
  /** Lower-case hex MD5 (what figshare publishes as computed_md5). */
  md5?: string;
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions extends RequestOptions, DownloadPins {
  url: string;
  dest: string;
}

/** What {@link downloadFile} did. */
export interface DownloadResult {
  url: string;
  file: string;
  bytes: number;
  sha256: string;
  md5: string;
  /** True when `dest` already existed and passed the pins (nothing was fetched). */
  cached: boolean;
  /** True when some attempt continued a partial file with a Range request. */
  resumed: boolean;
  /** HTTP attempts made (0 when cached). */
  attempts: number;
}

const DEFAULTS = { retries: 4, backoffMs: 1000, maxBackoffMs: 30000, timeoutMs: 60000 };

/** A failure worth another attempt (the part file is kept for the resume). */
class Retryable extends Error {
  constructor(message: string, readonly retryAfterMs: number | null = null) {
    super(message);
  }
}

function abortedError(url: string): GnnError {
  return new GnnError('ERR_GNN_DOWNLOAD_ABORTED', `download of ${url} aborted`);
}

function sleep(ms: number, signal: AbortSignal | undefined, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(url));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortedError(url));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Exponential backoff with jitter: base * 2^k * [0.5, 1), capped. */
function backoff(k: number, o: Required<Pick<RequestOptions, 'backoffMs' | 'maxBackoffMs'>>): number {
  return Math.min(o.maxBackoffMs, o.backoffMs * 2 ** k * (0.5 + Math.random() / 2));
}

function retryAfterMs(h: string | string[] | undefined): number | null {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return null;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : null;
}

/** Network errors that retrying cannot fix (the name does not resolve). */
const PERMANENT_NET = new Set(['ENOTFOUND', 'ERR_INVALID_URL', 'ERR_INVALID_PROTOCOL', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID']);

function networkError(url: string, e: NodeJS.ErrnoException, attempts: number): GnnError {
  const what = e.code ? `${e.code} ${e.message.replace(e.code, '').replace(/\s+/g, ' ').trim()}` : e.message;
  return new GnnError('ERR_GNN_DOWNLOAD_NETWORK', `cannot download ${url}: ${what} (${attempts} attempt${attempts === 1 ? '' : 's'})`, { cause: e });
}

/** One GET, following redirects; resolves with the final response (status and headers unchecked). */
function get(url: string, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal | undefined, redirects = 0): Promise<{ res: http.IncomingMessage; url: string }> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return reject(Object.assign(new Error(`invalid URL '${url}'`), { code: 'ERR_INVALID_URL' }));
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return reject(Object.assign(new Error(`unsupported protocol ${u.protocol}`), { code: 'ERR_INVALID_PROTOCOL' }));
    const lib = u.protocol === 'https:' ? https : http;
    const req = lib.get(u, { headers: { 'user-agent': USER_AGENT, accept: '*/*', ...headers }, signal, timeout: timeoutMs }, (res) => {
      const status = res.statusCode ?? 0;
      if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
        res.resume();
        if (redirects >= 10) return reject(new Retryable(`too many redirects from ${url}`));
        const next = new URL(res.headers.location, u).toString();
        get(next, headers, timeoutMs, signal, redirects + 1).then(resolve, reject);
        return;
      }
      res.setTimeout(timeoutMs, () => res.destroy(Object.assign(new Error(`no data for ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      resolve({ res, url });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer for ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
  });
}

/** Classifies a non-2xx status: retryable (429, 5xx, 408) or a coded error. */
function statusFailure(url: string, res: http.IncomingMessage): Error {
  const status = res.statusCode ?? 0;
  res.resume();
  if (status === 429 || status === 408 || status >= 500) return new Retryable(`HTTP ${status} ${res.statusMessage ?? ''}`.trim(), retryAfterMs(res.headers['retry-after']));
  return new GnnError('ERR_GNN_DOWNLOAD_HTTP', `cannot download ${url}: HTTP ${status} ${res.statusMessage ?? ''}`.trim());
}

/**
 * Runs `attempt` until it succeeds, retrying Retryable failures and network
 * errors with backoff; `attempt` gets the 0-based attempt number.
 */
async function withRetries<T>(url: string, options: RequestOptions, attempt: (k: number) => Promise<T>): Promise<{ value: T; attempts: number }> {
  const o = { ...DEFAULTS, ...stripUndefined(options) };
  for (let k = 0; ; k++) {
    if (o.signal?.aborted) throw abortedError(url);
    try {
      return { value: await attempt(k), attempts: k + 1 };
    } catch (e) {
      if (o.signal?.aborted) throw abortedError(url);
      if (e instanceof GnnError) throw e;
      const err = e as NodeJS.ErrnoException;
      const retryable = e instanceof Retryable || !PERMANENT_NET.has(err.code ?? '');
      if (!retryable || k >= o.retries) {
        if (e instanceof Retryable) throw new GnnError(/^HTTP /.test(e.message) ? 'ERR_GNN_DOWNLOAD_HTTP' : 'ERR_GNN_DOWNLOAD_NETWORK', `cannot download ${url}: ${e.message} (${k + 1} attempts)`);
        throw networkError(url, err, k + 1);
      }
      const wait = e instanceof Retryable && e.retryAfterMs !== null ? Math.min(o.maxBackoffMs, e.retryAfterMs) : backoff(k, o);
      await sleep(wait, o.signal, url);
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** SHA-256, MD5 and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ sha256: string; md5: string; bytes: number }> {
  const sha = crypto.createHash('sha256');
  const md5 = crypto.createHash('md5');
  let bytes = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    sha.update(chunk as Buffer);
    md5.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('hex'), bytes };
}

/** Null when the file satisfies the pins, else what differs. */
function pinMismatch(h: { sha256: string; md5: string; bytes: number }, pins: DownloadPins): string | null {
  if (pins.size !== undefined && h.bytes !== pins.size) return `size ${h.bytes} bytes, expected ${pins.size}`;
  if (pins.sha256 && h.sha256 !== pins.sha256.toLowerCase()) return `SHA-256 ${h.sha256}, expected ${pins.sha256}`;
  if (pins.md5 && h.md5 !== pins.md5.toLowerCase()) return `MD5 ${h.md5}, expected ${pins.md5}`;
  return null;
}

function fsyncPath(p: string, flags: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(p, flags);
    fs.fsyncSync(fd);
  } catch {
    // Directories cannot be fsynced on every platform (Windows): best effort there.
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** Renames `tmp` over `dest` after syncing it, then syncs the folder, so `dest` is durable when this returns. */
export function commitFile(tmp: string, dest: string): void {
  fsyncPath(tmp, 'r+');
  fs.renameSync(tmp, dest);
  fsyncPath(path.dirname(dest), 'r');
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Downloads `url` to `dest` (see the file comment for the contract). When
 * `dest` already exists and satisfies the pins nothing is fetched.
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const { url, dest } = options;
  const pins: DownloadPins = { size: options.size, sha256: options.sha256, md5: options.md5 };
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (fs.existsSync(dest)) {
    const h = await hashFile(dest);
    if (pinMismatch(h, pins) === null) return { url, file: dest, bytes: h.bytes, sha256: h.sha256, md5: h.md5, cached: true, resumed: false, attempts: 0 };
    fs.unlinkSync(dest); // a stale or foreign file under the name: fetch again
  }
  const part = `${dest}.part`;
  let resumed = false;
  const { attempts } = await withRetries(url, options, async () => {
    let offset = sizeOf(part);
    if (pins.size !== undefined && offset > pins.size) {
      fs.truncateSync(part, 0);
      offset = 0;
    }
    if (pins.size !== undefined && offset === pins.size) return; // complete already: verify below
    const { res } = await get(url, offset > 0 ? { range: `bytes=${offset}-` } : {}, options.timeoutMs ?? DEFAULTS.timeoutMs, options.signal);
    const status = res.statusCode ?? 0;
    let total: number | null = null;
    if (status === 416 && offset > 0) {
      // Range beyond the end: the part may hold the whole file already.
      res.resume();
      const m = /\*\/(\d+)/.exec(String(res.headers['content-range'] ?? ''));
      if (m && Number(m[1]) === offset) return;
      fs.truncateSync(part, 0);
      throw new Retryable(`HTTP 416 for a resume at byte ${offset}; restarting`);
    }
    if (status === 206 && offset > 0) {
      const m = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(String(res.headers['content-range'] ?? ''));
      if (!m || Number(m[1]) !== offset) {
        res.resume();
        fs.truncateSync(part, 0);
        throw new Retryable(`the server answered the range request at byte ${offset} with '${res.headers['content-range'] ?? 'no Content-Range'}'; restarting`);
      }
      total = m[3] === '*' ? null : Number(m[3]);
      resumed = true;
    } else if (status === 200) {
      offset = 0; // no range support (or none asked): start over
      const len = Number(res.headers['content-length']);
      total = Number.isFinite(len) && res.headers['content-length'] !== undefined ? len : null;
    } else {
      throw statusFailure(url, res);
    }
    if (total !== null && pins.size !== undefined && total !== pins.size) {
      res.resume();
      fs.rmSync(part, { force: true });
      throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${url}: the server announces ${total} bytes, expected ${pins.size}; refusing the file`);
    }
    await writeBody(res, part, offset, total, url, options.onProgress);
  });
  const h = await hashFile(part);
  const bad = pinMismatch(h, pins);
  if (bad !== null) {
    fs.rmSync(part, { force: true });
    throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${url}: downloaded file has ${bad}; deleted it (nothing was kept)`);
  }
  commitFile(part, dest);
  return { url, file: dest, bytes: h.bytes, sha256: h.sha256, md5: h.md5, cached: false, resumed, attempts };
}

/** Streams a response body onto `part` from `offset`; a short body is a Retryable (the bytes written stay for the resume). */
function writeBody(res: http.IncomingMessage, part: string, offset: number, total: number | null, url: string, onProgress?: (p: DownloadProgress) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = fs.createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' });
    let received = offset;
    let failed: Error | null = null;
    let ended = false;
    res.on('data', (c: Buffer) => {
      received += c.length;
      onProgress?.({ url, received, total });
    });
    res.on('end', () => {
      ended = true;
    });
    res.on('close', () => {
      if (ended) return;
      failed ??= new Retryable(`connection closed after ${received} bytes`);
      out.end();
    });
    res.on('error', (e: NodeJS.ErrnoException) => {
      failed ??= new Retryable(`transfer interrupted after ${received} bytes: ${e.code ?? e.message}`);
      out.end();
    });
    out.on('error', (e) => {
      res.destroy();
      reject(new GnnError('ERR_GNN_DOWNLOAD_WRITE', `${part}: cannot write the download of ${url}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e }));
    });
    out.on('close', () => {
      if (failed) return reject(failed);
      if (!ended || (total !== null && received !== total)) return reject(new Retryable(`connection closed after ${received} of ${total ?? '?'} bytes`));
      resolve();
    });
    res.pipe(out);
  });
}

/** GETs a small text resource (an AFLUX page) with the same retries; 2xx bodies only. */
export async function fetchText(url: string, options: RequestOptions = {}): Promise<{ text: string; attempts: number }> {
  const { value, attempts } = await withRetries(url, options, async () => {
    const { res } = await get(url, { accept: 'application/json, */*' }, options.timeoutMs ?? DEFAULTS.timeoutMs, options.signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw statusFailure(url, res);
    const chunks: Buffer[] = [];
    let ended = false;
    await new Promise<void>((resolve, reject) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        ended = true;
        resolve();
      });
      res.on('error', (e: NodeJS.ErrnoException) => reject(new Retryable(`transfer interrupted: ${e.code ?? e.message}`)));
      res.on('close', () => {
        if (!ended) reject(new Retryable('connection closed before the end of the body'));
      });
    });
    const body = Buffer.concat(chunks);
    const len = Number(res.headers['content-length']);
    if (res.headers['content-length'] !== undefined && Number.isFinite(len) && body.length !== len) throw new Retryable(`body has ${body.length} of ${len} bytes`);
    return body.toString('utf8');
  });
  return { text: value, attempts };
}

/**
 * Runs `work` over `items` with at most `limit` in flight; results keep the
 * items' order. On a failure no new item starts, the ones in flight finish,
 * then the first error is thrown (nothing keeps running behind the caller).
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (next < items.length && failure === null) {
      const i = next++;
      try {
        out[i] = await work(items[i], i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failure !== null) throw (failure as { error: unknown }).error;
  return out;
}
