/** `gnnbatch data get qm9|aflow`: the study's data sets on demand (over getDataset). */
import type { Command } from 'commander';
import { getDataset, DATASETS, type DownloadProgress } from '../data/download';
import { UsageError } from '../errors';
import { intOption } from './format';
import { datasetDir } from '../data/download/cache';
import { getRmd17 } from '../data/download/rmd17';

interface GetOptions {
  to?: string;
  cacheDir?: string;
  build: boolean;
  excludeUncharacterized?: boolean;
  query?: string;
  limit?: number;
  pageSize?: number;
  sha256?: string;
  md5?: string;
  json?: boolean;
  maxBytes?: number;
  maxPages?: number;
  maxPageBytes?: number;
  molecule?: string;
  deadline?: number;
  stallTimeout?: number;
  retries?: number;
}

/** How the bounds are called on this command line (the errors name the flag to change). */
const LIMIT_FLAGS = { maxBytes: '--max-bytes', maxPages: '--max-pages', maxPageBytes: '--max-page-bytes', deadlineMs: '--deadline', stallTimeoutMs: '--stall-timeout' };

/** Parser for a positive number of seconds. */
function secondsOption(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`${name} ${v}: expected a positive number of seconds`);
    return n;
  };
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** A progress line (bytes, rate, ETA) on stderr when it is a terminal; null otherwise. */
function progressLine(): ((p: DownloadProgress) => void) | null {
  if (!process.stderr.isTTY) return null;
  let t0 = 0, b0 = 0, last = 0;
  return (p) => {
    const now = Date.now();
    if (t0 === 0) {
      t0 = now;
      b0 = p.received;
    }
    if (now - last < 200 && p.received !== p.total) return;
    last = now;
    const rate = (p.received - b0) / Math.max(1e-3, (now - t0) / 1000);
    const eta = p.total !== null && rate > 0 ? ` ETA ${Math.ceil((p.total - p.received) / rate)} s` : '';
    process.stderr.write(`\r${p.url}: ${mb(p.received)}${p.total !== null ? ` / ${mb(p.total)}` : ''} ${mb(rate)}/s${eta}\x1b[K`);
  };
}

