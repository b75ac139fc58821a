/**
 * AFLOW on demand: pages through the AFLUX REST API (Rose et al., Comput.
 * Mater. Sci. 137, 362 (2017)) for the study's fields and builds the store
 * (knn:12).
 *
 * URL format (as the study's own scripts/data/get_aflow_csv.py in
 * tisabe/jraph_MPEU and other AFLUX clients use it, found by code search):
 *   https://aflow.org/API/aflux/v1.0/?<matchbook>,$paging(<page>,<size>),$format(json)
 * Pages are 1-based; `$paging(0)` would return the whole result set at once,
 * so page 0 is never asked for. A page shorter than `size` is the last.
 *
 * Resume: each page is written atomically as `page-NNNNN.json` (a JSON array,
 * the format src/data/formats/aflow-json.ts reads) in a folder named after the
 * query's fingerprint, and `state.json` (also written atomically) records the
 * complete pages and whether the last one was seen. An interrupted fetch
 * continues with the first page that is not complete.
 *
 * Nothing unchecked is stored: a page is written only after the AFLOW loader
 * has read it (every entry with its fields) and it holds no more entries than
 * the page size; a cached page that fails the build is deleted (the message
 * names it) so the next run fetches it afresh.
 *
 * Bounds: pages (`maxPages`, default enough for the whole AFLOW database at
 * the page size: a listing longer than that is endless), bytes of one page
 * (`maxPageBytes`, default 16 KiB per entry of the page size and at least
 * 16 MiB, cut while it is read: a page costs about 10x its bytes of heap once
 * parsed, 677 MiB for a 64 MiB page, so the bound keeps two pages in flight
 * far from V8's heap limit), the whole fetch's
 * time (`deadlineMs`, default 4 hours) and stalls (`stallTimeoutMs`).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DataFormatError, GnnError } from '../../errors';
import { saveStore } from '../cache';
import { parseAflowJson } from '../formats/aflow-json';
import { parseGraphRule } from '../graph-rule';
import { buildStoreAsync } from '../store';
import type { Structure } from '../types';
import { DurableWriteError, writeFileDurable } from '../../util/durable';
import { DEFAULT_MAX_TEXT_BYTES, fetchText, mapLimit, type RequestOptions } from './http';
import { DEFAULT_DATASET_DEADLINE_MS, type BuiltStore, type GetDatasetCommon } from './qm9';

/** The AFLUX endpoint; GNNBATCH_AFLOW_URL replaces it (tests, mirrors). */
export const AFLUX_URL = 'https://aflow.org/API/aflux/v1.0/';

/** The fields the study reads (the loader needs geometry, positions_fractional and species/compound). */
export const AFLOW_FIELDS = ['auid', 'compound', 'geometry', 'positions_fractional', 'species', 'enthalpy_formation_atom', 'Egap'] as const;

/**
 * More entries than the AFLOW database holds (about 3.5 million in 2026): the
 * default page bound is this many entries' worth of pages.
 */
export const AFLOW_MAX_ENTRIES = 5_000_000;

/** Options of {@link getAflow}. */
export interface GetAflowOptions extends GetDatasetCommon {
  /** AFLUX matchbook filters, e.g. `species(Na,Cl),Egap(0*,*5)` (default: none, every entry with the fields). */
  query?: string;
  /** Keep at most this many entries (pages beyond are not fetched). */
  limit?: number;
  /** Entries per page (default 1000, or `limit` when smaller). */
  pageSize?: number;
  /** Pages in flight at once (default 2: AFLUX is a shared service). */
  concurrency?: number;
  /** Called after each page is stored. */
  onPage?: (page: number, entries: number) => void;
  /** Highest page number fetched (default ceil(AFLOW_MAX_ENTRIES / pageSize)); a listing that goes on fails with ERR_GNN_DOWNLOAD_LIMIT. */
  maxPages?: number;
  /** Bytes of one page (default max(16 MiB, 16 KiB x pageSize)), bounded while it is read; `maxBytes` does not apply to pages. */
  maxPageBytes?: number;
}

