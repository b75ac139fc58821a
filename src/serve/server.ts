/**
 * The HTTP server of `gnnbatch serve`: Fastify with JSON-schema validation of
 * the request shape, a {@link createPredictor} behind it, and Prometheus
 * metrics (prom-client, in a registry of its own so the host's is untouched).
 *
 * Routes:
 * - `POST /v1/predict`: `{"structures": [{numbers, positions, cell?, pbc?, id?}, ...]}`,
 *   `{"extxyz": "..."}`, or a text/plain (or chemical/x-extxyz) body of extended
 *   XYZ. Answers `{target, predictions, step}` in the target's units.
 *   With `"properties": ["energy", "forces", "stress"]` (any of them, unique;
 *   for an extended XYZ body the query `?properties=energy,forces`) the answer
 *   also has `properties` and, when asked for, `forces` ([structures][atoms][3],
 *   target units per Å) and `stress` ([structures][6] Voigt xx yy zz yz xz xy,
 *   target units per Å^3, or null for a structure not periodic in 3-D);
 *   `predictions` stays the energies.
 *   400 names the field of a bad request; 503 with Retry-After when the queue is full.
 * - `GET /healthz`: 200 `{status: "ok", ...}` while serving, 503 while draining.
 * - `GET /metrics`: Prometheus text format.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import * as http from 'http';
import { StringDecoder } from 'string_decoder';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Structure } from '../data';
import { GnnError, isGnnError, type GnnErrorCode } from '../errors';
import { ConnectionGuard } from './connection-guard';
import { jsonShapeProblem } from './json-guard';
import { createPredictor, type PredictedProperties, type PropertyName, type Predictor, type PredictorOptions } from './predictor';
import { ExtxyzRequestReader, structuresFromExtxyzSliced, structuresFromJson, type StructureLimits } from './structures';

/** Options of {@link startServer}. */
export interface ServeOptions extends PredictorOptions, StructureLimits {
  /** Interface to listen on (default 127.0.0.1: loopback only). */
  host?: string;
  /** TCP port (default 8080; 0 picks a free one). */
  port?: number;
  /** Largest request body in bytes (default 16 MiB), checked as the body arrives. */
  bodyLimit?: number;
  /** Seconds a client is told to wait (Retry-After) when the queue is full (default 1). */
  retryAfterSeconds?: number;
  /**
   * Most open connections (default 512, below the usual 1,024 descriptors). At
   * the cap a new connection evicts the oldest one not being answered (idle,
   * or its request still arriving); it is refused only when all are being answered.
   */
  maxConnections?: number;
  /** Milliseconds a client has to send a request's headers (default 10,000); then 408. */
  headersTimeoutMs?: number;
  /** Milliseconds a client has to send a whole request, headers and body (default 30,000); then 408. */
  bodyTimeoutMs?: number;
  /** Milliseconds an idle keep-alive connection is kept open (default 5,000). */
  keepAliveTimeoutMs?: number;
  /**
   * Milliseconds from a request's body being read to its answer (default
   * 30,000); then 504 `ERR_GNN_TIMEOUT` and the request's remaining work is aborted.
   */
  requestDeadlineMs?: number;
  /**
   * Milliseconds {@link RunningServer.close} waits for requests in flight
   * before destroying their connections (default 10,000).
   */
  drainTimeoutMs?: number;
}

/** A running server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly predictor: Predictor;
  readonly app: FastifyInstance;
  /**
   * The graceful shutdown: stops accepting connections, answers the requests
   * in flight and those already sent on open connections (with
   * `Connection: close`), closes idle connections, destroys what is left
   * after `drainTimeoutMs`, then closes the predictor. Idempotent.
   */
  close(): Promise<void>;
}

/** Deepest JSON nesting a request may have (a structure's rows of positions sit at depth 5). */
const MAX_JSON_DEPTH = 16;

function predictBodySchema(maxStructures: number, maxAtoms: number): object {
  return {
    type: 'object',
    properties: {
      structures: {
        type: 'array',
        maxItems: maxStructures,
        items: {
          type: 'object',
          required: ['numbers', 'positions'],
          properties: {
            numbers: { type: 'array', maxItems: maxAtoms, items: { type: 'integer' } },
            positions: { type: 'array', maxItems: 3 * maxAtoms },
            cell: { anyOf: [{ type: 'array', maxItems: 9 }, { type: 'null' }] },
            pbc: { anyOf: [{ type: 'boolean' }, { type: 'array', maxItems: 3, items: { type: 'boolean' } }] },
            id: { type: 'string' },
          },
        },
      },
      extxyz: { type: 'string' },
      properties: PROPERTIES_SCHEMA,
    },
    oneOf: [{ required: ['structures'] }, { required: ['extxyz'] }],
  };
}

