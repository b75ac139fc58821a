// A small ONNX model written by hand (protobuf wire format), so the host
// benchmark can run another native library's thread pool (onnxruntime-node)
// in the same process as gnnbatch without downloading a model: an MLP of
// `layers` MatMul + Relu layers of width `width` on a [rows x width] input.
'use strict';

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
const key = (field, wire) => varint((field << 3) | wire);
const int = (field, n) => Buffer.concat([key(field, 0), varint(n)]);
const bytes = (field, b) => Buffer.concat([key(field, 2), varint(b.length), b]);
const str = (field, s) => bytes(field, Buffer.from(s, 'utf8'));

function valueInfo(name, dims) {
  const shape = Buffer.concat(dims.map((d) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d))));
  const tensorType = Buffer.concat([int(1, 1), bytes(2, shape)]); // elem_type FLOAT
  return Buffer.concat([str(1, name), bytes(2, bytes(1, tensorType))]);
}

function tensor(name, dims, values) {
  const raw = Buffer.from(new Float32Array(values).buffer);
  return Buffer.concat([...dims.map((d) => int(1, d)), int(2, 1), str(8, name), bytes(9, raw)]);
}

function node(op, inputs, outputs, name) {
  return Buffer.concat([...inputs.map((i) => str(1, i)), ...outputs.map((o) => str(2, o)), str(3, name), str(4, op)]);
}

/** The serialized ModelProto (opset 13). */
function mlpModel(width = 512, layers = 4, seed = 1) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * (2 / Math.sqrt(width));
  const parts = [];
  let x = 'X';
  for (let l = 0; l < layers; l++) {
    const w = `W${l}`;
    parts.push(bytes(5, tensor(w, [width, width], Array.from({ length: width * width }, rand))));
    parts.push(bytes(1, node('MatMul', [x, w], [`M${l}`], `matmul${l}`)));
    const y = l === layers - 1 ? 'Y' : `H${l}`;
    parts.push(bytes(1, node('Relu', [`M${l}`], [y], `relu${l}`)));
    x = y;
  }
  parts.push(str(2, 'mlp'));
  parts.push(bytes(11, valueInfo('X', ['N', width])));
  parts.push(bytes(12, valueInfo('Y', ['N', width])));
  const graph = Buffer.concat(parts);
  return Buffer.concat([int(1, 7), bytes(8, Buffer.concat([str(1, ''), int(2, 13)])), bytes(7, graph)]);
}

module.exports = { mlpModel };
