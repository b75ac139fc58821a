// The README's commands, timed (issue 11): `npm run bench -- commands [--only a,b] [--json]`.
// Runs each `npx gnnbatch ...` line of docs/README.template.md that works offline as a child process
// (`node --require benchmarks/rss-probe.js dist/cli/main.js ...`, cwd a scratch folder) and records
// its wall time and peak resident set size (ru_maxrss of the child, every thread included).
// A line that needs a download, a file the reader brings, or runs until stopped is listed with the
// reason it is not timed; a README line this file does not know is listed as such (the test
// test/package/readme-commands.test.ts keeps the two in step). Needs dist (npm run build:ts).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const PROBE = path.join(__dirname, 'rss-probe.js');
const TEMPLATE = path.join(ROOT, 'docs', 'README.template.md');

/**
 * Every `npx gnnbatch` line of the README template: `args` is what is run (null: not timed, `why`
 * says why); `as` says how the run differs from the README line, when it does. Order = run order
 * (`needs` names an earlier entry whose output this one reads).
 */
const COMMANDS = [
  { id: 'data-stats', readme: 'npx gnnbatch data stats qm9-like --json', args: ['data', 'stats', 'qm9-like', '--json'] },
  { id: 'data-get-qm9', readme: 'npx gnnbatch data get qm9 --exclude-uncharacterized', args: null, why: 'downloads QM9 (network)' },
  { id: 'data-get-aflow', readme: 'npx gnnbatch data get aflow --limit 20000', args: null, why: 'downloads from AFLOW (network)' },
  { id: 'data-build', readme: 'npx gnnbatch data build dsgdb9nsd.xyz.tar.bz2 -o qm9.gnb --graph fc --target U0', args: null, why: 'needs the QM9 archive from figshare' },
  { id: 'batching-compare', readme: 'npx gnnbatch batching compare qm9-like --batch 16,32,64,128 --steps 100000', args: ['batching', 'compare', 'qm9-like', '--batch', '16,32,64,128', '--steps', '100000'] },
  {
    id: 'train',
    readme: 'npx gnnbatch train qm9-like --model mpeu --policy dynamic --batch 32 --steps 3000 --atomref --profile --checkpoint run1',
    args: ['train', 'qm9-like', '--model', 'mpeu', '--policy', 'dynamic', '--batch', '32', '--steps', '3000', '--atomref', '--profile', '--checkpoint', 'run1'],
  },
  {
    id: 'profile',
    readme: 'npx gnnbatch profile qm9-like:2000 --model mpeu --batch 32 --policy dynamic,static-2pow --steps 20 --trace trace.json --html profile.html',
    args: ['profile', 'qm9-like:2000', '--model', 'mpeu', '--batch', '32', '--policy', 'dynamic,static-2pow', '--steps', '20', '--trace', 'trace.json', '--html', 'profile.html'],
  },
  { id: 'serve', readme: 'npx gnnbatch serve run1 --port 8080', args: null, why: 'a server: runs until stopped' },
  { id: 'study-qm9', readme: 'npx gnnbatch study qm9.gnb --models mpeu --batch 32,128 --reps 3 --steps 2000 -o study1', args: null, why: 'needs qm9.gnb (a download), and its 36 runs of 2000 steps take hours here' },
  { id: 'report-study1', readme: 'npx gnnbatch report study1/results.json -o study1/report.html --cost-per-hour 3', args: null, why: 'reads study1 (above); the same command on the default study is timed as `report`' },
  {
    id: 'recommend',
    readme: 'npx gnnbatch recommend qm9.gnb --model mpeu --batch 32 --steps 2000000 --verify',
    args: ['recommend', 'qm9-like:20000', '--model', 'mpeu', '--batch', '32', '--steps', '2000000', '--verify'],
    as: 'on qm9-like:20000 instead of qm9.gnb',
  },
  { id: 'study', readme: 'npx gnnbatch study', args: ['study'], main: true },
  {
    id: 'report',
    readme: null,
    args: ['report', 'study-results/results.json', '-o', 'study-results/report-again.html'],
    as: '`gnnbatch report` on the default study\'s results (what `report` costs on a finished study)',
    needs: 'study',
  },
];

