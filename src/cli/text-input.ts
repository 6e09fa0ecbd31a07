/**
 * Line-oriented input of `embed` and `rerank`: files or stdin (`-`), read as a stream (one line at a
 * time, so memory stays bounded however long the input is). A line is
 * - JSON: an object `{ "id"?: string|number, "text": string, ... }` or a JSON string;
 * - or, with `--format text` (the default for `.txt` files), the text itself.
 * In `auto` format (the default elsewhere) a line that starts with `{` or `"` must be valid JSON and
 * any other line is plain text. Empty lines are skipped. A bad line is an error that names the
 * file and the line number.
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { CliError, CliUsageError } from './common.js';

export type LineFormat = 'auto' | 'jsonl' | 'text';

export interface InputRecord {
  id?: string;
  text: string;
  /** `<file>:<line>` (or `stdin:<line>`), for messages. */
  where: string;
  line: number;
  file: string;
}

export function checkFormat(value: string | undefined): LineFormat {
  const f = value ?? 'auto';
  if (f !== 'auto' && f !== 'jsonl' && f !== 'text') throw new CliUsageError(`--format must be auto, jsonl or text; got "${f}"`);
  return f;
}

/** Yields the records of every input in order (stdin when `inputs` is empty or `-`). */
export async function* readRecords(inputs: string[], format: LineFormat, textField = 'text'): AsyncGenerator<InputRecord> {
  const list = inputs.length === 0 ? ['-'] : inputs;
  // Fail early on a missing file, before any output.
  for (const file of list) {
    if (file === '-') continue;
    try {
      await access(file);
    } catch {
      throw new CliError(`Cannot read the input file ${file}: it does not exist or is not readable.`);
    }
  }
  for (const file of list) {
    const stream = file === '-' ? process.stdin : createReadStream(file, { encoding: 'utf8' });
    const name = file === '-' ? 'stdin' : file;
    const fileFormat: LineFormat = format === 'auto' && /\.txt$/i.test(file) ? 'text' : format;
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    let n = 0;
    try {
      for await (const raw of lines) {
        n++;
        const line = raw.replace(/^\uFEFF/, '');
        if (line.trim() === '') continue;
        yield parseLine(line, fileFormat, `${name}:${n}`, n, name, textField);
      }
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`Cannot read ${name}: ${(e as Error).message}`);
    } finally {
      lines.close();
    }
  }
}

function parseLine(line: string, format: LineFormat, where: string, lineNo: number, file: string, textField: string): InputRecord {
  const trimmed = line.trimStart();
  const json = format === 'jsonl' || (format === 'auto' && (trimmed.startsWith('{') || trimmed.startsWith('"')));
  if (!json) return { text: line, where, line: lineNo, file };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new CliError(`${where}: not valid JSON (${(e as Error).message}). Each line must be {"id"?, "${textField}": "..."} or a JSON string (or use --format text for plain lines).`);
  }
  if (typeof value === 'string') return { text: value, where, line: lineNo, file };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliError(`${where}: expected an object {"id"?, "${textField}": "..."} or a string; got ${Array.isArray(value) ? 'an array' : typeof value}.`);
  }
  const obj = value as Record<string, unknown>;
  const text = obj[textField];
  if (typeof text !== 'string') throw new CliError(`${where}: the object has no string "${textField}" field.`);
  const id = obj.id;
  if (id !== undefined && typeof id !== 'string' && typeof id !== 'number') throw new CliError(`${where}: "id" must be a string or a number.`);
  return { id: id === undefined ? undefined : String(id), text, where, line: lineNo, file };
}
