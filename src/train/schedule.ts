/**
 * Learning-rate schedules. TypeScript owns the schedule and Adam's bias
 * corrections; the native step receives the resulting numbers.
 */
import { ArgumentError } from '../errors';

/** A schedule: constant, the study's exponential decay, or cosine. */
export type ScheduleSpec =
  | { kind: 'constant'; lr: number }
  | { kind: 'exponential'; lr: number; decayRate: number; decaySteps: number; staircase?: boolean }
  | { kind: 'cosine'; lr: number; totalSteps: number; minLr?: number; warmupSteps?: number };

/**
 * A schedule as text (the CLI's `--schedule`): `constant`, `exponential[:rate:steps]`
 * (`study` = the study's exponential decay), or `cosine[:minLr]`; the peak
 * learning rate and the run length come from the run.
 */
export type ScheduleText = ScheduleKindText | `${ScheduleKindText}:${string}`;
type ScheduleKindText = 'constant' | 'study' | 'exponential' | 'cosine';

const isScheduleText = (text: string): text is ScheduleText => ['constant', 'study', 'exponential', 'cosine'].includes(text.split(':')[0]);

/** `text` as a {@link ScheduleText} (what parseSchedule reads); throws ArgumentError (ERR_GNN_ARGUMENT) naming the forms when it is none. */
export function scheduleText(text: string): ScheduleText {
  if (isScheduleText(text)) return text;
  throw new ArgumentError(`unknown schedule '${text}' (expected constant, exponential[:rate:steps] or cosine[:minLr])`);
}

/** The study's schedule: 1e-4, x0.96 every 100k steps (staircase). */
export function studySchedule(lr = 1e-4): ScheduleSpec {
  return { kind: 'exponential', lr, decayRate: 0.96, decaySteps: 100_000, staircase: true };
}

/** Learning rate at a 0-based step. */
export function learningRate(s: ScheduleSpec, step: number): number {
  switch (s.kind) {
    case 'constant':
      return s.lr;
    case 'exponential': {
      const p = step / s.decaySteps;
      return s.lr * Math.pow(s.decayRate, s.staircase === false ? p : Math.floor(p));
    }
    case 'cosine': {
      const warm = s.warmupSteps ?? 0;
      if (step < warm) return (s.lr * (step + 1)) / warm;
      const t = Math.min(1, (step - warm) / Math.max(1, s.totalSteps - warm));
      const min = s.minLr ?? 0;
      return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * t));
    }
  }
}

/** Parses `constant`, `exponential[:rate:steps]` or `cosine[:minLr]` for a run of `totalSteps`. */
export function parseSchedule(text: string, lr: number, totalSteps: number): ScheduleSpec {
  const [kind, a, b] = text.split(':');
  if (kind === 'constant') return { kind, lr };
  if (kind === 'exponential' || kind === 'study') {
    return { kind: 'exponential', lr, decayRate: a ? Number(a) : 0.96, decaySteps: b ? Number(b) : 100_000, staircase: true };
  }
  if (kind === 'cosine') return { kind: 'cosine', lr, totalSteps, minLr: a ? Number(a) : 0 };
  throw new ArgumentError(`unknown schedule '${text}' (expected constant, exponential[:rate:steps] or cosine[:minLr])`);
}
