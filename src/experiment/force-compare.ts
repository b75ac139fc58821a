/**
 * The study's question on forces (issue 22 item 6): which batching policy
 * wins when every step trains energies and forces, and by how much per graph,
 * next to the energy-only study of the same grid. Reads two results files (a
 * force study, `study --forces`, and an energy study of the same data,
 * models and batch sizes), decides both with decision.ts (per graph over the
 * planned run, compilations included, repetitions paired) and compares the
 * picks cell by cell. `gnnbatch report FORCES/results.json --compare
 * ENERGY/results.json --markdown FILE` writes {@link forceStudyMarkdown};
 * docs/forces-study.md is that file for the committed run.
 */
import { decideStudy, type CellDecision, type PolicyEvidence, type StudyDecisions } from './decision';
import { learningCheckOf, learningVerdict } from './learning-check';
import { tableToMarkdown, type Table } from './tables';
import { forceWeightsText, type StudyResults } from './results';

/** One policy's standing at a cell, per graph. */
export interface PolicyStanding {
  policy: string;
  /** Median ms per 1,000 real graphs (median step time / graphs per step). */
  ms_per_1000_graphs: number;
  /** Its planned run's time / the fastest's (per graph, compilations included); 1 for the fastest. */
  ratio: number;
}

/** One side (energy or forces) of a compared cell. */
export interface SideDecision {
  pick: string;
  tie: boolean;
  /** The pick's ms per 1,000 graphs. */
  ms_per_1000_graphs: number;
  /** The first policy other than the pick in the decision's order (null: one policy) and its ratio to the fastest. */
  runner_up: PolicyStanding | null;
  /** static-2pow (the study's static 2^N baseline) when measured. */
  static_2pow: PolicyStanding | null;
  /** The slowest policy. */
  slowest: PolicyStanding | null;
  /** Share of bootstrap resamples that pick the same policy (NaN: below two repetitions). */
  agreement: number;
}

/** A (data, model, B) of both studies. */
export interface ComparedCell {
  data: string;
  model: string;
  batch: number;
  energy: SideDecision;
  forces: SideDecision;
  /** Per graph: the force pick's ms per 1,000 graphs / the energy pick's (what training forces costs, each with its best policy). */
  force_cost: number;
  same_pick: boolean;
}

/** A (data, model) of both studies: the pick across batch sizes. */
export interface ComparedPair {
  data: string;
  model: string;
  energy_pick: string;
  energy_wins: number;
  forces_pick: string;
  forces_wins: number;
  batches: number;
}

/** What {@link compareForceStudy} returns. */
export interface ForceComparison {
  cells: ComparedCell[];
  pairs: ComparedPair[];
  forces: StudyDecisions;
  energy: StudyDecisions;
}

const standing = (p: PolicyEvidence | undefined): PolicyStanding | null => (p ? { policy: p.policy, ms_per_1000_graphs: p.ms_per_1000_graphs, ratio: p.ratio } : null);

function side(c: CellDecision): SideDecision {
  const pick = c.policies.find((p) => p.policy === c.pick) as PolicyEvidence;
  return {
    pick: c.pick,
    tie: c.tie,
    ms_per_1000_graphs: pick.ms_per_1000_graphs,
    runner_up: standing(c.policies.find((p) => p.policy !== c.pick)),
    static_2pow: standing(c.policies.find((p) => p.policy === 'static-2pow')),
    slowest: standing(c.policies.length > 1 ? c.policies[c.policies.length - 1] : undefined),
    agreement: c.agreement,
  };
}

/** The shapes a long run meets per (data, policy, B), from the file's policy simulation. */
function shapesOf(r: StudyResults): (data: string, policy: string, batch: number) => number | undefined {
  return (data, policy, batch) => r.data.find((d) => d.data === data)?.simulation.find((x) => x.policy === policy && x.batch === batch)?.shapes;
}

/**
 * What differs between the grids of a force study and an energy study that
 * makes them incomparable (data, models, policies, batch sizes, steps), or
 * null; also null-checks which one trained forces.
 */
export function comparisonProblem(forces: Pick<StudyResults, 'grid'>, energy: Pick<StudyResults, 'grid'>): string | null {
  if (!forces.grid.forces) return 'the first results file is not a force study (run it with study --forces)';
  if (energy.grid.forces) return 'the file to compare with is a force study too: give the energy-only study of the same grid';
  for (const k of ['data', 'models', 'policies', 'batches', 'steps'] as const) {
    if (JSON.stringify(forces.grid[k]) !== JSON.stringify(energy.grid[k])) return `the grids differ in ${k}: ${JSON.stringify(forces.grid[k])} (forces) vs ${JSON.stringify(energy.grid[k])} (energy)`;
  }
  return null;
}

