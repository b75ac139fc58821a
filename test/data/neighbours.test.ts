import { native, setThreads, getThreads } from '../../src/native';
import { structureBatch } from '../../src/data/store';
import { mulberry32 } from '../../src/data/split';
import type { Structure } from '../../src/data/types';
import type { NativeGraphRule, NativeNeighbours } from '../../src/native';
import { bruteCutoff, bruteKnnDistances, bruteMinImage, type RefEdge } from './reference';

function structure(numbers: number[], positions: number[], cell: number[] | null, pbc: [boolean, boolean, boolean]): Structure {
  return { id: 'x', numbers: Uint8Array.from(numbers), positions: Float64Array.from(positions), cell: cell ? Float64Array.from(cell) : null, pbc, targets: {} };
}

function randomStructure(seed: number, n: number, cell: number[] | null, pbc: [boolean, boolean, boolean], spread = 5): Structure {
  const rand = mulberry32(seed);
  const pos: number[] = [];
  for (let i = 0; i < n; i++) {
    if (cell) {
      // Fractional in [-0.5, 1.5) so that wrapping is exercised.
      const f = [rand() * 2 - 0.5, rand() * 2 - 0.5, rand() * 2 - 0.5];
      for (let a = 0; a < 3; a++) pos.push(f[0] * cell[a] + f[1] * cell[3 + a] + f[2] * cell[6 + a]);
    } else for (let a = 0; a < 3; a++) pos.push(rand() * spread);
  }
  return structure(Array.from({ length: n }, (_, i) => 1 + (i % 9)), pos, cell, pbc);
}

