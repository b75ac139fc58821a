/** Test helper: a validator of Chrome trace-event JSON (what `--trace` writes). */

/**
 * Checks a trace against the trace-event format's rules for what we emit:
 * a `traceEvents` array; every event has a string name, a one-letter phase,
 * integer pid/tid; complete events (`X`) have finite ts >= 0 and dur >= 0 and
 * an args object; metadata events (`M`) name a process/thread; within one
 * (pid, tid) track complete events nest properly (no partial overlaps).
 * Returns the list of violations (empty = valid).
 */
export function traceViolations(doc: unknown): string[] {
  const bad: string[] = [];
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { traceEvents?: unknown }).traceEvents)) return ['traceEvents is not an array'];
  const evs = (doc as { traceEvents: Record<string, unknown>[] }).traceEvents;
  const tracks = new Map<string, { ts: number; end: number; i: number }[]>();
  evs.forEach((e, i) => {
    if (typeof e.name !== 'string' || e.name === '') bad.push(`event ${i}: name must be a non-empty string`);
    if (typeof e.ph !== 'string' || e.ph.length !== 1) bad.push(`event ${i}: ph must be one letter`);
    if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid)) bad.push(`event ${i}: pid and tid must be integers`);
    if (e.ph === 'X') {
      if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) bad.push(`event ${i}: ts must be a finite number >= 0`);
      if (typeof e.dur !== 'number' || !Number.isFinite(e.dur) || e.dur < 0) bad.push(`event ${i}: dur must be a finite number >= 0`);
      if (typeof e.args !== 'object' || e.args === null) bad.push(`event ${i}: args must be an object`);
      const key = `${e.pid}/${e.tid}`;
      if (!tracks.has(key)) tracks.set(key, []);
      tracks.get(key)!.push({ ts: e.ts as number, end: (e.ts as number) + (e.dur as number), i });
    } else if (e.ph === 'M') {
      if (!['process_name', 'thread_name', 'thread_sort_index', 'process_sort_index'].includes(e.name as string)) bad.push(`event ${i}: unknown metadata ${String(e.name)}`);
      if (typeof e.args !== 'object' || e.args === null) bad.push(`event ${i}: metadata needs args`);
    } else bad.push(`event ${i}: unexpected phase ${String(e.ph)}`);
  });
  const eps = 1e-6;
  for (const [key, list] of tracks) {
    list.sort((a, b) => a.ts - b.ts || b.end - a.end);
    const stack: { ts: number; end: number; i: number }[] = [];
    for (const e of list) {
      while (stack.length && stack[stack.length - 1].end <= e.ts + eps) stack.pop();
      const top = stack[stack.length - 1];
      if (top && e.end > top.end + eps) bad.push(`track ${key}: event ${e.i} [${e.ts}, ${e.end}] overlaps event ${top.i} [${top.ts}, ${top.end}] without nesting`);
      stack.push(e);
    }
  }
  return bad;
}