/** Decides both studies and compares them cell by cell (cells of the force study that the energy study also has). */
export function compareForceStudy(forces: StudyResults, energy: StudyResults, o: { plannedSteps?: number; resamples?: number } = {}): ForceComparison {
  const opts = { plannedSteps: o.plannedSteps ?? 2000000, resamples: o.resamples };
  const df = decideStudy(forces.rows, { ...opts, shapesAt: shapesOf(forces) });
  const de = decideStudy(energy.rows, { ...opts, shapesAt: shapesOf(energy) });
  const cells: ComparedCell[] = [];
  for (const cf of df.cells) {
    const ce = de.cells.find((c) => c.data === cf.data && c.model === cf.model && c.batch === cf.batch);
    if (!ce) continue;
    const f = side(cf);
    const e = side(ce);
    cells.push({ data: cf.data, model: cf.model, batch: cf.batch, energy: e, forces: f, force_cost: f.ms_per_1000_graphs / e.ms_per_1000_graphs, same_pick: f.pick === e.pick });
  }
  const pairs: ComparedPair[] = [];
  for (const pf of df.pairs) {
    const pe = de.pairs.find((p) => p.data === pf.data && p.model === pf.model);
    if (!pe) continue;
    pairs.push({ data: pf.data, model: pf.model, energy_pick: pe.pick, energy_wins: pe.wins, forces_pick: pf.pick, forces_wins: pf.wins, batches: pf.cells.length });
  }
  return { cells, pairs, forces: df, energy: de };
}

/** A ratio to the fastest as a signed difference (`+12%`, `-1%`, `±0%`). */
const pct = (r: number): string => {
  if (!Number.isFinite(r)) return 'n/a';
  const d = Math.round(100 * (r - 1));
  return d === 0 ? '±0%' : `${d > 0 ? '+' : '-'}${Math.abs(d)}%`;
};
/** A ratio above 1 as how much longer (`12%`). */
const longer = (r: number): string => (Number.isFinite(r) ? `${Math.round(100 * (r - 1))}%` : 'n/a');
const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(x >= 100 ? 0 : 1) : 'n/a');
const other = (s: PolicyStanding | null): string => (s ? `${s.policy} ${pct(s.ratio)}` : '-');
const agree = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : 'n/a');
const minutes = (r: StudyResults): number => (Date.parse(r.updated) - Date.parse(r.created)) / 60000;

/** The pick's lead per graph: the runner-up's ratio (ties show the tie). */
const lead = (s: SideDecision): string => (s.tie ? `tie (${other(s.runner_up)})` : other(s.runner_up));

/** Smallest and largest of finite values as text (`a` or `a to b`). */
function span(xs: number[], f: (x: number) => string): string {
  const ys = xs.filter(Number.isFinite);
  if (!ys.length) return 'n/a';
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  return lo === hi ? f(lo) : `${f(lo)} to ${f(hi)}`;
}

/** The comparison's tables: the picks per (data, model), and per batch size the two decisions side by side. */
export function forceComparisonTables(c: ForceComparison): Table[] {
  const picks: Table = {
    title: 'pick per (data, model) across batch sizes',
    header: ['data', 'model', 'energy only: pick', 'energy + forces: pick'],
    rows: c.pairs.map((p) => [p.data, p.model, `${p.energy_pick} (${p.energy_wins} of ${p.batches} B)`, `${p.forces_pick} (${p.forces_wins} of ${p.batches} B)`]),
  };
  const cells: Table = {
    title: 'per batch size: the pick, its ms per 1,000 graphs, and what the others take longer per graph',
    header: ['data', 'model', 'B', 'energy: pick', 'ms/1k graphs', 'runner-up', 'static-2pow', 'slowest', 'forces: pick', 'ms/1k graphs', 'runner-up', 'static-2pow', 'slowest', 'forces / energy per graph', 'rerun agrees (forces)'],
    rows: c.cells.map((x) => [
      x.data, x.model, String(x.batch),
      x.energy.pick, ms(x.energy.ms_per_1000_graphs), lead(x.energy), x.energy.static_2pow ? pct(x.energy.static_2pow.ratio) : '-', other(x.energy.slowest),
      x.forces.pick, ms(x.forces.ms_per_1000_graphs), lead(x.forces), x.forces.static_2pow ? pct(x.forces.static_2pow.ratio) : '-', other(x.forces.slowest),
      Number.isFinite(x.force_cost) ? `${x.force_cost.toFixed(2)}x` : 'n/a', agree(x.forces.agreement),
    ]),
  };
  return [picks, cells];
}

