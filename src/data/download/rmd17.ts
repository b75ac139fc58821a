/**
 * rMD17 on demand: the revised MD17 set (Christensen and von Lilienfeld,
 * "On the role of gradients for machine learning of molecular energies and
 * forces", Mach. Learn.: Sci. Technol. 1, 045018 (2020)), 10 molecules x
 * 100,000 conformations with PBE/def2-SVP energies and forces.
 *
 * Source (established 2026-12 by code search over public repositories; this
 * machine has no internet access, so it was not fetched here): figshare
 * article 12672038, file https://figshare.com/ndownloader/files/23950376
 * (`rmd17.tar.bz2`), the id torch_geometric, schnetpack-style loaders and
 * others download; members `rmd17/npz_data/rmd17_<molecule>.npz` with arrays
 * `nuclear_charges` [atoms], `coords` [frames x atoms x 3] (Å), `energies`
 * [frames] (kcal/mol), `forces` [frames x atoms x 3] (kcal/mol/Å).
 *
 * Checked like QM9 (no public digest could be established, so none is
 * pinned): the transport (sizes, If-Range resumes), then the build's own parse
 * before the file is committed: bzip2 CRCs and tar structure, every .npz's
 * zip CRC-32s, the arrays' shapes, and (for the canonical URL) all 10
 * molecules present. The SHA-256 is then recorded in download.json and every
 * later run re-checks the cached file against it.
 *
 * Units: energies and forces are converted to eV and eV/Å (1 kcal/mol =
 * 4184 / (N_A e) eV), the units of the rest of gnnbatch; target `energy`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import * as tar from 'tar-stream';
import { DataFormatError, GnnError } from '../../errors';
import { saveStore } from '../cache';
import { bunzip2Blocks } from '../formats/bzip2';
import { readNpz, type NpyArray } from '../formats/npz';
import { parseGraphRule } from '../graph-rule';
import { buildStoreAsync } from '../store';
import type { Structure } from '../types';
import { downloadFile, type DownloadPins, type RequestOptions } from './http';
import { DEFAULT_DATASET_DEADLINE_MS, recordDownloads, type BuiltStore, type FetchedFile, type GetDatasetCommon } from './qm9';

/** The figshare download base; GNNBATCH_RMD17_URL replaces it (tests, mirrors). */
export const RMD17_BASE_URL = 'https://ndownloader.figshare.com/files';
/** The archive. */
export const RMD17_FILE = { id: '23950376', name: 'rmd17.tar.bz2', maxBytes: 2 * 1024 * 1024 * 1024 } as const;
/** The 10 molecules, as the archive names them. */
export const RMD17_MOLECULES = ['aspirin', 'azobenzene', 'benzene', 'ethanol', 'malonaldehyde', 'naphthalene', 'paracetamol', 'salicylic', 'toluene', 'uracil'] as const;
/** eV per kcal/mol: 4184 J / (Avogadro x elementary charge). */
export const EV_PER_KCAL_MOL = 4184 / (6.02214076e23 * 1.602176634e-19);

/** Options of {@link getRmd17}. */
export interface GetRmd17Options extends GetDatasetCommon, DownloadPins {
  /** Molecules to build stores for (default all 10). */
  molecules?: string[];
  /** Keep at most this many conformations per molecule, the first in file order (default all). */
  limit?: number;
}

/** What {@link getRmd17} returns. */
export interface Rmd17Result {
  dataset: 'rmd17';
  dir: string;
  files: FetchedFile[];
  /** One store per molecule built (fc graphs, target `energy`, forces). */
  stores: (BuiltStore & { molecule: string })[];
}

/** The structures of one molecule's .npz arrays (eV, eV/Å), checked for shape. */
export function rmd17Structures(molecule: string, arrays: Map<string, NpyArray>, member: string, limit = Infinity): Structure[] {
  const need = (k: string): NpyArray => arrays.get(k) ?? (() => { throw new DataFormatError({ file: member, field: k }, `array '${k}' is missing`); })();
  const z = need('nuclear_charges'), x = need('coords'), e = need('energies'), f = need('forces');
  const n = z.shape[0];
  const frames = x.shape[0];
  const shapeBad = (k: string, a: NpyArray, want: number[]) => {
    if (a.shape.length !== want.length || a.shape.some((s, i) => s !== want[i]))
      throw new DataFormatError({ file: member, field: k }, `shape (${a.shape.join(', ')}), expected (${want.join(', ')})`);
  };
  shapeBad('nuclear_charges', z, [n]);
  shapeBad('coords', x, [frames, n, 3]);
  shapeBad('energies', e, frames === e.shape[0] && e.shape.length === 2 ? [frames, 1] : [frames]);
  shapeBad('forces', f, [frames, n, 3]);
  const numbers = Uint8Array.from(z.data, (v) => v);
  if (numbers.some((v, i) => v < 1 || v !== z.data[i])) throw new DataFormatError({ file: member, field: 'nuclear_charges' }, 'not atomic numbers');
  const out: Structure[] = [];
  for (let t = 0; t < Math.min(frames, limit); t++) {
    const positions = Float64Array.from(x.data.subarray(3 * n * t, 3 * n * (t + 1)));
    const forces = Float64Array.from(f.data.subarray(3 * n * t, 3 * n * (t + 1)), (v) => v * EV_PER_KCAL_MOL);
    const energy = e.data[t] * EV_PER_KCAL_MOL;
    if (!Number.isFinite(energy) || !forces.every(Number.isFinite) || !positions.every(Number.isFinite))
      throw new DataFormatError({ file: member, entry: t }, `conformation ${t}: non-finite energy, force or coordinate`);
    out.push({ id: `${molecule}-${t}`, numbers, positions, cell: null, pbc: [false, false, false], targets: { energy }, forces, info: { molecule } });
  }
  return out;
}

