/**
 * An i-PI socket client ("driver"): the protocol that ASE's `SocketIOCalculator`,
 * i-PI itself, LAMMPS `fix ipi` and CP2K use to ask an external engine for
 * energies, forces and virials. gnnbatch is the client; the simulation code is
 * the server.
 *
 * The subset spoken here (i-PI's own driver and ASE's `SocketClient` speak the
 * same one): every message starts with a 12-byte ASCII header padded with
 * spaces; numbers are little-endian (the machine's order, as every i-PI peer
 * assumes), int32 and float64.
 *
 * | server sends | then | client answers |
 * |---|---|---|
 * | `STATUS` | | `NEEDINIT` before the first INIT, `HAVEDATA` when a result waits, else `READY` |
 * | `INIT` | int32 bead index, int32 length, that many bytes | nothing |
 * | `POSDATA` | 9 float64 cell h, 9 float64 inverse cell, int32 atoms, 3N float64 positions | nothing (computes) |
 * | `GETFORCE` | | `FORCEREADY`, float64 energy, int32 atoms, 3N float64 forces, 9 float64 virial, int32 extra length, extra bytes |
 * | `EXIT` | | the client stops |
 *
 * Units on the wire are atomic units: lengths in Bohr, energies in Hartree,
 * forces in Hartree/Bohr, the virial in Hartree. The cell arrives as the matrix
 * h whose columns are the lattice vectors, row-major (ASE sends `cell.T`), and
 * the virial goes back the same way (ASE reads it transposed; it is symmetric
 * here). The virial is `-V * stress` (ASE's convention: stress = dE/dstrain / V,
 * so an expanded cell under tension has positive stress). Conversions use the
 * constants ASE derives from CODATA 2014 (its default), bit for bit, so values
 * round-trip through ASE to float64 rounding (i-PI's own constants differ in
 * the 9th digit).
 */
import * as net from 'net';
import { GnnError } from '../errors';

/** Bohr radius in Å: ASE's `units.Bohr` (derived from CODATA 2014, its default), to the last bit. */
export const BOHR_IN_ANGSTROM = 0.5291772105638411;
/** Hartree energy in eV: ASE's `units.Hartree` (derived from CODATA 2014), to the last bit. */
export const HARTREE_IN_EV = 27.211386024367243;

/** One geometry the server asks about, converted to Å. */
export interface DriverGeometry {
  /** Step number, from 0 (one per POSDATA). */
  step: number;
  /** Positions in Å, row-major [atoms x 3]. */
  positions: Float64Array;
  /** Lattice vectors as rows in Å, row-major [3 x 3] (ASE's `atoms.cell`); all zero when the server has no cell. */
  cell: Float64Array;
}

/** What a force engine returns for one geometry, in eV and Å. */
export interface DriverResult {
  /** Potential energy in eV. */
  energy: number;
  /** Forces in eV/Å, row-major [atoms x 3]. */
  forces: Float64Array;
  /** Stress in eV/Å^3, Voigt order xx yy zz yz xz xy (ASE's sign), or null (the virial sent is then zero). */
  stress: Float64Array | null;
}

/** Computes energies and forces for the driver: gnnbatch's model, or any other engine (tests use a Morse potential). */
export type ForceEngine = (geometry: DriverGeometry) => DriverResult | Promise<DriverResult>;

/** Where the i-PI server listens. */
export type DriverAddress =
  | { kind: 'inet'; host: string; port: number }
  /** A Unix socket: `name` without a slash means `/tmp/ipi_<name>` (i-PI's and ASE's convention), otherwise a path. */
  | { kind: 'unix'; name: string };

