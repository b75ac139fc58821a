/**
 * NumPy `.npz` archives (`np.savez`, `np.savez_compressed`): a zip file of
 * `.npy` arrays. The zip is read from its central directory (ZIP64 sizes and
 * offsets included, as numpy writes every member with `force_zip64`), each
 * member stored (method 0) or deflated (method 8), its CRC-32 and size checked;
 * each `.npy` from its header (format 1.0-3.0, little-endian or byte-free
 * dtypes, C order). Every failure is a located DataFormatError
 * (ERR_GNN_DATA_ARCHIVE for the zip, ERR_GNN_DATA_FORMAT for an array).
 */
import * as zlib from 'zlib';
import { DataFormatError } from '../errors';

/** One array of an .npz. */
export interface NpyArray {
  /** NumPy dtype descriptor (`<f8`, `<i8`, `|u1`, ...). */
  dtype: string;
  shape: number[];
  /** The values: float64/float32/int32/uint8 as read; int64 and uint64 widened to numbers (exact below 2^53, else an error). */
  data: Float64Array | Float32Array | Int32Array | Uint8Array | Float64Array;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The CRC-32 (zip, IEEE 802.3) of bytes. */
export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The members of a zip held in memory, by name (content checked against the central directory's CRC-32 and size). */
export function readZip(buf: Buffer, file: string): Map<string, Buffer> {
  const bad = (why: string): never => {
    throw new DataFormatError({ file }, `not a readable zip (.npz): ${why}`, 'ERR_GNN_DATA_ARCHIVE');
  };
  // End of central directory: the last signature within 64 KiB + 22 bytes of the end.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--)
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) bad('no end-of-central-directory record (truncated or not a zip)');
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || buf.readUInt32LE(loc) !== 0x07064b50) bad('ZIP64 end-of-central-directory locator missing');
    const z = Number(buf.readBigUInt64LE(loc + 8));
    if (z + 56 > buf.length || buf.readUInt32LE(z) !== 0x06064b50) bad('ZIP64 end-of-central-directory record missing');
    count = Number(buf.readBigUInt64LE(z + 32));
    cdSize = Number(buf.readBigUInt64LE(z + 40));
    cdOffset = Number(buf.readBigUInt64LE(z + 48));
  }
  if (cdOffset + cdSize > buf.length) bad(`central directory (${cdSize} bytes at ${cdOffset}) beyond the end of the file (${buf.length} bytes)`);
  const out = new Map<string, Buffer>();
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) bad(`central directory entry ${k} is damaged`);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    let csize = buf.readUInt32LE(p + 20);
    let usize = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28), extraLen = buf.readUInt16LE(p + 30), commentLen = buf.readUInt16LE(p + 32);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // ZIP64 extra field (id 1): the 0xffffffff fields, in the order usize, csize, offset.
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = buf.readUInt16LE(e), len = buf.readUInt16LE(e + 2);
      if (id === 1) {
        let q = e + 4;
        if (usize === 0xffffffff) { usize = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (csize === 0xffffffff) { csize = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (local === 0xffffffff) { local = Number(buf.readBigUInt64LE(q)); q += 8; }
      }
      e += 4 + len;
    }
    p = eEnd + commentLen;
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== 0x04034b50) bad(`member '${name}': local header missing`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (start + csize > buf.length) bad(`member '${name}': ${csize} bytes announced, the file ends before`);
    const raw = buf.subarray(start, start + csize);
    let data: Buffer;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, usize) });
      } catch (err) {
        return bad(`member '${name}': deflate stream is damaged (${(err as Error).message})`);
      }
    } else return bad(`member '${name}': compression method ${method} (only stored and deflate are read)`);
    if (data.length !== usize) bad(`member '${name}': ${data.length} bytes, the directory says ${usize}`);
    if (crc32(data) !== crc) bad(`member '${name}': CRC-32 mismatch (damaged)`);
    out.set(name, data);
  }
  return out;
}

/** Parses one `.npy` (`what` names it in errors). */
export function parseNpy(b: Buffer, what: string): NpyArray {
  const bad = (why: string): never => {
    throw new DataFormatError({ file: what }, `not a readable .npy array: ${why}`);
  };
  if (b.length < 10 || b[0] !== 0x93 || b.toString('latin1', 1, 6) !== 'NUMPY') bad('bad magic');
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  if (hstart + hlen > b.length) bad('truncated header');
  const header = b.toString(major === 3 ? 'utf8' : 'latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) bad(`header '${header.trim().slice(0, 80)}'`);
  if (fortran === 'True') bad('Fortran order is not read');
  const shape = (shapeText as string).split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (!shape.every((n) => Number.isSafeInteger(n) && n >= 0)) bad(`shape (${shapeText})`);
  const count = shape.reduce((a, n) => a * n, 1);
  const body = b.subarray(hstart + hlen);
  const size = ({ '<f8': 8, '<f4': 4, '<i8': 8, '<u8': 8, '<i4': 4, '|u1': 1, '<u1': 1, '|i1': 1 } as Record<string, number>)[descr as string];
  if (!size) bad(`dtype '${descr}' (read: <f8 <f4 <i8 <u8 <i4 |u1)`);
  if (body.length !== count * size) bad(`${body.length} data bytes for shape (${shape.join(', ')}) of ${descr} (expected ${count * size})`);
  const copy = new Uint8Array(body.length);
  copy.set(body);
  let data: NpyArray['data'];
  if (descr === '<f8') data = new Float64Array(copy.buffer);
  else if (descr === '<f4') data = new Float32Array(copy.buffer);
  else if (descr === '<i4') data = new Int32Array(copy.buffer);
  else if (descr === '<i8' || descr === '<u8') {
    const wide = descr === '<i8' ? new BigInt64Array(copy.buffer) : new BigUint64Array(copy.buffer);
    data = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const v = Number(wide[i]);
      if (!Number.isSafeInteger(v)) bad(`integer ${wide[i]} at ${i} is beyond 2^53`);
      data[i] = v;
    }
  } else data = copy;
  return { dtype: descr as string, shape, data };
}

/** The arrays of an .npz held in memory, by name without `.npy`. */
export function readNpz(buf: Buffer, file: string): Map<string, NpyArray> {
  const out = new Map<string, NpyArray>();
  for (const [name, data] of readZip(buf, file)) if (name.endsWith('.npy')) out.set(name.slice(0, -4), parseNpy(data, `${file}:${name}`));
  return out;
}
