#!/usr/bin/env node
/**
 * Generates the malformed-file corpus under test/fixtures/malformed/ (issue
 * 14): hostile or broken checkpoints, safetensors, .gnb caches and data
 * files, each with the error code the real loader must give, listed in
 * test/fixtures/malformed/expected.json. test/data/malformed.test.ts loads
 * every entry through loadSource / loadStore / readCheckpoint / loadModel and
 * asserts the code.
 *
 * Usage: npm run build:ts && node scripts/make-malformed.js
 * (needs the built dist/ and the native addon; deterministic output; the
 * archive members of hundreds of MB are streamed through the bzip2 command,
 * so the committed archives stay a few hundred bytes.)
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const dist = (m) => require(path.join(root, 'dist', m));
const { writeCheckpoint } = dist('train/checkpoint');
const { encodeSafetensors } = dist('train/safetensors');
const { paramLayout, initParams } = dist('model/params');
const { resolveModelConfig } = dist('model/config');
const { buildStore, saveStore, qm9Like, parseGraphRule } = dist('index');

const out = path.join(root, 'test/fixtures/malformed');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

/** [name, loader, expected code (null = loads), what it probes] */
const expected = [];
const add = (name, loader, code, why) => expected.push({ name, loader, code, why });

// ---------------------------------------------------------------- checkpoints
const config = resolveModelConfig({ kind: 'mpeu', latent: 2, passes: 1, basis: 4, readoutHidden: 2, numClasses: 10 });
const layout = paramLayout(config);
const params = initParams(layout, 1, 'float32');
const state = (step) => ({
  config, layout, params, m: new Float32Array(layout.total).fill(0.01), v: new Float32Array(layout.total).fill(0.001),
  step, seed: 1, policy: 'dynamic', policyOptions: {}, policyState: null, batchSize: 4, target: 'U0',
  targetMean: -400, targetStd: 40, atomRefs: null, graphRule: 'fc',
  schedule: { kind: 'constant', lr: 0.001 }, clipNorm: 0, lossCurve: [{ step: 0, loss: 1 }], evalCurve: [],
});

function checkpoint(name, step = 1) {
  const dir = path.join(out, name);
  writeCheckpoint(dir, state(step));
  return dir;
}
const manifestOf = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
const writeManifest = (dir, j) => fs.writeFileSync(path.join(dir, 'checkpoint.json'), JSON.stringify(j, null, 1));
const modelPath = (dir) => path.join(dir, manifestOf(dir).files.model.path);
/** Re-signs the manifest's size and SHA-256 of a data file, so the problem reaches the decoder. */
function resign(dir, key = 'model') {
  const j = manifestOf(dir);
  const data = fs.readFileSync(path.join(dir, j.files[key].path));
  j.files[key].bytes = data.length;
  j.files[key].sha256 = require('crypto').createHash('sha256').update(data).digest('hex');
  writeManifest(dir, j);
}
/** Rewrites a safetensors file's header with `edit(header)` (the data section is kept). */
function editHeader(file, edit) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json), buf.subarray(8 + n)]));
}
const firstTensor = (h) => Object.keys(h).find((k) => k !== '__metadata__');

checkpoint('ck-valid');
add('ck-valid', 'model', null, 'control: a valid checkpoint of a tiny model loads');

fs.mkdirSync(path.join(out, 'ck-no-manifest'));
fs.writeFileSync(path.join(out, 'ck-no-manifest', 'README'), 'a directory without checkpoint.json\n');
add('ck-no-manifest', 'model', 'ERR_GNN_CHECKPOINT_MISSING', 'no checkpoint.json');

