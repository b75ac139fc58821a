/**
 * What `gnnbatch study` shows while it runs: an ETA from the cost model of
 * the cells still to run (the shard planner's estimate per cell, scaled by
 * how the finished cells compared with their estimates), durations that are
 * never NaN nor "2m60s", and a heartbeat line every N seconds for logs (stderr
 * not a terminal: Slurm, CI, `| tee`).
 */
import type { CellCostEstimate } from '../experiment/shard';

/**
 * A duration in seconds as short text: `45s`, `2m05s`, `1h02m`, `3d04h`.
 * Rounded once to whole seconds before it is split, so 119.6 s is `2m00s`,
 * never `1m60s`; a value that is not a finite number >= 0 reads `?`.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** A cell as the ETA sees it: every repetition of a (data, model, policy, B) costs the same. */
export interface EtaCell {
  data: string;
  model: string;
  policy: string;
  batch: number;
}

const key = (c: EtaCell): string => `${c.data}\u0000${c.model}\u0000${c.policy}\u0000${c.batch}`;

/**
 * The ETA of a study: the cost model's estimate (ms) of every cell left,
 * times the ratio of measured to estimated time over the cells finished so
 * far (1 until one finished: the reference machine's coefficients), minus
 * the part of the cell in flight already done. Cells of sources not priced
 * yet count at the mean estimate of those priced.
 */
export class StudyEta {
  private readonly estimates = new Map<string, number>();
  private measuredMs = 0;
  private estimatedMs = 0;
  private doneCells = 0;
  private measuredAllMs = 0;

  /** Adds the estimates of one source's cells. */
  addEstimates(estimates: readonly CellCostEstimate[]): void {
    for (const e of estimates) if (Number.isFinite(e.total_ms) && e.total_ms > 0) this.estimates.set(key(e), e.total_ms);
  }

  /** The estimate of one cell in ms (NaN when none is known). */
  estimateOf(c: EtaCell): number {
    return this.estimates.get(key(c)) ?? NaN;
  }

  /** A cell finished in `seconds`. */
  finished(c: EtaCell, seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.doneCells++;
    this.measuredAllMs += 1000 * seconds;
    const est = this.estimateOf(c);
    if (Number.isFinite(est)) {
      this.measuredMs += 1000 * seconds;
      this.estimatedMs += est;
    }
  }

  /** Measured / estimated over the finished cells that had an estimate (1 before any), kept within [0.02, 50]. */
  scale(): number {
    if (!(this.estimatedMs > 0)) return 1;
    return Math.min(50, Math.max(0.02, this.measuredMs / this.estimatedMs));
  }

  /**
   * Seconds left for `remaining` cells (those not finished, the one in flight
   * included), `inFlight` the cell running now and the fraction of its steps
   * done. NaN when nothing is known yet (no estimate and no finished cell).
   */
  remainingSeconds(remaining: readonly EtaCell[], inFlight?: { cell: EtaCell; fraction: number }): number {
    if (remaining.length === 0) return 0;
    const known = [...this.estimates.values()];
    const meanEst = known.length ? known.reduce((a, b) => a + b, 0) / known.length : NaN;
    let ms = 0;
    if (Number.isFinite(meanEst)) {
      for (const c of remaining) {
        const e = this.estimateOf(c);
        ms += Number.isFinite(e) ? e : meanEst;
      }
      ms *= this.scale();
      if (inFlight) {
        const e = this.estimateOf(inFlight.cell);
        const f = Math.min(1, Math.max(0, inFlight.fraction));
        if (Number.isFinite(e)) ms -= f * e * this.scale();
      }
    } else if (this.doneCells > 0) {
      ms = (this.measuredAllMs / this.doneCells) * remaining.length;
    } else return NaN;
    return Math.max(0, ms / 1000);
  }
}

/** What a heartbeat line reports. */
export interface HeartbeatState {
  finished: number;
  cells: number;
  /** The cell running now ("qm9-like:20000 mpeu dynamic B=32 rep 1") and its steps. */
  cell?: string;
  step?: number;
  steps?: number;
  /** Seconds since the study started and the ETA in seconds (NaN: unknown). */
  elapsed: number;
  eta: number;
  /** Resident memory in bytes (optional). */
  rss?: number;
}

/** One heartbeat line (no trailing newline): time of day, cells, the cell in flight, elapsed, ETA, memory. */
export function heartbeatLine(s: HeartbeatState, now: Date = new Date()): string {
  const clock = now.toISOString().slice(11, 19);
  const cell = s.cell ? `; now ${s.cell}${s.steps ? ` step ${s.step ?? 0}/${s.steps}` : ''}` : '';
  const mem = s.rss !== undefined && Number.isFinite(s.rss) ? `, rss ${(s.rss / 1024 ** 3).toFixed(2)} GiB` : '';
  return `[${clock}] study: ${s.finished}/${s.cells} cells${cell}; elapsed ${formatDuration(s.elapsed)}, eta ${Number.isFinite(s.eta) ? formatDuration(s.eta) : 'estimating'}${mem}`;
}

/**
 * Writes {@link heartbeatLine} every `everySeconds` while started (a timer
 * that does not keep the process alive). `state()` is read at each beat.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly everySeconds: number,
    private readonly state: () => HeartbeatState,
    private readonly write: (line: string) => void,
  ) {}

  /** Starts beating (no-op when `everySeconds` is not positive). */
  start(): void {
    if (this.timer || !(this.everySeconds > 0)) return;
    this.timer = setInterval(() => this.beat(), this.everySeconds * 1000);
    this.timer.unref();
  }

  /** Writes one line now. */
  beat(): void {
    this.write(heartbeatLine(this.state()) + '\n');
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
