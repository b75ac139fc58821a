/**
 * Test helper: raw loopback HTTP clients that behave as hostile or careless
 * clients do (byte-dripping headers or bodies, keep-alive requests written
 * back to back, connections that are never used), with what the server did
 * to each: the status it answered, or that it reset or closed the socket.
 */
import * as net from 'net';

/** What became of one raw connection. */
export interface RawOutcome {
  /** Status codes of the answers received, in order. */
  statuses: number[];
  /** The answers' raw text (headers and bodies). */
  text: string;
  /** The connection ended with ECONNRESET / EPIPE (a reset, no orderly close). */
  reset: boolean;
  /** Milliseconds from the connect to the close. */
  ms: number;
}

/** A raw connection to `url`'s host and port. */
export interface RawClient {
  readonly socket: net.Socket;
  /** Resolves when the connection closes (for any reason). */
  readonly done: Promise<RawOutcome>;
  /** Writes and resolves once the bytes are in the kernel. */
  write(data: string | Buffer): Promise<void>;
  /** Stops any drip and destroys the socket. */
  destroy(): void;
  /** What the server has sent so far. */
  received(): string;
  /** Resolves with the text received once `pattern` matches it, or null after `timeoutMs` or at the close. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string | null>;
}

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** Opens a raw connection; resolves once connected. */
export async function connectRaw(url: string): Promise<RawClient> {
  const { host, port } = hostPort(url);
  const socket = net.connect({ host, port });
  const t0 = Date.now();
  let text = '';
  let reset = false;
  const timers = new Set<NodeJS.Timeout>();
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'ECONNRESET' || e.code === 'EPIPE') reset = true;
  });
  const done = new Promise<RawOutcome>((resolve) => {
    socket.on('close', () => {
      for (const t of timers) clearTimeout(t);
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
      resolve({ statuses, text, reset, ms: Date.now() - t0 });
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    done,
    write: (data) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.write(data, () => resolve()))),
    destroy: () => socket.destroy(),
    received: () => text,
    waitFor: async (pattern, timeoutMs) => {
      const end = Date.now() + timeoutMs;
      let closed = false;
      void done.then(() => (closed = true));
      while (!pattern.test(text)) {
        if (closed || Date.now() > end) return pattern.test(text) ? text : null;
        await sleep(10);
      }
      return text;
    },
  };
}

/** The bytes of one HTTP/1.1 request. */
export function rawRequest(method: string, path: string, body = '', headers: Record<string, string> = {}): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: localhost'];
  const all: Record<string, string> = { ...(body || method === 'POST' ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}), ...headers };
  for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * A client that sends `prefix` (say, a request's headers) and then drips
 * `drip` one byte every `intervalMs` until the server closes the connection
 * or the bytes run out.
 */
export async function dripClient(url: string, prefix: string, drip: string, intervalMs: number): Promise<RawClient> {
  const c = await connectRaw(url);
  await c.write(prefix);
  let at = 0;
  const tick = (): void => {
    if (c.socket.destroyed || at >= drip.length) return;
    c.socket.write(drip[at++]);
    const t = setTimeout(tick, intervalMs);
    t.unref();
  };
  const t = setTimeout(tick, intervalMs);
  t.unref();
  return c;
}

/** Resolves after `ms` (an unreferenced timer: a pending race against it does not keep a test process alive). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
