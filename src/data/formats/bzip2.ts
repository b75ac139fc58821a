/**
 * Streaming bzip2 decoding on top of seek-bzip's block decoder: the input is
 * read from disk in chunks and each decoded bzip2 block (<= 900 kB) is handed
 * out as soon as it is ready, so an archive is never held in memory or on disk
 * as a whole.
 */
import * as fs from 'fs';
import { DataFormatError } from '../errors';

interface ByteInput {
  readByte(): number;
  read(buf: Uint8Array, off: number, len: number): number;
  eof(): boolean;
  seek(pos: number): void;
}
interface ByteOutput {
  writeByte(b: number): void;
}
interface BunzipInstance {
  _init_block(): boolean;
  _read_bunzip(): number;
  _start_bunzip(input: ByteInput, output: ByteOutput): void;
  reader: { read(bits: number): number };
  streamCRC: number;
}
interface BunzipModule {
  new (input: ByteInput, output: ByteOutput): BunzipInstance;
  Stream: new () => ByteInput;
}

// seek-bzip ships no types; its Bunzip constructor and block methods are used as in its own decode().
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Bunzip = require('seek-bzip') as BunzipModule;

/** Decoded chunks (one per bzip2 block) of a .bz2 file, multistream files included. */
export function* bunzip2Blocks(file: string): Generator<Buffer> {
  const fd = fs.openSync(file, 'r');
  const chunk = Buffer.alloc(1 << 20);
  let len = 0, pos = 0, done = false;
  const fill = (): boolean => {
    if (done) return false;
    len = fs.readSync(fd, chunk, 0, chunk.length, null);
    pos = 0;
    if (len === 0) done = true;
    return len > 0;
  };
  const input = new Bunzip.Stream();
  input.readByte = () => (pos < len || fill() ? chunk[pos++] : -1);
  input.eof = () => !(pos < len || fill());
  input.seek = () => {
    throw new DataFormatError({ file }, 'seek is not supported on a streamed bzip2 input', 'ERR_GNN_DATA_ARCHIVE');
  };
  let out = Buffer.alloc(1 << 20);
  let outLen = 0;
  const output: ByteOutput = {
    writeByte(b: number) {
      if (outLen === out.length) {
        const bigger = Buffer.alloc(out.length * 2);
        out.copy(bigger, 0, 0, outLen);
        out = bigger;
      }
      out[outLen++] = b;
    },
  };
  try {
    const bz = new Bunzip(input, output);
    for (;;) {
      // Every stream ends with its end-of-stream marker and CRC (read below); input that ends before it is truncated.
      if (input.eof()) throw new DataFormatError({ file }, 'bzip2 stream truncated: the file ends before the end-of-stream marker (corrupt or incomplete archive)', 'ERR_GNN_DATA_ARCHIVE');
      if (bz._init_block()) {
        bz._read_bunzip();
        if (outLen > 0) {
          yield Buffer.from(out.subarray(0, outLen));
          outLen = 0;
        }
      } else {
        const crc = bz.reader.read(32) >>> 0;
        if (crc !== bz.streamCRC >>> 0) throw new DataFormatError({ file }, 'bzip2 stream CRC mismatch (corrupt archive)', 'ERR_GNN_DATA_ARCHIVE');
        if (!input.eof()) bz._start_bunzip(input, output);
        else break;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
