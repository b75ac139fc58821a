/**
 * Test helper: a loopback HTTP (or HTTPS, with a self-signed certificate made
 * by `openssl` at test time) server whose answers the test scripts, for the
 * hostile-download tests: stale validators, lying Content-Length, endless and
 * dripping bodies, endless AFLUX listings, downgrade redirects. Every socket
 * is tracked so `close()` ends endless answers at once.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import type { AddressInfo, Socket } from 'net';
import * as os from 'os';
import * as path from 'path';

/** One request as the server saw it. */
export interface HostileHit {
  url: string;
  range?: string;
  ifRange?: string;
}

/** A running hostile server. */
export interface HostileServer {
  /** `http://127.0.0.1:PORT` or `https://localhost:PORT`. */
  base: string;
  hits: HostileHit[];
  close(): Promise<void>;
}

/** A handler; `hit` is the 0-based request number. */
export type HostileHandler = (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void;

/** Starts a server on 127.0.0.1 (HTTPS when `tls` is given). */
export async function startHostileServer(handler: HostileHandler, tls?: { key: string; cert: string }): Promise<HostileServer> {
  const hits: HostileHit[] = [];
  const sockets = new Set<Socket>();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    hits.push({ url: req.url ?? '', range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
    handler(req, res, hits.length - 1);
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, onRequest) : http.createServer(onRequest);
  server.on(tls ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    base: `${tls ? 'https://localhost' : 'http://127.0.0.1'}:${port}`,
    hits,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/** Validators a served entity carries. */
export interface EntityValidators {
  etag?: string;
  lastModified?: string;
}

/**
 * Serves `body` honouring Range. With `honourIfRange` (an RFC 7233 server) a
 * Range whose If-Range does not match the entity's validator gets the whole
 * body (200); without it the range is served whatever If-Range says (a naive
 * or hostile server).
 */
export function serveEntity(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, v: EntityValidators = {}, honourIfRange = true): void {
  const headers: Record<string, string | number> = {};
  if (v.etag) headers.etag = v.etag;
  if (v.lastModified) headers['last-modified'] = v.lastModified;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  const rangeAllowed = !honourIfRange || ifRange === undefined || ifRange === v.etag || ifRange === v.lastModified;
  if (m && rangeAllowed) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${body.length}` });
      res.end();
      return;
    }
    res.writeHead(206, { ...headers, 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': body.length });
  res.end(body);
}

/**
 * Writes `chunk` forever (chunked, no length), one chunk per millisecond at
 * most (so a client without bounds fills memory or disk fast, but not the
 * test machine), until the socket closes. `first` goes out before.
 */
export function endlessBody(res: http.ServerResponse, chunk: Buffer, headers: Record<string, string | number> = {}, first?: Buffer): void {
  res.writeHead(200, headers);
  if (first) res.write(first);
  const t = setInterval(() => {
    if (res.destroyed) clearInterval(t);
    else if (res.writableLength < 4 * chunk.length) res.write(chunk);
  }, 1);
  res.on('close', () => clearInterval(t));
}

/** Writes one byte every `everyMs` forever (with an optional first chunk), until the socket closes. */
export function dripBody(res: http.ServerResponse, everyMs: number, headers: Record<string, string | number> = {}, first?: Buffer): void {
  res.writeHead(200, headers);
  if (first) res.write(first);
  const t = setInterval(() => {
    if (res.destroyed) clearInterval(t);
    else res.write('x');
  }, everyMs);
  res.on('close', () => clearInterval(t));
}

/** A throwaway self-signed certificate for `localhost` (null when openssl is missing or fails). */
export function selfSignedCert(): { key: string; cert: string } | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore', timeout: 20000 });
    return { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } catch {
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Resolves with `p`, or rejects when it has not settled within `ms` (a hang shows as a failure, not a stuck run). */
export function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_r, reject) => {
      t = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
    }),
  ]);
}
