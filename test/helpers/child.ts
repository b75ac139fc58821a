/**
 * Test helper: runs a JavaScript snippet against the native addon in a fresh
 * Node process, so that a crash (SIGSEGV, abort, V8 OOM) or a hang is a failed
 * assertion in the parent instead of a dead jest worker.
 *
 * The snippet is the body of an async function with `addon` (the loaded
 * addon), `gc` (forced garbage collection; the child runs with --expose-gc)
 * and every function of CHILD_PRELUDE in scope (its source is CHILD_PRELUDE_SRC,
 * for worker threads the snippet starts). Its return value comes back
 * JSON-encoded as `value`; an exception it lets escape comes back as
 * `value.threw = {name, code, message}`.
 */
import { spawnSync } from 'child_process';

import { addonPath } from '../../src/native';
import { CHILD_PRELUDE } from './child-prelude';

export interface ChildResult {
  /** Exit status, null when killed by a signal. */
  status: number | null;
  /** The signal that ended the child (e.g. 'SIGSEGV'), or null. */
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** The snippet's JSON-decoded return value (undefined when none came back). */
  value: unknown;
}

/** What an escaped exception looks like in {@link ChildResult.value}. */
export interface ChildThrow {
  threw: { name: string; code?: string; message: string };
}

const MARK = '@@GNN_CHILD_RESULT@@';

/** The whole program a child runs: prelude, then the snippet inside an async function. */
export function childProgram(body: string): string {
  return `'use strict';
const addon = require(process.env.GNN_CHILD_ADDON);
${CHILD_PRELUDE}
const CHILD_PRELUDE_SRC = ${JSON.stringify(CHILD_PRELUDE)};
const __emit = (v) => process.stdout.write('\\n${MARK}' + JSON.stringify(v === undefined ? null : v) + '\\n');
(async () => {
${body}
})().then(__emit, (e) => __emit({ threw: { name: e && e.name, code: e && e.code, message: String(e && e.message) } }));
`;
}

/** Runs `body` in a child process (see the file comment). */
export function runInChild(body: string, opts: { timeoutMs?: number; env?: Record<string, string> } = {}): ChildResult {
  const r = spawnSync(process.execPath, ['--expose-gc', '-'], {
    input: childProgram(body),
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...opts.env, GNN_CHILD_ADDON: addonPath() },
  });
  const stdout = r.stdout ?? '';
  const at = stdout.lastIndexOf(MARK);
  let value: unknown;
  if (at >= 0) {
    const line = stdout.slice(at + MARK.length).split('\n')[0];
    value = JSON.parse(line);
  }
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { status: r.status, signal: r.signal, timedOut, stdout, stderr: r.stderr ?? '', value };
}

/** A one-line description of how a child ended, for assertion messages. */
export function describeChild(r: ChildResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
  return `${how}; value=${JSON.stringify(r.value)}; stderr tail: ${r.stderr.slice(-600)}`;
}

/** True when the child ran to the end on its own (no signal, no timeout, exit 0, a value came back). */
export function exitedCleanly(r: ChildResult): boolean {
  return !r.timedOut && r.signal === null && r.status === 0 && r.value !== undefined;
}

/** An error as a child snippet reports it. */
export interface CodedValue {
  name: string;
  code?: string;
  message: string;
}

/** Runs `body` in a child (see {@link runInChild}); a crash or a hang throws, else its value. */
export function runCleanly(body: string, timeoutMs = 60_000): unknown {
  const r = runInChild(body, { timeoutMs });
  if (!exitedCleanly(r)) throw new Error(`child did not exit cleanly: ${describeChild(r)}`);
  return r.value;
}

/** Asserts that `v` (a child's returned error) has this class name and code (and message). */
export function expectCoded(v: unknown, name: string, code: string, message?: RegExp): void {
  const e = v as CodedValue | null;
  expect(e).not.toBeNull();
  expect({ name: e?.name, code: e?.code }).toEqual({ name, code });
  if (message) expect(e?.message).toMatch(message);
}
