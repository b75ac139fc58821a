/**
 * `gnnbatch serve CHECKPOINT`: the HTTP prediction server (see src/serve/server.ts).
 * SIGTERM or SIGINT stops accepting connections, finishes the requests in
 * flight and exits 0.
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
      });
      const b = server.predictor.budget;
      process.stderr.write(
        `gnnbatch serve: ${server.predictor.config.kind} predicting ${server.predictor.target} (step ${server.predictor.step}) on ${server.url} ` +
          `(batch budget ${b.graphs} graphs / ${b.nodes} nodes / ${b.edges} edges)\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          process.stderr.write(`gnnbatch serve: ${signal}, draining ${server.predictor.stats().queueDepth} queued requests\n`);
          server.close().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      process.stderr.write('gnnbatch serve: stopped\n');
    });
}