/** The sentences that answer the question, from the comparison's numbers. */
export function forceComparisonSentences(c: ForceComparison): string[] {
  const out: string[] = [];
  const n = c.cells.length;
  if (!n) return ['The two studies have no (data, model, B) cell in common.'];
  const count = (xs: string[]): [string, number][] => [...xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>())].sort((a, b) => b[1] - a[1]);
  const fp = count(c.cells.map((x) => x.forces.pick));
  const ep = count(c.cells.map((x) => x.energy.pick));
  const same = c.cells.filter((x) => x.same_pick).length;
  out.push(
    `With forces, ${fp.map(([p, k]) => `${p} is picked at ${k}`).join(', ')} of the ${n} (data, model, B) cells; energy only: ${ep.map(([p, k]) => `${p} at ${k}`).join(', ')}. ` +
      `The pick is the same in ${same} of ${n} cells.`,
  );
  const f2 = c.cells.map((x) => x.forces.static_2pow?.ratio ?? NaN);
  const e2 = c.cells.map((x) => x.energy.static_2pow?.ratio ?? NaN);
  if (f2.some(Number.isFinite))
    out.push(`Per graph, static-2pow (the static 2^N baseline) takes ${span(f2, longer)} longer than the pick with forces, ${span(e2, longer)} energy only.`);
  const fs = c.cells.map((x) => x.forces.slowest?.ratio ?? NaN);
  const es = c.cells.map((x) => x.energy.slowest?.ratio ?? NaN);
  const slow = [...new Set(c.cells.map((x) => x.forces.slowest?.policy).filter((x): x is string => !!x))];
  out.push(`The slowest policy (${slow.join(', ')}) takes ${span(fs, longer)} longer per graph than the pick with forces, ${span(es, longer)} energy only.`);
  const fr = c.cells.map((x) => x.forces.runner_up?.ratio ?? NaN);
  const ties = c.cells.filter((x) => x.forces.tie).length;
  const runners = [...new Set(c.cells.map((x) => x.forces.runner_up?.policy).filter((x): x is string => !!x))];
  out.push(
    `With forces the runner-up (${runners.join(', ')}) takes ${span(fr, longer)} longer per graph than the pick` +
      (ties
        ? `; in ${ties} of ${n} cells that is a tie: within the ${(100 * c.forces.margin).toFixed(0)}% margin, or not separated by the repetitions (broken by compilations over the planned run, padded work, then median time).`
        : '.'),
  );
  out.push(`Training forces costs ${span(c.cells.map((x) => x.force_cost), (x) => `${x.toFixed(2)}x`)} the energy-only time per graph (each with its own pick).`);
  return out;
}

/**
 * The README section: grid and machine, the answer in sentences, the tables,
 * the learning checks' verdicts and the command that reproduces it. Every
 * number comes from the two files.
 */
export function forceStudyMarkdown(forces: StudyResults, energy: StudyResults, o: { plannedSteps?: number; command?: string } = {}): string {
  const c = compareForceStudy(forces, energy, { plannedSteps: o.plannedSteps });
  const g = forces.grid;
  const env = forces.environment;
  const w = g.forces;
  let md = '## Batching with forces: the study on energy + forces training (generated by `gnnbatch report --compare`)\n\n';
  md += `Grid: ${g.data.join(', ')} x ${g.models.join(', ')} x ${g.policies.length} policies (${g.policies.join(', ')}) x B = ${g.batches.join('/')} x ${g.reps} repetitions of ${g.steps} steps, `;
  md += `once trained on energy + forces (loss weights: ${w ? forceWeightsText(w) : 'n/a'}) and once on energy only, same seeds. `;
  md += `Machine: ${env.cpu_model}, ${env.cpu_cores} cores, ${env.native.threads} threads, SIMD ${env.native.simd}; node ${env.node_version}. `;
  md += `Wall time: ${minutes(forces).toFixed(1)} min (forces) and ${minutes(energy).toFixed(1)} min (energy), learning checks included. `;
  md += `Policies are compared per graph over a planned run of ${c.forces.planned_steps.toLocaleString('en-US')} steps (compilations included, repetitions paired: the decision rule of src/experiment/decision.ts, as in the study above).\n\n`;
  for (const s of forceComparisonSentences(c)) md += `${s}\n`;
  md += '\n';
  for (const t of forceComparisonTables(c)) md += `${tableToMarkdown(t)}\n`;
  for (const [name, r] of [['forces', forces], ['energy only', energy]] as const) {
    const lc = learningCheckOf(r);
    if (lc) md += `${name === 'forces' ? 'With forces' : 'Energy only'}: ${learningVerdict(lc).sentence}\n\n`;
  }
  if (o.command) md += `Reproduce: ${o.command}\n`;
  return md;
}
