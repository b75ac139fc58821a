/**
 * The price of the study's difference: hours and money a planned run saves
 * with the pick against the slowest policy and against the runner-up, at an
 * hourly rate the user gives (`--cost-per-hour`) or, without one, a clearly
 * labelled default rate for the hardware class that ran the study.
 */
import type { Environment } from './results';
import type { CellDecision } from './decision';

/** Where an hourly rate came from. */
export interface PriceRate {
  /** Money per hour of the machine. */
  perHour: number;
  /** ISO 4217 code (or any label) the amounts are in. */
  currency: string;
  /** True when the user gave the rate (`--cost-per-hour`); false for the built-in default. */
  given: boolean;
  /** One sentence: what the rate is and where it comes from. */
  source: string;
}

/**
 * Built-in on-demand rates per hardware class, USD per hour, from public
 * price lists (AWS EC2 on-demand, us-east-1, Linux; read 2024):
 * - CPU: c6i.large is USD 0.085/h for 2 vCPUs, i.e. USD 0.0425 per vCPU-hour;
 *   a CPU study is priced at that times the cores it ran on.
 * - GPU: p4d.24xlarge (8 x A100 40 GB) is USD 32.77/h, i.e. USD 4.10 per A100-hour.
 * They are a stated default, not a quote: give `--cost-per-hour` (and
 * `--currency`) for your own machine.
 */
export const DEFAULT_RATES = {
  cpu_per_core_hour: 0.0425,
  gpu_per_hour: 4.1,
  currency: 'USD',
  source: 'AWS EC2 on-demand, us-east-1, Linux (2024): c6i.large USD 0.085/h for 2 vCPUs; p4d.24xlarge USD 32.77/h for 8 A100',
} as const;

/**
 * The hourly rate of a study: `costPerHour` when given (in `currency`,
 * default USD), else the default for its hardware class (a CPU machine:
 * {@link DEFAULT_RATES}.cpu_per_core_hour x its cores: the study trains on
 * the CPU). The returned `source` says which, for the report.
 */
export function studyRate(env: Pick<Environment, 'cpu_cores'>, costPerHour?: number, currency?: string): PriceRate {
  if (costPerHour !== undefined && Number.isFinite(costPerHour)) {
    const cur = currency ?? DEFAULT_RATES.currency;
    return { perHour: costPerHour, currency: cur, given: true, source: `rate given: ${formatMoney(costPerHour, cur)} per hour (--cost-per-hour)` };
  }
  const cores = Number.isFinite(env.cpu_cores) && env.cpu_cores > 0 ? env.cpu_cores : 1;
  const perHour = DEFAULT_RATES.cpu_per_core_hour * cores;
  return {
    perHour,
    currency: 'USD',
    given: false,
    source: `default rate for a ${cores}-core CPU machine: USD ${DEFAULT_RATES.cpu_per_core_hour} per core-hour x ${cores} = USD ${perHour.toFixed(4)} per hour (${DEFAULT_RATES.source}); give --cost-per-hour for your own`,
  };
}

/** An amount with its currency: two decimals, four below one unit (cents matter on small machines). */
export function formatMoney(x: number, currency: string): string {
  if (!Number.isFinite(x)) return 'n/a';
  const d = Math.abs(x) < 1 && x !== 0 ? 4 : 2;
  return `${currency} ${x.toFixed(d)}`;
}

/** Hours as text: minutes below one hour, days above 48 hours. */
export function formatHours(h: number): string {
  if (!Number.isFinite(h)) return 'n/a';
  const a = Math.abs(h);
  if (a < 1) return `${(h * 60).toFixed(1)} min`;
  if (a > 48) return `${(h / 24).toFixed(1)} days`;
  return `${h.toFixed(2)} h`;
}

/** What the pick saves against one other policy over the planned run. */
export interface Saving {
  against: string;
  /** Other's hours - the pick's (negative: the pick costs more, as a tie broken by another criterion may). */
  hours: number;
  money: number;
  /** Other's hours / the pick's. */
  ratio: number;
}

/**
 * Hours and money saved by `pick` against `other` over the planned run:
 * (other's hours - pick's hours) x rate. Pure arithmetic, for the tests.
 */
export function saving(pick: { hours: number }, other: { policy: string; hours: number }, rate: Pick<PriceRate, 'perHour'>): Saving {
  const hours = other.hours - pick.hours;
  return { against: other.policy, hours, money: hours * rate.perHour, ratio: other.hours / pick.hours };
}

/**
 * The pick's savings at one decided cell: against the slowest policy and
 * against the runner-up, in the decision's order (`policies`: the fastest
 * first, then by paired ratio to it). The others' hours are the pick's scaled
 * by their paired ratios (other.ratio / pick.ratio) where both are known, so a
 * saving has the sign of the paired comparison (medians of noisy repetitions
 * can disagree with it); else their median hours.
 */
export function cellSavings(cell: Pick<CellDecision, 'pick' | 'policies'>, rate: Pick<PriceRate, 'perHour'>): { vsSlowest: Saving | null; vsRunnerUp: Saving | null } {
  const pick = cell.policies.find((p) => p.policy === cell.pick);
  const others = cell.policies.filter((p) => p.policy !== cell.pick);
  if (!pick || !others.length) return { vsSlowest: null, vsRunnerUp: null };
  const scaled = (o: { policy: string; hours: number; ratio?: number }): { policy: string; hours: number } =>
    Number.isFinite(o.ratio) && Number.isFinite(pick.ratio) && (pick.ratio as number) > 0 ? { policy: o.policy, hours: (pick.hours * (o.ratio as number)) / (pick.ratio as number) } : o;
  return { vsSlowest: saving(pick, scaled(others[others.length - 1]), rate), vsRunnerUp: saving(pick, scaled(others[0]), rate) };
}
