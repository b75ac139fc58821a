/**
 * `gnnbatch serve CHECKPOINT`: the HTTP prediction server (see src/serve/server.ts).
 * SIGTERM or SIGINT stops accepting connections, answers the requests in
 * flight and those already sent on open connections, closes the rest at the
 * drain deadline and exits 0; a second signal exits at once (130 / 143).
 */
import type { Command } from 'commander';
import { startServer } from '../serve/server';
import { intOption, numberOption } from './format';

interface ServeCliOptions {
  host: string;
  port: number;
  maxQueueDelayMs: number;
  maxBatchGraphs?: number;
  maxBatchNodes?: number;
  maxBatchEdges?: number;
  maxQueue: number;
  threads?: number;
  bodyLimit: number;
  maxConnections: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  requestDeadlineMs: number;
  drainTimeoutMs: number;
  maxStructures: number;
  maxAtoms: number;
  maxRequestEdges?: number;
  maxRequestBytes?: number;
  maxQueuedEdges?: number;
  planCacheBytes?: number;
  maxEdgesPerStructure?: number;
}

/** Registers `gnnbatch serve`. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve predictions of a checkpoint over HTTP (POST /v1/predict, GET /healthz, GET /metrics)')
    .argument('<checkpoint>', 'checkpoint directory written by `gnnbatch train --checkpoint`')
    .option('--host <addr>', 'interface to listen on', '127.0.0.1')
    .option('--port <n>', 'TCP port (0: any free port)', intOption('--port', 0), 8080)
    .option('--max-queue-delay-ms <ms>', 'how long a partial batch waits for requests still being parsed', numberOption('--max-queue-delay-ms'), 2)
    .option('--max-batch-graphs <n>', 'structures per native batch (default: the checkpoint\'s training batch)', intOption('--max-batch-graphs', 1))
    .option('--max-batch-nodes <n>', 'atoms per native batch (default: the training budget\'s)', intOption('--max-batch-nodes', 1))
    .option('--max-batch-edges <n>', 'edges per native batch (default: the training budget\'s)', intOption('--max-batch-edges', 1))
    .option('--max-queue <n>', 'requests waiting before new ones get 503', intOption('--max-queue', 1), 1024)
    .option('--threads <n>', 'native threads', intOption('--threads', 1))
    .option('--body-limit <bytes>', 'largest request body', intOption('--body-limit', 1), 16 * 1024 * 1024)
    .option('--max-structures <n>', 'structures (or extxyz frames) in one request', intOption('--max-structures', 1), 10_000)
    .option('--max-atoms <n>', 'atoms in one structure', intOption('--max-atoms', 1), 5_000)
    .option('--max-request-edges <n>', 'edges of one request under the graph rule, beyond it 413 (default 4,000,000)', intOption('--max-request-edges', 1))
    .option('--max-request-bytes <bytes>', 'graph-store bytes of one request, beyond it 413 (default 128 MiB)', intOption('--max-request-bytes', 1))
    .option('--max-queued-edges <n>', 'edges of all requests accepted and not yet answered, beyond it 503 (default 16,000,000)', intOption('--max-queued-edges', 1))
    .option('--plan-cache-bytes <bytes>', "hard byte limit of the serving plan (default: the batch budget's plan + 256 MiB)", intOption('--plan-cache-bytes', 1))
    .option('--max-edges-per-structure <n>', 'edges of one structure under the graph rule (default 2,000,000)', intOption('--max-edges-per-structure', 1))
    .option('--max-connections <n>', 'open connections; at the cap a new one evicts the oldest not being answered', intOption('--max-connections', 1), 512)
    .option('--headers-timeout-ms <ms>', 'time a client has to send its request headers (then 408)', intOption('--headers-timeout-ms', 1), 10_000)
    .option('--body-timeout-ms <ms>', 'time a client has to send a whole request, headers and body (then 408)', intOption('--body-timeout-ms', 1), 30_000)
    .option('--keep-alive-timeout-ms <ms>', 'how long an idle keep-alive connection stays open', intOption('--keep-alive-timeout-ms', 1), 5_000)
    .option('--request-deadline-ms <ms>', 'time from a request read to its answer (then 504, its work stopped)', intOption('--request-deadline-ms', 1), 30_000)
    .option('--drain-timeout-ms <ms>', 'on SIGTERM/SIGINT, how long requests in flight may finish before their connections are closed', intOption('--drain-timeout-ms', 1), 10_000)
    .action(async (checkpoint: string, o: ServeCliOptions) => {
      const server = await startServer(checkpoint, {
        host: o.host,
        port: o.port,
        maxQueueDelayMs: o.maxQueueDelayMs,
        maxBatchGraphs: o.maxBatchGraphs,
        maxBatchNodes: o.maxBatchNodes,
        maxBatchEdges: o.maxBatchEdges,
        maxQueue: o.maxQueue,
        threads: o.threads,
        bodyLimit: o.bodyLimit,
        maxConnections: o.maxConnections,
        headersTimeoutMs: o.headersTimeoutMs,
        bodyTimeoutMs: o.bodyTimeoutMs,
        keepAliveTimeoutMs: o.keepAliveTimeoutMs,
        requestDeadlineMs: o.requestDeadlineMs,
        drainTimeoutMs: o.drainTimeoutMs,
        maxStructures: o.maxStructures,
        maxAtoms: o.maxAtoms,
        maxRequestEdges: o.maxRequestEdges,
        maxRequestBytes: o.maxRequestBytes,
        maxQueuedEdges: o.maxQueuedEdges,
        planCacheBytes: o.planCacheBytes,
        maxEdgesPerStructure: o.maxEdgesPerStructure,
      });
      const b = server.predictor.budget;
      process.stderr.write(
        `gnnbatch serve: ${server.predictor.config.kind} predicting ${server.predictor.target} (step ${server.predictor.step}) on ${server.url} ` +
          `(batch budget ${b.graphs} graphs / ${b.nodes} nodes / ${b.edges} edges)\n`,
      );
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals): void => {
          if (stopping) {
            // A second signal: the operator wants out now.
            process.stderr.write(`gnnbatch serve: second signal (${signal}), exiting without draining\n`);
            process.exit(signal === 'SIGINT' ? 130 : 143);
          }
          stopping = true;
          process.stderr.write(`gnnbatch serve: ${signal}, draining ${server.predictor.stats().queueDepth} queued requests (at most ${o.drainTimeoutMs} ms)\n`);
          server.close().then(resolve, resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      process.stderr.write('gnnbatch serve: stopped\n');
    });
}
