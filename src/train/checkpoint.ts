/**
 * Checkpoints: weights as safetensors (one named tensor per weight, loadable
 * by other frameworks), Adam moments in a second safetensors file, and a JSON
 * sidecar with the configuration, step, policy and RNG state. The sidecar is
 * written last, so a checkpoint directory is never half-updated from a
 * reader's point of view (every file is replaced atomically).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ModelConfig } from '../model/config';
import { isBias, paramLayout, type ParamLayout } from '../model/params';
import { writeFileAtomic } from '../util/atomic';
import { readSafetensors, writeSafetensors, type Tensor } from './safetensors';
import type { ScheduleSpec } from './schedule';

/** Format version of checkpoint.json. */
export const CHECKPOINT_VERSION = 1;

/** Everything a checkpoint holds. */
export interface CheckpointState {
  config: ModelConfig;
  layout: ParamLayout;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  step: number;
  seed: number;
  policy: string;
  policyOptions: object;
  policyState: unknown;
  batchSize: number;
  target: string;
  targetMean: number;
  targetStd: number;
  /** Per-element reference values (index = Z), or null. */
  atomRefs: number[] | null;
  graphRule: string;
  schedule: ScheduleSpec;
  clipNorm: number;
  lossCurve: { step: number; loss: number }[];
  evalCurve: { step: number; val_rmse: number; val_mae: number }[];
  /** False when the Adam moments were not saved (CUDA runs keep them on the device). */
  hasOptimizer?: boolean;
}

function tensorsOf(layout: ParamLayout, flat: Float32Array, prefix = ''): Map<string, Tensor> {
  const t = new Map<string, Tensor>();
  for (const e of layout.entries) {
    const data = flat.slice(e.offset, e.offset + e.rows * e.cols);
    t.set(prefix + e.name, { dtype: 'F32', shape: isBias(e) ? [e.cols] : [e.rows, e.cols], data });
  }
  return t;
}

function flatOf(layout: ParamLayout, tensors: Map<string, Tensor>, file: string, prefix = ''): Float32Array {
  const out = new Float32Array(layout.total);
  for (const e of layout.entries) {
    const t = tensors.get(prefix + e.name);
    if (!t) throw new Error(`${file}: tensor '${prefix + e.name}' is missing`);
    if (t.data.length !== e.rows * e.cols) {
      throw new Error(`${file}: tensor '${prefix + e.name}' has ${t.data.length} values, expected ${e.rows * e.cols}`);
    }
    out.set(t.data, e.offset);
  }
  return out;
}

/** Writes a checkpoint into `dir` (created when missing). */
export function writeCheckpoint(dir: string, s: CheckpointState): void {
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensorsOf(s.layout, s.params), {
    format: 'gnnbatch',
    model: s.config.kind,
    step: String(s.step),
  });
  const optFile = path.join(dir, 'optimizer.safetensors');
  if (s.hasOptimizer === false) {
    fs.rmSync(optFile, { force: true });
  } else {
    const opt = tensorsOf(s.layout, s.m, 'adam_m/');
    for (const [k, t] of tensorsOf(s.layout, s.v, 'adam_v/')) opt.set(k, t);
    writeSafetensors(optFile, opt, { step: String(s.step) });
  }
  const sidecar = {
    version: CHECKPOINT_VERSION,
    step: s.step,
    seed: s.seed,
    config: s.config,
    policy: s.policy,
    policyOptions: s.policyOptions,
    policyState: s.policyState,
    batchSize: s.batchSize,
    target: s.target,
    targetMean: s.targetMean,
    targetStd: s.targetStd,
    atomRefs: s.atomRefs,
    graphRule: s.graphRule,
    schedule: s.schedule,
    clipNorm: s.clipNorm,
    lossCurve: s.lossCurve,
    evalCurve: s.evalCurve,
  };
  writeFileAtomic(path.join(dir, 'checkpoint.json'), JSON.stringify(sidecar, null, 1));
}

/** Reads a checkpoint written by {@link writeCheckpoint}; errors name the file. */
export function readCheckpoint(dir: string): CheckpointState {
  const jf = path.join(dir, 'checkpoint.json');
  if (!fs.existsSync(jf)) throw new Error(`${dir}: not a checkpoint directory (checkpoint.json missing)`);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(fs.readFileSync(jf, 'utf8'));
  } catch (e) {
    throw new Error(`${jf}: invalid JSON (${(e as Error).message})`);
  }
  if (j.version !== CHECKPOINT_VERSION) throw new Error(`${jf}: checkpoint version ${String(j.version)} is not supported (expected ${CHECKPOINT_VERSION})`);
  const config = j.config as ModelConfig;
  const layout = paramLayout(config);
  const mf = path.join(dir, 'model.safetensors');
  const of = path.join(dir, 'optimizer.safetensors');
  const params = flatOf(layout, readSafetensors(mf).tensors, mf);
  let m: Float32Array = new Float32Array(layout.total);
  let v: Float32Array = new Float32Array(layout.total);
  const hasOptimizer = fs.existsSync(of);
  if (hasOptimizer) {
    const t = readSafetensors(of).tensors;
    m = flatOf(layout, t, of, 'adam_m/');
    v = flatOf(layout, t, of, 'adam_v/');
  }
  return {
    config,
    layout,
    params,
    m,
    v,
    step: j.step as number,
    seed: j.seed as number,
    policy: j.policy as string,
    policyOptions: (j.policyOptions as object) ?? {},
    policyState: j.policyState,
    batchSize: j.batchSize as number,
    target: j.target as string,
    targetMean: j.targetMean as number,
    targetStd: j.targetStd as number,
    atomRefs: (j.atomRefs as number[] | null) ?? null,
    graphRule: j.graphRule as string,
    schedule: j.schedule as ScheduleSpec,
    clipNorm: (j.clipNorm as number) ?? 0,
    lossCurve: (j.lossCurve as CheckpointState['lossCurve']) ?? [],
    evalCurve: (j.evalCurve as CheckpointState['evalCurve']) ?? [],
    hasOptimizer,
  };
}
