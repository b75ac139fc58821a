/**
 * `getDataset(name, options)`: the study's real data sets on demand, verified
 * and cached (the library side of `gnnbatch data get`).
 */
import { ArgumentError } from '../../errors';
import { getAflow, type AflowResult, type GetAflowOptions } from './aflow';
import { datasetDir } from './cache';
import { getQm9, type GetQm9Options, type Qm9Result } from './qm9';

export { cacheRoot, datasetDir } from './cache';
export { DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_TEXT_BYTES, downloadFile, fetchText, hashFile, mapLimit, redirectTarget, USER_AGENT, type DownloadOptions, type DownloadPins, type DownloadProgress, type DownloadResult, type LimitNames, type RequestOptions } from './http';
export { DEFAULT_DATASET_DEADLINE_MS, QM9_BASE_URL, QM9_FILES, parseUncharacterized, type BuiltStore, type FetchedFile, type GetDatasetCommon, type GetQm9Options, type Qm9Result } from './qm9';
export { AFLOW_MAX_ENTRIES, AFLUX_URL, AFLOW_FIELDS, aflowMatchbook, aflowPageUrl, type AflowResult, type GetAflowOptions } from './aflow';

/** The data sets `getDataset` knows. */
export const DATASETS = ['qm9', 'aflow'] as const;
/** A data set name. */
export type DatasetName = (typeof DATASETS)[number];

/** Options of {@link getDataset}: the chosen data set's options. */
export type GetDatasetOptions<N extends DatasetName> = N extends 'qm9' ? GetQm9Options : GetAflowOptions;
/** What {@link getDataset} returns for each data set. */
export type GetDatasetResult<N extends DatasetName> = N extends 'qm9' ? Qm9Result : AflowResult;

/**
 * Downloads (or finds in the cache) a data set into `options.dir` (default
 * `<cache root>/<name>`) and builds its `.gnb` store. Network failures are
 * GnnErrors (ERR_GNN_DOWNLOAD_*) whose message names the URL.
 */
export async function getDataset<N extends DatasetName>(name: N, options: GetDatasetOptions<N> = {} as GetDatasetOptions<N>): Promise<GetDatasetResult<N>> {
  const dir = datasetDir(name, { to: options.dir, cacheDir: options.cacheDir }, options.env ?? process.env);
  if (name === 'qm9') return (await getQm9(options as GetQm9Options, dir)) as GetDatasetResult<N>;
  if (name === 'aflow') return (await getAflow(options as GetAflowOptions, dir)) as GetDatasetResult<N>;
  throw new ArgumentError(`unknown data set '${String(name)}': use one of ${DATASETS.join(', ')}`);
}
