/** Public API of the data layer. */
export type { Structure, GraphStore, Split } from './types';
export { DataFormatError, DataLimitError, CacheError, type DataLocation } from './errors';
export { resolveLimits, checkEdgeCeilings, checkBuiltEdges, edgeBound, type DataLimits } from './limits';
export { ELEMENT_SYMBOLS, atomicNumberOf } from './elements';
export { cellVolume } from './cell';
export { parseGraphRule, formatGraphRule, type GraphRule } from './graph-rule';
export {
  buildStore, buildStoreAsync, storeArraysFor, packerArrays, defaultTarget, targetColumn, targetIndex, structureBatch, collectTargetNames, structuresFromStore, withDirections,
  type BuildStoreOptions, type BuildStoreResult, type TargetStats,
} from './store';
export { splitGraphs, targetStats, mulberry32, DEFAULT_SEED, DEFAULT_SPLIT_SEED, type SplitOptions } from './split';
export { saveStore, loadStore, isGnbFile, checksum32, GNB_VERSION, type LoadStoreOptions } from './cache';
export { storeStats, formatStats, distribution, type StoreStats, type Distribution, type Histogram, type TargetSummary } from './stats';
export { loadSource, readStructures, type LoadSourceOptions, type LoadedSource } from './source';
export { detectFormat, isSourceFormat, SOURCE_FORMATS, type SourceFormat } from './formats/detect';
export { parseQm9Xyz, readQm9, readQm9File, readQm9Directory, readQm9Archive, QM9_PROPERTIES } from './formats/qm9-xyz';
export { readExtxyz, parseExtxyzText, writeExtxyz, formatExtxyzFrame, parseKeyValues } from './formats/extxyz';
export { readAseDb, ASE_SYSTEMS_TABLE } from './formats/ase-db';
export { readAflowJson, parseAflowJson, cellFromParameters } from './formats/aflow-json';
export { parseGeneratorSpec, generate, qm9Like, aflowLike, qm9LikeMolecule, aflowLikeCrystal, pairEnergy, QM9_SIZE, AFLOW_LIKE_SIZE, type GeneratorSpec } from './synthetic';
export {
  getDataset, DATASETS, cacheRoot, datasetDir, downloadFile, QM9_FILES, QM9_BASE_URL, AFLUX_URL, AFLOW_FIELDS,
  type DatasetName, type GetDatasetOptions, type GetDatasetResult, type GetQm9Options, type GetAflowOptions, type Qm9Result, type AflowResult, type FetchedFile, type BuiltStore, type DownloadProgress,
} from './download';
