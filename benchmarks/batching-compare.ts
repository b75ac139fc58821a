/** Simulate every policy on qm9-like or aflow-like sizes: `node <out>/benchmarks/batching-compare.js qm9|aflow [steps]`. */
import { compareBatching, formatCompareTable } from '../src/batching';
import { qm9LikeSizes, aflowLikeSizes, prefixSplit } from '../test/batching/sizes-fixtures';
const which = process.argv[2] ?? 'qm9';
const steps = Number(process.argv[3] ?? 100000);
const sizes = which === 'qm9' ? qm9LikeSizes() : aflowLikeSizes();
const split = prefixSplit(sizes.nodes.length);
const t0 = Date.now();
const rows = compareBatching({ sizes, split, batchSizes: [16, 32, 64, 128], steps });
console.log(formatCompareTable(rows));
console.log(`total ${(Date.now() - t0) / 1000}s`);