/** Options of {@link runIpiDriver}. */
export interface IpiDriverOptions {
  /** How long to keep trying to connect while the server is not up yet (ms); default 60000. */
  connectTimeoutMs?: number;
  /** The longest silence allowed inside a message once it has begun (ms); default 30000. Between messages the server may take as long as it likes. */
  messageTimeoutMs?: number;
  /** The atom count a geometry may have at most; default 100000. */
  maxAtoms?: number;
  /** Called once connected. */
  onConnect?: () => void;
  /** Stops the driver between messages (the socket is closed; the returned promise resolves). */
  signal?: AbortSignal;
}

/** How a driver run ended. */
export interface IpiDriverSummary {
  /** Geometries computed. */
  steps: number;
  /** Why it stopped: the server said EXIT, closed the connection between messages, or the signal fired. */
  reason: 'exit' | 'closed' | 'aborted';
}

/** The file system path of a Unix-socket address. */
export function unixSocketPath(name: string): string {
  return name.includes('/') ? name : `/tmp/ipi_${name}`;
}

/** Parses `HOST:PORT` (the CLI's --ipi). */
export function parseInetAddress(text: string): DriverAddress {
  const m = /^(.*):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || !(port >= 1 && port <= 65535))
    throw new GnnError('ERR_GNN_ARGUMENT', `an i-PI address is HOST:PORT with a port in 1..65535, got '${text}'`);
  return { kind: 'inet', host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

const HEADER = 12;
const MESSAGES = ['STATUS', 'INIT', 'POSDATA', 'GETFORCE', 'EXIT'] as const;

/** Reads exact byte counts from a socket, with a silence bound inside a message. */
class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private waiter: { need: number; resolve: (b: Buffer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | null } | null = null;
  private ended: Error | null = null;

  constructor(private readonly socket: net.Socket, private readonly messageTimeoutMs: number) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
      this.pump();
    });
    const end = (e: Error): void => {
      if (!this.ended) this.ended = e;
      this.pump();
    };
    socket.on('end', () => end(new GnnError('ERR_GNN_DRIVER_CLOSED', 'the i-PI server closed the connection')));
    socket.on('close', () => end(new GnnError('ERR_GNN_DRIVER_CLOSED', 'the i-PI server closed the connection')));
    socket.on('error', (e) => end(new GnnError('ERR_GNN_DRIVER_CLOSED', `the connection to the i-PI server failed: ${e.message}`, { cause: e })));
  }

  /** True when nothing is buffered (a clean place for the server to hang up). */
  get empty(): boolean {
    return this.length === 0;
  }

  /** The next `n` bytes; `inMessage` arms the silence timer. */
  read(n: number, inMessage: boolean): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = inMessage
        ? setTimeout(() => {
            this.waiter = null;
            reject(new GnnError('ERR_GNN_DRIVER_PROTOCOL', `the i-PI server stopped in the middle of a message (no byte for ${this.messageTimeoutMs} ms)`));
          }, this.messageTimeoutMs)
        : null;
      this.waiter = { need: n, resolve, reject, timer };
      this.pump();
    });
  }

  private pump(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.length >= w.need) {
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
      const out = Buffer.from(all.subarray(0, w.need)); // a copy: aligned for the typed-array views below
      const rest = all.subarray(w.need);
      this.chunks = rest.length ? [rest] : [];
      this.length = rest.length;
      this.waiter = null;
      if (w.timer) clearTimeout(w.timer);
      w.resolve(out);
    } else if (this.ended) {
      this.waiter = null;
      if (w.timer) clearTimeout(w.timer);
      w.reject(this.ended);
    }
  }
}

function header(text: string): Buffer {
  return Buffer.from(text.padEnd(HEADER, ' '), 'ascii');
}