/** The `npx gnnbatch ...` lines of the README template's code blocks (comments stripped). */
function readmeCommandLines(text = fs.readFileSync(TEMPLATE, 'utf8')) {
  const out = [];
  let inCode = false;
  for (const raw of text.split('\n')) {
    if (raw.startsWith('```')) {
      inCode = !inCode;
      continue;
    }
    if (!inCode) continue;
    const line = raw.replace(/\s+#.*$/, '').trim();
    if (line.startsWith('npx gnnbatch')) out.push(line);
  }
  return out;
}

/** Runs one command; resolves with its wall time, peak RSS and exit status. */
function timeCommand(args, cwd, timeoutMs) {
  return new Promise((resolve) => {
    const rssFile = path.join(cwd, `.rss-${process.pid}-${Date.now()}.json`);
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--require', PROBE, CLI, ...args], {
      cwd,
      env: { ...process.env, GNNBATCH_RSS_FILE: rssFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (d) => (tail = (tail + d).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      let probe = null;
      try {
        probe = JSON.parse(fs.readFileSync(rssFile, 'utf8'));
        fs.rmSync(rssFile);
      } catch {
        /* killed before its exit handler ran: no RSS figure */
      }
      resolve({ status, signal, wall_s: wall, max_rss_mib: probe ? probe.max_rss_kib / 1024 : null, user_s: probe?.user_s ?? null, system_s: probe?.system_s ?? null, tail });
    });
  });
}

const fmtTime = (s) => (s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);
const fmtMem = (mib) => (mib === null ? 'n/a' : mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(0)} MiB`);

async function run({ args, log }) {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build:ts first`);
  const i = args.indexOf('--only');
  const only = i >= 0 ? new Set(String(args[i + 1] ?? '').split(',').filter(Boolean)) : null;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-commands-'));
  const load0 = os.loadavg()[0];
  const started = new Date();
  const results = [];
  try {
    for (const c of COMMANDS) {
      if (!c.args || (only && !only.has(c.id))) continue;
      if (c.needs && !results.some((r) => r.id === c.needs && r.status === 0)) {
        results.push({ ...c, status: null, skipped: `needs ${c.needs}` });
        continue;
      }
      log(`${c.id}: gnnbatch ${c.args.join(' ')}`);
      const r = await timeCommand(c.args, work, 3 * 3600 * 1000);
      results.push({ ...c, ...r });
      log(`  ${r.status === 0 ? 'ok' : `FAILED (status ${r.status}, signal ${r.signal})`}: ${fmtTime(r.wall_s)}, peak RSS ${fmtMem(r.max_rss_mib)}`);
      if (r.status !== 0) log(r.tail);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const load1 = os.loadavg()[0];
  const { nativeInfo } = require(path.join(ROOT, 'dist', 'native'));
  const info = nativeInfo();
  const known = new Set(COMMANDS.map((c) => c.readme).filter(Boolean));
  const unknown = readmeCommandLines().filter((l) => !known.has(l));
  const cpu = os.cpus();
  // With --only, the rows of the commands not rerun are kept from the previous section, with its date.
  const kept = only ? previousRows() : { date: null, rows: new Map() };
  const rows = [];
  for (const c of COMMANDS) {
    const r = results.find((x) => x.id === c.id);
    if (r) rows.push(r);
    else if (c.args && kept.rows.has(c.readme ?? `npx gnnbatch ${c.args.join(' ')}`)) rows.push({ ...c, earlier: kept.rows.get(c.readme ?? `npx gnnbatch ${c.args.join(' ')}`) });
  }
  const main = results.find((r) => r.main && r.status === 0);
  const earlierMain = !main && kept.mainLine ? kept.mainLine : null;
  const md = [
    '## How long the README\'s commands take (`npm run bench -- commands`)',
    '',
    `${started.toISOString().slice(0, 10)}, ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB; Node ${process.version}; ${info.threads} native threads, SIMD ${info.simd}. ` +
      `Load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end (a machine shared with other jobs: a quiet one is faster). ` +
      'Each command ran once as a child process in a scratch folder; wall time from spawn to exit; peak memory is the child\'s peak resident set size (getrusage maxrss: every thread, native and worker, included).',
    '',
    ...(main ? [`**The default study (\`npx gnnbatch study\`) took ${fmtTime(main.wall_s)} and needed ${fmtMem(main.max_rss_mib)} of memory at its peak.**`, ''] : earlierMain ? [earlierMain, ''] : []),
    '| command | wall time | peak memory (RSS) | CPU time (user + sys) | note |',
    '|---|---:|---:|---:|---|',
    ...rows.map((r) => {
      const cmd = r.readme ?? `npx gnnbatch ${r.args.join(' ')}`;
      if (r.earlier) return r.earlier;
      if (r.skipped) return `| \`${cmd}\` | - | - | - | not run: ${r.skipped} |`;
      const ok = r.status === 0;
      const cpuS = r.user_s === null ? 'n/a' : fmtTime(r.user_s + r.system_s);
      const note = [r.as ?? '', ok ? '' : `FAILED (exit status ${r.status}${r.signal ? `, ${r.signal}` : ''})`].filter(Boolean).join('; ');
      return `| \`${cmd}\` | ${fmtTime(r.wall_s)} | ${fmtMem(r.max_rss_mib)} | ${cpuS} | ${note} |`;
    }),
    '',
    'Not timed: ' + COMMANDS.filter((c) => !c.args).map((c) => `\`${c.readme}\`: ${c.why}`).join('; ') + '.' +
      ' `npm install` (a native build from source, minutes) and `npm test` (every test) are not timed here: they would rebuild and load the addon of a working tree other jobs share.',
    ...(unknown.length ? ['', `README lines this benchmark does not know yet: ${unknown.map((l) => `\`${l}\``).join('; ')}.`] : []),
  ];
  return { markdown: md.join('\n'), data: { started: started.toISOString(), load_start: load0, load_end: load1, commands: results.map(({ tail, ...r }) => r) } };
}

/** The table rows (by command) and the date of the commands section now in RESULTS.md (for --only). */
function previousRows() {
  const file = path.join(__dirname, 'RESULTS.md');
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const m = /<!-- commands:begin -->([\s\S]*?)<!-- commands:end -->/.exec(text);
  const rows = new Map();
  if (!m) return { date: null, rows, mainLine: null };
  const date = /\n(\d{4}-\d{2}-\d{2}),/.exec(m[1])?.[1] ?? 'an earlier date';
  for (const line of m[1].split('\n')) {
    const c = /^\| `([^`]+)` \|/.exec(line);
    if (!c) continue;
    // A row kept from an earlier run already says which; else it is from this section's run.
    if (line.includes('(not rerun)')) {
      rows.set(c[1], line);
      continue;
    }
    const cells = line.slice(1, -1).split('|');
    const note = [cells[cells.length - 1].trim(), `measured in the run of ${date} (not rerun)`].filter(Boolean).join('; ');
    rows.set(c[1], `|${cells.slice(0, -1).join('|')}| ${note} |`);
  }
  const main = /^\*\*The default study .*\*\*$/m.exec(m[1]);
  return { date, rows, mainLine: main ? main[0].replace(/ \(run of [^)]*\)\.\*\*$/, '.**').replace(/\.\*\*$/, ` (run of ${date}).**`) : null };
}

module.exports = { run, COMMANDS, readmeCommandLines };
