/**
 * A cheap scan of a JSON request body before `JSON.parse` and schema
 * validation: one pass over the characters that bounds the nesting depth and
 * the length of every array. `JSON.parse` of a body nested millions deep, or
 * the validation of an array of hundreds of thousands of items, costs seconds
 * of the event loop; this scan costs about a millisecond per MiB and stops at
 * the first violation.
 */

/** Bounds checked by {@link jsonShapeProblem}. */
export interface JsonShapeLimits {
  /** Deepest nesting of arrays and objects (the top level is depth 1). */
  maxDepth: number;
  /** Most items in any one array. */
  maxArrayItems: number;
}

const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

/**
 * The first way `text` breaks the limits, as a message, or null. Not a JSON
 * validator: malformed text that stays within the limits passes (JSON.parse
 * rejects it next); the scan only has to be right about depth and item counts
 * of well-formed text, and never slower than linear.
 */
export function jsonShapeProblem(text: string, limits: JsonShapeLimits): string | null {
  // Per open container: -1 for an object, else the number of commas seen in the array.
  const commas = new Int32Array(limits.maxDepth + 1);
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Skip the string (escapes included).
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (depth === limits.maxDepth) return `JSON nested deeper than ${limits.maxDepth} levels`;
      commas[depth++] = c === OPEN_ARRAY ? 0 : -1;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      if (depth > 0) depth--;
    } else if (c === COMMA && depth > 0 && commas[depth - 1] >= 0) {
      // n commas separate n + 1 items.
      if (++commas[depth - 1] >= limits.maxArrayItems) return `a JSON array has more than ${limits.maxArrayItems} items`;
    }
  }
  return null;
}
