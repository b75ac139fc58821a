/**
 * `gnnbatch report results.json -o report.html [--markdown FILE]`: the
 * study's report as one offline HTML file, and optionally a Markdown section.
 * With `--compare ENERGY/results.json` (the first file a force study, `study
 * --forces`, the second the energy-only study of the same grid) the Markdown
 * is the force-vs-energy comparison (experiment/force-compare.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { comparisonProblem, forceStudyMarkdown, readResults, type HitRate } from '../experiment';
import { renderCharts, renderReport, reportCharts, studyMarkdown } from '../report';
import { writeFileAtomic } from '../util/atomic';
import { intOption, numberOption } from './format';
import { ArgumentError } from '../errors';
import { studyReportTitle } from './study';

interface ReportCliOptions {
  out: string;
  markdown?: string;
  hitRate?: string;
  budgetSteps: number;
  costPerHour?: number;
  wallSeconds?: number;
  charts?: string;
  compare?: string;
  reproduce?: string;
}

/** Registers `report` on the program. */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('render a study results.json as one self-contained HTML report (charts as inline SVG)')
    .argument('<results>', 'results.json written by `gnnbatch study`')
    .option('-o, --out <file>', 'HTML output', 'report.html')
    .option('--markdown <file>', 'also write a README-ready Markdown section')
    .option('--hit-rate <file>', 'hit-rate JSON from `gnnbatch recommend --grid ... --json` to include')
    .option('--budget-steps <N>', 'steps of the planned run the recommendation prices', intOption('--budget-steps', 1), 2000000)
    .option('--cost-per-hour <x>', 'price per hour of the machine', numberOption('--cost-per-hour'))
    .option('--charts <dir>', 'also write every chart as an SVG file into DIR (linked from the Markdown when both are given)')
    .option('--wall-seconds <s>', 'wall time of the study run to quote in the Markdown', numberOption('--wall-seconds'))
    .option('--compare <energy-results>', 'with a force study (study --forces): the energy-only study of the same grid; --markdown then writes the force-vs-energy comparison (which policy wins with forces, by how much per graph)')
    .option('--reproduce <text>', 'with --compare: the command line that reproduces the two studies, quoted in the Markdown')
    .action(async (file: string, o: ReportCliOptions) => {
      const results = readResults(file);
      const energy = o.compare ? readResults(o.compare) : null;
      if (energy) {
        const problem = comparisonProblem(results, energy);
        if (problem) throw new ArgumentError(`--compare ${o.compare} with ${file}: ${problem}`, 'ERR_GNN_RESULTS');
      }
      let hitRate: HitRate | undefined;
      if (o.hitRate) {
        const doc = JSON.parse(fs.readFileSync(o.hitRate, 'utf8')) as { hit_rate?: HitRate } & HitRate;
        hitRate = doc.hit_rate ?? doc;
        if (!Array.isArray(hitRate.rows)) throw new ArgumentError(`${o.hitRate}: not a hit-rate JSON (from recommend --grid --json)`, 'ERR_GNN_RESULTS');
      }
      const html = await renderReport(results, { budgetSteps: o.budgetSteps, costPerHour: o.costPerHour, hitRate, title: studyReportTitle(results) });
      writeFileAtomic(o.out, html);
      process.stdout.write(`wrote ${o.out} (${(html.length / 1024).toFixed(0)} KiB, ${results.rows.length} runs)\n`);
      let images = '';
      if (o.charts) {
        const rendered = await renderCharts(reportCharts(results));
        for (const r of rendered) writeFileAtomic(path.join(o.charts, `${r.chart.id}.svg`), r.svg);
        process.stdout.write(`wrote ${rendered.length} charts to ${o.charts}\n`);
        if (o.markdown) {
          const rel = path.relative(path.dirname(path.resolve(o.markdown)), path.resolve(o.charts)).split(path.sep).join('/');
          images = `\n### Charts from the report\n\n${rendered.filter((r) => r.chart.section === 'speedup' || r.chart.section === 'time').map((r) => `![${r.chart.title}](${rel}/${r.chart.id}.svg)`).join('\n')}\n`;
        }
      }
      if (o.markdown && energy) {
        const command = `\`gnnbatch study --forces ... -o F\`, the same without \`--forces\` into \`-o E\`, then \`gnnbatch report F/results.json --compare E/results.json --markdown FILE\``;
        writeFileAtomic(o.markdown, forceStudyMarkdown(results, energy, { plannedSteps: o.budgetSteps, command: o.reproduce ?? command }) + images);
        process.stdout.write(`wrote ${o.markdown}\n`);
      } else if (o.markdown) {
        writeFileAtomic(o.markdown, studyMarkdown(results, hitRate, o.wallSeconds, o.budgetSteps) + images);
        process.stdout.write(`wrote ${o.markdown}\n`);
      }
    });
}
