/**
 * The durable-file module (issue 26, item 3): every file the library writes
 * goes through src/util/durable.ts. A write is a temporary file next to the
 * destination, fsynced, renamed over it, then the directory fsynced; a
 * failure leaves no temporary file and the previous file intact, and throws
 * the caller's code. The fs calls are spied on to see the order of the
 * syncs and to inject the failures a real disk gives (ENOSPC, EIO).
 */
import { spawn, spawnSync } from 'child_process';
// The fs module object itself (not an import-star copy), so that its functions can be spied on.
import fs = require('fs');
import * as os from 'os';
import * as path from 'path';
import { commitFile, describeWriteFailure, DurableWriteError, fsyncDir, openDurable, tempPathFor, writeFileDurable, writeNewFile, type WriteFailure } from '../../src/util/durable';
import { writeFileAtomic } from '../../src/util/atomic';
import { writeExtxyz } from '../../src/data/formats/extxyz';
import { CheckpointError, GnnError, type GnnErrorCode } from '../../src/errors';
import type { Structure } from '../../src/data/types';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-durable-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => jest.restoreAllMocks());

let n = 0;
/** A fresh folder for one test. */
const folder = (): string => {
  const d = path.join(tmp, `t${n++}`);
  fs.mkdirSync(d);
  return d;
};
/** The options of a writer that throws DurableWriteError with `code`. */
const coded = (code: GnnErrorCode): { error: (f: WriteFailure) => Error } => ({ error: (f) => new DurableWriteError(code, f) });
const errno = (code: string, message = `${code}: failed`): NodeJS.ErrnoException => Object.assign(new Error(message), { code });
/** What `f` throws. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/** Records the fs calls of a durable write, in order: open/fsync/close/rename with the path each concerns. */
function traceFs(): string[] {
  const log: string[] = [];
  const fdPath = new Map<number, string>();
  const realOpen = fs.openSync;
  const realFsync = fs.fsyncSync;
  const realRename = fs.renameSync;
  jest.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
    const fd = realOpen(p, flags ?? 'r', mode);
    fdPath.set(fd, String(p));
    log.push(`open ${path.basename(String(p))}`);
    return fd;
  }) as typeof fs.openSync);
  jest.spyOn(fs, 'fsyncSync').mockImplementation((fd: number) => {
    log.push(`fsync ${path.basename(fdPath.get(fd) ?? '?')}`);
    realFsync(fd);
  });
  jest.spyOn(fs, 'renameSync').mockImplementation((a: fs.PathLike, b: fs.PathLike) => {
    log.push(`rename ${path.basename(String(a))} -> ${path.basename(String(b))}`);
    realRename(a, b);
  });
  return log;
}

