// Preloaded into a timed command (`node --require benchmarks/rss-probe.js ...`, see commands.js):
// at exit, writes the process's peak resident set size (getrusage ru_maxrss, which counts every
// thread of the process: native OpenMP threads and Node workers included) to the file named by
// GNNBATCH_RSS_FILE. The command itself is not changed.
'use strict';
const fs = require('fs');

const file = process.env.GNNBATCH_RSS_FILE;
if (file) {
  process.on('exit', (code) => {
    const u = process.resourceUsage();
    fs.writeFileSync(file, JSON.stringify({ max_rss_kib: u.maxRSS, user_s: u.userCPUTime / 1e6, system_s: u.systemCPUTime / 1e6, code }));
  });
}
