/**
 * `qm9-like[:N]`: molecules with QM9's size and composition (QM9: Ramakrishnan,
 * Dral, Rupp, von Lilienfeld, Sci. Data 1, 140022 (2014); 133,885 molecules of
 * up to 9 heavy atoms C, N, O, F, 3-29 atoms, mean ~18 atoms).
 *
 * Distributions reproduced (approximate; the QM9 paper and its data files):
 * - heavy atoms per molecule: 9 for ~90%, 8 for ~8%, 7 for ~1.3%, fewer for the
 *   rest (GDB-9 grows roughly tenfold per added heavy atom);
 * - heavy elements: C ~72%, O ~16%, N ~11.5%, F ~0.5% (QM9's heavy-atom counts);
 * - total atoms per molecule: drawn from a histogram over 3..29 peaking at 19
 *   with a longer left tail (mean ~17.9, sd ~3), so that fully connected graphs
 *   have ~312 directed edges on average: the figures behind the study's QM9
 *   budgets (PAPER.md: 576 nodes / 9984 edges at B = 32); hydrogens make up the
 *   difference to the heavy atoms, capped by the skeleton's free valences (the
 *   rest are rings or double bonds, as in QM9's mostly unsaturated molecules);
 * - geometry: heavy-atom skeleton grown as a random tree with bond lengths of
 *   1.35-1.54 Å, hydrogens at 0.96-1.09 Å, no two atoms closer than 0.9 Å
 *   (heavy-heavy non-bonded >= 1.3 Å): realistic interatomic spacing.
 * Targets (eV): `U0` = sum of atomic reference energies + Morse pair energy
 * over all pairs ({@link pairEnergy}); `pair_energy` = the Morse part alone.
 * Forces (eV/Å): the exact F = -dU0/dx of the same pair energy (the atomic
 * references are constants), so `U0` and the forces train together.
 * Deterministic for a given seed and N (each molecule has its own stream).
 */
import { mulberry32 } from '../split';
import type { Structure } from '../types';
import { atomReferenceEnergy, moleculePairEnergyForces } from './potential';

/** QM9's size. */
export const QM9_SIZE = 133885;

const HEAVY = [6, 8, 7, 9];
const HEAVY_P = [0.72, 0.16, 0.115, 0.005];
const VALENCE: Record<number, number> = { 6: 4, 7: 3, 8: 2, 9: 1 };
const HEAVY_COUNT_P: Array<[number, number]> = [[9, 0.9], [8, 0.08], [7, 0.013], [6, 0.004], [5, 0.0015], [4, 0.0008], [3, 0.0004], [2, 0.0002], [1, 0.0001]];
const XH: Record<number, number> = { 6: 1.09, 7: 1.01, 8: 0.96, 9: 0.92 };

/** QM9-like total atom-count probabilities for n = 3..29 (index n - 3). */
export function qm9AtomCountHistogram(): Float64Array {
  const mu = 19.35;
  const sl = 3.8;
  const sr = 2.0;
  const w = new Float64Array(27);
  let sum = 0;
  for (let n = 3; n <= 29; n++) {
    const sd = n < mu ? sl : sr;
    w[n - 3] = Math.exp(-((n - mu) ** 2) / (2 * sd * sd)) + 0.0005;
    sum += w[n - 3];
  }
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}
const ATOM_CDF = (() => {
  const p = qm9AtomCountHistogram();
  const c = new Float64Array(p.length);
  let s = 0;
  for (let i = 0; i < p.length; i++) c[i] = s += p[i];
  return c;
})();
function atomCountAt(u: number): number {
  for (let i = 0; i < ATOM_CDF.length; i++) if (u < ATOM_CDF[i]) return i + 3;
  return 29;
}

/**
 * Total atom count of molecule `index`: stratified in blocks of 1000 molecules
 * (each block is the histogram's quantiles at a random offset, in a random
 * order), so that any 1000 consecutive molecules, like the 1000 graphs the
 * study's budget estimator reads, show the histogram's moments rather than
 * sampling noise.
 */
const STRATUM = 1000;
const blockCache = new Map<string, Uint16Array>();
function stratifiedAtomCount(seed: number, index: number): number {
  const block = Math.floor(index / STRATUM);
  const key = `${seed}/${block}`;
  let counts = blockCache.get(key);
  if (!counts) {
    const rand = mulberry32((Math.imul(seed ^ 0x2545f491, 0x9e3779b1) + Math.imul(block + 1, 0x27d4eb2f)) >>> 0);
    const u = rand();
    counts = new Uint16Array(STRATUM);
    for (let j = 0; j < STRATUM; j++) counts[j] = atomCountAt((j + u) / STRATUM);
    for (let j = STRATUM - 1; j > 0; j--) {
      const k = Math.floor(rand() * (j + 1));
      const t = counts[j];
      counts[j] = counts[k];
      counts[k] = t;
    }
    if (blockCache.size > 64) blockCache.clear();
    blockCache.set(key, counts);
  }
  return counts[index % STRATUM];
}

function pick<T>(rand: () => number, items: readonly T[], p: readonly number[]): T {
  let u = rand() * p.reduce((a, b) => a + b, 0);
  for (let i = 0; i < items.length; i++) {
    u -= p[i];
    if (u < 0) return items[i];
  }
  return items[items.length - 1];
}