describe('writeFileDurable', () => {
  test('writes the file through a temporary file that is fsynced, renamed over it, then the folder fsynced', () => {
    const d = folder();
    const file = path.join(d, 'out.json');
    fs.writeFileSync(file, 'old');
    const log = traceFs();
    writeFileDurable(file, 'new content', { ...coded('ERR_GNN_OUTPUT_PATH') });
    expect(fs.readFileSync(file, 'utf8')).toBe('new content');
    expect(fs.readdirSync(d)).toEqual(['out.json']);
    const tmpName = /^open (\.out\.json\.\d+\.[0-9a-f]+\.tmp)$/.exec(log[0])?.[1];
    expect(tmpName).toBeDefined();
    expect(log).toEqual([`open ${tmpName}`, `fsync ${tmpName}`, `rename ${tmpName} -> out.json`, `open ${path.basename(d)}`, `fsync ${path.basename(d)}`]);
  });

  test('a write that fails part-way (disk full) leaves no temporary file and the old file intact, with the caller\'s code', () => {
    const d = folder();
    const file = path.join(d, 'data.bin');
    fs.writeFileSync(file, 'the old bytes');
    const realWrite = fs.writeSync;
    jest.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buf: Uint8Array, off?: number) => {
      realWrite(fd, buf, off ?? 0, 3); // part of it lands, then the disk is full
      throw errno('ENOSPC', 'ENOSPC: no space left on device, write');
    }) as unknown as typeof fs.writeSync);
    const e = thrown(() => writeFileDurable(file, Buffer.alloc(1000, 7), { ...coded('ERR_GNN_CACHE_WRITE') }));
    expect(e).toBeInstanceOf(DurableWriteError);
    expect(e).toBeInstanceOf(GnnError);
    expect(e).toMatchObject({ code: 'ERR_GNN_CACHE_WRITE', stage: 'write', committed: false, file, message: `${file}: cannot be written: the disk is full (ENOSPC)` });
    expect((e as Error).cause).toMatchObject({ code: 'ENOSPC' });
    expect(fs.readdirSync(d)).toEqual(['data.bin']);
    expect(fs.readFileSync(file, 'utf8')).toBe('the old bytes');
  });

  test('an fsync that fails (EIO) leaves no temporary file and the old file intact', () => {
    const d = folder();
    const file = path.join(d, 'f.txt');
    fs.writeFileSync(file, 'old');
    jest.spyOn(fs, 'fsyncSync').mockImplementation(() => {
      throw errno('EIO');
    });
    expect(thrown(() => writeFileDurable(file, 'new', { ...coded('ERR_GNN_OUTPUT_PATH') }))).toMatchObject({ code: 'ERR_GNN_OUTPUT_PATH', stage: 'fsync', message: `${file}: cannot be written: an input/output error (EIO)` });
    expect(fs.readdirSync(d)).toEqual(['f.txt']);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
  });

  test('an injected writer that fails (as checkpoints inject a full disk) leaves no temporary file', () => {
    const d = folder();
    const file = path.join(d, 'checkpoint.json');
    fs.writeFileSync(file, '{"step":1}');
    const e = thrown(() =>
      writeFileDurable(file, '{"step":2}', {
        ...coded('ERR_GNN_CHECKPOINT_WRITE'),
        writeNew: (f, data) => {
          fs.writeFileSync(f, data.subarray(0, 3));
          throw errno('ENOSPC');
        },
      }),
    );
    expect(e).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_WRITE', stage: 'write' });
    expect(fs.readdirSync(d)).toEqual(['checkpoint.json']);
    expect(fs.readFileSync(file, 'utf8')).toBe('{"step":1}');
  });

  test('a missing folder: the open fails with the reason in words (or the folder is made with mkdir)', () => {
    const d = folder();
    const file = path.join(d, 'no', 'such', 'x.txt');
    expect(thrown(() => writeFileDurable(file, 'x', { ...coded('ERR_GNN_DOWNLOAD_WRITE') }))).toMatchObject({ code: 'ERR_GNN_DOWNLOAD_WRITE', stage: 'open', message: `${file}: cannot be written: its folder does not exist (ENOENT)` });
    writeFileDurable(file, 'x', { ...coded('ERR_GNN_DOWNLOAD_WRITE'), mkdir: true });
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
    const blocked = path.join(d, 'no', 'such', 'x.txt', 'y.txt');
    expect(thrown(() => writeFileDurable(blocked, 'y', { ...coded('ERR_GNN_OUTPUT_PATH'), mkdir: true }))).toMatchObject({ code: 'ERR_GNN_OUTPUT_PATH', stage: 'mkdir' });
  });

  test('a directory in the way: the rename fails, the directory and its folder are left as they were', () => {
    const d = folder();
    const file = path.join(d, 'is-a-dir');
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, 'inside'), 'kept');
    expect(thrown(() => writeFileDurable(file, 'x', { ...coded('ERR_GNN_OUTPUT_PATH') }))).toMatchObject({ code: 'ERR_GNN_OUTPUT_PATH', stage: 'rename', message: expect.stringContaining(`${file}: cannot be written: `) });
    expect(fs.readdirSync(d)).toEqual(['is-a-dir']);
    expect(fs.readFileSync(path.join(file, 'inside'), 'utf8')).toBe('kept');
  });

  test('the caller builds its own error (class and message) from the failure', () => {
    const d = folder();
    const file = path.join(d, 'missing', 'c.json');
    let seen: WriteFailure | null = null;
    const e = thrown(() =>
      writeFileDurable(file, 'x', {
        error: (f) => {
          seen = f;
          return new CheckpointError(d, `writing failed (${f.reason})`, 'ERR_GNN_CHECKPOINT_WRITE', { cause: f.cause });
        },
      }),
    );
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_WRITE', message: `${d}: writing failed (its folder does not exist (ENOENT))` });
    expect(seen).toMatchObject({ file, stage: 'open', committed: false, reason: 'its folder does not exist (ENOENT)' });
  });

  test('a coded error thrown by a hook passes through unchanged, and the temporary file is removed', () => {
    const d = folder();
    const file = path.join(d, 'h.txt');
    const mine = new GnnError('ERR_GNN_INTERNAL', 'from the hook');
    expect(thrown(() => writeFileDurable(file, 'x', { ...coded('ERR_GNN_OUTPUT_PATH'), beforeRename: () => { throw mine; } }))).toBe(mine);
    expect(fs.readdirSync(d)).toEqual([]);
  });

  test('beforeRename sees the complete temporary file, before the destination changes', () => {
    const d = folder();
    const file = path.join(d, 'b.txt');
    fs.writeFileSync(file, 'old');
    let during: [string, string] | null = null;
    writeFileDurable(file, 'new', { ...coded('ERR_GNN_OUTPUT_PATH'), beforeRename: (t) => (during = [fs.readFileSync(t, 'utf8'), fs.readFileSync(file, 'utf8')]) });
    expect(during).toEqual(['new', 'old']);
  });
});

