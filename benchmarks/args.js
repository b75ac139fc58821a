// Shared option parsing of the benchmark scripts: `--name value` among the
// runner's arguments, as a number (an unparsable value is an error, not NaN).
'use strict';

function argValue(args, name, def) {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (i + 1 >= args.length || !Number.isFinite(v)) throw new RangeError(`${name} needs a number, got '${args[i + 1] ?? ''}'`);
  return v;
}

module.exports = { argValue };