function unitVector(rand: () => number): [number, number, number] {
  const z = 2 * rand() - 1;
  const t = 2 * Math.PI * rand();
  const s = Math.sqrt(1 - z * z);
  return [s * Math.cos(t), s * Math.sin(t), z];
}

/** One qm9-like molecule from a seeded stream. */
export function qm9LikeMolecule(seed: number, index: number): Structure {
  const rand = mulberry32((Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) >>> 0);
  const target = stratifiedAtomCount(seed, index);
  // Heavy atoms: QM9's count distribution, leaving room for at least one H.
  const h = Math.min(pick(rand, HEAVY_COUNT_P.map((x) => x[0]), HEAVY_COUNT_P.map((x) => x[1])), Math.max(1, target - 1));
  const heavy: number[] = [];
  for (let i = 0; i < h; i++) heavy.push(pick(rand, HEAVY, HEAVY_P));
  // A molecule needs a valence-1 atom only at a chain end: F/O with one bond are fine in a tree.
  if (h > 1) for (let i = 0; i < h; i++) if (heavy[i] === 9 && i > 0 && i < h - 1) heavy[i] = 6;
  const capacity = (): number => (h === 1 ? VALENCE[heavy[0]] : heavy.reduce((s, z) => s + VALENCE[z], 0) - 2 * (h - 1));
  // Too many hydrogens for the skeleton's free valences: turn O/N/F into C (more valences).
  for (let i = 0; i < h && target - h > capacity(); i++) if (heavy[i] !== 6) heavy[i] = 6;
  let nH = Math.max(0, Math.min(capacity(), target - h));
  if (h === 1) nH = VALENCE[heavy[0]];
  nH = Math.min(nH, 29 - h);
  if (h + nH < 3) nH = 3 - h;
  const n = h + nH;
  const numbers = new Uint8Array(n);
  const pos = new Float64Array(n * 3);
  const free: number[] = [];
  // Smallest ratio distance / required distance from a candidate to the atoms placed so far
  // (required: `minHeavy` between heavy atoms, 1.5 Å otherwise; the bonded partner is skipped).
  const clearance = (i: number, c: [number, number, number], skip: number, minHeavy: number): number => {
    let worst = Infinity;
    for (let j = 0; j < i; j++) {
      if (j === skip) continue;
      const dx = pos[j * 3] - c[0], dy = pos[j * 3 + 1] - c[1], dz = pos[j * 3 + 2] - c[2];
      const need = numbers[j] !== 1 && i < h ? minHeavy : 1.5;
      const r = (dx * dx + dy * dy + dz * dz) / (need * need);
      if (r < worst) worst = r;
    }
    return Math.sqrt(worst);
  };
  for (let i = 0; i < h; i++) {
    numbers[i] = heavy[i];
    free.push(VALENCE[heavy[i]]);
    if (i === 0) continue;
    // Best of several trials: the first that keeps its distances, else the one farthest from the rest.
    let best: [number, number, number] = [0, 0, 0];
    let bestScore = -Infinity, bestParent = 0;
    for (let attempt = 0; attempt < 24; attempt++) {
      let parent = Math.floor(rand() * i);
      for (let t = 0; t < i && free[parent] < 2 && !(free[parent] >= 1 && i === h - 1); t++) parent = (parent + 1) % i;
      const bond = 1.35 + 0.19 * rand();
      const u = unitVector(rand);
      const c: [number, number, number] = [pos[parent * 3] + bond * u[0], pos[parent * 3 + 1] + bond * u[1], pos[parent * 3 + 2] + bond * u[2]];
      const score = clearance(i, c, parent, 2.2);
      if (score > bestScore) { bestScore = score; best = c; bestParent = parent; }
      if (score >= 1) break;
    }
    free[bestParent]--;
    free[i]--;
    pos.set(best, i * 3);
  }
  for (let k = 0; k < nH; k++) {
    const i = h + k;
    numbers[i] = 1;
    let host = 0, most = -Infinity;
    for (let j = 0; j < h; j++) {
      const score = free[j] + rand() * 0.5;
      if (score > most) { most = score; host = j; }
    }
    free[host]--;
    const bond = XH[numbers[host]] ?? 1.09;
    let p: [number, number, number] = [0, 0, 0];
    let bestScore = -Infinity;
    for (let attempt = 0; attempt < 24; attempt++) {
      const u = unitVector(rand);
      const c: [number, number, number] = [pos[host * 3] + bond * u[0], pos[host * 3 + 1] + bond * u[1], pos[host * 3 + 2] + bond * u[2]];
      const score = clearance(i, c, host, 1.5);
      if (score > bestScore) { bestScore = score; p = c; }
      if (score >= 1) break;
    }
    pos.set(p, i * 3);
  }
  let ref = 0;
  for (let i = 0; i < n; i++) ref += atomReferenceEnergy(numbers[i]);
  const { energy: pairE, forces } = moleculePairEnergyForces(numbers, pos);
  return {
    id: `qm9-like-${index + 1}`,
    numbers,
    positions: pos,
    cell: null,
    pbc: [false, false, false],
    targets: { U0: ref + pairE, pair_energy: pairE },
    forces,
  };
}

/** `count` qm9-like molecules (default QM9's 133,885) for a seed (default 42). */
export function* qm9Like(count = QM9_SIZE, seed = 42): Generator<Structure> {
  for (let i = 0; i < count; i++) yield qm9LikeMolecule(seed, i);
}