{
  const d = checkpoint('ck-json-invalid');
  fs.writeFileSync(path.join(d, 'checkpoint.json'), '{"version": 2, "step": 1,');
  add('ck-json-invalid', 'model', 'ERR_GNN_CHECKPOINT_JSON', 'truncated JSON manifest');
}
const fieldCases = [
  ['ck-version-99', (j) => (j.version = 99), 'ERR_GNN_CHECKPOINT_VERSION', 'unknown format version'],
  ['ck-targetMean-missing', (j) => delete j.targetMean, 'ERR_GNN_CHECKPOINT_FIELD', 'targetMean missing (predictions would be NaN)'],
  ['ck-targetMean-string', (j) => (j.targetMean = '-400'), 'ERR_GNN_CHECKPOINT_FIELD', 'targetMean is a string'],
  ['ck-targetStd-negative', (j) => (j.targetStd = -1), 'ERR_GNN_CHECKPOINT_FIELD', 'targetStd negative'],
  ['ck-atomRefs-wrong-type', (j) => (j.atomRefs = { H: -0.5 }), 'ERR_GNN_CHECKPOINT_FIELD', 'atomRefs an object, not an array per Z'],
  ['ck-atomRefs-short', (j) => (j.atomRefs = [0, -0.5]), 'ERR_GNN_CHECKPOINT_FIELD', 'atomRefs shorter than numClasses'],
  ['ck-graphRule-missing', (j) => delete j.graphRule, 'ERR_GNN_CHECKPOINT_FIELD', 'graphRule missing'],
  ['ck-graphRule-bad', (j) => (j.graphRule = 'knn:0'), 'ERR_GNN_CHECKPOINT_FIELD', 'graphRule not a rule'],
  ['ck-step-negative', (j) => (j.step = -3), 'ERR_GNN_CHECKPOINT_FIELD', 'negative step'],
  ['ck-config-latent', (j) => (j.config.latent = -1), 'ERR_GNN_CHECKPOINT_FIELD', 'config out of range'],
  ['ck-config-extra', (j) => (j.config.dropout = 0.1), 'ERR_GNN_CHECKPOINT_FIELD', 'config field unknown to this model'],
  ['ck-schedule-kind', (j) => (j.schedule = { kind: 'warp', lr: 1 }), 'ERR_GNN_CHECKPOINT_FIELD', 'schedule of an unknown kind'],
  ['ck-files-missing', (j) => delete j.files, 'ERR_GNN_CHECKPOINT_FIELD', 'version 2 manifest without files'],
  ['ck-files-escape', (j) => (j.files.model.path = '../ck-valid/' + j.files.model.path), 'ERR_GNN_CHECKPOINT_FIELD', 'a data path leaving the directory'],
  ['ck-lossCurve-bad', (j) => (j.lossCurve = [{ step: 'one', loss: 1 }]), 'ERR_GNN_CHECKPOINT_FIELD', 'loss curve entries of the wrong type'],
];
for (const [name, edit, code, why] of fieldCases) {
  const d = checkpoint(name);
  const j = manifestOf(d);
  edit(j);
  writeManifest(d, j);
  add(name, 'model', code, why);
}
{
  const d = checkpoint('ck-model-missing');
  fs.rmSync(modelPath(d));
  add('ck-model-missing', 'model', 'ERR_GNN_CHECKPOINT_INCOMPLETE', 'the manifest names a model file that is not there');
}
{
  const d = checkpoint('ck-model-truncated');
  const f = modelPath(d);
  fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 100));
  add('ck-model-truncated', 'model', 'ERR_GNN_CHECKPOINT_CHECKSUM', 'model file truncated');
}
{
  const d = checkpoint('ck-model-flipped-byte');
  const f = modelPath(d);
  const b = fs.readFileSync(f);
  b[b.length - 3] ^= 0x40;
  fs.writeFileSync(f, b);
  add('ck-model-flipped-byte', 'model', 'ERR_GNN_CHECKPOINT_CHECKSUM', 'one flipped byte in the weights');
}
{
  const d = checkpoint('ck-model-other-step', 2);
  const other = checkpoint('ck-tmp-step3', 3);
  fs.copyFileSync(modelPath(other), modelPath(d));
  fs.rmSync(other, { recursive: true });
  resign(d);
  add('ck-model-other-step', 'model', 'ERR_GNN_CHECKPOINT_INCOMPLETE', 'model file of step 3 under a step-2 manifest (checksums re-signed)');
}
{
  const d = checkpoint('ck-optimizer-garbage');
  const j = manifestOf(d);
  fs.writeFileSync(path.join(d, j.files.optimizer.path), 'garbage, not safetensors');
  add('ck-optimizer-garbage', 'model', null, 'a garbage optimizer file does not block inference');
  add('ck-optimizer-garbage', 'resume', 'ERR_GNN_CHECKPOINT_CHECKSUM', 'but stops a resume');
}
{
  const d = checkpoint('ck-optimizer-nan-v');
  const j = manifestOf(d);
  const f = path.join(d, j.files.optimizer.path);
  const b = fs.readFileSync(f);
  b.writeFloatLE(NaN, b.length - 4);
  fs.writeFileSync(f, b);
  resign(d, 'optimizer');
  add('ck-optimizer-nan-v', 'resume', 'ERR_GNN_CHECKPOINT_NONFINITE', 'a NaN second moment (re-signed)');
}
// Safetensors-level damage, re-signed so that it reaches the decoder.
const stCases = [
  ['st-header-flipped-byte', (f) => { const b = fs.readFileSync(f); b[9] ^= 0x01; fs.writeFileSync(f, b); }, 'ERR_GNN_SAFETENSORS_HEADER', 'one flipped byte in the JSON header'],
  ['st-header-length-huge', (f) => { const b = fs.readFileSync(f); b.writeBigUInt64LE(1n << 40n, 0); fs.writeFileSync(f, b); }, 'ERR_GNN_SAFETENSORS_HEADER', 'header length beyond the file'],
  ['st-header-array', (f) => editHeader(f, (h) => { for (const k of Object.keys(h)) delete h[k]; h[0] = 1; }), 'ERR_GNN_SAFETENSORS_TENSOR', 'header entries that are not tensors'],
  ['st-tensor-no-shape', (f) => editHeader(f, (h) => delete h[firstTensor(h)].shape), 'ERR_GNN_SAFETENSORS_TENSOR', 'a tensor entry without shape'],
  ['st-tensor-null', (f) => editHeader(f, (h) => (h[firstTensor(h)] = null)), 'ERR_GNN_SAFETENSORS_TENSOR', 'a null tensor entry'],
  ['st-dtype-i64', (f) => editHeader(f, (h) => (h[firstTensor(h)].dtype = 'I64')), 'ERR_GNN_SAFETENSORS_DTYPE', 'a dtype gnnbatch does not read'],
  ['st-offsets-beyond', (f) => editHeader(f, (h) => { const t = h[firstTensor(h)]; t.data_offsets = [t.data_offsets[0] + 1e6, t.data_offsets[1] + 1e6]; }), 'ERR_GNN_SAFETENSORS_OFFSETS', 'data offsets beyond the file'],
  ['st-overlap', (f) => editHeader(f, (h) => {
    const names = Object.keys(h).filter((k) => k !== '__metadata__');
    const [a, b] = names.filter((k) => h[k].data_offsets[1] - h[k].data_offsets[0] === 8);
    h[b].data_offsets = [...h[a].data_offsets];
  }), 'ERR_GNN_SAFETENSORS_OVERLAP', 'two tensors share one data range'],
  ['st-nan-weight', (f) => { const b = fs.readFileSync(f); b.writeFloatLE(NaN, b.length - 4); fs.writeFileSync(f, b); }, 'ERR_GNN_CHECKPOINT_NONFINITE', 'a NaN weight'],
  ['st-wrong-shape', (f) => editHeader(f, (h) => { const t = h['embed/w']; t.shape = [t.shape[1], t.shape[0]]; }), 'ERR_GNN_CHECKPOINT_TENSOR', 'a weight with transposed shape'],
  ['st-missing-tensor', (f) => editHeader(f, (h) => { const k = firstTensor(h); h['renamed/' + k] = h[k]; delete h[k]; }), 'ERR_GNN_CHECKPOINT_TENSOR', 'a weight missing (renamed)'],
  ['st-step-metadata', (f) => editHeader(f, (h) => (h.__metadata__.step = '7')), 'ERR_GNN_CHECKPOINT_INCOMPLETE', 'the weights file says another step'],
];
for (const [name, edit, code, why] of stCases) {
  const d = checkpoint(name);
  edit(modelPath(d));
  resign(d);
  add(name, 'model', code, why);
}
{
  // Version 1 (gnnbatch 0.1): three files side by side; here json at step 1, weights at step 2.
  const d = path.join(out, 'v1-mixed-steps');
  const a = checkpoint('ck-tmp-a', 1);
  const b = checkpoint('ck-tmp-b', 2);
  fs.mkdirSync(d);
  const j = manifestOf(a);
  fs.copyFileSync(modelPath(b), path.join(d, 'model.safetensors'));
  fs.copyFileSync(path.join(a, j.files.optimizer.path), path.join(d, 'optimizer.safetensors'));
  delete j.files;
  j.version = 1;
  writeManifest(d, j);
  fs.rmSync(a, { recursive: true });
  fs.rmSync(b, { recursive: true });
  add('v1-mixed-steps', 'model', 'ERR_GNN_CHECKPOINT_INCOMPLETE', 'a v1 directory whose files come from different steps');
}

