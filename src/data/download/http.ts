/**
 * A small resumable HTTP(S) downloader on Node's built-in `http`/`https`.
 *
 * Contract of {@link downloadFile} (nothing corrupt is ever trusted):
 * - the bytes go to a part file (`<dest>.part` unless the caller names one);
 *   when a part is started, the entity's validator (a strong ETag, else its
 *   Last-Modified) is recorded next to it (`<part>.json`). An interrupted
 *   transfer (dropped connection, idle timeout, stall, 429/5xx) is retried
 *   with exponential backoff and resumed with `Range` + `If-Range` naming that
 *   validator; a part without one, of another URL, or whose entity changed
 *   (200 to the If-Range, or a 206/416 carrying another validator) restarts
 *   from byte 0. A part is never accepted unread: a 416 counts as complete
 *   only under a matching validator, and the file is hashed and checked anyway;
 * - when the body is complete the part's size and digests are checked against
 *   the caller's pins, then the caller's `verify` (the build's own check, e.g.
 *   bzip2 CRCs and tar structure) runs on it, and only then is it fsynced and
 *   renamed to `dest`: `dest` exists only when complete and verified; a
 *   mismatch or a failed check deletes the part. A cached `dest` is re-checked
 *   the same way, and deleted (the message names it) when it fails;
 * - redirects are followed, at most 10, never from https to http
 *   ({@link redirectTarget});
 * - every transfer is bounded: bytes (the announced size, and the hard cap
 *   `maxBytes`), time (`deadlineMs` for the whole call, retries included) and
 *   progress (`stallTimeoutMs`: fewer than `stallBytes` in that window fails,
 *   which catches drips an idle timeout never sees);
 * - every failure is a {@link GnnError} whose message names the URL:
 *   ERR_GNN_DOWNLOAD_NETWORK (connection refused, DNS, reset, after the
 *   retries), ERR_GNN_DOWNLOAD_HTTP (a status that retrying does not fix, such
 *   as 404, or an unusable body), ERR_GNN_DOWNLOAD_VERIFY (size, digest or
 *   content check failed), ERR_GNN_DOWNLOAD_LIMIT (a bound was hit; the
 *   message names it and its option), ERR_GNN_DOWNLOAD_REDIRECT (a refused
 *   redirect), ERR_GNN_DOWNLOAD_ABORTED (the caller's AbortSignal),
 *   ERR_GNN_DOWNLOAD_WRITE (a file cannot be written: disk full, permissions;
 *   not retried);
 * - the files it keeps (`dest`, the part's record) are written through
 *   src/util/durable.ts; the part itself is appended to while it downloads
 *   and becomes `dest` by a durable commit (fsync, rename, folder fsync).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import { GnnError } from '../../errors';
import { commitFile, describeWriteFailure, writeFileDurable, type DurableOptions } from '../../util/durable';

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

/** How a caller names its bound options in messages (`maxPageBytes / --max-page-bytes`); defaults are the option names. */
export type LimitNames = Partial<Record<'maxBytes' | 'deadlineMs' | 'stallTimeoutMs' | 'maxPages' | 'maxPageBytes', string>>;

/** Retry, transport and bound settings shared by {@link downloadFile} and {@link fetchText}. */
export interface RequestOptions {
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** First backoff in ms, doubled per retry with jitter (default 1000). */
  backoffMs?: number;
  /** Ceiling of one backoff (and of a server's Retry-After) in ms (default 30000). */
  maxBackoffMs?: number;
  /** Idle socket timeout in ms: no byte at all for this long fails the attempt (default 60000). */
  timeoutMs?: number;
  /**
   * Wall-clock bound of the whole call in ms, retries and backoff included
   * (default 4 hours); past it the call fails with ERR_GNN_DOWNLOAD_LIMIT.
   */
  deadlineMs?: number;
  /**
   * Progress bound in ms (default 60000): an attempt whose body delivers fewer
   * than `stallBytes` within any such window fails (a drip that keeps the idle
   * timeout from firing); retried like a dropped connection, then
   * ERR_GNN_DOWNLOAD_LIMIT.
   */
  stallTimeoutMs?: number;
  /** Bytes a body must deliver per `stallTimeoutMs` (default 16384). */
  stallBytes?: number;
  /**
   * Hard cap on one body's bytes (default 1 GiB for {@link downloadFile},
   * 16 MiB for {@link fetchText}); an announced size above it is refused before
   * the body is read, and a body is cut as soon as it passes it.
   */
  maxBytes?: number;
  /** How the caller calls these options in its messages (a CLI flag, say). */
  limitNames?: LimitNames;
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
  /** Where the bytes go until they are verified (default `<dest>.part`); its validator is kept in `<partFile>.json`. */
  partFile?: string;
  /**
   * The content check (a build's own parse: bzip2 CRCs, tar structure, the
   * entry count) run on the complete file before it becomes `dest`, and on a
   * cached `dest` before it is trusted. Throwing a GnnError rejects the file:
   * it is deleted and the call fails with ERR_GNN_DOWNLOAD_VERIFY.
   */
  verify?: (file: string) => Promise<void>;
}

