/**
 * Minimal safetensors reader/writer (the format other frameworks load):
 * 8-byte little-endian header length, a JSON header mapping each tensor name
 * to {dtype, shape, data_offsets}, then the raw little-endian data.
 *
 * The reader trusts nothing: the header must be a JSON object, every entry an
 * object with a known dtype, a shape of non-negative integers and offsets that
 * match the shape; data ranges must tile the data section exactly (no overlap,
 * no hole, nothing after the last tensor), as the format's specification
 * requires. Each kind of violation has its own code (ERR_GNN_SAFETENSORS_*).
 */
import * as fs from 'fs';
import { writeFileAtomic } from '../util/atomic';
import { CheckpointError, type GnnErrorCode } from '../errors';

/** A named tensor. */
export interface Tensor {
  dtype: 'F32' | 'F64';
  shape: number[];
  data: Float32Array | Float64Array;
}

/** Largest header this reader accepts (the format's own limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** Serialises tensors (and string metadata) to a safetensors buffer. */
export function encodeSafetensors(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so that the data starts 8-byte aligned.
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hbytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hbytes.length + offset);
  out.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(out, 8);
  let pos = 8 + hbytes.length;
  for (const t of tensors.values()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Parses a safetensors buffer; errors name the file, the tensor and the problem. */
export function decodeSafetensors(buf: Buffer, file = '<buffer>'): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const fail = (code: GnnErrorCode, msg: string): never => {
    throw new CheckpointError(file, msg, code);
  };
  if (buf.length < 8) fail('ERR_GNN_SAFETENSORS_HEADER', `not a safetensors file (${buf.length} bytes, shorter than the 8-byte header length)`);
  const n64 = buf.readBigUInt64LE(0);
  if (n64 === 0n || n64 > BigInt(Math.min(MAX_HEADER_BYTES, buf.length - 8)))
    fail('ERR_GNN_SAFETENSORS_HEADER', `safetensors header length ${n64} is impossible for a file of ${buf.length} bytes`);
  const n = Number(n64);
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    fail('ERR_GNN_SAFETENSORS_HEADER', `safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) fail('ERR_GNN_SAFETENSORS_HEADER', 'safetensors header is not a JSON object');
  const base = 8 + n;
  const dataBytes = buf.length - base;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  const ranges: { name: string; b: number; e: number }[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!isPlainObject(v) || !Object.values(v).every((x) => typeof x === 'string'))
        fail('ERR_GNN_SAFETENSORS_HEADER', '__metadata__ must be an object of strings');
      metadata = v as Record<string, string>;
      continue;
    }
    if (!isPlainObject(v)) fail('ERR_GNN_SAFETENSORS_TENSOR', `tensor '${name}' is ${v === null ? 'null' : typeof v}, not an object with dtype, shape and data_offsets`);
    const t = v as Record<string, unknown>;
    if (typeof t.dtype !== 'string') fail('ERR_GNN_SAFETENSORS_TENSOR', `tensor '${name}' has no dtype`);
    const size = t.dtype === 'F32' ? 4 : t.dtype === 'F64' ? 8 : 0;
    if (!size) fail('ERR_GNN_SAFETENSORS_DTYPE', `tensor '${name}' has dtype ${String(t.dtype)}; gnnbatch reads F32 and F64`);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount))
      fail('ERR_GNN_SAFETENSORS_TENSOR', `tensor '${name}' has no shape of non-negative integers (found ${JSON.stringify(t.shape)})`);
    const shape = t.shape as number[];
    const offs = t.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount))
      fail('ERR_GNN_SAFETENSORS_TENSOR', `tensor '${name}' has no data_offsets [begin, end] (found ${JSON.stringify(offs)})`);
    const [b, e] = offs as [number, number];
    const count = shape.reduce((a, x) => a * x, 1);
    if (!(e >= b && e <= dataBytes && e - b === count * size))
      fail('ERR_GNN_SAFETENSORS_OFFSETS', `tensor '${name}' has data_offsets [${b}, ${e}], which do not hold shape [${shape}] of ${t.dtype} inside the ${dataBytes} data bytes`);
    ranges.push({ name, b, e });
    const bytes = Buffer.from(buf.subarray(base + b, base + e)); // aligned copy
    const data = size === 4 ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new Float64Array(bytes.buffer, bytes.byteOffset, count);
    tensors.set(name, { dtype: t.dtype as 'F32' | 'F64', shape, data });
  }
  // The data section must be tiled exactly: sorted ranges, each starting where the previous ends.
  ranges.sort((x, y) => x.b - y.b || x.e - y.e);
  let end = 0;
  let prev = '';
  for (const r of ranges) {
    if (r.b < end) fail('ERR_GNN_SAFETENSORS_OVERLAP', `tensors '${prev}' and '${r.name}' overlap (bytes ${r.b}..${end} of the data section)`);
    if (r.b > end) fail('ERR_GNN_SAFETENSORS_OFFSETS', `bytes ${end}..${r.b} of the data section belong to no tensor (a hole before '${r.name}')`);
    end = r.e;
    prev = r.name;
  }
  if (end !== dataBytes) fail('ERR_GNN_SAFETENSORS_OFFSETS', `${dataBytes - end} bytes after the last tensor belong to no tensor`);
  return { tensors, metadata };
}

/** Writes a safetensors file atomically. */
export function writeSafetensors(file: string, tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Reads a safetensors file. */
export function readSafetensors(file: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new CheckpointError(file, `cannot read (${(e as Error).message})`, 'ERR_GNN_CHECKPOINT_INCOMPLETE', { cause: e });
  }
  return decodeSafetensors(buf, file);
}