// ---------------------------------------------------------------- .gnb caches
const structures = [...qm9Like(3, 3)];
const freshStore = () => buildStore(structures, { graph: parseGraphRule('fc') }).store;
const gnb = (name, edit) => {
  const store = freshStore();
  if (edit) edit(store);
  const f = path.join(out, name);
  saveStore(store, f);
  return f;
};
gnb('gnb-valid.gnb');
add('gnb-valid.gnb', 'gnb', null, 'control: a valid cache');
{
  const f = gnb('gnb-bad-magic.gnb');
  const b = fs.readFileSync(f);
  b.write('NOTASTOR', 0, 'latin1');
  fs.writeFileSync(f, b);
  add('gnb-bad-magic.gnb', 'gnb', 'ERR_GNN_CACHE_MAGIC', 'wrong magic');
}
{
  const f = gnb('gnb-version-9.gnb');
  const b = fs.readFileSync(f);
  b.writeUInt32LE(9, 8);
  fs.writeFileSync(f, b);
  add('gnb-version-9.gnb', 'gnb', 'ERR_GNN_CACHE_VERSION', 'another format version');
}
{
  const f = gnb('gnb-truncated.gnb');
  fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 300));
  add('gnb-truncated.gnb', 'gnb', 'ERR_GNN_CACHE_TRUNCATED', 'cut inside the arrays');
}
/** Rewrites a cache's JSON header in place (padded to its old length, so the arrays stay where they are). */
function editGnbHeader(f, edit) {
  const b = fs.readFileSync(f);
  const hlen = b.readUInt32LE(12);
  const h = JSON.parse(b.toString('utf8', 16, 16 + hlen));
  edit(h);
  const json = JSON.stringify(h);
  if (Buffer.byteLength(json) > hlen) throw new Error(`${f}: edited header is longer than the original`);
  b.write(json.padEnd(hlen, ' '), 16, 'utf8');
  fs.writeFileSync(f, b);
}
{
  const f = gnb('gnb-negative-offset.gnb');
  editGnbHeader(f, (h) => (h.arrays.find((a) => a.name === 'senders').offset = -8));
  add('gnb-negative-offset.gnb', 'gnb', 'ERR_GNN_CACHE_CORRUPT', 'a negative array offset in the header');
}
{
  const f = gnb('gnb-offset-in-header.gnb');
  editGnbHeader(f, (h) => (h.arrays.find((a) => a.name === 'nodeOffset').offset = 16));
  add('gnb-offset-in-header.gnb', 'gnb', 'ERR_GNN_CACHE_CORRUPT', 'an array placed over the header');
}
{
  const f = gnb('gnb-header-json.gnb');
  const b = fs.readFileSync(f);
  b.write('{{', 16, 'latin1');
  fs.writeFileSync(f, b);
  add('gnb-header-json.gnb', 'gnb', 'ERR_GNN_CACHE_CORRUPT', 'header not JSON');
}
{
  const f = gnb('gnb-checksum.gnb');
  const b = fs.readFileSync(f);
  b[b.length - 20] ^= 0xff;
  fs.writeFileSync(f, b);
  add('gnb-checksum.gnb', 'gnb', 'ERR_GNN_CACHE_CORRUPT', 'a flipped byte in an array');
}
gnb('gnb-cells-short.gnb', (s) => (s.cells = s.cells.subarray(0, 9)));
add('gnb-cells-short.gnb', 'gnb', 'ERR_GNN_CACHE_CORRUPT', 'optional cells array shorter than 9 per graph');
gnb('gnb-negative-distance.gnb', (s) => (s.distance[3] = -1.5));
add('gnb-negative-distance.gnb', 'gnb', 'ERR_GNN_CACHE_CORRUPT', 'a negative distance');
gnb('gnb-nan-position.gnb', (s) => (s.positions[4] = NaN));
add('gnb-nan-position.gnb', 'gnb', 'ERR_GNN_CACHE_CORRUPT', 'a NaN position');
gnb('gnb-graph-rule.gnb', (s) => (s.graphRule = 'knn:-1'));
add('gnb-graph-rule.gnb', 'gnb', 'ERR_GNN_CACHE_CORRUPT', 'a graph rule that does not parse');

