/**
 * report.html escapes every value it renders (issue 21, item 9): `study merge`
 * renders shards' `environment` and other fields, which a shard file may fill
 * with any text. Hostile strings in every string field (and in the numeric
 * fields of the environment) must come out as text, never as markup.
 */
import { renderReport } from '../../src/report';
import { esc } from '../../src/report/render';
import { syntheticResults, syntheticRow } from '../experiment/helpers/synthetic-study';
import type { StudyResults } from '../../src/experiment';

const EVIL = `<img src=x onerror=alert(1)>"'><script>alert(2)</script>&`;

function hostile(): StudyResults {
  const rows = [0, 1].flatMap((rep) => ['dynamic', 'exact'].map((policy, i) => {
    const r = syntheticRow({ policy: `${policy}${EVIL}`, rep, ms: 10 + i, data: `qm9${EVIL}`, model: `schnet${EVIL}` });
    return { ...r, target: `U0${EVIL}`, cpu_model: `cpu${EVIL}`, node_version: `v20${EVIL}`, native_build: `b${EVIL}`, native_simd: `s${EVIL}`, finished_at: `t${EVIL}` };
  }));
  const res = syntheticResults(rows);
  const env = res.environment as unknown as Record<string, unknown>;
  for (const k of Object.keys(env)) if (k !== 'native') env[k] = `${k}${EVIL}`;
  const native = env.native as Record<string, unknown>;
  for (const k of Object.keys(native)) native[k] = `${k}${EVIL}`;
  res.grid = { ...res.grid, reps: EVIL as unknown as number, steps: EVIL as unknown as number, base_seed: EVIL as unknown as number, batches: [EVIL as unknown as number], atomref: 'auto' };
  res.data[0].target = `U0${EVIL}`;
  res.data[0].atomref = { used: true, mode: 'auto', residual_std: EVIL, target_std: EVIL, ratio: EVIL } as never;
  // A second machine for one repetition: the mixed-hardware warning renders machine names too.
  rows[2] = { ...rows[2], cpu_model: `other${EVIL}` };
  // The learning check's names and numbers are rendered too.
  (res as unknown as Record<string, unknown>).learning_check = {
    data: `qm9${EVIL}`, model: `schnet${EVIL}`, batch: EVIL, policies: [`a${EVIL}`, `b${EVIL}`], seeds: [1, 2], steps: EVIL, lr: EVIL,
    runs: [1, 2].flatMap((seed) => [`a${EVIL}`, `b${EVIL}`].map((policy, i) => ({ policy, seed, steps: 4, test_rmse: 0.1 + 0.01 * i + 0.001 * seed, test_mae: 0.1, final_train_loss: 0.1, baseline_std: 1, seconds: 1 }))),
  };
  return res;
}

describe('report.html escapes every rendered value', () => {
  test('esc escapes the five HTML metacharacters of any value', () => {
    expect(esc(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    expect(esc(12)).toBe('12');
    expect(esc(undefined)).toBe('undefined');
  });

  test('hostile strings in every field of the environment, grid, data and rows stay text', async () => {
    const html = await renderReport(hostile(), { title: `title${EVIL}`, resamples: 10 });
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script');
    expect(html).not.toMatch(/"'>/);
    // The values are there, as text.
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('cpu_model&lt;img');
    expect(html).toContain('threads&lt;img');
    expect(html).toContain('Learning check (qm9&lt;img');
    // The decision section states the rate it used.
    expect(html).toContain('<h2>Decision</h2>');
    expect(html).toMatch(/Price: default rate for a 1-core CPU machine/);
  });
});