/** The error thrown by f (addon errors come from another realm than jest's, so compare names). */
function thrown(f: () => unknown): Error & { code?: string } {
  try {
    f();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

function build(structures: Structure[], rule: NativeGraphRule): NativeNeighbours {
  return native().buildNeighbours(structureBatch(structures), rule);
}

function edgesOf(nb: NativeNeighbours, g: number): RefEdge[] {
  const out: RefEdge[] = [];
  for (let e = nb.edgeOffset[g]; e < nb.edgeOffset[g + 1]; e++) out.push({ receiver: nb.receivers[e], sender: nb.senders[e], distance: nb.distance[e] });
  return out;
}

function expectSameEdges(got: RefEdge[], want: RefEdge[]): void {
  expect(got.length).toBe(want.length);
  for (let e = 0; e < want.length; e++) {
    expect([got[e].receiver, got[e].sender]).toEqual([want[e].receiver, want[e].sender]);
    expect(Math.abs(got[e].distance - want[e].distance)).toBeLessThan(1e-5 * Math.max(1, want[e].distance));
  }
}

function checkSenderPerm(nb: NativeNeighbours, numGraphs: number): void {
  for (let g = 0; g < numGraphs; g++) {
    const e0 = nb.edgeOffset[g], m = nb.edgeOffset[g + 1] - e0;
    const perm = Array.from(nb.senderPerm.subarray(e0, e0 + m));
    expect([...perm].sort((a, b) => a - b)).toEqual(Array.from({ length: m }, (_, i) => i));
    for (let k = 1; k < m; k++) {
      const a = perm[k - 1], b = perm[k];
      const sa = nb.senders[e0 + a], sb = nb.senders[e0 + b];
      expect(sa < sb || (sa === sb && a < b)).toBe(true);
    }
  }
}

const cubic = [4, 0, 0, 0, 4, 0, 0, 0, 4];
const triclinic = [4.2, 0, 0, 1.3, 3.9, 0, -0.8, 1.1, 4.4];
const T3: [boolean, boolean, boolean] = [true, true, true];
const F3: [boolean, boolean, boolean] = [false, false, false];

describe('native graph construction vs brute force', () => {
  test('cutoff: molecule, cubic, triclinic, partial pbc, tiny cells, in one batch', () => {
    const cases: Array<[Structure, number]> = [
      [randomStructure(1, 12, null, F3), 2.5],
      [randomStructure(2, 10, cubic, T3), 3.1],
      [randomStructure(3, 9, triclinic, T3), 4.7],
      [randomStructure(4, 7, triclinic, [true, false, true]), 3.3],
      // Cells smaller than the cutoff: an atom's neighbours include its own images.
      [structure([26], [0.3, 0.1, 0.2], [1.5, 0, 0, 0.4, 1.6, 0, 0.2, 0.3, 1.7], T3), 4.05],
      [randomStructure(5, 2, [1.9, 0, 0, 0.5, 2.1, 0, 0, 0.4, 1.8], T3), 5.3],
      [structure([1], [0, 0, 0], null, F3), 3],
    ];
    const all: RefEdge[][] = [];
    for (const [s, r] of cases) {
      const nb = build([s], { kind: 'cutoff', cutoff: r });
      const want = bruteCutoff(s, r);
      expectSameEdges(edgesOf(nb, 0), want);
      checkSenderPerm(nb, 1);
      all.push(want);
    }
    // Own images exist for the tiny single-atom cell, and no zero-shift self pair.
    expect(all[4].length).toBeGreaterThan(10);
    expect(all[4].every((e) => e.distance > 0)).toBe(true);
    expect(all[6]).toEqual([]);
  });

  test('knn with periodic images and growing radius; molecules cap K at n-1', () => {
    const cases: Array<[Structure, number]> = [
      [randomStructure(11, 15, null, F3, 6), 6],
      [randomStructure(12, 4, null, F3), 12],
      [randomStructure(13, 8, triclinic, T3), 12],
      [structure([29], [0.1, 0.2, 0.3], [2.5, 0, 0, 0, 2.5, 0, 0, 0, 3.0], T3), 12],
      [randomStructure(14, 40, [9, 0, 0, 2, 8.5, 0, 1, -1.5, 9.5], T3), 12],
    ];
    for (const [s, k] of cases) {
      const nb = build([s], { kind: 'knn', k });
      const want = bruteKnnDistances(s, k, 14);
      const got = edgesOf(nb, 0);
      for (let i = 0; i < s.numbers.length; i++) {
        const d = got.filter((e) => e.receiver === i).map((e) => e.distance).sort((a, b) => a - b);
        expect(d.length).toBe(want[i].length);
        d.forEach((x, q) => expect(Math.abs(x - want[i][q])).toBeLessThan(1e-5));
      }
      // Receiver-sorted, then sender, then distance.
      for (let e = 1; e < got.length; e++) {
        const a = got[e - 1], b = got[e];
        expect(a.receiver < b.receiver || (a.receiver === b.receiver && (a.sender < b.sender || (a.sender === b.sender && a.distance <= b.distance)))).toBe(true);
      }
      checkSenderPerm(nb, 1);
    }
  });

  test('fc: all ordered pairs, plain distance for molecules, minimum image for crystals', () => {
    const mol = randomStructure(21, 9, null, F3);
    const cry = randomStructure(22, 6, cubic, T3);
    const nb = build([mol, cry], { kind: 'fc' });
    expect(Array.from(nb.edgeOffset)).toEqual([0, 72, 102]);
    const m = edgesOf(nb, 0);
    let e = 0;
    for (let r = 0; r < 9; r++)
      for (let s = 0; s < 9; s++) {
        if (s === r) continue;
        expect([m[e].receiver, m[e].sender]).toEqual([r, s]);
        expect(m[e].distance).toBeCloseTo(bruteMinImage(mol, r, s), 5);
        e++;
      }
    for (const x of edgesOf(nb, 1)) expect(x.distance).toBeCloseTo(bruteMinImage(cry, x.receiver, x.sender), 5);
    checkSenderPerm(nb, 2);
  });

  test('results do not depend on the thread count', () => {
    const structures = Array.from({ length: 60 }, (_, i) => randomStructure(100 + i, 3 + (i % 20), i % 2 ? triclinic : null, i % 2 ? T3 : F3));
    const before = getThreads();
    try {
      for (const rule of [{ kind: 'knn', k: 5 }, { kind: 'cutoff', cutoff: 3 }, { kind: 'fc' }] as NativeGraphRule[]) {
        setThreads(1);
        const a = build(structures, rule);
        setThreads(2);
        const b = build(structures, rule);
        expect(Buffer.from(b.senders.buffer).equals(Buffer.from(a.senders.buffer))).toBe(true);
        expect(Buffer.from(b.distance.buffer).equals(Buffer.from(a.distance.buffer))).toBe(true);
        expect(Buffer.from(b.senderPerm.buffer).equals(Buffer.from(a.senderPerm.buffer))).toBe(true);
      }
    } finally {
      setThreads(before);
    }
  });

  test('bad input is a RangeError/TypeError naming the problem, never a crash', () => {
    const singular = structure([1, 1], [0, 0, 0, 1, 0, 0], [1, 0, 0, 2, 0, 0, 0, 0, 1], T3);
    expect(() => build([singular], { kind: 'cutoff', cutoff: 2 })).toThrow(/structure 0 is periodic but its cell is singular/);
    const nan = structure([1, 1], [0, 0, 0, NaN, 0, 0], null, F3);
    expect(() => build([nan], { kind: 'fc' })).toThrow(/structure 0, atom 1: position is not finite/);
    expect(thrown(() => build([nan], { kind: 'cutoff', cutoff: -1 })).name).toBe('RangeError');
    const b = structureBatch([randomStructure(1, 3, null, F3)]);
    expect(() => native().buildNeighbours({ ...b, atomOffset: Int32Array.from([0, 5]) }, { kind: 'fc' })).toThrow(/atomOffset\[1\] = 5/);
    const typeErr = thrown(() => native().buildNeighbours({ ...b, positions: new Float32Array(9) as unknown as Float64Array }, { kind: 'fc' }));
    expect(typeErr.name).toBe('TypeError');
    expect(typeErr.message).toMatch(/batch.positions must be a Float64Array/);
    expect(thrown(() => native().buildNeighbours(b, { kind: 'knn', k: 0 })).name).toBe('RangeError');
    const huge = structure([1], [0, 0, 0], [0.01, 0, 0, 0, 0.01, 0, 0, 0, 0.01], T3);
    const imgErr = thrown(() => build([huge], { kind: 'cutoff', cutoff: 10 }));
    expect(imgErr.message).toMatch(/too many periodic images/);
    expect(imgErr.code).toBe('ERR_GNN_IMAGES');
  });
});
