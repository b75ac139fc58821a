/**
 * Where downloaded data sets live: the folder passed in (`--cache-dir`, the
 * `cacheDir` option), else $GNNBATCH_CACHE_DIR, else $XDG_CACHE_HOME/gnnbatch,
 * else ~/.cache/gnnbatch (on Windows %LOCALAPPDATA%\gnnbatch when set).
 * Each data set gets a subfolder named after it.
 */
import * as os from 'os';
import * as path from 'path';

/** The cache root, resolved as described in the file comment (not created). */
export function cacheRoot(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env.GNNBATCH_CACHE_DIR) return path.resolve(env.GNNBATCH_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return path.join(path.resolve(env.XDG_CACHE_HOME), 'gnnbatch');
  if (process.platform === 'win32' && env.LOCALAPPDATA) return path.join(env.LOCALAPPDATA, 'gnnbatch');
  return path.join(os.homedir(), '.cache', 'gnnbatch');
}

/** The folder of one data set: `to` when given (`--to DIR`), else `<cacheRoot>/<name>`. */
export function datasetDir(name: string, options: { to?: string; cacheDir?: string } = {}, env: NodeJS.ProcessEnv = process.env): string {
  return options.to ? path.resolve(options.to) : path.join(cacheRoot(options.cacheDir, env), name);
}