/** What {@link getAflow} returns. */
export interface AflowResult {
  dataset: 'aflow';
  dir: string;
  matchbook: string;
  pagesDir: string;
  pages: { page: number; file: string; entries: number; url: string; cached: boolean }[];
  entries: number;
  store: BuiltStore | null;
}

interface PageState {
  version: 1;
  matchbook: string;
  pageSize: number;
  /** Complete pages: number -> entries. */
  pages: Record<string, number>;
  /** The last page (shorter than pageSize), once seen. */
  lastPage: number | null;
}

/** The keyword of a matchbook term: `Egap(0*,*5)` -> `Egap`. */
function keywordOf(term: string): string {
  return term.trim().replace(/^\$/, '').split('(')[0].trim();
}

/** Splits a matchbook at the commas outside parentheses. */
function terms(matchbook: string): string[] {
  const out: string[] = [];
  let depth = 0, cur = '';
  for (const ch of matchbook) {
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** The matchbook: the user's filters, then each study field the filters do not already name. */
export function aflowMatchbook(query = ''): string {
  const q = terms(query);
  if (q.some((t) => t.startsWith('$'))) throw new GnnError('ERR_GNN_ARGUMENT', `--query ${query}: directives ($paging, $format, ...) are set by gnnbatch; give only filters`);
  const named = new Set(q.map(keywordOf));
  return [...q, ...AFLOW_FIELDS.filter((f) => !named.has(f))].join(',');
}

/** The URL of one page; AFLUX reads `(),*!:$'` literally, so only other characters are escaped. */
export function aflowPageUrl(base: string, matchbook: string, page: number, size: number): string {
  if (!Number.isInteger(page) || page < 1) throw new GnnError('ERR_GNN_INTERNAL', `AFLUX pages are 1-based, not ${page} ($paging(0) returns everything)`);
  const enc = (s: string): string => encodeURIComponent(s).replace(/%2C/gi, ',').replace(/%24/g, '$').replace(/%3A/gi, ':');
  const sep = base.includes('?') ? (base.endsWith('?') ? '' : ',') : '?';
  return `${base}${sep}${enc(matchbook)},$paging(${page},${size}),$format(json)`;
}

function pageFile(dir: string, page: number): string {
  return path.join(dir, `page-${String(page).padStart(5, '0')}.json`);
}

/** Writes a page or the state durably (src/util/durable.ts); a failure is ERR_GNN_DOWNLOAD_WRITE naming the file. */
function writeAtomic(file: string, text: string): void {
  writeFileDurable(file, text, { error: (f) => new DurableWriteError('ERR_GNN_DOWNLOAD_WRITE', f) });
}

function readState(file: string, matchbook: string, pageSize: number): PageState {
  const fresh: PageState = { version: 1, matchbook, pageSize, pages: {}, lastPage: null };
  let s: PageState;
  try {
    s = JSON.parse(fs.readFileSync(file, 'utf8')) as PageState;
  } catch {
    return fresh;
  }
  if (!s || s.version !== 1 || s.matchbook !== matchbook || s.pageSize !== pageSize || typeof s.pages !== 'object' || s.pages === null) return fresh;
  return s;
}

/** The entries of a page body: a JSON array, or an object of entries (older AFLUX answers). */
function pageEntries(text: string, url: string): unknown[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new GnnError('ERR_GNN_DOWNLOAD_HTTP', `${url}: the answer is not JSON (${(e as Error).message}); AFLUX said: ${text.slice(0, 200).replace(/\s+/g, ' ')}`);
  }
  if (Array.isArray(doc)) return doc;
  if (doc && typeof doc === 'object') return Object.values(doc as Record<string, unknown>);
  throw new GnnError('ERR_GNN_DOWNLOAD_HTTP', `${url}: expected a JSON array of entries, found ${JSON.stringify(doc).slice(0, 80)}`);
}

/**
 * Fetches the pages of the query into `<dir>/pages-<fingerprint>/` (resuming)
 * and, unless `build: false`, builds `<dir>/aflow-<fingerprint>[-N].gnb`.
 */
export async function getAflow(options: GetAflowOptions = {}, dir: string): Promise<AflowResult> {
  const env = options.env ?? process.env;
  const base = env.GNNBATCH_AFLOW_URL || AFLUX_URL;
  const matchbook = aflowMatchbook(options.query);
  const limit = options.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new GnnError('ERR_GNN_ARGUMENT', `limit ${limit}: expected an integer >= 1`);
  const pageSize = options.pageSize ?? Math.min(1000, limit ?? 1000);
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new GnnError('ERR_GNN_ARGUMENT', `pageSize ${pageSize}: expected an integer >= 1`);
  const concurrency = options.concurrency ?? 2;
  const maxPages = options.maxPages ?? Math.ceil(AFLOW_MAX_ENTRIES / pageSize);
  if (!Number.isInteger(maxPages) || maxPages < 1) throw new GnnError('ERR_GNN_ARGUMENT', `maxPages ${maxPages}: expected an integer >= 1`);
  const names = { maxPages: options.limitNames?.maxPages ?? 'maxPages', maxPageBytes: options.limitNames?.maxPageBytes ?? 'maxPageBytes' };
  const fp = crypto.createHash('sha256').update(`${matchbook}\n${pageSize}`).digest('hex').slice(0, 12);
  const pagesDir = path.join(dir, `pages-${fp}`);
  fs.mkdirSync(pagesDir, { recursive: true });
  const stateFile = path.join(pagesDir, 'state.json');
  const state = readState(stateFile, matchbook, pageSize);
  // A page counts as complete only when the state says so and its file is there.
  for (const k of Object.keys(state.pages)) if (!fs.existsSync(pageFile(pagesDir, Number(k)))) delete state.pages[k];
  if (state.lastPage !== null && state.pages[state.lastPage] === undefined) state.lastPage = null;
  const wanted = limit !== undefined ? Math.ceil(limit / pageSize) : Infinity;
  const deadlineAt = Date.now() + (options.deadlineMs ?? DEFAULT_DATASET_DEADLINE_MS);
  const transport = (): RequestOptions => ({
    retries: options.retries, backoffMs: options.backoffMs, maxBackoffMs: options.maxBackoffMs, timeoutMs: options.timeoutMs, signal: options.signal,
    stallTimeoutMs: options.stallTimeoutMs, stallBytes: options.stallBytes,
    maxBytes: options.maxPageBytes ?? Math.max(DEFAULT_MAX_TEXT_BYTES, pageSize * 16384),
    limitNames: { ...options.limitNames, maxBytes: names.maxPageBytes },
    // One deadline for the whole listing: each page gets what is left of it.
    deadlineMs: Math.max(1, deadlineAt - Date.now()),
  });
  const fetchedNow = new Set<number>();
  const save = (): void => writeAtomic(stateFile, JSON.stringify(state, null, 2) + '\n');

  const lastNeeded = (): number => Math.min(wanted, state.lastPage ?? Infinity);
  for (let next = 1; next <= lastNeeded(); ) {
    const wave: number[] = [];
    for (let p = next; wave.length < concurrency && p <= Math.min(lastNeeded(), maxPages); p++) if (state.pages[p] === undefined) wave.push(p);
    if (wave.length === 0 && lastNeeded() > maxPages) {
      // Every page up to the bound is complete and the listing has not ended.
      save();
      throw new GnnError('ERR_GNN_DOWNLOAD_LIMIT', `AFLUX '${matchbook}': the listing did not end within ${maxPages} pages of ${pageSize} entries, the limit (${names.maxPages}); the ${Object.keys(state.pages).length} page(s) fetched are kept in ${pagesDir}; raise the limit or narrow the query`);
    }
    if (wave.length === 0) break;
    await mapLimit(wave, concurrency, async (page) => {
      const url = aflowPageUrl(base, matchbook, page, pageSize);
      let text: string;
      try {
        ({ text } = await fetchText(url, transport()));
      } catch (e) {
        if (e instanceof GnnError && (e.code === 'ERR_GNN_DOWNLOAD_NETWORK' || e.code === 'ERR_GNN_DOWNLOAD_HTTP')) {
          const n = Object.keys(state.pages).length;
          const kept = n > 0 ? `the ${n} complete page(s) are kept in ${pagesDir} and the next run resumes after them; ` : '';
          throw new GnnError(e.code, `${e.message}; ${kept}AFLUX JSON fetched by hand builds with "gnnbatch data build FILE.json -o aflow.gnb"`, { cause: e });
        }
        throw e;
      }
      const entries = pageEntries(text, url);
      if (entries.length > pageSize) throw new GnnError('ERR_GNN_DOWNLOAD_HTTP', `${url}: the page holds ${entries.length} entries, more than the page size ${pageSize}; refusing it`);
      if (state.lastPage !== null && page > state.lastPage) return; // beyond the end (found by a sibling page)
      if (entries.length > 0 || page === 1) {
        // The loader's check before the page is stored (located in the file it would have been).
        try {
          parseAflowJson(text, pageFile(pagesDir, page));
        } catch (e) {
          if (e instanceof DataFormatError) e.message += `; the page (from ${url}) was not stored`;
          throw e;
        }
        writeAtomic(pageFile(pagesDir, page), JSON.stringify(entries) + '\n');
        state.pages[page] = entries.length;
        fetchedNow.add(page);
      }
      if (entries.length < pageSize) state.lastPage = Math.min(state.lastPage ?? Infinity, entries.length === 0 && page > 1 ? page - 1 : page);
      save();
      options.onPage?.(page, entries.length);
    });
    next = wave[wave.length - 1] + 1;
  }
  // Pages past the last one (a sibling in the same wave) are dropped.
  if (state.lastPage !== null) for (const k of Object.keys(state.pages)) if (Number(k) > state.lastPage) delete state.pages[k];
  save();

  const pageNums = Object.keys(state.pages).map(Number).filter((p) => p <= lastNeeded()).sort((a, b) => a - b);
  const pages = pageNums.map((page) => ({ page, file: pageFile(pagesDir, page), entries: state.pages[page], url: aflowPageUrl(base, matchbook, page, pageSize), cached: !fetchedNow.has(page) }));
  const available = pages.reduce((a, p) => a + p.entries, 0);
  const entries = limit !== undefined ? Math.min(limit, available) : available;
  const result: AflowResult = { dataset: 'aflow', dir, matchbook, pagesDir, pages, entries, store: null };
  if (options.build === false) return result;

  const structures: Structure[] = [];
  for (const p of pages) {
    let parsed: Structure[];
    try {
      parsed = parseAflowJson(fs.readFileSync(p.file, 'utf8'), p.file);
    } catch (e) {
      if (!(e instanceof DataFormatError)) throw e;
      // A cached page that does not build is not trusted again: delete it, the next run fetches it afresh.
      fs.rmSync(p.file, { force: true });
      delete state.pages[p.page];
      if (state.lastPage === p.page) state.lastPage = null;
      save();
      throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${e.message}; deleted the cached page ${p.file}, run again to fetch it afresh`, { cause: e });
    }
    for (const s of parsed) {
      if (structures.length >= entries) break;
      structures.push(s);
    }
  }
  if (structures.length === 0) throw new GnnError('ERR_GNN_DATA_NOT_FOUND', `AFLUX returned no entries for '${matchbook}' (${pages[0]?.url ?? base})`);
  const built = await buildStoreAsync(structures, { graph: parseGraphRule('knn:12'), source: `aflux:${matchbook}` });
  const storeFile = path.join(dir, `aflow-${fp}${limit !== undefined ? `-${entries}` : ''}.gnb`);
  saveStore(built.store, storeFile);
  const s = built.store;
  result.store = { file: storeFile, graphs: s.numGraphs, atoms: s.atomicNumber.length, edges: s.senders.length, graphRule: s.graphRule, target: 'enthalpy_formation_atom', excluded: available - structures.length };
  return result;
}