/**
 * Reads the archive: calls `onMolecule` with each `rmd17_<molecule>.npz`
 * member's arrays (parsed and checked) in archive order; returns the
 * molecules seen. Archive damage is ERR_GNN_DATA_ARCHIVE.
 */
export async function readRmd17Archive(file: string, onMolecule: (molecule: string, arrays: Map<string, NpyArray>, member: string) => void): Promise<string[]> {
  const seen: string[] = [];
  const source = Readable.from(bunzip2Blocks(file));
  const extract = tar.extract();
  source.on('error', (e: Error) => extract.destroy(e));
  source.pipe(extract);
  try {
    for await (const entry of extract) {
      const m = /(?:^|\/)rmd17_([a-z]+)\.npz$/.exec(entry.header.name);
      if (entry.header.type !== 'file' || !m) {
        entry.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const member = `${file}:${entry.header.name}`;
      onMolecule(m[1], readNpz(Buffer.concat(chunks), member), member);
      seen.push(m[1]);
    }
  } catch (e) {
    if (e instanceof DataFormatError) throw e;
    throw new DataFormatError({ file }, `cannot read the archive: ${(e as Error).message}`, 'ERR_GNN_DATA_ARCHIVE');
  } finally {
    source.destroy();
  }
  return seen;
}

/**
 * Downloads rMD17 into the data set folder (verified, resumable, cached like
 * QM9) and builds `rmd17-<molecule>-fc.gnb` for each molecule asked for.
 */
export async function getRmd17(options: GetRmd17Options = {}, dir: string): Promise<Rmd17Result> {
  const env = options.env ?? process.env;
  const base = (env.GNNBATCH_RMD17_URL || RMD17_BASE_URL).replace(/\/+$/, '');
  const canonical = !env.GNNBATCH_RMD17_URL;
  const wanted = options.molecules ?? [...RMD17_MOLECULES];
  for (const m of wanted)
    if (!(RMD17_MOLECULES as readonly string[]).includes(m)) throw new GnnError('ERR_GNN_ARGUMENT', `rmd17: unknown molecule '${m}'; use ${RMD17_MOLECULES.join(', ')}`);
  fs.mkdirSync(dir, { recursive: true });
  const url = `${base}/${RMD17_FILE.id}`;
  const dest = path.join(dir, RMD17_FILE.name);
  const keep = options.build !== false;
  const structures = new Map<string, Structure[]>();
  let manifest: Record<string, { sha256: string; bytes: number }> = {};
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'download.json'), 'utf8')) as typeof manifest;
  } catch { /* first download */ }
  const rec = manifest[RMD17_FILE.name];
  const pins: DownloadPins = options.sha256 || options.md5 || options.size !== undefined ? { sha256: options.sha256, md5: options.md5, size: options.size } : rec ? { sha256: rec.sha256, size: rec.bytes } : {};
  const transport: RequestOptions = {
    retries: options.retries, backoffMs: options.backoffMs, maxBackoffMs: options.maxBackoffMs, timeoutMs: options.timeoutMs, signal: options.signal, onProgress: options.onProgress,
    stallTimeoutMs: options.stallTimeoutMs, stallBytes: options.stallBytes, limitNames: options.limitNames,
    maxBytes: Math.min(RMD17_FILE.maxBytes, options.maxBytes ?? Infinity), deadlineMs: options.deadlineMs ?? DEFAULT_DATASET_DEADLINE_MS,
  };
  const r = await downloadFile({
    ...transport, ...pins, url, dest, partFile: path.join(dir, 'rmd17.part.tar.bz2'),
    verify: async (file) => {
      structures.clear();
      let seen: string[];
      try {
        seen = await readRmd17Archive(file, (molecule, arrays, member) => {
          const s = rmd17Structures(molecule, arrays, member, options.limit ?? Infinity);
          if (keep && wanted.includes(molecule)) structures.set(molecule, s);
        });
      } catch (e) {
        structures.clear();
        if (e instanceof DataFormatError) throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', e.message, { cause: e });
        throw e;
      }
      const missing = (canonical ? RMD17_MOLECULES : wanted).filter((m) => !seen.includes(m));
      if (missing.length) throw new GnnError('ERR_GNN_DOWNLOAD_VERIFY', `${url}: the archive lacks ${missing.map((m) => `rmd17_${m}.npz`).join(', ')}`);
    },
  });
  const files: FetchedFile[] = [{ url: r.url, file: r.file, bytes: r.bytes, sha256: r.sha256, md5: r.md5, cached: r.cached, resumed: r.resumed }];
  recordDownloads(dir, files);
  const stores: Rmd17Result['stores'] = [];
  if (keep)
    for (const molecule of wanted) {
      const built = await buildStoreAsync(structures.get(molecule) ?? [], { graph: parseGraphRule('fc'), source: `${r.file}:rmd17_${molecule}.npz` });
      const file = path.join(dir, `rmd17-${molecule}-fc.gnb`);
      saveStore(built.store, file);
      const s = built.store;
      stores.push({ molecule, file, graphs: s.numGraphs, atoms: s.atomicNumber.length, edges: s.senders.length, graphRule: s.graphRule, target: 'energy', excluded: 0 });
      structures.delete(molecule);
    }
  return { dataset: 'rmd17', dir, files, stores };
}
