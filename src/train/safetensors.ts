/**
 * Minimal safetensors reader/writer (the format other frameworks load):
 * 8-byte little-endian header length, a JSON header mapping each tensor name
 * to {dtype, shape, data_offsets}, then the raw little-endian data.
 */
import * as fs from 'fs';
import { writeFileAtomic } from '../util/atomic';

/** A named tensor. */
export interface Tensor {
  dtype: 'F32' | 'F64';
  shape: number[];
  data: Float32Array | Float64Array;
}

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

/** Parses a safetensors buffer; errors name the file and the problem. */
export function decodeSafetensors(buf: Buffer, file = '<buffer>'): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new Error(`${file}: not a safetensors file (shorter than 8 bytes)`);
  const n = Number(buf.readBigUInt64LE(0));
  if (n <= 0 || 8 + n > buf.length) throw new Error(`${file}: safetensors header length ${n} exceeds the file size ${buf.length}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = v as Record<string, string>;
      continue;
    }
    const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [b, e] = t.data_offsets ?? [];
    const count = t.shape.reduce((a, x) => a * x, 1);
    const size = t.dtype === 'F32' ? 4 : t.dtype === 'F64' ? 8 : 0;
    if (!size) throw new Error(`${file}: tensor '${name}' has unsupported dtype ${t.dtype}`);
    if (!(b >= 0 && e >= b && base + e <= buf.length && e - b === count * size)) {
      throw new Error(`${file}: tensor '${name}' has inconsistent data_offsets [${b}, ${e}] for shape [${t.shape}]`);
    }
    const bytes = Buffer.from(buf.subarray(base + b, base + e)); // aligned copy
    const data = size === 4 ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new Float64Array(bytes.buffer, bytes.byteOffset, count);
    tensors.set(name, { dtype: t.dtype as 'F32' | 'F64', shape: t.shape, data });
  }
  return { tensors, metadata };
}

/** Writes a safetensors file atomically. */
export function writeSafetensors(file: string, tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Reads a safetensors file. */
export function readSafetensors(file: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  return decodeSafetensors(fs.readFileSync(file), file);
}
