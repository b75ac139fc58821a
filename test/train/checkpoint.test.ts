/**
 * Crash-consistent checkpoints (issue 14, finding 1): one atomic unit (step
 * directory + manifest with sizes and SHA-256), verified on read, previous
 * checkpoint kept intact when a write fails (disk full), legacy (v1)
 * directories read with their step cross-checked, and a garbage optimizer
 * file that does not block inference.
 */
import { codeOf } from '../helpers/codes';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, type GraphStore } from '../../src/data';
import { train } from '../../src/train/trainer';
import { readCheckpoint, writeCheckpoint, fsCheckpointIo, type CheckpointState, type CheckpointIo } from '../../src/train/checkpoint';
import { loadModel } from '../../src/inference/load-model';
import { GnnError } from '../../src/errors';

let store: GraphStore;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-ck-'));
const base = { target: 'U0', model: { kind: 'mpeu' as const, latent: 8 }, policy: 'dynamic' as const, batchSize: 8, seed: 4, lr: 1e-3 };

beforeAll(async () => {
  store = (await loadSource('qm9-like:120', { graph: 'fc' })).store;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The full state of a checkpoint directory, as writeCheckpoint takes it. */
function stateOf(dir: string): CheckpointState {
  const ck = readCheckpoint(dir, { optimizer: true });
  return { ...ck, m: ck.m as Float32Array, v: ck.v as Float32Array };
}


test('a checkpoint is one step directory plus a manifest naming its files with sizes and SHA-256; older steps are deleted', async () => {
  const dir = path.join(tmp, 'layout');
  await train({ store, ...base, steps: 3, checkpointDir: dir, checkpointEvery: 1 });
  const entries = fs.readdirSync(dir).sort();
  expect(entries).toEqual(['checkpoint.json', 'step-000003']);
  const j = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
  expect(j.version).toBe(2);
  expect(j.step).toBe(3);
  expect(j.files.model).toMatchObject({ path: 'step-000003/model.safetensors', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  expect(j.files.model.bytes).toBe(fs.statSync(path.join(dir, j.files.model.path)).size);
  expect(j.files.optimizer.path).toBe('step-000003/optimizer.safetensors');
  expect(readCheckpoint(dir).step).toBe(3);
});

describe('a failed write (disk full) leaves the previous checkpoint intact and says so', () => {
  const enospcOn = (name: string): CheckpointIo => ({
    writeFileDurable(file, data) {
      if (path.basename(file).includes(name)) {
        // Like a full disk: part of the file lands, then the write fails.
        fs.writeFileSync(file, data.subarray(0, data.byteLength >> 1));
        throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
      }
      fsCheckpointIo.writeFileDurable(file, data);
    },
  });

  test.each(['model.safetensors', 'optimizer.safetensors', 'checkpoint.json'])('ENOSPC while writing %s', async (name) => {
    const dir = path.join(tmp, `enospc-${name}`);
    await train({ store, ...base, steps: 2, checkpointDir: dir });
    const before = fs.readFileSync(path.join(dir, 'checkpoint.json'));
    const s = stateOf(dir);
    let err: unknown;
    try {
      writeCheckpoint(dir, { ...s, step: 3 }, { io: enospcOn(name) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GnnError);
    expect(err).toMatchObject({ name: 'CheckpointError', code: 'ERR_GNN_CHECKPOINT_WRITE' });
    expect((err as Error).message).toMatch(/step 3 failed \(disk full\); the previous checkpoint \(step 2\) is intact/);
    expect(fs.readFileSync(path.join(dir, 'checkpoint.json')).equals(before)).toBe(true);
    const again = readCheckpoint(dir, { optimizer: true });
    expect(again.step).toBe(2);
    expect(Buffer.from(again.params.buffer).equals(Buffer.from(s.params.buffer))).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['checkpoint.json', 'step-000002']);
  });
});

describe('verification on read', () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp, 'verify');
    await train({ store, ...base, steps: 2, checkpointDir: dir });
  });
  const copy = (name: string): string => {
    const d = path.join(tmp, name);
    fs.cpSync(dir, d, { recursive: true });
    return d;
  };

  test('a data file from another step (same size) fails the checksum', async () => {
    const other = path.join(tmp, 'verify-other');
    await train({ store, ...base, steps: 3, checkpointDir: other });
    const d = copy('verify-swap');
    fs.copyFileSync(path.join(other, 'step-000003/model.safetensors'), path.join(d, 'step-000002/model.safetensors'));
    expect(codeOf(() => readCheckpoint(d))).toBe('ERR_GNN_CHECKPOINT_CHECKSUM');
    expect(codeOf(() => loadModel(d))).toBe('ERR_GNN_CHECKPOINT_CHECKSUM');
  });

  test('a missing data file is an incomplete checkpoint', () => {
    const d = copy('verify-missing');
    fs.rmSync(path.join(d, 'step-000002/model.safetensors'));
    expect(codeOf(() => readCheckpoint(d))).toBe('ERR_GNN_CHECKPOINT_INCOMPLETE');
  });

  test('a garbage optimizer.safetensors does not block inference, and stops a resume', async () => {
    const d = copy('verify-garbage-opt');
    fs.writeFileSync(path.join(d, 'step-000002/optimizer.safetensors'), 'garbage');
    expect(loadModel(d).step).toBe(2);
    expect(codeOf(() => readCheckpoint(d, { optimizer: true }))).toBe('ERR_GNN_CHECKPOINT_CHECKSUM');
    await expect(train({ store, ...base, steps: 4, resumeDir: d })).rejects.toMatchObject({ code: 'ERR_GNN_CHECKPOINT_CHECKSUM' });
  });
});

describe('legacy (version 1) directories', () => {
  /** A v1 directory as gnnbatch 0.1 wrote it, optionally with model.safetensors from another step. */
  async function legacy(name: string, modelFrom?: string): Promise<string> {
    const src = path.join(tmp, `${name}-src`);
    await train({ store, ...base, steps: 2, checkpointDir: src });
    const d = path.join(tmp, name);
    fs.mkdirSync(d);
    const j = JSON.parse(fs.readFileSync(path.join(src, 'checkpoint.json'), 'utf8'));
    fs.copyFileSync(path.join(src, j.files.model.path), path.join(d, 'model.safetensors'));
    fs.copyFileSync(path.join(src, j.files.optimizer.path), path.join(d, 'optimizer.safetensors'));
    if (modelFrom) {
      const o = JSON.parse(fs.readFileSync(path.join(modelFrom, 'checkpoint.json'), 'utf8'));
      fs.copyFileSync(path.join(modelFrom, o.files.model.path), path.join(d, 'model.safetensors'));
    }
    delete j.files;
    j.version = 1;
    fs.writeFileSync(path.join(d, 'checkpoint.json'), JSON.stringify(j));
    return d;
  }

  test('an intact v1 directory is read and resumed', async () => {
    const d = await legacy('v1-ok');
    expect(readCheckpoint(d, { optimizer: true })).toMatchObject({ version: 1, step: 2, hasOptimizer: true });
    const { result } = await train({ store, ...base, steps: 3, resumeDir: d, skipEval: true });
    expect(result.steps_run).toBe(1);
  });

  test('a v1 directory whose files come from different steps is refused (the crash finding 1 describes)', async () => {
    const later = path.join(tmp, 'v1-later');
    await train({ store, ...base, steps: 3, checkpointDir: later });
    const d = await legacy('v1-mixed', later);
    let err: Error | undefined;
    try {
      readCheckpoint(d);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_INCOMPLETE' });
    expect(err?.message).toMatch(/model\.safetensors: holds step 3 but checkpoint\.json is at step 2: the files come from different steps/);
    await expect(train({ store, ...base, steps: 5, resumeDir: d })).rejects.toMatchObject({ code: 'ERR_GNN_CHECKPOINT_INCOMPLETE' });
  });
});

test('a checkpoint written before PaiNN (no config.cutoff / sharedFilters) still loads for MPEU; a PaiNN one without them is refused', async () => {
  const dir = path.join(tmp, 'pre-painn');
  await train({ store, ...base, steps: 2, checkpointDir: dir });
  const s = stateOf(dir);
  const old = { ...s.config } as Partial<typeof s.config>;
  delete old.cutoff;
  delete old.sharedFilters;
  const oldDir = path.join(tmp, 'pre-painn-config');
  writeCheckpoint(oldDir, { ...s, config: old as typeof s.config });
  const ck = readCheckpoint(oldDir);
  expect(ck.config).toEqual(s.config);
  expect(loadModel(oldDir).config.kind).toBe('mpeu');
  const painnDir = path.join(tmp, 'painn-no-cutoff');
  const painn = { ...s.config, kind: 'painn' } as Partial<typeof s.config>;
  delete painn.cutoff;
  writeCheckpoint(painnDir, { ...s, config: painn as typeof s.config });
  expect(() => readCheckpoint(painnDir)).toThrow(expect.objectContaining({ code: 'ERR_GNN_CHECKPOINT_FIELD', message: expect.stringContaining("config.cutoff' is missing") }));
});