describe('the directory fsync', () => {
  test('a failing directory fsync (EIO) after the rename: the new file is in place, the error says it is committed', () => {
    const d = folder();
    const file = path.join(d, 'c.txt');
    fs.writeFileSync(file, 'old');
    const realFsync = fs.fsyncSync;
    const dirFds = new Set<number>();
    const realOpen = fs.openSync;
    jest.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      const fd = realOpen(p, flags ?? 'r', mode);
      if (String(p) === d) dirFds.add(fd);
      return fd;
    }) as typeof fs.openSync);
    jest.spyOn(fs, 'fsyncSync').mockImplementation((fd: number) => {
      if (dirFds.has(fd)) throw errno('EIO');
      realFsync(fd);
    });
    const e = thrown(() => writeFileDurable(file, 'new', { ...coded('ERR_GNN_OUTPUT_PATH') }));
    expect(e).toMatchObject({ code: 'ERR_GNN_OUTPUT_PATH', stage: 'fsync-dir', committed: true, message: `${file}: was written, but syncing its folder failed: an input/output error (EIO); it may not survive a power loss` });
    expect(dirFds.size).toBe(1);
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(fs.readdirSync(d)).toEqual(['c.txt']);
  });

  test.each(['EISDIR', 'EINVAL', 'EPERM', 'EBADF'])('a platform that cannot sync a directory (%s) is not an error', (code) => {
    const d = folder();
    const realOpen = fs.openSync;
    jest.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      if (String(p) === d) throw errno(code);
      return realOpen(p, flags ?? 'r', mode);
    }) as typeof fs.openSync);
    expect(() => fsyncDir(d)).not.toThrow();
    writeFileDurable(path.join(d, 'x'), 'x', { ...coded('ERR_GNN_OUTPUT_PATH') });
    expect(fs.readFileSync(path.join(d, 'x'), 'utf8')).toBe('x');
  });

  test('fsyncDir throws any other failure (a missing directory)', () => {
    expect(thrown(() => fsyncDir(path.join(tmp, 'nope')))).toMatchObject({ code: 'ENOENT' });
  });
});