/** What {@link downloadFile} did. */
export interface DownloadResult {
  url: string;
  file: string;
  bytes: number;
  sha256: string;
  md5: string;
  /** True when `dest` already existed and passed the pins and the check (nothing was fetched). */
  cached: boolean;
  /** True when some attempt continued a partial file with a Range request. */
  resumed: boolean;
  /** HTTP attempts made (0 when cached). */
  attempts: number;
}

const DEFAULTS = { retries: 4, backoffMs: 1000, maxBackoffMs: 30000, timeoutMs: 60000, deadlineMs: 4 * 3600_000, stallTimeoutMs: 60000, stallBytes: 16384 };
/** Default hard cap of one downloaded file (1 GiB). */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 1 << 30;
/** Default hard cap of one text resource, an AFLUX page (16 MiB). */
export const DEFAULT_MAX_TEXT_BYTES = 16 << 20;
/** Redirect hops followed at most. */
const MAX_REDIRECTS = 10;

/**
 * A failure worth another attempt (the part file is kept for the resume);
 * `finalCode` is the code once the retries are spent (not `code`: anything
 * with an ERR_GNN_ code counts as a GnnError, which is never retried).
 */
class Retryable extends Error {
  constructor(message: string, readonly retryAfterMs: number | null = null, readonly finalCode: 'ERR_GNN_DOWNLOAD_NETWORK' | 'ERR_GNN_DOWNLOAD_HTTP' | 'ERR_GNN_DOWNLOAD_LIMIT' = 'ERR_GNN_DOWNLOAD_NETWORK') {
    super(message);
  }
}

/** The bound options of one call, resolved, with the names its messages use. */
interface Bounds {
  maxBytes: number;
  stallTimeoutMs: number;
  stallBytes: number;
  timeoutMs: number;
  name: (k: keyof LimitNames) => string;
}

function boundsOf(o: RequestOptions, maxBytesDefault: number): Bounds {
  const num = (k: 'maxBytes' | 'stallTimeoutMs' | 'stallBytes' | 'timeoutMs' | 'deadlineMs', v: number | undefined, d: number): number => {
    if (v === undefined) return d;
    if (!(v > 0) || !Number.isFinite(v)) throw new GnnError('ERR_GNN_ARGUMENT', `${o.limitNames?.[k as keyof LimitNames] ?? k} ${v}: expected a positive number`);
    return v;
  };
  num('deadlineMs', o.deadlineMs, DEFAULTS.deadlineMs);
  return {
    maxBytes: num('maxBytes', o.maxBytes, maxBytesDefault),
    stallTimeoutMs: num('stallTimeoutMs', o.stallTimeoutMs, DEFAULTS.stallTimeoutMs),
    stallBytes: num('stallBytes', o.stallBytes, DEFAULTS.stallBytes),
    timeoutMs: num('timeoutMs', o.timeoutMs, DEFAULTS.timeoutMs),
    name: (k) => o.limitNames?.[k] ?? k,
  };
}

function abortedError(url: string): GnnError {
  return new GnnError('ERR_GNN_DOWNLOAD_ABORTED', `download of ${url} aborted`);
}

function sleep(ms: number, signal: AbortSignal, onAbort: () => Error): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(onAbort());
    const abort = (): void => {
      clearTimeout(t);
      reject(onAbort());
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', abort);
      resolve();
    }, ms);
    signal.addEventListener('abort', abort, { once: true });
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

