/** Streaming line reading shared by the text formats. */
import * as fs from 'fs';
import * as readline from 'readline';

/** Lines of a file (without the newline, CR stripped), read as a stream. */
export async function* readLines(file: string): AsyncGenerator<string> {
  const rl = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
  }
}
