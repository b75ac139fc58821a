/**
 * Output files (reports, results, traces, safetensors exports): a durable
 * write (./durable.ts) with the output code. Kept under this name for its
 * importers and for `gnnbatch/internals`.
 */
import { DurableWriteError, writeFileDurable } from './durable';

/**
 * Writes `data` to `file` (creating its folder) so that readers see either
 * the old or the complete new file, durably (temp file, fsync, rename, folder
 * fsync). A failure throws GnnError ERR_GNN_OUTPUT_PATH naming `file` and the
 * reason; no temporary file is left and an existing `file` is intact.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  writeFileDurable(file, data, { error: (f) => new DurableWriteError('ERR_GNN_OUTPUT_PATH', f), mkdir: true });
}
