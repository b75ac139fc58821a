/**
 * Connection bookkeeping of the HTTP server: a cap on open connections that
 * sheds the slowest clients first, and the graceful drain of a shutdown.
 *
 * The cap: at `maxConnections` open sockets a new connection evicts the
 * oldest socket that is not being answered (idle keep-alive, headers or body
 * still arriving), and is refused only when every socket holds a fully read
 * request. So clients that drip their requests a byte at a time cannot hold
 * every descriptor: each new client pushes the oldest dripper out, and real
 * requests, which arrive in milliseconds, get through.
 *
 * The drain: stop listening; let the event loop read what clients already
 * sent (a keep-alive request in the kernel's buffer becomes an active request,
 * instead of being reset with its socket); close the sockets that are then
 * idle; let the rest finish (their answers carry `Connection: close`, which
 * the server adds while draining) until a deadline, then destroy what is left.
 */
import type * as http from 'http';
import * as net from 'net';

/** Why a connection was dropped (a metrics label). */
export type DropReason = 'evicted' | 'refused' | 'draining' | 'drain_deadline';

interface SocketState {
  /** The request being read or answered on it, if any. */
  request: http.IncomingMessage | null;
  /** Since when the socket has not been answered: connection, or end of its last answer (ms). */
  since: number;
}

/** How long the drain lets the event loop read requests clients had already sent (ms). */
const DRAIN_READ_GRACE_MS = 50;

/** See the file comment. */
export class ConnectionGuard {
  private readonly sockets = new Map<net.Socket, SocketState>();
  private draining = false;

  constructor(
    private readonly server: http.Server,
    private readonly maxConnections: number,
    private readonly onDrop: (reason: DropReason) => void = () => {},
  ) {
    server.on('connection', (socket: net.Socket) => this.admit(socket));
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const state = this.sockets.get(req.socket);
      if (!state) return;
      state.request = req;
      res.once('close', () => {
        if (state.request === req) {
          state.request = null;
          state.since = Date.now();
        }
      });
    });
  }

  /** Open connections. */
  get size(): number {
    return this.sockets.size;
  }

  private admit(socket: net.Socket): void {
    if (this.draining) {
      this.onDrop('draining');
      socket.destroy();
      return;
    }
    this.sockets.set(socket, { request: null, since: Date.now() });
    socket.once('close', () => this.sockets.delete(socket));
    if (this.sockets.size <= this.maxConnections) return;
    const victim = this.oldestUnanswered(socket);
    if (victim) {
      this.onDrop('evicted');
      victim.destroy();
    } else {
      this.onDrop('refused');
      socket.destroy();
    }
  }

  /** The socket waiting longest without a fully read request (never `except`). */
  private oldestUnanswered(except: net.Socket): net.Socket | null {
    let best: net.Socket | null = null;
    let bestSince = Infinity;
    for (const [socket, state] of this.sockets) {
      if (socket === except || socket.destroyed) continue;
      if (state.request && state.request.complete) continue;
      if (state.since < bestSince) {
        best = socket;
        bestSince = state.since;
      }
    }
    return best;
  }

  /** True once {@link drain} has begun. */
  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Stops accepting, closes idle sockets once the requests already sent have
   * been read, waits for the rest to be answered, and destroys what is still
   * open after `deadlineMs`. Resolves when no connection is left.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    // net.Server's close stops listening only; http.Server's would also close
    // idle sockets at once (resetting requests still in their buffers) and
    // stop the header/body timeout checks that must keep running while draining.
    if (this.server.listening) net.Server.prototype.close.call(this.server);
    const deadline = Date.now() + deadlineMs;
    await new Promise<void>((r) => setImmediate(r));
    await new Promise<void>((r) => setTimeout(r, Math.min(DRAIN_READ_GRACE_MS, deadlineMs)));
    while (this.sockets.size > 0 && Date.now() < deadline) {
      // A socket is idle when no request is being read or answered on it; one
      // whose answer went out before the drain began may turn idle at any time.
      this.server.closeIdleConnections();
      await new Promise<void>((r) => setTimeout(r, Math.max(1, Math.min(25, deadline - Date.now()))));
    }
    for (const socket of this.sockets.keys()) {
      this.onDrop('drain_deadline');
      socket.destroy();
    }
  }
}
