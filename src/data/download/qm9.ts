/**
 * QM9 on demand: the original archive of Ramakrishnan et al. (2014) from its
 * figshare record, the list of the 3,054 molecules that failed the paper's
 * consistency check, and the study's `.gnb` store (fully connected, target U0).
 *
 * Sources (established 2026-12-01 by code search over public repositories;
 * this machine has no internet access, so none was fetched here):
 * - Record: figshare collection 978904, "Quantum chemistry structures and
 *   properties of 134 kilo molecules",
 *   https://figshare.com/collections/Quantum_chemistry_structures_and_properties_of_134_kilo_molecules/978904
 *   (paper: https://doi.org/10.1038/sdata.2014.22).
 * - Archive: https://ndownloader.figshare.com/files/3195389 (`dsgdb9nsd.xyz.tar.bz2`,
 *   133,885 xyz files). The same file id is what schnetpack, kgcnn and
 *   others download.
 * - Uncharacterized list: https://ndownloader.figshare.com/files/3195404
 *   (`uncharacterized.txt`), the `raw_url2` of torch_geometric.datasets.QM9;
 *   PyG parses it as `lines[9:-2]`, first column = 1-based molecule index.
 *
 * Digest: no SHA-256, MD5 or byte size of file 3195389 could be established
 * from a public source this session could read (the figshare API's
 * `computed_md5` could not be queried from here, and no project found pins one). None is pinned, so nothing is
 * invented; instead the archive is checked by (a) the transport (the
 * Content-Length/Content-Range total must be met exactly, resumes only under
 * the validator recorded when the part was started), (b) the bzip2 stream
 * CRCs, its end-of-stream marker and the tar structure, read before the file
 * is committed (the same pass yields the molecules of the build), and (c) the
 * member count, which must be 133,885 for the canonical URL. Only then is the
 * file renamed into place and its SHA-256 and MD5 recorded in `download.json`;
 * every later run re-checks the cached file against them and re-reads it, and
 * a cached file that fails is deleted with its record (the message names it).
 * Users can pin a digest themselves (`--sha256`, `--md5`, option `sha256`/`md5`).
 *
 * Bounds: the archive is about 86 MB; a body past `maxBytes` (default
 * 512 MiB, about 6x that) is cut, the list is capped at 4 MiB, and the whole
 * fetch has a deadline and a stall bound (see RequestOptions).
 */
import * as fs from 'fs';
import * as path from 'path';
import { DataFormatError, GnnError } from '../../errors';
import { saveStore } from '../cache';
import { readQm9Archive } from '../formats/qm9-xyz';
import { parseGraphRule } from '../graph-rule';
import { buildStoreAsync } from '../store';
import type { Structure } from '../types';
import { DurableWriteError, writeFileDurable } from '../../util/durable';
import { downloadFile, type DownloadPins, type DownloadResult, type RequestOptions } from './http';

/** The figshare download base; GNNBATCH_QM9_URL replaces it (tests, mirrors). */
export const QM9_BASE_URL = 'https://ndownloader.figshare.com/files';

/** The pinned facts about the QM9 files (see the file comment for where they come from). */
export const QM9_FILES = {
  archive: { id: '3195389', name: 'dsgdb9nsd.xyz.tar.bz2', molecules: 133885, maxBytes: 512 * 1024 * 1024 },
  uncharacterized: { id: '3195404', name: 'uncharacterized.txt', molecules: 3054, maxBytes: 4 * 1024 * 1024 },
} as const;

/** The deadline of a whole `data get` when none is given (4 hours). */
export const DEFAULT_DATASET_DEADLINE_MS = 4 * 3600_000;

/** A fetched file, as {@link getQm9} and `--json` report it: a download's result without the attempt count. */
export type FetchedFile = Omit<DownloadResult, 'attempts'>;

/** The store a `data get` built. */
export interface BuiltStore {
  file: string;
  graphs: number;
  atoms: number;
  edges: number;
  graphRule: string;
  target: string;
  /** Structures left out (the uncharacterized molecules, or beyond --limit). */
  excluded: number;
}