describe('openDurable (streamed)', () => {
  test('writes in pieces; the file appears only at commit', () => {
    const d = folder();
    const file = path.join(d, 's.bin');
    const out = openDurable(file, { ...coded('ERR_GNN_CACHE_WRITE') });
    out.write('ab');
    out.write(new Uint8Array([99, 100]));
    expect(out.bytesWritten).toBe(4);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(d)).toHaveLength(1); // the temporary file
    out.commit();
    expect(fs.readFileSync(file, 'utf8')).toBe('abcd');
    expect(fs.readdirSync(d)).toEqual(['s.bin']);
    expect(thrown(() => out.write('x'))).toMatchObject({ code: 'ERR_GNN_INTERNAL' });
    expect(() => out.abort()).not.toThrow();
  });

  test('abort removes the temporary file and leaves the old file', () => {
    const d = folder();
    const file = path.join(d, 'a.bin');
    fs.writeFileSync(file, 'old');
    const out = openDurable(file, { ...coded('ERR_GNN_CACHE_WRITE') });
    out.write('new');
    out.abort();
    out.abort();
    expect(fs.readdirSync(d)).toEqual(['a.bin']);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
  });

  test('a failed write removes the temporary file at once and throws the caller\'s code', () => {
    const d = folder();
    const file = path.join(d, 'w.bin');
    fs.writeFileSync(file, 'old');
    const out = openDurable(file, { ...coded('ERR_GNN_CACHE_WRITE') });
    out.write('first');
    jest.spyOn(fs, 'writeSync').mockImplementation(() => {
      throw errno('EDQUOT');
    });
    expect(thrown(() => out.write('second'))).toMatchObject({ code: 'ERR_GNN_CACHE_WRITE', stage: 'write', message: `${file}: cannot be written: the disk quota is exhausted (EDQUOT)` });
    expect(fs.readdirSync(d)).toEqual(['w.bin']);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(thrown(() => out.commit())).toMatchObject({ code: 'ERR_GNN_INTERNAL' });
  });

  test('a failed fsync at commit removes the temporary file', () => {
    const d = folder();
    const file = path.join(d, 'f.bin');
    const out = openDurable(file, { ...coded('ERR_GNN_OUTPUT_PATH') });
    out.write('x');
    jest.spyOn(fs, 'fsyncSync').mockImplementation(() => {
      throw errno('EIO');
    });
    expect(thrown(() => out.commit())).toMatchObject({ code: 'ERR_GNN_OUTPUT_PATH', stage: 'fsync' });
    expect(fs.readdirSync(d)).toEqual([]);
  });
});

