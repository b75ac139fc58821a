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
 * Content-Length/Content-Range total must be met exactly), (b) the bzip2
 * stream CRCs and tar structure while the store is built, and (c) the member
 * count, which must be 133,885 for the canonical URL. The SHA-256 and MD5 of
 * the first download are recorded in `download.json` next to the file and
 * every later run re-checks the cached file against them; users can pin a
 * digest themselves (`--sha256`, `--md5`, option `sha256`/`md5`).
 */
import * as fs from 'fs';
import * as path from 'path';
import { GnnError } from '../../errors';
import { saveStore } from '../cache';
import { readQm9Archive } from '../formats/qm9-xyz';
import { parseGraphRule } from '../graph-rule';
import { buildStoreAsync } from '../store';
import type { Structure } from '../types';
import { commitFile, downloadFile, type DownloadPins, type DownloadResult, type RequestOptions } from './http';

/** The figshare download base; GNNBATCH_QM9_URL replaces it (tests, mirrors). */
export const QM9_BASE_URL = 'https://ndownloader.figshare.com/files';

/** The pinned facts about the QM9 files (see the file comment for where they come from). */
export const QM9_FILES = {
  archive: { id: '3195389', name: 'dsgdb9nsd.xyz.tar.bz2', molecules: 133885 },
  uncharacterized: { id: '3195404', name: 'uncharacterized.txt', molecules: 3054 },
} as const;

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

/** Records what was fetched (atomically), so later runs re-check the cached files against the first download. */
export function recordDownloads(dir: string, results: readonly FetchedFile[]): void {
  const m = readManifest(dir);
  for (const r of results) {
    const key = path.basename(r.file);
    if (!r.cached || !m[key]) m[key] = { url: r.url, bytes: r.bytes, sha256: r.sha256, md5: r.md5, fetchedAt: new Date().toISOString() };
  }
  const file = path.join(dir, 'download.json');
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(m, null, 2) + '\n');
  commitFile(tmp, file);
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
 * Downloads QM9 (and with `excludeUncharacterized` the list) into the data
 * set folder and builds `qm9-fc.gnb` (or `qm9-fc-characterized.gnb`) there.
 */
export async function getQm9(options: GetQm9Options = {}, dir: string): Promise<Qm9Result> {
  const env = options.env ?? process.env;
  const base = (env.GNNBATCH_QM9_URL || QM9_BASE_URL).replace(/\/+$/, '');
  const canonical = !env.GNNBATCH_QM9_URL;
  fs.mkdirSync(dir, { recursive: true });
  const transport: RequestOptions = { retries: options.retries, backoffMs: options.backoffMs, maxBackoffMs: options.maxBackoffMs, timeoutMs: options.timeoutMs, signal: options.signal, onProgress: options.onProgress };
  const files: FetchedFile[] = [];
  const archiveName = QM9_FILES.archive.name;
  const archiveUrl = `${base}/${QM9_FILES.archive.id}`;
  const archiveDest = path.join(dir, archiveName);
  const archive = fetched(await withHandHint(archiveUrl, archiveDest, () => downloadFile({
    ...transport, ...pinsFor(dir, archiveName, { size: options.size, sha256: options.sha256, md5: options.md5 }),
    url: archiveUrl, dest: archiveDest,
  })));
  files.push(archive);
  let skip: Set<number> | null = null;
  if (options.excludeUncharacterized) {
    const listName = QM9_FILES.uncharacterized.name;
    const listUrl = `${base}/${QM9_FILES.uncharacterized.id}`;
    const listDest = path.join(dir, listName);
    const list = fetched(await withHandHint(listUrl, listDest, () => downloadFile({ ...transport, ...pinsFor(dir, listName, {}), url: listUrl, dest: listDest })));
    files.push(list);
    skip = parseUncharacterized(fs.readFileSync(list.file, 'utf8'), list.file);
    if (canonical && skip.size !== QM9_FILES.uncharacterized.molecules)
      throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${list.url}: the list names ${skip.size} molecules, expected ${QM9_FILES.uncharacterized.molecules}`);
  }
  recordDownloads(dir, files);
  if (options.build === false) return { dataset: 'qm9', dir, files, store: null };

  const structures: Structure[] = [];
  let total = 0;
  for await (const s of readQm9Archive(archive.file)) {
    total++;
    if (skip && skip.has(moleculeIndex(s))) continue;
    structures.push(s);
  }
  if (canonical && total !== QM9_FILES.archive.molecules)
    throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${archive.file}: the archive holds ${total} molecules, expected ${QM9_FILES.archive.molecules}; delete it and run "gnnbatch data get qm9" again`);
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
