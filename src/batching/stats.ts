/**
 * Accounting of a batching run: distinct shapes (the compile count under XLA,
 * the plan count here), fills, graphs per batch, padded work and decision time.
 */
import type { PackShape } from '../native';
import { shapeKey } from './shapes';
import { ArgumentError } from '../errors';

/** Aggregated accounting of a policy run (all ratios are totals over batches). */
export interface BatchingSummary {
  batches: number;
  /** Distinct padded shapes seen (compilations / plans). */
  shapes: number;
  /** Real graphs batched; graphs taken from the stream (includes `studyCompat` drops). */
  realGraphs: number;
  streamGraphs: number;
  /** Real / padded totals. */
  nodeFill: number;
  edgeFill: number;
  graphFill: number;
  graphsPerBatchMean: number;
  graphsPerBatchMin: number;
  graphsPerBatchMax: number;
  /** Sum of padded edges / sum of real edges (the `exact` policy's padded work is 1). */
  paddedEdgesVsExact: number;
  /** Same for nodes. */
  paddedNodesVsExact: number;
  /** Mean and standard deviation over batches of the batch's mean nodes per graph (the size mix). */
  batchMeanNodesMean: number;
  batchMeanNodesSd: number;
  /** Total decision time (ms) and per real graph (ns). */
  decisionMs: number;
  decisionNsPerGraph: number;
}

/** JSON-serialisable state of {@link BatchingStats}. */
export interface BatchingStatsState {
  /** [batches, realGraphs, streamGraphs, realNodes, realEdges, paddedNodes, paddedEdges, paddedGraphs, minGraphs, maxGraphs, mixSum, mixSumSq, decisionMs] */
  totals: number[];
  shapes: string[];
}

/** Accumulates the accounting of one policy run. */
export class BatchingStats {
  batches = 0;
  realGraphs = 0;
  streamGraphs = 0;
  realNodes = 0;
  realEdges = 0;
  paddedNodes = 0;
  paddedEdges = 0;
  paddedGraphs = 0;
  minGraphs = Infinity;
  maxGraphs = 0;
  private mixSum = 0;
  private mixSumSq = 0;
  decisionMs = 0;
  private readonly shapeSet = new Set<string>();
  private lastShape: PackShape | null = null;

  /** Record one batch. */
  record(realGraphs: number, realNodes: number, realEdges: number, streamGraphs: number, shape: PackShape, ms: number): void {
    this.batches++;
    this.realGraphs += realGraphs;
    this.streamGraphs += streamGraphs;
    this.realNodes += realNodes;
    this.realEdges += realEdges;
    this.paddedNodes += shape.nodes;
    this.paddedEdges += shape.edges;
    this.paddedGraphs += shape.graphs;
    if (realGraphs < this.minGraphs) this.minGraphs = realGraphs;
    if (realGraphs > this.maxGraphs) this.maxGraphs = realGraphs;
    const mix = realGraphs > 0 ? realNodes / realGraphs : 0;
    this.mixSum += mix;
    this.mixSumSq += mix * mix;
    this.decisionMs += ms;
    // Fixed-shape policies return the same object: skip the key string then.
    if (shape !== this.lastShape) {
      this.shapeSet.add(shapeKey(shape));
      this.lastShape = shape;
    }
  }

  /** Number of distinct shapes so far. */
  get shapes(): number {
    return this.shapeSet.size;
  }

  summary(): BatchingSummary {
    const b = Math.max(1, this.batches);
    const mixMean = this.mixSum / b;
    return {
      batches: this.batches,
      shapes: this.shapeSet.size,
      realGraphs: this.realGraphs,
      streamGraphs: this.streamGraphs,
      nodeFill: this.paddedNodes > 0 ? this.realNodes / this.paddedNodes : 1,
      edgeFill: this.paddedEdges > 0 ? this.realEdges / this.paddedEdges : 1,
      graphFill: this.paddedGraphs > 0 ? this.realGraphs / this.paddedGraphs : 1,
      graphsPerBatchMean: this.realGraphs / b,
      graphsPerBatchMin: this.batches > 0 ? this.minGraphs : 0,
      graphsPerBatchMax: this.maxGraphs,
      paddedEdgesVsExact: this.realEdges > 0 ? this.paddedEdges / this.realEdges : 1,
      paddedNodesVsExact: this.realNodes > 0 ? this.paddedNodes / this.realNodes : 1,
      batchMeanNodesMean: mixMean,
      batchMeanNodesSd: Math.sqrt(Math.max(0, this.mixSumSq / b - mixMean * mixMean)),
      decisionMs: this.decisionMs,
      decisionNsPerGraph: this.realGraphs > 0 ? (this.decisionMs * 1e6) / this.realGraphs : 0,
    };
  }

  getState(): BatchingStatsState {
    return {
      totals: [
        this.batches, this.realGraphs, this.streamGraphs, this.realNodes, this.realEdges, this.paddedNodes,
        this.paddedEdges, this.paddedGraphs, this.minGraphs === Infinity ? -1 : this.minGraphs, this.maxGraphs,
        this.mixSum, this.mixSumSq, this.decisionMs,
      ],
      shapes: [...this.shapeSet],
    };
  }

  setState(s: BatchingStatsState): void {
    if (s.totals.length !== 13) throw new ArgumentError('BatchingStats.setState: expected 13 totals');
    const t = s.totals;
    [this.batches, this.realGraphs, this.streamGraphs, this.realNodes, this.realEdges, this.paddedNodes, this.paddedEdges, this.paddedGraphs] = t;
    this.minGraphs = t[8] < 0 ? Infinity : t[8];
    this.maxGraphs = t[9];
    this.mixSum = t[10];
    this.mixSumSq = t[11];
    this.decisionMs = t[12];
    this.shapeSet.clear();
    for (const k of s.shapes) this.shapeSet.add(k);
    this.lastShape = null;
  }
}
