/**
 * The HTTP server of `gnnbatch serve`: Fastify with JSON-schema validation of
 * the request shape, a {@link createPredictor} behind it, and Prometheus
 * metrics (prom-client, in a registry of its own so the host's is untouched).
 *
 * Routes:
 * - `POST /v1/predict`: `{"structures": [{numbers, positions, cell?, pbc?, id?}, ...]}`,
 *   `{"extxyz": "..."}`, or a text/plain (or chemical/x-extxyz) body of extended
 *   XYZ. Answers `{target, predictions, step}` in the target's units.
 *   400 names the field of a bad request; 503 with Retry-After when the queue is full.
 * - `GET /healthz`: 200 `{status: "ok", ...}` while serving, 503 while draining.
 * - `GET /metrics`: Prometheus text format.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Structure } from '../data';
import { isGnnError } from '../errors';
import { createPredictor, type Predictor, type PredictorOptions } from './predictor';
import { structuresFromExtxyz, structuresFromJson, type StructureLimits } from './structures';

/** Options of {@link startServer}. */
export interface ServeOptions extends PredictorOptions, StructureLimits {
  /** Interface to listen on (default 127.0.0.1: loopback only). */
  host?: string;
  /** TCP port (default 8080; 0 picks a free one). */
  port?: number;
  /** Largest request body in bytes (default 16 MiB). */
  bodyLimit?: number;
  /** Seconds a client is told to wait (Retry-After) when the queue is full (default 1). */
  retryAfterSeconds?: number;
}

/** A running server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly predictor: Predictor;
  readonly app: FastifyInstance;
  /** Stops accepting connections, finishes in-flight requests, drains the predictor. */
  close(): Promise<void>;
}

const predictBodySchema = {
  oneOf: [
    {
      type: 'object',
      required: ['structures'],
      properties: {
        structures: {
          type: 'array',
          items: {
            type: 'object',
            required: ['numbers', 'positions'],
            properties: {
              numbers: { type: 'array', items: { type: 'integer' } },
              positions: { type: 'array' },
              cell: { anyOf: [{ type: 'array' }, { type: 'null' }] },
              pbc: { anyOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'boolean' } }] },
              id: { type: 'string' },
            },
          },
        },
      },
    },
    { type: 'object', required: ['extxyz'], properties: { extxyz: { type: 'string' } } },
    { type: 'string' },
  ],
} as const;

interface Metrics {
  registry: Registry;
  requests: Counter<'status'>;
  latency: Histogram<string>;
  batchGraphs: Histogram<string>;
  batchRequests: Histogram<string>;
  forward: Histogram<string>;
  queueDepth: Gauge<string>;
  molecules: Counter<string>;
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

/** Starts `gnnbatch serve` on a checkpoint directory; resolves once listening (after the warm-up). */
export async function startServer(checkpointDir: string, options: ServeOptions = {}): Promise<RunningServer> {
  const metrics = makeMetrics();
  const predictor = await createPredictor(checkpointDir, {
    ...options,
    onBatch: (b) => {
      metrics.batchGraphs.observe(b.graphs);
      metrics.batchRequests.observe(b.requests);
      metrics.forward.observe(b.forwardMs / 1000);
      metrics.molecules.inc(b.graphs);
      options.onBatch?.(b);
    },
  });
  const limits: StructureLimits = { maxStructures: options.maxStructures, maxAtoms: options.maxAtoms };
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  let draining = false;
  const app = Fastify({ bodyLimit: options.bodyLimit ?? 16 * 1024 * 1024, logger: false, return503OnClosing: true, forceCloseConnections: 'idle' });
  // While draining, every answer closes its connection: keep-alive sockets
  // would otherwise hold the shutdown open for the keep-alive timeout (72 s).
  app.addHook('onSend', async (_req, reply, payload) => {
    if (draining) void reply.header('Connection', 'close');
    return payload;
  });
  app.addContentTypeParser(['text/plain', 'chemical/x-extxyz'], { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: Error & { validation?: unknown; statusCode?: number; code?: string }, _req, reply) => {
    if (error.validation) {
      void reply.code(400).send(errorBody('ERR_GNN_REQUEST', `invalid request: ${error.message}`));
      return;
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      void reply.code(error.statusCode).send(errorBody('ERR_GNN_REQUEST', error.message));
      return;
    }
    void reply.code(500).send(errorBody(isGnnError(error) ? error.code : 'ERR_GNN_INTERNAL', error.message));
  });

  const reject = (reply: FastifyReply, status: number, code: string, message: string): FastifyReply => {
    metrics.requests.inc({ status: String(status) });
    if (status === 503) void reply.header('Retry-After', retryAfter);
    return reply.code(status).send(errorBody(code, message));
  };

  app.post('/v1/predict', { schema: { body: predictBodySchema } }, async (req: FastifyRequest, reply: FastifyReply) => {
    const stop = metrics.latency.startTimer();
    let structures: Structure[];
    try {
      const body = req.body as { structures?: unknown; extxyz?: string } | string;
      structures = typeof body === 'string' ? structuresFromExtxyz(body, limits) : body.extxyz !== undefined ? structuresFromExtxyz(body.extxyz, limits) : structuresFromJson(body.structures, limits);
    } catch (e) {
      if (isGnnError(e)) return reject(reply, 400, e.code, e.message);
      throw e;
    }
    // A client that goes away before its batch runs leaves the queue.
    const ac = new AbortController();
    // (The response's 'close' before it finished means the connection went away;
    // the request's own 'close' fires as soon as its body has been read.)
    const onClose = (): void => {
      if (!reply.raw.writableFinished) ac.abort();
    };
    reply.raw.on('close', onClose);
    try {
      const predictions = await predictor.predict(structures, { signal: ac.signal });
      metrics.requests.inc({ status: '200' });
      stop();
      return { target: predictor.target, predictions: Array.from(predictions), step: predictor.step };
    } catch (e) {
      const code = isGnnError(e) ? e.code : 'ERR_GNN_INTERNAL';
      if (code === 'ERR_GNN_QUEUE_FULL' || code === 'ERR_GNN_CLOSED') return reject(reply, 503, code, (e as Error).message);
      if (BAD_INPUT.has(code)) return reject(reply, 400, code, (e as Error).message);
      if (code === 'ERR_GNN_ABORTED') return reject(reply, 499, code, 'client closed the request');
      metrics.requests.inc({ status: '500' });
      return reply.code(500).send(errorBody(code, (e as Error).message));
    } finally {
      reply.raw.off('close', onClose);
      metrics.queueDepth.set(predictor.stats().queueDepth);
    }
  });

  app.get('/healthz', async (_req, reply) => {
    const s = predictor.stats();
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
      if (!closing) {
        draining = true;
        closing = (async () => {
          await app.close();
          await predictor.close();
        })();
      }
      return closing;
    },
  };
}