/**
 * The redirect policy: where a redirect from `from` to `location` (relative
 * locations resolve against `from`) leads, or ERR_GNN_DOWNLOAD_REDIRECT when
 * it is refused: an unparsable location, a scheme other than http(s), or a
 * downgrade from https to http (which would hand the transfer to anyone on
 * the path).
 */
export function redirectTarget(from: URL, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new GnnError('ERR_GNN_DOWNLOAD_REDIRECT', `${from.href} redirects to '${location}', which is not a URL; refusing it`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new GnnError('ERR_GNN_DOWNLOAD_REDIRECT', `${from.href} redirects to ${next.href}: only http and https are followed`);
  if (from.protocol === 'https:' && next.protocol === 'http:') throw new GnnError('ERR_GNN_DOWNLOAD_REDIRECT', `${from.href} redirects to ${next.href}: refusing the downgrade from https to http`);
  return next;
}

/** One GET, following redirects; resolves with the final response (status and headers unchecked). */
function get(url: string, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal, redirects = 0): Promise<{ res: http.IncomingMessage; url: string }> {
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
        try {
          if (redirects >= MAX_REDIRECTS) throw new GnnError('ERR_GNN_DOWNLOAD_REDIRECT', `${url}: more than ${MAX_REDIRECTS} redirects; refusing to follow more`);
          const next = redirectTarget(u, res.headers.location).toString();
          get(next, headers, timeoutMs, signal, redirects + 1).then(resolve, reject);
        } catch (e) {
          reject(e);
        }
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
  if (status === 429 || status === 408 || status >= 500) return new Retryable(`HTTP ${status} ${res.statusMessage ?? ''}`.trim(), retryAfterMs(res.headers['retry-after']), 'ERR_GNN_DOWNLOAD_HTTP');
  return new GnnError('ERR_GNN_DOWNLOAD_HTTP', `cannot download ${url}: HTTP ${status} ${res.statusMessage ?? ''}`.trim());
}

/**
 * Runs `attempt` until it succeeds, retrying Retryable failures and network
 * errors with backoff, all within the call's deadline; `attempt` gets the
 * 0-based attempt number and the signal that aborts it (the caller's, or the
 * deadline's).
 */
async function withRetries<T>(url: string, options: RequestOptions, attempt: (k: number, signal: AbortSignal) => Promise<T>): Promise<{ value: T; attempts: number }> {
  const o = { ...DEFAULTS, ...stripUndefined(options) };
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), o.deadlineMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline.signal]) : deadline.signal;
  const stopped = (): GnnError =>
    options.signal?.aborted
      ? abortedError(url)
      : new GnnError('ERR_GNN_DOWNLOAD_LIMIT', `${url}: the download took longer than ${o.deadlineMs / 1000} s, its time limit (${options.limitNames?.deadlineMs ?? 'deadlineMs'}); the part kept so far is resumed next time when the server names its version`);
  try {
    for (let k = 0; ; k++) {
      if (signal.aborted) throw stopped();
      try {
        return { value: await attempt(k, signal), attempts: k + 1 };
      } catch (e) {
        if (signal.aborted) throw stopped();
        if (e instanceof GnnError) throw e;
        const err = e as NodeJS.ErrnoException;
        const retryable = e instanceof Retryable || !PERMANENT_NET.has(err.code ?? '');
        if (!retryable || k >= o.retries) {
          if (e instanceof Retryable) throw new GnnError(e.finalCode, `cannot download ${url}: ${e.message} (${k + 1} attempt${k === 0 ? '' : 's'})`);
          throw networkError(url, err, k + 1);
        }
        const wait = e instanceof Retryable && e.retryAfterMs !== null ? Math.min(o.maxBackoffMs, e.retryAfterMs) : backoff(k, o);
        await sleep(wait, signal, stopped);
      }
    }
  } finally {
    clearTimeout(timer);
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

/**
 * How the downloader's durable writes fail: ERR_GNN_DOWNLOAD_WRITE naming the
 * file, the URL and the reason (src/util/durable.ts).
 */
function downloadWrite(url: string): DurableOptions {
  return {
    error: (f) => new GnnError('ERR_GNN_DOWNLOAD_WRITE', f.committed ? `${f.file}: stored the download of ${url}, but syncing its folder failed: ${f.reason}; it may not survive a power loss` : `${f.file}: cannot write the download of ${url}: ${f.reason}`, { cause: f.cause }),
  };
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** What was recorded when a part file was started: the URL and the entity's validator. */
interface PartRecord {
  url: string;
  etag: string | null;
  lastModified: string | null;
}

function recordFile(part: string): string {
  return `${part}.json`;
}

function header(res: http.IncomingMessage, name: string): string | null {
  const v = res.headers[name];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** The validators of a response: a strong ETag (a weak one cannot guard a range) and Last-Modified. */
function validatorsOf(url: string, res: http.IncomingMessage): PartRecord {
  const etag = header(res, 'etag');
  return { url, etag: etag && !etag.startsWith('W/') ? etag : null, lastModified: header(res, 'last-modified') };
}

/** The If-Range value recorded for `part` when it was started from `url`, or null (then the part cannot be resumed). */
function recordedValidator(part: string, url: string): { record: PartRecord; ifRange: string } | null {
  try {
    const r = JSON.parse(fs.readFileSync(recordFile(part), 'utf8')) as Partial<PartRecord>;
    if (r.url !== url) return null;
    const record: PartRecord = { url, etag: typeof r.etag === 'string' ? r.etag : null, lastModified: typeof r.lastModified === 'string' ? r.lastModified : null };
    const ifRange = record.etag ?? record.lastModified;
    return ifRange ? { record, ifRange } : null;
  } catch {
    return null;
  }
}

/** True when a response names another version than the one recorded (a validator it does not send is not a contradiction). */
function entityChanged(record: PartRecord, res: http.IncomingMessage): boolean {
  const now = validatorsOf(record.url, res);
  const etag = header(res, 'etag');
  if (record.etag !== null && etag !== null && etag !== record.etag) return true;
  if (record.etag === null && record.lastModified !== null && now.lastModified !== null && now.lastModified !== record.lastModified) return true;
  return false;
}

/** Deletes a part file and its record. */
function discardPart(part: string): void {
  fs.rmSync(part, { force: true });
  fs.rmSync(recordFile(part), { force: true });
}

/** Runs the caller's content check; a GnnError it throws becomes ERR_GNN_DOWNLOAD_VERIFY (the file is deleted by the caller). */
async function check(verify: DownloadOptions['verify'], file: string): Promise<string | null> {
  if (!verify) return null;
  try {
    await verify(file);
    return null;
  } catch (e) {
    if (e instanceof GnnError) return e.message;
    throw e;
  }
}

/**
 * Downloads `url` to `dest` (see the file comment for the contract). When
 * `dest` already exists and satisfies the pins and the check, nothing is fetched.
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const { url, dest } = options;
  const pins: DownloadPins = { size: options.size, sha256: options.sha256, md5: options.md5 };
  const bounds = boundsOf(options, DEFAULT_MAX_DOWNLOAD_BYTES);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (fs.existsSync(dest)) {
    const h = await hashFile(dest);
    if (pinMismatch(h, pins) === null) {
      const bad = await check(options.verify, dest);
      if (bad === null) return { url, file: dest, bytes: h.bytes, sha256: h.sha256, md5: h.md5, cached: true, resumed: false, attempts: 0 };
      fs.rmSync(dest, { force: true });
      throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `the cached file ${dest} (from ${url}) does not check out: ${bad}; deleted it, run again to download it afresh`);
    }
    fs.unlinkSync(dest); // a stale or foreign file under the name: fetch again
  }
  const part = options.partFile ?? `${dest}.part`;
  let resumed = false;
  const { attempts } = await withRetries(url, options, async (_k, signal) => {
    // At most one restart inside an attempt: when the part turns out stale, the fresh request follows at once.
    for (let restarts = 0; ; restarts++) {
      let offset = sizeOf(part);
      const recorded = offset > 0 ? recordedValidator(part, url) : null;
      if (offset > 0 && (recorded === null || (pins.size !== undefined && offset > pins.size))) {
        discardPart(part); // no validator, another URL, or too long: its bytes cannot be trusted
        offset = 0;
      }
      const { res } = await get(url, offset > 0 && recorded ? { range: `bytes=${offset}-`, 'if-range': recorded.ifRange } : {}, bounds.timeoutMs, signal);
      const status = res.statusCode ?? 0;
      const stale = (why: string): void => {
        res.resume();
        discardPart(part);
        if (restarts > 0) throw new Retryable(`${why} again; restarting`);
      };
      let total: number | null = null;
      if (status === 416 && offset > 0 && recorded) {
        // Range beyond the end under a matching validator: the part holds the whole entity (still hashed and checked below).
        const m = /\*\/(\d+)/.exec(String(res.headers['content-range'] ?? ''));
        if (m && Number(m[1]) === offset && !entityChanged(recorded.record, res)) {
          res.resume();
          return;
        }
        stale(`HTTP 416 for a resume at byte ${offset}`);
        continue;
      }
      if (status === 206 && offset > 0 && recorded) {
        const m = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(String(res.headers['content-range'] ?? ''));
        if (!m || Number(m[1]) !== offset || entityChanged(recorded.record, res)) {
          stale(`the server answered the resume at byte ${offset} with another range or version ('${res.headers['content-range'] ?? 'no Content-Range'}', ETag ${res.headers.etag ?? 'none'})`);
          continue;
        }
        total = m[3] === '*' ? null : Number(m[3]);
        resumed = true;
      } else if (status === 200) {
        // A fresh start (the server ignored the range, or the If-Range did not match): record this version's validator first.
        offset = 0;
        const len = Number(res.headers['content-length']);
        total = Number.isFinite(len) && res.headers['content-length'] !== undefined ? len : null;
        fs.rmSync(recordFile(part), { force: true });
        const v = validatorsOf(url, res);
        if (v.etag !== null || v.lastModified !== null) {
          // The part (not a durable file: it is appended to and resumed) must exist before its record claims it.
          try {
            fs.writeFileSync(part, '');
          } catch (e) {
            throw new GnnError('ERR_GNN_DOWNLOAD_WRITE', `${part}: cannot write the download of ${url}: ${describeWriteFailure(e as NodeJS.ErrnoException)}`, { cause: e });
          }
          writeFileDurable(recordFile(part), JSON.stringify(v) + '\n', downloadWrite(url));
        }
      } else {
        throw statusFailure(url, res);
      }
      if (total !== null && pins.size !== undefined && total !== pins.size) {
        res.resume();
        discardPart(part);
        throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${url}: the server announces ${total} bytes, expected ${pins.size}; refusing the file`);
      }
      if (total !== null && total > bounds.maxBytes) {
        res.destroy();
        discardPart(part);
        throw new GnnError('ERR_GNN_DOWNLOAD_LIMIT', `${url}: the server announces ${total} bytes, more than the limit of ${bounds.maxBytes} bytes (${bounds.name('maxBytes')}); refusing the file`);
      }
      const expected = pins.size ?? total;
      try {
        await writeBody(res, part, offset, total, Math.min(bounds.maxBytes, expected ?? Infinity), url, bounds, options.onProgress);
      } catch (e) {
        if (e instanceof GnnError && e.code !== 'ERR_GNN_DOWNLOAD_WRITE') discardPart(part);
        throw e;
      }
      return;
    }
  });
  const h = await hashFile(part);
  const mismatch = pinMismatch(h, pins);
  if (mismatch !== null) {
    discardPart(part);
    throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${url}: downloaded file has ${mismatch}; deleted it (nothing was kept)`);
  }
  const bad = await check(options.verify, part);
  if (bad !== null) {
    discardPart(part);
    throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${url}: the downloaded file does not check out: ${bad}; deleted it (nothing was kept)`);
  }
  commitFile(part, dest, downloadWrite(url)); // on failure the verified part stays, resumed (and re-checked) next time
  fs.rmSync(recordFile(part), { force: true });
  return { url, file: dest, bytes: h.bytes, sha256: h.sha256, md5: h.md5, cached: false, resumed, attempts };
}

/**
 * Watches a response body: counts bytes against `cap` (a GnnError, not
 * retried, once passed) and the stall window (a Retryable once a window
 * delivers fewer than `stallBytes`). Returns the failure so far and a stop.
 */
function watchBody(res: http.IncomingMessage, url: string, start: number, cap: number, capName: string, bounds: Bounds, onBytes: (received: number) => void): { failure: () => Error | null; stop: () => void } {
  let failed: Error | null = null;
  let received = start;
  let windowBytes = 0;
  const fail = (e: Error): void => {
    failed ??= e;
    res.destroy();
  };
  const stall = setInterval(() => {
    if (windowBytes < bounds.stallBytes)
      fail(new Retryable(`the transfer stalled: ${windowBytes} bytes in ${bounds.stallTimeoutMs / 1000} s, fewer than the ${bounds.stallBytes} bytes that window needs (${bounds.name('stallTimeoutMs')})`, null, 'ERR_GNN_DOWNLOAD_LIMIT'));
    windowBytes = 0;
  }, bounds.stallTimeoutMs);
  res.on('data', (c: Buffer) => {
    received += c.length;
    windowBytes += c.length;
    if (received > cap) {
      fail(cap < bounds.maxBytes
        ? new GnnError('ERR_GNN_DOWNLOAD_HTTP', `${url}: the body is longer than the ${cap} bytes announced or pinned; refusing it`)
        : new GnnError('ERR_GNN_DOWNLOAD_LIMIT', `${url}: the body passed ${cap} bytes, the limit (${capName}); refusing it`));
      return;
    }
    onBytes(received);
  });
  res.on('close', () => clearInterval(stall));
  return { failure: () => failed, stop: () => clearInterval(stall) };
}

/** Streams a response body onto `part` from `offset`; a short body is a Retryable (the bytes written stay for the resume). */
function writeBody(res: http.IncomingMessage, part: string, offset: number, total: number | null, cap: number, url: string, bounds: Bounds, onProgress?: (p: DownloadProgress) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = fs.createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' });
    let received = offset;
    let failed: Error | null = null;
    let ended = false;
    const watch = watchBody(res, url, offset, cap, bounds.name('maxBytes'), bounds, (n) => {
      received = n;
      onProgress?.({ url, received, total });
    });
    res.on('end', () => {
      ended = true;
    });
    res.on('close', () => {
      watch.stop();
      if (ended && watch.failure() === null) return;
      failed ??= watch.failure() ?? new Retryable(`connection closed after ${received} bytes`);
      out.end();
    });
    res.on('error', (e: NodeJS.ErrnoException) => {
      failed ??= watch.failure() ?? new Retryable(`transfer interrupted after ${received} bytes: ${e.code ?? e.message}`);
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

/**
 * GETs a small text resource (an AFLUX page) with the same retries and
 * bounds; 2xx bodies only. The body is cut while it is read once it passes
 * `maxBytes` (default 16 MiB), so an endless page never reaches the heap.
 */
export async function fetchText(url: string, options: RequestOptions = {}): Promise<{ text: string; attempts: number }> {
  const bounds = boundsOf(options, DEFAULT_MAX_TEXT_BYTES);
  const { value, attempts } = await withRetries(url, options, async (_k, signal) => {
    const { res } = await get(url, { accept: 'application/json, */*' }, bounds.timeoutMs, signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw statusFailure(url, res);
    const len = Number(res.headers['content-length']);
    const announced = res.headers['content-length'] !== undefined && Number.isFinite(len) ? len : null;
    if (announced !== null && announced > bounds.maxBytes) {
      res.destroy();
      throw new GnnError('ERR_GNN_DOWNLOAD_LIMIT', `${url}: the server announces ${announced} bytes, more than the limit of ${bounds.maxBytes} bytes (${bounds.name('maxBytes')}); refusing it`);
    }
    const chunks: Buffer[] = [];
    let ended = false;
    const watch = watchBody(res, url, 0, Math.min(bounds.maxBytes, announced ?? Infinity), bounds.name('maxBytes'), bounds, () => undefined);
    await new Promise<void>((resolve, reject) => {
      res.on('data', (c: Buffer) => {
        if (watch.failure() === null) chunks.push(c);
      });
      res.on('end', () => {
        ended = true;
        const f = watch.failure();
        if (f) reject(f);
        else resolve();
      });
      res.on('error', (e: NodeJS.ErrnoException) => reject(watch.failure() ?? new Retryable(`transfer interrupted: ${e.code ?? e.message}`)));
      res.on('close', () => {
        watch.stop();
        if (!ended) reject(watch.failure() ?? new Retryable('connection closed before the end of the body'));
      });
    });
    const body = Buffer.concat(chunks);
    if (announced !== null && body.length !== announced) throw new Retryable(`body has ${body.length} of ${announced} bytes`);
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