/** The properties a request may ask for. */
const PROPERTY_NAMES: readonly PropertyName[] = ['energy', 'forces', 'stress'];
const PROPERTIES_SCHEMA = { type: 'array', minItems: 1, maxItems: 3, uniqueItems: true, items: { type: 'string', enum: PROPERTY_NAMES } };

/** The query of the predict route: `properties` as a comma-separated list (for extended XYZ bodies). */
const PREDICT_QUERY_SCHEMA = {
  type: 'object',
  properties: { properties: { type: 'string', pattern: '^(energy|forces|stress)(,(energy|forces|stress)){0,2}$' } },
};

const VECTOR3 = { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 };
/** The 200 answer of the predict route (serialised by this schema). */
const PREDICT_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['target', 'predictions', 'step'],
  properties: {
    target: { type: 'string' },
    predictions: { type: 'array', items: { type: 'number' } },
    step: { type: 'integer' },
    properties: PROPERTIES_SCHEMA,
    forces: { type: 'array', items: { type: 'array', items: VECTOR3 } },
    stress: { type: 'array', items: { anyOf: [{ type: 'array', items: { type: 'number' }, minItems: 6, maxItems: 6 }, { type: 'null' }] } },
    out_of_domain: { type: 'array', items: { type: 'boolean' } },
  },
};

/** The JSON answer of a prediction with properties. */
interface PredictAnswer {
  target: string;
  predictions: number[];
  step: number;
  properties?: PropertyName[];
  forces?: number[][][];
  stress?: (number[] | null)[];
  /** Per structure: true when it has an element the model was not trained on (absent for checkpoints that do not record their elements). */
  out_of_domain?: boolean[];
}

/** Per structure, whether it has an element outside `elements` (the training set's). */
export function outOfDomain(structures: readonly Structure[], elements: readonly number[]): boolean[] {
  const known = new Uint8Array(256);
  for (const z of elements) known[z] = 1;
  return structures.map((s) => s.numbers.some((z) => !known[z]));
}

function answerOf(target: string, step: number, properties: PropertyName[] | null, result: Float64Array | PredictedProperties): PredictAnswer {
  if (result instanceof Float64Array) return { target, predictions: Array.from(result), step };
  const out: PredictAnswer = { target, predictions: Array.from(result.energy), step, properties: properties ?? ['energy'] };
  if (result.forces) {
    out.forces = result.forces.map((f) => {
      const rows: number[][] = new Array<number[]>(f.length / 3);
      for (let i = 0; i < rows.length; i++) rows[i] = [f[3 * i], f[3 * i + 1], f[3 * i + 2]];
      return rows;
    });
  }
  if (result.stress) out.stress = result.stress.map((x) => (x ? Array.from(x) : null));
  return out;
}

/** The structures of a text/plain (extended XYZ) body, read while it streamed in. */
class ExtxyzBody {
  constructor(readonly structures: Structure[]) {}
}

/** An error answered with `statusCode` (a request refused while its body was read). */
function httpError(statusCode: number, code: GnnErrorCode, message: string): GnnError & { statusCode: number } {
  return Object.assign(new GnnError(code, message), { statusCode });
}

interface Metrics {
  registry: Registry;
  requests: Counter<'status'>;
  latency: Histogram<string>;
  batchGraphs: Histogram<string>;
  batchRequests: Histogram<string>;
  forward: Histogram<string>;
  queueDepth: Gauge<string>;
  molecules: Counter<string>;
  properties: Counter<'property'>;
  outOfDomain: Counter<string>;
  forceBatches: Counter<string>;
  connectionsDropped: Counter<'reason'>;
}

function makeMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gnnbatch_' });
  return {
    registry,
    requests: new Counter({ name: 'gnnbatch_requests_total', help: 'Prediction requests by HTTP status', labelNames: ['status'], registers: [registry] }),
    latency: new Histogram({
      name: 'gnnbatch_request_duration_seconds',
      help: 'Prediction request latency (parse + queue + forward)',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    batchGraphs: new Histogram({ name: 'gnnbatch_batch_graphs', help: 'Structures per native forward pass', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] }),
    batchRequests: new Histogram({ name: 'gnnbatch_batch_requests', help: 'Requests merged into one native forward pass', buckets: [1, 2, 4, 8, 16, 32, 64], registers: [registry] }),
    forward: new Histogram({
      name: 'gnnbatch_native_forward_seconds',
      help: 'Native forward-pass time per batch',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: 'gnnbatch_queue_depth', help: 'Requests queued or being prepared', registers: [registry] }),
    molecules: new Counter({ name: 'gnnbatch_structures_total', help: 'Structures predicted', registers: [registry] }),
    properties: new Counter({
      name: 'gnnbatch_structure_properties_total',
      help: 'Structures answered, by property returned (energy, forces, stress)',
      labelNames: ['property'],
      registers: [registry],
    }),
    outOfDomain: new Counter({
      name: 'gnnbatch_out_of_domain_structures_total',
      help: 'Structures predicted that have an element the model was not trained on (their predictions are extrapolations)',
      registers: [registry],
    }),
    forceBatches: new Counter({ name: 'gnnbatch_force_batches_total', help: 'Native force passes (batches of requests asking for forces or stress)', registers: [registry] }),
    connectionsDropped: new Counter({
      name: 'gnnbatch_connections_dropped_total',
      help: 'Connections closed by the server: evicted at the connection cap, refused at it, refused while draining, destroyed at the drain deadline',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}

/** Errors that mean the request's structures are unusable (400), not that the server failed. */
const BAD_INPUT: ReadonlySet<string> = new Set([
  'ERR_GNN_STRUCTURE',
  'ERR_GNN_POSITION',
  'ERR_GNN_CELL',
  'ERR_GNN_IMAGES',
  'ERR_GNN_CUTOFF',
  'ERR_GNN_KNN',
  'ERR_GNN_TOO_MANY_EDGES',
  'ERR_GNN_EDGE_LIMIT',
]);

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new GnnError('ERR_GNN_ARGUMENT', `${name} must be a positive integer, got ${v}`);
  return v;
}

/** Status and body of a Node-level client error (a request never handed to a route). */
function clientErrorAnswer(err: NodeJS.ErrnoException): { status: number; code: GnnErrorCode; message: string } {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, code: 'ERR_GNN_TIMEOUT', message: 'the request was not received within the server\'s headers or body timeout' };
  if (err.code === 'HPE_HEADER_OVERFLOW') return { status: 431, code: 'ERR_GNN_REQUEST', message: 'the request headers are too large' };
  return { status: 400, code: 'ERR_GNN_REQUEST', message: 'malformed HTTP request' };
}

/** Starts `gnnbatch serve` on a checkpoint directory; resolves once listening (after the warm-up). */
export async function startServer(checkpointDir: string, options: ServeOptions = {}): Promise<RunningServer> {
  const bodyLimit = positive('bodyLimit', options.bodyLimit, 16 * 1024 * 1024);
  const maxConnections = positive('maxConnections', options.maxConnections, 512);
  const bodyTimeoutMs = positive('bodyTimeoutMs', options.bodyTimeoutMs, 30_000);
  // Node refuses a headers timeout above the request timeout.
  const headersTimeoutMs = Math.min(positive('headersTimeoutMs', options.headersTimeoutMs, 10_000), bodyTimeoutMs);
  const keepAliveTimeoutMs = positive('keepAliveTimeoutMs', options.keepAliveTimeoutMs, 5_000);
  const requestDeadlineMs = positive('requestDeadlineMs', options.requestDeadlineMs, 30_000);
  const drainTimeoutMs = positive('drainTimeoutMs', options.drainTimeoutMs, 10_000);
  const maxStructures = positive('maxStructures', options.maxStructures, 10_000);
  const maxAtoms = positive('maxAtoms', options.maxAtoms, 5_000);
  const limits: StructureLimits = { maxStructures, maxAtoms };
  const jsonLimits = { maxDepth: MAX_JSON_DEPTH, maxArrayItems: Math.max(maxStructures, 3 * maxAtoms, 9) };

  const metrics = makeMetrics();
  const predictor = await createPredictor(checkpointDir, {
    ...options,
    onBatch: (b) => {
      metrics.batchGraphs.observe(b.graphs);
      metrics.batchRequests.observe(b.requests);
      metrics.forward.observe(b.forwardMs / 1000);
      metrics.molecules.inc(b.graphs);
      if (b.forces) metrics.forceBatches.inc();
      options.onBatch?.(b);
    },
  });
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  // Sockets whose request was answered (or dropped) at the HTTP level, before any route.
  const clientErrored = new WeakSet<object>();
  const app = Fastify({
    bodyLimit,
    logger: false,
    // The drain (ConnectionGuard) decides what is answered and what is closed.
    return503OnClosing: false,
    forceCloseConnections: false,
    requestTimeout: bodyTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    // Node checks the header and body timeouts on this period: a fraction of the shortest.
    http: { headersTimeout: headersTimeoutMs, requestTimeout: bodyTimeoutMs, connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeoutMs / 4))) },
    // Bodies are taken as sent: `numbers: ["1"]` or `pbc: "false"` are errors, not values.
    ajv: { customOptions: { coerceTypes: false } },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const { status, code, message } = clientErrorAnswer(err);
      clientErrored.add(socket);
      metrics.requests.inc({ status: String(status) });
      const body = JSON.stringify(errorBody(code, message));
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
  });
  const guard = new ConnectionGuard(app.server, maxConnections, (reason) => metrics.connectionsDropped.inc({ reason }));

  // Every answer of the predict route is counted, framework refusals (415, 413,
  // schema 400) included; a request whose client left before its answer counts as 499.
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url !== '/v1/predict') return;
    reply.raw.once('close', () => {
      if (clientErrored.has(req.raw.socket)) return;
      metrics.requests.inc({ status: reply.raw.writableFinished ? String(reply.raw.statusCode) : '499' });
    });
  });
  // While draining, every answer closes its connection: keep-alive sockets
  // would otherwise stay open for the keep-alive timeout.
  app.addHook('onSend', async (_req, reply, payload) => {
    if (guard.isDraining) void reply.header('Connection', 'close');
    return payload;
  });

  // JSON: depth and array lengths bounded by a linear scan before JSON.parse and validation.
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    const problem = jsonShapeProblem(text, jsonLimits);
    if (problem) {
      done(httpError(400, 'ERR_GNN_REQUEST', `invalid request: ${problem}`), undefined);
      return;
    }
    parseJson(req, text, done);
  });
  // Extended XYZ: read as it streams in, stopping at the first frame beyond the limits.
  app.addContentTypeParser(['text/plain', 'chemical/x-extxyz'], (req, payload, done) => {
    const declared = Number(req.headers['content-length']);
    if (declared > bodyLimit) {
      done(httpError(413, 'ERR_GNN_REQUEST', `the request body (${declared} bytes) is larger than the limit of ${bodyLimit} bytes`), undefined);
      return;
    }
    const reader = new ExtxyzRequestReader(limits);
    const decoder = new StringDecoder('utf8');
    let received = 0;
    let settled = false;
    const finish = (error: Error | null, body?: ExtxyzBody): void => {
      if (settled) return;
      settled = true;
      payload.off('data', onData);
      payload.off('end', onEnd);
      payload.off('error', onError);
      // The rest of a refused body is read and dropped (Node does it after the answer), so the client sees the answer, not a reset.
      done(error, body);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      try {
        if (received > bodyLimit) throw httpError(413, 'ERR_GNN_REQUEST', `the request body is larger than the limit of ${bodyLimit} bytes`);
        reader.write(decoder.write(chunk));
      } catch (e) {
        finish(e as Error);
      }
    };
    const onEnd = (): void => {
      try {
        reader.write(decoder.end());
        finish(null, new ExtxyzBody(reader.end()));
      } catch (e) {
        finish(e as Error);
      }
    };
    const onError = (e: Error): void => finish(e);
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
  });

  app.setErrorHandler((error: Error & { validation?: unknown; statusCode?: number; code?: string }, _req, reply) => {
    if (error.validation) {
      void reply.code(400).send(errorBody('ERR_GNN_REQUEST', `invalid request: ${error.message}`));
      return;
    }
    if (isGnnError(error) && BAD_INPUT.has(error.code)) {
      void reply.code(400).send(errorBody(error.code, error.message));
      return;
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      void reply.code(error.statusCode).send(errorBody(isGnnError(error) ? error.code : 'ERR_GNN_REQUEST', error.message));
      return;
    }
    void reply.code(500).send(errorBody(isGnnError(error) ? error.code : 'ERR_GNN_INTERNAL', error.message));
  });

  const reject = (reply: FastifyReply, status: number, code: string, message: string): FastifyReply => {
    if (status === 503) void reply.header('Retry-After', retryAfter);
    return reply.code(status).send(errorBody(code, message));
  };

  app.post(
    '/v1/predict',
    {
      schema: {
        body: { content: { 'application/json': { schema: predictBodySchema(maxStructures, maxAtoms) } } },
        querystring: PREDICT_QUERY_SCHEMA,
        response: { 200: PREDICT_RESPONSE_SCHEMA },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const stop = metrics.latency.startTimer();
      // Aborted when the client goes away before its answer, or at the deadline:
      // either way the request's remaining work leaves the predictor.
      const ac = new AbortController();
      // (The response's 'close' before it finished means the connection went away;
      // the request's own 'close' fires as soon as its body has been read.)
      const onClose = (): void => {
        if (!reply.raw.writableFinished) ac.abort();
      };
      reply.raw.on('close', onClose);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_resolve, rejectDeadline) => {
        timer = setTimeout(() => {
          const e = new GnnError('ERR_GNN_TIMEOUT', `the request was not answered within the server's deadline of ${requestDeadlineMs} ms; its work was stopped`);
          ac.abort(e);
          rejectDeadline(e);
        }, requestDeadlineMs);
      });
      try {
        const body = req.body as { structures?: unknown; extxyz?: string; properties?: PropertyName[] } | ExtxyzBody;
        const query = (req.query as { properties?: string } | undefined)?.properties;
        const asked = body instanceof ExtxyzBody ? undefined : body.properties;
        if (asked !== undefined && query !== undefined) throw httpError(400, 'ERR_GNN_REQUEST', "invalid request: give 'properties' in the body or in the query, not both");
        const named = asked ?? (query !== undefined ? (query.split(',') as PropertyName[]) : undefined);
        if (named !== undefined && new Set(named).size !== named.length) throw httpError(400, 'ERR_GNN_REQUEST', 'invalid request: querystring/properties names a property twice');
        const properties = named ?? null;
        const structures =
          body instanceof ExtxyzBody
            ? body.structures
            : body.extxyz !== undefined
              ? await Promise.race([structuresFromExtxyzSliced(body.extxyz, limits, undefined, ac.signal), deadline])
              : structuresFromJson(body.structures, limits);
        const work: Promise<Float64Array | PredictedProperties> = properties
          ? predictor.predict(structures, { signal: ac.signal, properties })
          : predictor.predict(structures, { signal: ac.signal });
        // Settled by the race below or, after the deadline, nobody: never unhandled.
        work.catch(() => {});
        const result = await Promise.race([work, deadline]);
        stop();
        for (const p of properties ?? ['energy']) metrics.properties.inc({ property: p }, structures.length);
        const answer = answerOf(predictor.target, predictor.step, properties, result);
        if (predictor.elements) {
          answer.out_of_domain = outOfDomain(structures, predictor.elements);
          const n = answer.out_of_domain.filter((x) => x).length;
          if (n > 0) metrics.outOfDomain.inc(n);
        }
        return answer;
      } catch (e) {
        const code = isGnnError(e) ? e.code : 'ERR_GNN_INTERNAL';
        const message = (e as Error).message;
        const status = (e as { statusCode?: number }).statusCode;
        if (status === 400) return reject(reply, 400, code, message);
        if (code === 'ERR_GNN_UNSUPPORTED') return reject(reply, 501, code, message);
        if (code === 'ERR_GNN_ARGUMENT') return reject(reply, 400, code, message);
        if (code === 'ERR_GNN_TIMEOUT') return reject(reply, 504, code, message);
        if (code === 'ERR_GNN_REQUEST_TOO_LARGE') return reject(reply, 413, code, message);
        if (code === 'ERR_GNN_QUEUE_FULL' || code === 'ERR_GNN_CLOSED') return reject(reply, 503, code, message);
        if (BAD_INPUT.has(code)) return reject(reply, 400, code, message);
        if (code === 'ERR_GNN_ABORTED') return reject(reply, 499, code, 'client closed the request');
        return reject(reply, 500, code, message);
      } finally {
        clearTimeout(timer);
        reply.raw.off('close', onClose);
        metrics.queueDepth.set(predictor.stats().queueDepth);
      }
    },
  );

  app.get('/healthz', async (_req, reply) => {
    const s = predictor.stats();
    const draining = guard.isDraining;
    const body = { status: draining ? 'draining' : 'ok', target: predictor.target, model: predictor.config.kind, step: predictor.step, queueDepth: s.queueDepth, budget: predictor.budget };
    return draining ? reply.code(503).send(body) : body;
  });

  app.get('/metrics', async (_req, reply) => {
    metrics.queueDepth.set(predictor.stats().queueDepth);
    return reply.header('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8080 });
  let closing: Promise<void> | null = null;
  return {
    url: address,
    predictor,
    app,
    close() {
      closing ??= (async () => {
        await guard.drain(drainTimeoutMs);
        await app.close();
        await predictor.close();
      })();
      return closing;
    },
  };
}