describe('special destinations and names', () => {
  test('a FIFO is written in place, not replaced by a rename', async () => {
    const d = folder();
    const fifo = path.join(d, 'pipe');
    if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('mkfifo failed');
    const reader = spawn('cat', [fifo]);
    let got = '';
    reader.stdout.on('data', (b: Buffer) => (got += b.toString()));
    const done = new Promise<number | null>((resolve) => reader.on('close', resolve));
    writeFileDurable(fifo, 'through the pipe\n', { ...coded('ERR_GNN_OUTPUT_PATH') });
    expect(await done).toBe(0);
    expect(got).toBe('through the pipe\n');
    expect(fs.statSync(fifo).isFIFO()).toBe(true);
    expect(fs.readdirSync(d)).toEqual(['pipe']);
  });

  test('temporary names are next to the file, hidden, and unique per call', () => {
    const a = tempPathFor('/x/y/model.safetensors');
    const b = tempPathFor('/x/y/model.safetensors');
    expect(path.dirname(a)).toBe('/x/y');
    expect(path.basename(a)).toMatch(new RegExp(`^\\.model\\.safetensors\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
    expect(a).not.toBe(b);
    expect(Buffer.byteLength(path.basename(tempPathFor(`/x/${'n'.repeat(250)}`)))).toBeLessThan(255);
  });

  test('describeWriteFailure names the cause in words with its code', () => {
    expect(describeWriteFailure(errno('ENOSPC'))).toBe('the disk is full (ENOSPC)');
    expect(describeWriteFailure(errno('EACCES'))).toBe('permission denied (EACCES)');
    expect(describeWriteFailure(errno('EROFS'))).toBe('the file system is read-only (EROFS)');
    expect(describeWriteFailure(errno('EXDEV', 'EXDEV: cross-device link'))).toBe('EXDEV: cross-device link');
  });
});

describe('the pieces', () => {
  test('writeNewFile refuses an existing file (O_EXCL) and writes a new one completely', () => {
    const d = folder();
    const f = path.join(d, 'n.bin');
    writeNewFile(f, new Uint8Array([1, 2, 3]));
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
    expect(thrown(() => writeNewFile(f, new Uint8Array([4])))).toMatchObject({ code: 'EEXIST' });
    expect([...fs.readFileSync(f)]).toEqual([1, 2, 3]);
  });

  test('commitFile fsyncs the caller\'s file, renames it and syncs the folder', () => {
    const d = folder();
    const part = path.join(d, 'x.part');
    fs.writeFileSync(part, 'verified');
    const log = traceFs();
    commitFile(part, path.join(d, 'x'), { ...coded('ERR_GNN_DOWNLOAD_WRITE') });
    expect(log).toEqual(['open x.part', 'fsync x.part', 'rename x.part -> x', `open ${path.basename(d)}`, `fsync ${path.basename(d)}`]);
    expect(fs.readdirSync(d)).toEqual(['x']);
  });

  test('commitFile keeps the caller\'s file when the commit fails (a download part stays for the next run)', () => {
    const d = folder();
    const part = path.join(d, 'x.part');
    fs.writeFileSync(part, 'verified');
    fs.mkdirSync(path.join(d, 'x'));
    fs.writeFileSync(path.join(d, 'x', 'inside'), '');
    expect(thrown(() => commitFile(part, path.join(d, 'x'), { ...coded('ERR_GNN_DOWNLOAD_WRITE') }))).toMatchObject({ code: 'ERR_GNN_DOWNLOAD_WRITE', stage: 'rename' });
    expect(fs.readFileSync(part, 'utf8')).toBe('verified');
  });
});

describe('the writers that use it', () => {
  test('writeFileAtomic (reports, results, traces): ERR_GNN_OUTPUT_PATH naming the file, no temporary file left', () => {
    const d = folder();
    fs.writeFileSync(path.join(d, 'blocker'), '');
    const file = path.join(d, 'blocker', 'report.html');
    expect(thrown(() => writeFileAtomic(file, '<html>'))).toMatchObject({ code: 'ERR_GNN_OUTPUT_PATH', message: `${file}: cannot be written: a part of the path is a file, not a folder (EEXIST)` });
    writeFileAtomic(path.join(d, 'sub', 'ok.txt'), 'ok');
    expect(fs.readFileSync(path.join(d, 'sub', 'ok.txt'), 'utf8')).toBe('ok');
    expect(fs.readdirSync(path.join(d, 'sub'))).toEqual(['ok.txt']);
  });

  test('writeExtxyz: a source that fails part-way leaves no partial file and the old file intact', async () => {
    const d = folder();
    const file = path.join(d, 'out.extxyz');
    fs.writeFileSync(file, 'old');
    const frame: Structure = { id: 'a', numbers: new Uint8Array([1, 1]), positions: new Float64Array([0, 0, 0, 0, 0, 0.74]), cell: null, pbc: [false, false, false], targets: { U0: -1 } };
    async function* failing(): AsyncIterable<Structure> {
      yield frame;
      throw new GnnError('ERR_GNN_DATA_FORMAT', 'the source broke');
    }
    await expect(writeExtxyz(file, failing())).rejects.toMatchObject({ code: 'ERR_GNN_DATA_FORMAT' });
    expect(fs.readdirSync(d)).toEqual(['out.extxyz']);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(await writeExtxyz(file, [frame, frame])).toBe(2);
    expect(fs.readFileSync(file, 'utf8').split('\n')[0]).toBe('2');
    expect(fs.readdirSync(d)).toEqual(['out.extxyz']);
  });
});
