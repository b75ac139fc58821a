import { Command } from 'commander';
import { registerBatchingCommands, type LoadSizes } from '../../src/cli/batching';
import type { CompareRow } from '../../src/batching';
import { prefixSplit, qm9LikeSizes } from '../batching/sizes-fixtures';

function makeProgram(out: string[], loaded: Array<{ source: string; seed: number }>): Command {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  const load: LoadSizes = async (source, opts) => {
    loaded.push({ source, seed: opts.seed });
    const sizes = qm9LikeSizes(5000);
    return { sizes, split: prefixSplit(5000), description: 'qm9-like (5000)' };
  };
  registerBatchingCommands(program, load, { out: (t) => out.push(t), err: () => undefined });
  return program;
}

describe('gnnbatch batching compare', () => {
  test('--json prints rows with the documented fields', async () => {
    const out: string[] = [];
    const loaded: Array<{ source: string; seed: number }> = [];
    await makeProgram(out, loaded).parseAsync(
      ['batching', 'compare', 'qm9-like', '--batch', '16,32', '--policies', 'static-64,dynamic,packed', '--steps', '300', '--json', '--seed', '7'],
      { from: 'user' },
    );
    expect(loaded).toEqual([{ source: 'qm9-like', seed: 7 }]);
    const rows = JSON.parse(out.join('')) as CompareRow[];
    expect(rows.map((r) => `${r.policy}/${r.batch}`)).toEqual(['static-64/16', 'dynamic/16', 'packed/16', 'static-64/32', 'dynamic/32', 'packed/32']);
    for (const r of rows) {
      for (const k of ['policy', 'batch', 'shapes', 'node_fill', 'edge_fill', 'graphs_per_batch_mean', 'padded_edges_vs_exact', 'batches_per_epoch']) {
        expect(r).toHaveProperty(k);
      }
      expect(r.steps).toBe(300);
    }
    expect(rows[1].budget_nodes).toBe(320);
  });

  test('prints a table by default; bad options are usage errors', async () => {
    const out: string[] = [];
    await makeProgram(out, []).parseAsync(['batching', 'compare', 'x', '--batch', '32', '--steps', '50', '--study-compat'], { from: 'user' });
    const text = out.join('');
    expect(text).toMatch(/qm9-like \(5000\): 4000 training graphs, 50 steps per policy/);
    for (const p of ['static-2pow', 'static-64', 'static-constant', 'dynamic', 'packed', 'exact']) expect(text).toContain(p);
    const bad = makeProgram([], []);
    await expect(bad.parseAsync(['batching', 'compare', 'x', '--policies', 'greedy'], { from: 'user' })).rejects.toThrow(/unknown policy 'greedy'/);
    await expect(bad.parseAsync(['batching', 'compare', 'x', '--batch', '16,abc'], { from: 'user' })).rejects.toThrow(/positive integers/);
  });
});