function connectOnce(address: DriverAddress): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = address.kind === 'unix' ? net.connect(unixSocketPath(address.name)) : net.connect(address.port, address.host);
    const fail = (e: Error): void => {
      socket.destroy();
      reject(e);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.off('error', fail);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

function describe(address: DriverAddress): string {
  return address.kind === 'unix' ? `unix:${unixSocketPath(address.name)}` : `${address.host}:${address.port}`;
}

async function connect(address: DriverAddress, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  let wait = 20;
  for (;;) {
    try {
      return await connectOnce(address);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const retryable = code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EAGAIN';
      if (!retryable || Date.now() + wait > deadline || signal?.aborted)
        throw new GnnError('ERR_GNN_DRIVER_CONNECT', `cannot connect to the i-PI server at ${describe(address)}: ${(e as Error).message}${retryable ? ` (tried for ${timeoutMs} ms)` : ''}`, { cause: e });
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(500, wait * 2);
    }
  }
}

/** Row-major h (columns = lattice vectors) in Bohr -> lattice vectors as rows in Å. */
function cellFromWire(h: Float64Array): Float64Array {
  const cell = new Float64Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) cell[3 * j + i] = h[3 * i + j] * BOHR_IN_ANGSTROM;
  return cell;
}

function volume(cell: Float64Array): number {
  const [a, b, c, d, e, f, g, h, i] = cell;
  return Math.abs(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g));
}

/** The virial (-V stress) in Hartree as the 3x3 matrix ASE reads (row-major; symmetric). */
function virialToWire(stress: Float64Array | null, cell: Float64Array): Float64Array {
  const w = new Float64Array(9);
  if (!stress) return w;
  const v = volume(cell);
  if (!(v > 0)) throw new GnnError('ERR_GNN_DRIVER_PROTOCOL', 'stress was computed for a structure without a 3-dimensional cell');
  const [xx, yy, zz, yz, xz, xy] = stress;
  const full = [xx, xy, xz, xy, yy, yz, xz, yz, zz];
  for (let k = 0; k < 9; k++) w[k] = (-v * full[k]) / HARTREE_IN_EV;
  return w;
}

function checkResult(r: DriverResult, atoms: number): void {
  if (!Number.isFinite(r.energy)) throw new GnnError('ERR_GNN_NONFINITE', `the force engine returned a non-finite energy (${r.energy})`);
  if (r.forces.length !== 3 * atoms) throw new GnnError('ERR_GNN_INTERNAL', `the force engine returned ${r.forces.length} force components for ${atoms} atoms`);
  for (let k = 0; k < r.forces.length; k++)
    if (!Number.isFinite(r.forces[k])) throw new GnnError('ERR_GNN_NONFINITE', `the force engine returned a non-finite force on atom ${Math.floor(k / 3)}`);
  if (r.stress && (r.stress.length !== 6 || r.stress.some((x) => !Number.isFinite(x))))
    throw new GnnError('ERR_GNN_NONFINITE', 'the force engine returned a malformed or non-finite stress');
}

/**
 * Connects to an i-PI server and answers it until it says EXIT or hangs up
 * between messages. Each POSDATA is computed by `engine` (awaited: async
 * engines are fine) and kept until GETFORCE.
 *
 * Guarantees: the promise resolves on EXIT, on a close between messages and on
 * `signal`; it rejects with a coded error (never hangs) when the server closes
 * or stalls inside a message (ERR_GNN_DRIVER_PROTOCOL / ERR_GNN_DRIVER_CLOSED),
 * sends an unknown header or an out-of-order message, changes the atom count
 * between steps, or sends non-finite numbers (ERR_GNN_DRIVER_PROTOCOL); the
 * socket is closed in every case.
 */