/** Options shared by the data set getters. */
export interface GetDatasetCommon extends RequestOptions {
  // From RequestOptions: `maxBytes` caps each downloaded file (QM9's archive: default 512 MiB),
  // `deadlineMs` bounds the whole fetch (default 4 hours), `stallTimeoutMs`/`stallBytes` a stalled transfer.
  /** Folder for this data set (default `<cache root>/<name>`). */
  dir?: string;
  /** Cache root (default: see cache.ts). */
  cacheDir?: string;
  /** Build the `.gnb` store after the download (default true). */
  build?: boolean;
  /** Environment to read GNNBATCH_* overrides from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Options of {@link getQm9}. */
export interface GetQm9Options extends GetDatasetCommon, DownloadPins {
  /** Leave out the 3,054 molecules of the uncharacterized list. */
  excludeUncharacterized?: boolean;
}

/** What {@link getQm9} returns. */
export interface Qm9Result {
  dataset: 'qm9';
  dir: string;
  files: FetchedFile[];
  store: BuiltStore | null;
}

function fetched(r: DownloadResult): FetchedFile {
  return { url: r.url, file: r.file, bytes: r.bytes, sha256: r.sha256, md5: r.md5, cached: r.cached, resumed: r.resumed };
}

interface Manifest {
  [file: string]: { url: string; bytes: number; sha256: string; md5: string; fetchedAt: string };
}

function readManifest(dir: string): Manifest {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'download.json'), 'utf8')) as unknown;
    return m && typeof m === 'object' && !Array.isArray(m) ? (m as Manifest) : {};
  } catch {
    return {};
  }
}

/**
 * Records what was fetched (atomically), so later runs re-check the cached
 * files against the first download. Call it only for files that passed their
 * content check (downloadFile's `verify`).
 */
export function recordDownloads(dir: string, results: readonly FetchedFile[]): void {
  const m = readManifest(dir);
  for (const r of results) {
    const key = path.basename(r.file);
    if (!r.cached || !m[key]) m[key] = { url: r.url, bytes: r.bytes, sha256: r.sha256, md5: r.md5, fetchedAt: new Date().toISOString() };
  }
  writeManifest(dir, m);
}

/** Drops the record of a file whose content failed its check (the record would pin a corrupt file). */
function forgetDownload(dir: string, name: string): void {
  const m = readManifest(dir);
  if (!(name in m)) return;
  delete m[name];
  writeManifest(dir, m);
}

function writeManifest(dir: string, m: Manifest): void {
  writeFileDurable(path.join(dir, 'download.json'), JSON.stringify(m, null, 2) + '\n', { error: (f) => new DurableWriteError('ERR_GNN_DOWNLOAD_WRITE', f) });
}

/** The pins for one file: the caller's, else the digest recorded at its first download. */
function pinsFor(dir: string, name: string, given: DownloadPins): DownloadPins {
  if (given.sha256 || given.md5 || given.size !== undefined) return given;
  const rec = readManifest(dir)[name];
  return rec ? { sha256: rec.sha256, size: rec.bytes } : {};
}

/**
 * Parses the uncharacterized list: the 1-based indices in the first column of
 * every line that starts with an integer (the header and footer lines do not).
 */
export function parseUncharacterized(text: string, file: string): Set<number> {
  const out = new Set<number>();
  for (const line of text.split(/\r?\n/)) {
    const tok = line.trim().split(/\s+/);
    if (tok.length >= 2 && /^\d+$/.test(tok[0])) out.add(Number(tok[0]));
  }
  if (out.size === 0) throw new GnnError('ERR_GNN_DATA_FORMAT', `${file}: no molecule index found (expected lines starting with the 1-based index)`);
  return out;
}

/**
 * Network and HTTP failures keep their code and gain how to do it by hand:
 * put the file where the download would have (the next run verifies and
 * builds it), or build from any copy with `gnnbatch data build`.
 */
async function withHandHint<T>(url: string, dest: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof GnnError && (e.code === 'ERR_GNN_DOWNLOAD_NETWORK' || e.code === 'ERR_GNN_DOWNLOAD_HTTP'))
      throw new GnnError(e.code, `${e.message}; to place it by hand, download ${url} to ${dest} and run this again, or run "gnnbatch data build FILE -o qm9.gnb" on your copy`, { cause: e });
    throw e;
  }
}

/** The molecule index of a QM9 structure (`gdb 17` -> 17). */
function moleculeIndex(s: Structure): number {
  return Number(s.id);
}

/**
 * Downloads one file with a content check: a failed check (of a fresh
 * download or of the cached file) also drops the file's record in
 * download.json, which would otherwise pin the corrupt version.
 */
async function fetchChecked(dir: string, name: string, url: string, options: Parameters<typeof downloadFile>[0]): Promise<FetchedFile> {
  let checkFailed = false;
  const verify = options.verify;
  try {
    const r = fetched(await withHandHint(url, options.dest, () => downloadFile({
      ...options,
      verify: verify && (async (file) => {
        try {
          await verify(file);
        } catch (e) {
          checkFailed = true;
          throw e;
        }
      }),
    })));
    recordDownloads(dir, [r]);
    return r;
  } catch (e) {
    if (checkFailed) forgetDownload(dir, name);
    throw e;
  }
}

