import { native } from '../../src/native';
import { loadModel } from '../../src/inference/load-model';
import { molecules, smallCheckpoint } from './helpers';

let ck: string;
beforeAll(async () => {
  ck = await smallCheckpoint();
});

test('predictAsync builds graphs on a native worker (the event loop only packs batches)', async () => {
  const addon = native();
  const sync = jest.spyOn(addon, 'buildNeighbours');
  const async = jest.spyOn(addon, 'buildNeighboursAsync');
  try {
    const m = loadModel(ck);
    const mols = molecules(300, 4);
    const a = await m.predictAsync(mols);
    expect(sync).not.toHaveBeenCalled();
    expect(async).toHaveBeenCalledTimes(1);
    // Same answers as the synchronous path.
    expect(Array.from(a)).toEqual(Array.from(m.predict(mols)));
  } finally {
    sync.mockRestore();
    async.mockRestore();
  }
});

test('atomic numbers outside the model are a coded error naming the structure', () => {
  const m = loadModel(ck);
  const bad = molecules(2);
  bad[1] = { ...bad[1], numbers: Uint8Array.from([200, 1]), positions: new Float64Array(6) };
  expect(() => m.predict(bad)).toThrow(expect.objectContaining({ code: 'ERR_GNN_STRUCTURE', message: expect.stringContaining('structure 1') }));
});