// ---------------------------------------------------------------- data files
const aflowEntry = (extra) => ({ auid: 'aflow:bomb', geometry: [3, 3, 3, 90, 90, 90], positions_fractional: [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]], enthalpy_formation_atom: -0.1, ...extra });
const json = (name, doc) => fs.writeFileSync(path.join(out, name), JSON.stringify(doc));
json('aflow-composition-1e9.json', [aflowEntry({ species: ['Ag', 'Al'], composition: [1e9, 1] })]);
add('aflow-composition-1e9.json', 'source', 'ERR_GNN_DATA_FORMAT', 'composition [1e9, 1] for 3 positions (was a V8 out-of-memory abort)');
fs.writeFileSync(path.join(out, 'aflow-composition-inf.json'), JSON.stringify([aflowEntry({ species: ['Ag', 'Al'] })]).replace('"species"', '"composition":[1e999,1],"species"'));
add('aflow-composition-inf.json', 'source', 'ERR_GNN_DATA_FORMAT', 'composition [Infinity, 1]');
json('aflow-compound-huge.json', [aflowEntry({ compound: 'Ag999999999' })]);
add('aflow-compound-huge.json', 'source', 'ERR_GNN_DATA_FORMAT', "compound 'Ag999999999' for 3 positions");
json('aflow-composition-fraction.json', [aflowEntry({ species: ['Ag', 'Al'], composition: [0.5, 1.5] })]);
add('aflow-composition-fraction.json', 'source', 'ERR_GNN_DATA_FORMAT', 'fractional composition counts');
fs.writeFileSync(path.join(out, 'aflow-not-json.json'), '[{"auid": ');
add('aflow-not-json.json', 'source', 'ERR_GNN_DATA_FORMAT', 'truncated JSON');
{
  // 12,000 atoms (~360 kB): 143,988,000 edges under fc (was a silent 2.3 GB allocation).
  const n = 12000;
  const lines = [String(n), 'Properties=species:S:1:pos:R:3 energy=-1.0'];
  for (let i = 0; i < n; i++) lines.push(`H ${(i % 30) * 1.1} ${Math.floor(i / 30) % 20 * 1.1} ${Math.floor(i / 600) * 1.1}`);
  fs.writeFileSync(path.join(out, 'extxyz-fc-12000-atoms.extxyz'), lines.join('\n') + '\n');
  add('extxyz-fc-12000-atoms.extxyz', 'source', 'ERR_GNN_EDGE_LIMIT', '12,000 atoms under fc = 144M edges, over the per-graph ceiling');
}
fs.writeFileSync(path.join(out, 'extxyz-count-huge.extxyz'), '1000000000\nProperties=species:S:1:pos:R:3\nH 0 0 0\n');
add('extxyz-count-huge.extxyz', 'source', 'ERR_GNN_DATA_FORMAT', 'an atom count of 1e9 with one atom line');
fs.writeFileSync(path.join(out, 'extxyz-nan-position.extxyz'), '2\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH nan 0 0\n');
add('extxyz-nan-position.extxyz', 'source', 'ERR_GNN_DATA_FORMAT', 'a NaN coordinate');