/** Adds `data get` to the `data` command group. */
export function registerDataGet(data: Command): Command {
  return data
    .command('get')
    .description('download a data set of the study (qm9, aflow), verify it, cache it and build its .gnb store')
    .argument('<name>', `data set: ${DATASETS.join(' | ')} | rmd17`)
    .option('--molecule <names>', 'rmd17: comma-separated molecules to build stores for (default all 10; energies and forces in eV, eV/Å)')
    .option('--to <dir>', 'folder for the files and the store (default <cache dir>/<name>)')
    .option('--cache-dir <dir>', 'cache root (default $GNNBATCH_CACHE_DIR, else $XDG_CACHE_HOME/gnnbatch or ~/.cache/gnnbatch)')
    .option('--no-build', 'download only; do not build the .gnb store')
    .option('--exclude-uncharacterized', 'qm9: leave out the 3,054 molecules that failed the consistency check')
    .option('--sha256 <hex>', 'qm9: pin the archive to this SHA-256')
    .option('--md5 <hex>', 'qm9: pin the archive to this MD5')
    .option('--query <matchbook>', 'aflow: AFLUX filters, e.g. "species(Na,Cl),Egap(0*,*5)"')
    .option('--limit <n>', 'aflow: keep at most N entries', intOption('--limit', 1))
    .option('--page-size <n>', 'aflow: entries per AFLUX page (default 1000)', intOption('--page-size', 1))
    .option('--max-bytes <n>', 'qm9: cut a downloaded file past N bytes (default 536870912 for the ~86 MB archive)', intOption('--max-bytes', 1))
    .option('--max-pages <n>', 'aflow: fail when the AFLUX listing has not ended after N pages (default: the whole database at the page size)', intOption('--max-pages', 1))
    .option('--max-page-bytes <n>', 'aflow: cut one AFLUX page past N bytes (default 16 KiB per entry of the page size, at least 16 MiB)', intOption('--max-page-bytes', 1))
    .option('--deadline <s>', 'fail when the whole download takes longer than S seconds (default 14400)', secondsOption('--deadline'))
    .option('--stall-timeout <s>', 'fail a transfer that delivers less than 16 KiB in S seconds (default 60)', secondsOption('--stall-timeout'))
    .option('--retries <n>', 'retries of a failed request (default 4)', intOption('--retries', 0))
    .option('--json', 'print what was fetched and where as one JSON document')
    .action(async (name: string, o: GetOptions) => {
      if (name === 'rmd17') {
        const r = await getRmd17({
          build: o.build, retries: o.retries, sha256: o.sha256?.toLowerCase(), md5: o.md5?.toLowerCase(), maxBytes: o.maxBytes, limit: o.limit, limitNames: LIMIT_FLAGS,
          molecules: o.molecule?.split(',').map((m) => m.trim()).filter((m) => m !== ''),
          deadlineMs: o.deadline !== undefined ? o.deadline * 1000 : undefined, stallTimeoutMs: o.stallTimeout !== undefined ? o.stallTimeout * 1000 : undefined,
        }, datasetDir('rmd17', { to: o.to, cacheDir: o.cacheDir }));
        if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        else {
          const f = r.files[0];
          const lines = [`${f.cached ? 'cached' : 'fetched'} ${f.file} (${f.bytes} bytes, sha256 ${f.sha256}) from ${f.url}`];
          for (const s of r.stores) lines.push(`wrote ${s.file}: ${s.graphs} graphs, ${s.atoms} atoms, ${s.edges} edges (${s.graphRule}), target ${s.target}, forces`);
          process.stdout.write(lines.join('\n') + '\n');
        }
        return;
      }
      if (o.molecule !== undefined) throw new UsageError('--molecule applies to rmd17 only');
      if (!(DATASETS as readonly string[]).includes(name)) throw new UsageError(`data get ${name}: unknown data set; use one of ${DATASETS.join(', ')}`);
      const qm9Only = (['excludeUncharacterized', 'sha256', 'md5', 'maxBytes'] as const).filter((k) => o[k] !== undefined);
      const aflowOnly = (['query', 'limit', 'pageSize', 'maxPages', 'maxPageBytes'] as const).filter((k) => o[k] !== undefined);
      const flag = (k: string): string => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      if (name === 'aflow' && qm9Only.length) throw new UsageError(`${flag(qm9Only[0])} applies to qm9 only`);
      if (name === 'qm9' && aflowOnly.length) throw new UsageError(`${flag(aflowOnly[0])} applies to aflow only`);
      for (const k of ['sha256', 'md5'] as const) {
        const v = o[k];
        if (v !== undefined && !new RegExp(`^[0-9a-fA-F]{${k === 'sha256' ? 64 : 32}}$`).test(v)) throw new UsageError(`--${k} ${v}: expected ${k === 'sha256' ? 64 : 32} hex digits`);
      }
      const onProgress = o.json ? null : progressLine();
      const common = {
        dir: o.to, cacheDir: o.cacheDir, build: o.build, onProgress: onProgress ?? undefined, retries: o.retries,
        deadlineMs: o.deadline !== undefined ? o.deadline * 1000 : undefined, stallTimeoutMs: o.stallTimeout !== undefined ? o.stallTimeout * 1000 : undefined, limitNames: LIMIT_FLAGS,
      };
      const result = name === 'qm9'
        ? await getDataset('qm9', { ...common, excludeUncharacterized: o.excludeUncharacterized, sha256: o.sha256?.toLowerCase(), md5: o.md5?.toLowerCase(), maxBytes: o.maxBytes })
        : await getDataset('aflow', { ...common, query: o.query, limit: o.limit, pageSize: o.pageSize, maxPages: o.maxPages, maxPageBytes: o.maxPageBytes, onPage: process.stderr.isTTY && !o.json ? (p, n) => process.stderr.write(`\rAFLUX page ${p}: ${n} entries\x1b[K`) : undefined });
      if (onProgress || (process.stderr.isTTY && !o.json)) process.stderr.write('\r\x1b[K');
      if (o.json) {
        process.stdout.write(JSON.stringify(result, null, 2) + '\n');
        return;
      }
      const lines: string[] = [];
      if (result.dataset === 'qm9') {
        for (const f of result.files) lines.push(`${f.cached ? 'cached' : 'fetched'} ${f.file} (${f.bytes} bytes, sha256 ${f.sha256}) from ${f.url}`);
      } else {
        const fetchedPages = result.pages.filter((p) => !p.cached).length;
        lines.push(`AFLUX '${result.matchbook}': ${result.entries} entries in ${result.pages.length} page(s) (${fetchedPages} fetched now, ${result.pages.length - fetchedPages} cached) under ${result.pagesDir}`);
      }
      const s = result.store;
      if (s) lines.push(`wrote ${s.file}: ${s.graphs} graphs, ${s.atoms} atoms, ${s.edges} edges (${s.graphRule}), target ${s.target}${s.excluded ? `, ${s.excluded} left out` : ''}`);
      else lines.push(`not built (--no-build); build it with "gnnbatch data build ${result.dataset === 'qm9' ? result.files[0].file : result.pagesDir + '/page-00001.json'} -o OUT.gnb"`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