/**
 * Downloads QM9 (and with `excludeUncharacterized` the list) into the data
 * set folder and builds `qm9-fc.gnb` (or `qm9-fc-characterized.gnb`) there.
 * Each file is read and checked before it is committed and recorded (the
 * archive's check is the build's own parse).
 */
export async function getQm9(options: GetQm9Options = {}, dir: string): Promise<Qm9Result> {
  const env = options.env ?? process.env;
  const base = (env.GNNBATCH_QM9_URL || QM9_BASE_URL).replace(/\/+$/, '');
  const canonical = !env.GNNBATCH_QM9_URL;
  fs.mkdirSync(dir, { recursive: true });
  const deadlineAt = Date.now() + (options.deadlineMs ?? DEFAULT_DATASET_DEADLINE_MS);
  const transport = (maxBytes: number): RequestOptions => ({
    retries: options.retries, backoffMs: options.backoffMs, maxBackoffMs: options.maxBackoffMs, timeoutMs: options.timeoutMs, signal: options.signal, onProgress: options.onProgress,
    stallTimeoutMs: options.stallTimeoutMs, stallBytes: options.stallBytes, limitNames: options.limitNames,
    maxBytes: Math.min(maxBytes, options.maxBytes ?? Infinity),
    // One deadline for the whole fetch: each file gets what is left of it.
    deadlineMs: Math.max(1, deadlineAt - Date.now()),
  });
  // The list first (small): the archive's check then knows which molecules to leave out.
  let skip: Set<number> | null = null;
  let list: FetchedFile | null = null;
  if (options.excludeUncharacterized) {
    const listName = QM9_FILES.uncharacterized.name;
    const listUrl = `${base}/${QM9_FILES.uncharacterized.id}`;
    list = await fetchChecked(dir, listName, listUrl, {
      ...transport(QM9_FILES.uncharacterized.maxBytes), ...pinsFor(dir, listName, {}), url: listUrl, dest: path.join(dir, listName),
      verify: async (file) => {
        skip = parseUncharacterized(fs.readFileSync(file, 'utf8'), file);
        if (canonical && skip.size !== QM9_FILES.uncharacterized.molecules)
          throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${listUrl}: the list names ${skip.size} molecules, expected ${QM9_FILES.uncharacterized.molecules}`);
      },
    });
  }
  const archiveName = QM9_FILES.archive.name;
  const archiveUrl = `${base}/${QM9_FILES.archive.id}`;
  const archiveDest = path.join(dir, archiveName);
  fs.rmSync(`${archiveDest}.part`, { force: true }); // an older version's part: it has no validator, so it cannot be resumed
  const keep = options.build !== false;
  let structures: Structure[] = [];
  let total = 0;
  const archive = await fetchChecked(dir, archiveName, archiveUrl, {
    ...transport(QM9_FILES.archive.maxBytes), ...pinsFor(dir, archiveName, { size: options.size, sha256: options.sha256, md5: options.md5 }),
    url: archiveUrl, dest: archiveDest,
    // Ends in .tar.bz2 so the reader decodes it as what it is.
    partFile: path.join(dir, archiveName.replace(/\.tar\.bz2$/, '.part.tar.bz2')),
    verify: async (file) => {
      structures = [];
      total = 0;
      const leaveOut: Set<number> | null = skip;
      try {
        for await (const s of readQm9Archive(file)) {
          total++;
          if (keep && !(leaveOut && leaveOut.has(moleculeIndex(s)))) structures.push(s);
        }
      } catch (e) {
        structures = [];
        if (e instanceof DataFormatError) throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', e.message, { cause: e });
        throw e;
      }
      if ((canonical && total !== QM9_FILES.archive.molecules) || total === 0)
        throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `the archive holds ${total} molecules, expected ${canonical ? QM9_FILES.archive.molecules : 'at least 1'}`);
    },
  });
  const files = list ? [archive, list] : [archive];
  if (!keep) return { dataset: 'qm9', dir, files, store: null };

  const graph = parseGraphRule('fc');
  const built = await buildStoreAsync(structures, { graph, source: archive.file });
  const storeFile = path.join(dir, skip ? 'qm9-fc-characterized.gnb' : 'qm9-fc.gnb');
  saveStore(built.store, storeFile);
  const s = built.store;
  return {
    dataset: 'qm9', dir, files,
    store: { file: storeFile, graphs: s.numGraphs, atoms: s.atomicNumber.length, edges: s.senders.length, graphRule: s.graphRule, target: 'U0', excluded: total - structures.length },
  };
}