/** A tar (one member of `size` bytes of `byte`), streamed through bzip2 into `name`. */
function tarBz2(name, member, size, byte) {
  const header = Buffer.alloc(512, 0);
  header.write(member, 0, 'utf8');
  header.write('0000644\0', 100, 'latin1');
  header.write('0000000\0', 108, 'latin1');
  header.write('0000000\0', 116, 'latin1');
  header.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  header.write('00000000000\0', 136, 'latin1');
  header.write('        ', 148, 'latin1');
  header.write('0', 156, 'latin1');
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  let sum = 0;
  for (const x of header) sum += x;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const tmp = path.join(out, `${name}.tar`);
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, header);
  const chunk = Buffer.alloc(1 << 20, byte);
  for (let left = size; left > 0; left -= chunk.length) fs.writeSync(fd, chunk, 0, Math.min(left, chunk.length));
  fs.writeSync(fd, Buffer.alloc((512 - (size % 512)) % 512 + 1024, 0));
  fs.closeSync(fd);
  const r = spawnSync('bzip2', ['-9', '-c', tmp], { maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`bzip2 failed: ${r.stderr}`);
  fs.writeFileSync(path.join(out, name), r.stdout);
  fs.rmSync(tmp);
}
tarBz2('qm9-member-newlines.tar.bz2', 'dsgdb9nsd_000001.xyz', 120 * 1024 * 1024, 0x0a);
add('qm9-member-newlines.tar.bz2', 'source', 'ERR_GNN_DATA_TOO_LARGE', 'an archive member of 120 MB of newlines (was SIGABRT at 2 GB)');
tarBz2('qm9-member-zeros.tar.bz2', 'dsgdb9nsd_000002.xyz', 560 * 1024 * 1024, 0x00);
add('qm9-member-zeros.tar.bz2', 'source', 'ERR_GNN_DATA_TOO_LARGE', 'an archive member of 560 MB of zeros');
{
  const good = fs.readFileSync(path.join(out, 'qm9-member-zeros.tar.bz2'));
  const bad = Buffer.from(good);
  bad[bad.length - 20] ^= 0xff;
  fs.writeFileSync(path.join(out, 'qm9-corrupt-bzip2.tar.bz2'), bad.subarray(0, 60));
  add('qm9-corrupt-bzip2.tar.bz2', 'source', 'ERR_GNN_DATA_ARCHIVE', 'a bzip2 stream cut after 60 bytes');
}
fs.writeFileSync(path.join(out, 'qm9-truncated.xyz'), '5\ngdb 1 157.7 157.7 157.7 0 13.2 -0.39 0.11 0.50 35.36 0.044 -40.47 -40.47 -40.47 -40.49 6.46\nC -0.01 1.08 0.00 -0.53\n');
add('qm9-truncated.xyz', 'source', 'ERR_GNN_DATA_FORMAT', 'a QM9 file announcing 5 atoms with 1');

expected.sort((a, b) => (a.name + a.loader).localeCompare(b.name + b.loader));
fs.writeFileSync(path.join(out, 'expected.json'), JSON.stringify(expected, null, 1) + '\n');
const files = new Set(expected.map((e) => e.name)).size;
process.stdout.write(`wrote ${files} corpus entries (${expected.length} loader cases) to ${path.relative(root, out)}\n`);