export async function runIpiDriver(address: DriverAddress, engine: ForceEngine, options: IpiDriverOptions = {}): Promise<IpiDriverSummary> {
  const maxAtoms = options.maxAtoms ?? 100_000;
  const socket = await connect(address, options.connectTimeoutMs ?? 60_000, options.signal);
  options.onConnect?.();
  const reader = new ByteReader(socket, options.messageTimeoutMs ?? 30_000);
  let initialised = false;
  let pending: { result: DriverResult; atoms: number; cell: Float64Array } | null = null;
  let atomCount = -1;
  let steps = 0;
  const onAbort = (): void => {
    socket.destroy();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const protocol = (msg: string): GnnError => new GnnError('ERR_GNN_DRIVER_PROTOCOL', `i-PI protocol error at step ${steps}: ${msg}`);
  const int32 = async (): Promise<number> => (await reader.read(4, true)).readInt32LE(0);
  const float64s = async (n: number, what: string): Promise<Float64Array> => {
    const b = await reader.read(8 * n, true);
    const out = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      out[k] = b.readDoubleLE(8 * k);
      if (!Number.isFinite(out[k])) throw protocol(`${what}[${k}] is not finite`);
    }
    return out;
  };
  try {
    for (;;) {
      if (options.signal?.aborted) return { steps, reason: 'aborted' };
      let head: Buffer;
      try {
        head = await reader.read(HEADER, false);
      } catch (e) {
        if (options.signal?.aborted) return { steps, reason: 'aborted' };
        if ((e as GnnError).code === 'ERR_GNN_DRIVER_CLOSED' && reader.empty) return { steps, reason: 'closed' };
        throw e;
      }
      const text = head.toString('latin1');
      const msg = text.trimEnd();
      if (!(MESSAGES as readonly string[]).includes(msg))
        throw protocol(`unknown message header ${JSON.stringify(text)} (expected one of ${MESSAGES.join(', ')})`);
      if (msg === 'EXIT') return { steps, reason: 'exit' };
      if (msg === 'STATUS') {
        socket.write(header(!initialised ? 'NEEDINIT' : pending ? 'HAVEDATA' : 'READY'));
      } else if (msg === 'INIT') {
        await int32(); // bead index: one engine serves every bead alike
        const length = await int32();
        if (length < 0 || length > 1 << 20) throw protocol(`INIT string length ${length} is outside 0..${1 << 20}`);
        if (length > 0) await reader.read(length, true);
        initialised = true;
      } else if (msg === 'POSDATA') {
        if (pending) throw protocol('POSDATA while the previous result was not collected (GETFORCE expected)');
        const h = await float64s(9, 'cell');
        await float64s(9, 'inverse cell');
        const atoms = await int32();
        if (atoms < 1 || atoms > maxAtoms) throw protocol(`atom count ${atoms} is outside 1..${maxAtoms}`);
        if (atomCount >= 0 && atoms !== atomCount)
          throw protocol(`the atom count changed from ${atomCount} to ${atoms}: a driver serves one system (start another driver for another one)`);
        atomCount = atoms;
        const positions = await float64s(3 * atoms, 'positions');
        for (let k = 0; k < positions.length; k++) positions[k] *= BOHR_IN_ANGSTROM;
        const cell = cellFromWire(h);
        const result = await engine({ step: steps, positions, cell });
        checkResult(result, atoms);
        pending = { result, atoms, cell };
        steps++;
      } else {
        // GETFORCE
        if (!pending) throw protocol('GETFORCE before any POSDATA was computed');
        const { result, atoms, cell } = pending;
        const out = Buffer.alloc(HEADER + 8 + 4 + 24 * atoms + 72 + 4);
        header('FORCEREADY').copy(out, 0);
        let o = HEADER;
        o = out.writeDoubleLE(result.energy / HARTREE_IN_EV, o);
        o = out.writeInt32LE(atoms, o);
        const toWire = BOHR_IN_ANGSTROM / HARTREE_IN_EV; // eV/Å -> Hartree/Bohr
        for (let k = 0; k < 3 * atoms; k++) o = out.writeDoubleLE(result.forces[k] * toWire, o);
        const w = virialToWire(result.stress, cell);
        for (let k = 0; k < 9; k++) o = out.writeDoubleLE(w[k], o);
        out.writeInt32LE(0, o); // no extra bytes
        socket.write(out);
        pending = null;
      }
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    socket.destroy();
  }
}
