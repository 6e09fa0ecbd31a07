/**
 * Small checks for user-supplied options, shared by the engine, the reranker and the framework
 * adapters so that every bad value is reported the same way: a `BgeM3Error` naming the option and
 * what was given.
 */
import { BgeM3Error } from '../errors.js';

/** A short, human description of a bad value for error messages (never dumps large inputs). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Returns `value` if it is an integer >= `min`, else throws a `BgeM3Error` naming `option`. */
export function checkInteger(value: unknown, option: string, min: number): number {
  if (!Number.isInteger(value) || (value as number) < min) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${option} must be an integer >= ${min}; got ${describeValue(value)}.`);
  }
  return value as number;
}

/** Returns `value` if it is an integer >= 1, else throws a `BgeM3Error` naming `option`. */
export function checkPositiveInteger(value: unknown, option: string): number {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${option} must be a positive integer; got ${describeValue(value)}.`);
  }
  return value as number;
}

/**
 * Returns `value` if it is a token length the model accepts: an integer >= 2 (it counts `<s>` and
 * `</s>`) and at most `maxPositions`, the model's position table.
 */
export function checkMaxLength(value: unknown, option: string, maxPositions: number): number {
  if (!Number.isInteger(value) || (value as number) < 2) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${option} must be an integer >= 2 (it counts <s> and </s>); got ${describeValue(value)}.`);
  }
  if ((value as number) > maxPositions) {
    throw new BgeM3Error(
      'INVALID_ARGUMENT',
      `${option} ${value} exceeds the ${maxPositions} tokens this model's position embeddings allow; use at most ${maxPositions}.`,
    );
  }
  return value as number;
}

/** Returns `value` if it is an array of strings, else throws a `BgeM3Error` naming `option` (and the bad entry). */
export function checkStrings(value: unknown, option: string): string[] {
  if (!Array.isArray(value)) {
    throw new BgeM3Error('INVALID_ARGUMENT', `${option} must be an array of strings; got ${describeValue(value)}. Wrap a single text in an array.`);
  }
  value.forEach((v, i) => {
    if (typeof v !== 'string') {
      throw new BgeM3Error('INVALID_ARGUMENT', `${option}[${i}] is ${describeValue(v)}; every entry must be a string.`);
    }
  });
  return value;
}
