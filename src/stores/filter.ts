/**
 * The declarative metadata filter language shared by every `HybridIndex` backend: one syntax
 * (MongoDB-style), one meaning, two evaluators that agree on every filter and document:
 *
 * - {@link compileFilter} / {@link matchesFilter}: JavaScript, for the in-memory index;
 * - {@link filterToSql}: a parameterized PostgreSQL boolean expression over a `jsonb` column.
 *
 * Both evaluate the same normalized tree (built by the one validator, {@link checkFilter}), so a
 * filter cannot be read differently by the two.
 *
 * ## Syntax
 *
 * A filter is a plain object. Each key is either a field path or a logical operator; all keys must
 * hold (an empty filter `{}` matches every document).
 *
 * - Field path: `"lang"`, or a dotted path `"author.name"` (field `name` of the object under
 *   `author`). Segments must be non-empty; a metadata key that itself contains a `.` cannot be
 *   addressed. A key starting with `$` is an operator, never a field.
 * - Field condition: a literal (`{ lang: 'de' }`, equality) or an operator object whose keys are all
 *   operators (`{ year: { $gte: 2020, $lt: 2024 } }`; several operators must all hold). An object
 *   without `$` keys is a literal (`{ author: { name: 'Ada' } }` is equality with that object); an
 *   object that mixes both is rejected, and so is a bare literal object with a `$` key at any depth
 *   (`{ author: { name: { $ne: 'x' } } }` is almost surely meant as `{ 'author.name': { $ne: 'x' } }`).
 *   Operands of `$eq $ne $in $nin` are always literals, whatever their keys.
 * - Field operators: `$eq $ne $in $nin $gt $gte $lt $lte $exists`, and `$not` (an operator object:
 *   `{ year: { $not: { $gte: 2020 } } }`).
 * - Logical operators (top level of a filter or of a nested filter): `$and: [filter, …]`,
 *   `$or: [filter, …]` (non-empty arrays), `$not: filter`.
 *
 * ## Semantics (identical in JavaScript and PostgreSQL)
 *
 * Metadata is JSON. `V` below is the value at the path, or *missing*. A path walks **objects
 * only**: if an intermediate value is not an object (a scalar, `null`, or an array), the field is
 * missing; arrays are not traversed by a path (no `"items.0"` indexing, no implicit traversal of
 * arrays of objects as in MongoDB — match whole elements with a literal instead:
 * `{ authors: { name: 'Ada', born: 1815 } }`). A property whose value is `undefined` is missing
 * (JSON drops it).
 *
 * - Equality `{ f: x }` ≡ `{ f: { $eq: x } }`: `V` equals `x`, or `V` is an array and one of its
 *   elements equals `x` (MongoDB semantics; one level: `[[1]]` does not equal `1`, but `[[1, 2]]`
 *   matches `[1, 2]` and `[1, 2]` matches `[1, 2]`). Equality is JSON deep equality: numbers by
 *   value, strings exactly (code units, no normalization, no collation), arrays element by element
 *   in order, objects by their key sets and values (key order ignored, as in `jsonb`).
 * - `null`: `{ f: null }` matches `V` = `null`, a **missing** field, and an array containing `null`
 *   (MongoDB semantics). Use `{ f: { $exists: true, $eq: null } }` for "present and null", and
 *   `{ f: { $exists: false } }` for "missing".
 * - `$ne: x` is exactly `$not` of `$eq: x`: no element equals `x` (a missing field matches unless
 *   `x` is `null`). `$in: [a, b]` ≡ `$or` of the equalities (`$in: []` matches nothing);
 *   `$nin` ≡ `$not` of `$in` (`$nin: []` matches everything).
 * - `$gt $gte $lt $lte`: the operand must be a number or a string. They match when `V`, or any
 *   element of an array `V`, has the operand's type and compares accordingly. Values of another
 *   type never match (`{ n: { $gt: 5 } }` does not match `n: "7"`, `null`, `true`, or missing) —
 *   never an error. With several operators, each may be satisfied by a different element (as in
 *   MongoDB; there is no `$elemMatch`). Numbers compare by value; strings by Unicode code point
 *   (the JavaScript side corrects UTF-16 order for astral characters; SQL compares with
 *   `COLLATE "C"`, i.e. UTF-8 byte order, which is code point order). Booleans and `null` only
 *   take `$eq $ne $in $nin`.
 * - `$exists: true` matches a present field (including `null`); `$exists: false` a missing one.
 * - `$not` (field level or top level) matches exactly when its operand does not.
 *
 * ## Validation
 *
 * {@link checkFilter} rejects, with a `BgeM3Error('INVALID_ARGUMENT')` naming the path: unknown
 * operators (`$regex`, …, listing the supported ones), misplaced operators, `$and`/`$or` that are
 * not non-empty arrays, `$in`/`$nin` that are not arrays, order operands that are not numbers or
 * strings, a non-boolean `$exists`, and any value that is not JSON: `undefined`, functions,
 * symbols, bigints, `NaN`/`±Infinity`, `Date`, `RegExp`, `Map`, class instances, circular
 * structures; also strings containing U+0000 or unpaired surrogates (PostgreSQL cannot hold them,
 * so they could never compare the same in both backends).
 *
 * Compared with the earlier `{ key: value }` (`===`) object filter, which is a subset: results are
 * the same for string, number and boolean values on non-array fields with keys without dots.
 * Newly, arrays match by element, `null` also matches a missing field, object/array literals
 * compare by value, dotted keys are paths, and `undefined` values are rejected.
 */
import { BgeM3Error } from '../errors.js';
import { describeValue as describe } from '../shared/checks.js';

/** A JSON value, as a filter literal. */
export type FilterValue = null | boolean | number | string | FilterValue[] | { [key: string]: FilterValue };

/** An operator object applied to one field (all its operators must hold). */
export interface FieldOperators {
  $eq?: FilterValue;
  $ne?: FilterValue;
  $in?: FilterValue[];
  $nin?: FilterValue[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $exists?: boolean;
  $not?: FieldOperators;
}

/** What a field path maps to: a literal (equality) or an operator object. */
export type FieldCondition = FilterValue | FieldOperators;

/**
 * A declarative metadata filter (see the module comment): field paths (`"lang"`,
 * `"author.name"`) mapped to literals or operator objects, and the logical `$and`, `$or`, `$not`.
 */
export interface MetadataFilter {
  $and?: MetadataFilter[];
  $or?: MetadataFilter[];
  $not?: MetadataFilter;
  [path: string]: FieldCondition | MetadataFilter | MetadataFilter[] | undefined;
}

/** Field operators, in the order error messages list them. */
export const FIELD_OPERATORS = ['$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$exists', '$not'] as const;
/** Logical operators (keys of a filter, not of a field's operator object). */
export const LOGICAL_OPERATORS = ['$and', '$or', '$not'] as const;

const SUPPORTED = `Supported: field operators ${FIELD_OPERATORS.join(', ')} (as in { year: { $gte: 2020 } }); logical operators ${LOGICAL_OPERATORS.join(', ')} (as in { $or: [{ lang: 'de' }, { lang: 'fr' }] }).`;

// --- the normalized tree both evaluators read ------------------------------------------------

type CompareOp = '>' | '>=' | '<' | '<=';

/** The normalized tree both evaluators walk ($ne, $nin and field $not become `not`; $in becomes `or`). */
type FilterNode =
  | { kind: 'and'; nodes: FilterNode[] }
  | { kind: 'or'; nodes: FilterNode[] }
  | { kind: 'not'; node: FilterNode }
  | { kind: 'eq'; path: string[]; value: FilterValue }
  | { kind: 'cmp'; path: string[]; op: CompareOp; value: number | string }
  | { kind: 'exists'; path: string[]; exists: boolean };

const COMPARE_OPS: Record<string, CompareOp> = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' };

function and(nodes: FilterNode[]): FilterNode {
  return nodes.length === 1 ? nodes[0]! : { kind: 'and', nodes };
}

function or(nodes: FilterNode[]): FilterNode {
  return nodes.length === 1 ? nodes[0]! : { kind: 'or', nodes };
}

// --- validation --------------------------------------------------------------------------------

function fail(message: string): never {
  throw new BgeM3Error('INVALID_ARGUMENT', message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** `where.key`, or `where["a.b"]` for keys that are not plain identifiers. */
function at(where: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${where}.${key}` : `${where}[${JSON.stringify(key)}]`;
}

// Code units PostgreSQL cannot hold in text/jsonb: U+0000 and unpaired surrogates.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkString(value: string, what: string): void {
  const bad = UNSTORABLE.exec(value);
  if (bad) {
    const which = bad[0] === '\u0000' ? 'U+0000' : `an unpaired surrogate (U+${bad[0].charCodeAt(0).toString(16).toUpperCase()})`;
    fail(`${what} contains ${which} at index ${bad.index}: filter strings must be well-formed Unicode without U+0000 (PostgreSQL cannot store them, so backends could not agree).`);
  }
}

function describeNonJson(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return `the number ${value}, which JSON cannot represent (only finite numbers are allowed)`;
  if (typeof value === 'function') return 'a function (a function filter must be the whole filter option, and works with the in-memory index only)';
  if (typeof value === 'bigint') return `the bigint ${value}n (use a number)`;
  if (typeof value === 'symbol') return 'a symbol';
  if (value instanceof Date) return 'a Date (compare ISO strings, date.toISOString(), or numbers, date.getTime())';
  if (value instanceof RegExp) return 'a RegExp (regular expressions are not supported)';
  const name = (value as object).constructor?.name;
  return name ? `an instance of ${name}` : 'a non-plain object';
}

/** Checks that `value` is a JSON value (see the module comment). */
function checkLiteral(value: unknown, where: string, ancestors: object[]): void {
  switch (typeof value) {
    case 'string':
      checkString(value, where);
      return;
    case 'boolean':
      return;
    case 'number':
      if (Number.isFinite(value)) return;
      break;
    case 'object':
      if (value === null) return;
      if (ancestors.includes(value)) fail(`${where} refers to itself (a circular structure is not JSON).`);
      if (Array.isArray(value)) {
        ancestors.push(value);
        for (let i = 0; i < value.length; i++) checkLiteral(value[i], `${where}[${i}]`, ancestors);
        ancestors.pop();
        return;
      }
      if (isPlainObject(value)) {
        ancestors.push(value);
        for (const [k, v] of Object.entries(value)) {
          checkString(k, `the key ${JSON.stringify(k)} of ${where}`);
          checkLiteral(v, at(where, k), ancestors);
        }
        ancestors.pop();
        return;
      }
      break;
  }
  const hint = value === undefined ? ' (omit the condition, or use { $exists: false } to match a missing field)' : '';
  fail(`${where} is ${describeNonJson(value)}${hint}: filter values must be JSON (null, booleans, finite numbers, strings, arrays and plain objects).`);
}

function checkedLiteral(value: unknown, where: string): FilterValue {
  checkLiteral(value, where, []);
  return value as FilterValue;
}

function splitPath(key: string, where: string): string[] {
  const segments = key.split('.');
  if (segments.some((s) => s.length === 0)) {
    fail(`${at(where, key)}: the field path ${JSON.stringify(key)} has an empty segment; a path is dot-separated field names such as "author.name".`);
  }
  checkString(key, `the field path ${JSON.stringify(key)} in ${where}`);
  return segments;
}

function isOperatorObject(value: unknown): value is Record<string, unknown> {
  return isPlainObject(value) && Object.keys(value).some((k) => k.startsWith('$'));
}

/** Parses a filter object (top level, or an element of `$and`/`$or`, or the operand of `$not`). */
function parseFilter(filter: unknown, where: string): FilterNode {
  if (!isPlainObject(filter)) {
    fail(`${where} must be a filter object such as { lang: 'de' } or { year: { $gte: 2020 } }; got ${typeof filter === 'object' && filter !== null && !Array.isArray(filter) ? describeNonJson(filter) : describe(filter)}.`);
  }
  const nodes: FilterNode[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (key.startsWith('$')) {
      nodes.push(parseLogical(key, value, where));
      continue;
    }
    const path = splitPath(key, where);
    nodes.push(parseCondition(path, value, at(where, key)));
  }
  return and(nodes);
}

function parseLogical(op: string, value: unknown, where: string): FilterNode {
  const here = `${where}.${op}`;
  if (op === '$and' || op === '$or') {
    if (!Array.isArray(value) || value.length === 0) {
      fail(`${here} must be a non-empty array of filters, e.g. { ${op}: [{ lang: 'de' }, { year: 2024 }] }; got ${describe(value)}.`);
    }
    const nodes = value.map((f, i) => parseFilter(f, `${here}[${i}]`));
    return op === '$and' ? { kind: 'and', nodes } : { kind: 'or', nodes };
  }
  if (op === '$not') return { kind: 'not', node: parseFilter(value, here) };
  if ((FIELD_OPERATORS as readonly string[]).includes(op)) {
    fail(`${here}: ${op} is a field operator; put it under a field, e.g. { year: { ${op}: … } }. ${SUPPORTED}`);
  }
  fail(`${here}: unknown operator ${op}. ${SUPPORTED}`);
}

/**
 * A bare literal object is equality with that object, so `{ author: { name: { $ne: 'x' } } }` would
 * silently compare with an object holding a `$ne` key: refuse it and point at the dotted path.
 */
function rejectNestedOperators(value: FilterValue, where: string): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => rejectNestedOperators(v, `${where}[${i}]`));
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (k.startsWith('$')) {
      fail(`${where}: the key ${k} inside a literal object (which is matched by equality) looks like an operator. To filter a nested field use a dotted path, e.g. { "author.name": { $ne: 'x' } }; to match an object that has $ keys use { $eq: {…} }.`);
    }
    rejectNestedOperators(v, at(where, k));
  }
}

/** Parses what a field path maps to. */
function parseCondition(path: string[], value: unknown, where: string): FilterNode {
  if (!isOperatorObject(value)) {
    const literal = checkedLiteral(value, where);
    rejectNestedOperators(literal, where);
    return { kind: 'eq', path, value: literal };
  }
  const keys = Object.keys(value);
  const fields = keys.filter((k) => !k.startsWith('$'));
  if (fields.length > 0) {
    fail(`${where} mixes operators (${keys.filter((k) => k.startsWith('$')).join(', ')}) and field names (${fields.join(', ')}); use an operator object such as { $gt: 1 }, or a literal object without $ keys (equality), or { $eq: {…} } to match an object with $ keys.`);
  }
  return and(keys.map((op) => parseOperator(path, op, value[op], where)));
}

function parseOperator(path: string[], op: string, operand: unknown, where: string): FilterNode {
  const here = `${where}.${op}`;
  switch (op) {
    case '$eq':
      return { kind: 'eq', path, value: checkedLiteral(operand, here) };
    case '$ne':
      return { kind: 'not', node: { kind: 'eq', path, value: checkedLiteral(operand, here) } };
    case '$in':
    case '$nin': {
      if (!Array.isArray(operand)) {
        fail(`${here} must be an array of values, e.g. { ${op}: ['de', 'fr'] }; got ${describe(operand)}.`);
      }
      const node = or(operand.map((v, i): FilterNode => ({ kind: 'eq', path, value: checkedLiteral(v, `${here}[${i}]`) })));
      return op === '$in' ? node : { kind: 'not', node };
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      if (typeof operand === 'string') checkString(operand, here);
      else if (typeof operand !== 'number' || !Number.isFinite(operand)) {
        fail(`${here} must be a finite number or a string (order comparisons are defined for numbers and strings only; use $eq, $ne or $in for booleans and null); got ${typeof operand === 'object' && operand !== null && !Array.isArray(operand) ? describeNonJson(operand) : describe(operand)}.`);
      }
      return { kind: 'cmp', path, op: COMPARE_OPS[op]!, value: operand };
    case '$exists':
      if (typeof operand !== 'boolean') fail(`${here} must be true or false; got ${describe(operand)}.`);
      return { kind: 'exists', path, exists: operand };
    case '$not':
      if (!isOperatorObject(operand)) {
        fail(`${here} must be an operator object such as { $not: { $gt: 5 } } (to exclude a value use $ne or $nin); got ${describe(operand)}.`);
      }
      return { kind: 'not', node: parseCondition(path, operand, here) };
    case '$and':
    case '$or':
      fail(`${here}: ${op} is a logical operator; use it at the top level of a filter, e.g. { ${op}: [{ f: 1 }, { f: 2 }] }, not under a field.`);
  }
  fail(`${here}: unknown operator ${op}. ${SUPPORTED}`);
}

/**
 * Validates a declarative metadata filter (see the module comment) and returns it typed. Throws a
 * `BgeM3Error('INVALID_ARGUMENT')` that names the offending path (prefixed with `where`).
 */
export function checkFilter(filter: unknown, where = 'filter'): MetadataFilter {
  parseFilter(filter, where);
  return filter as MetadataFilter;
}

// --- JavaScript evaluation -----------------------------------------------------------------------

/** `a` vs `b` in Unicode code point order (negative, 0, positive), the order of UTF-8 bytes and of PostgreSQL's `COLLATE "C"`. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order and code point order differ only between surrogates (U+D800–DFFF, which encode
    // U+10000 and up) and U+E000–FFFF: move the surrogates above.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

type Get = (metadata: unknown) => unknown;

function getter(path: string[]): Get {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (path.length === 1) {
    const key = path[0]!;
    return (m) => (isObject(m) && Object.hasOwn(m, key) ? m[key] : undefined);
  }
  return (m) => {
    let v: unknown = m;
    for (const key of path) {
      if (!isObject(v) || !Object.hasOwn(v, key)) return undefined;
      v = v[key];
    }
    return v;
  };
}

/** JSON deep equality (objects by key set, `undefined` properties ignored as JSON drops them). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const arrayA = Array.isArray(a);
  if (arrayA !== Array.isArray(b)) return false;
  if (arrayA) {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!jsonEqual(x[i] ?? null, y[i] ?? null)) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let count = 0;
  for (const k of Object.keys(x)) {
    if (x[k] === undefined) continue;
    count++;
    if (!Object.hasOwn(y, k) || !jsonEqual(x[k], y[k])) return false;
  }
  for (const k of Object.keys(y)) if (y[k] !== undefined) count--;
  return count === 0;
}

type Test = (metadata: unknown) => boolean;

function compileNode(node: FilterNode): Test {
  switch (node.kind) {
    case 'and': {
      const tests = node.nodes.map(compileNode);
      if (tests.length === 2) {
        const [p, q] = tests as [Test, Test];
        return (m) => p(m) && q(m);
      }
      return (m) => tests.every((t) => t(m));
    }
    case 'or': {
      const tests = node.nodes.map(compileNode);
      return (m) => tests.some((t) => t(m));
    }
    case 'not': {
      const test = compileNode(node.node);
      return (m) => !test(m);
    }
    case 'exists': {
      const get = getter(node.path);
      return node.exists ? (m) => get(m) !== undefined : (m) => get(m) === undefined;
    }
    case 'eq': {
      const get = getter(node.path);
      const x = node.value;
      if (x === null) {
        return (m) => {
          const v = get(m);
          return v == null || (Array.isArray(v) && v.some((e) => e == null));
        };
      }
      if (typeof x !== 'object') {
        return (m) => {
          const v = get(m);
          return v === x || (Array.isArray(v) && v.includes(x));
        };
      }
      return (m) => {
        const v = get(m);
        return v !== undefined && (jsonEqual(v, x) || (Array.isArray(v) && v.some((e) => jsonEqual(e ?? null, x))));
      };
    }
    case 'cmp': {
      const get = getter(node.path);
      const test = compareTest(node.op, node.value);
      return (m) => {
        const v = get(m);
        return Array.isArray(v) ? v.some(test) : test(v);
      };
    }
  }
}

function compareTest(op: CompareOp, x: number | string): (v: unknown) => boolean {
  if (typeof x === 'number') {
    switch (op) {
      case '>': return (v) => typeof v === 'number' && v > x;
      case '>=': return (v) => typeof v === 'number' && v >= x;
      case '<': return (v) => typeof v === 'number' && v < x;
      case '<=': return (v) => typeof v === 'number' && v <= x;
    }
  }
  // Without a code unit >= U+D800 in the operand, UTF-16 order equals code point order (the first
  // difference involves a unit below the surrogates, or one string ends), so `<` is exact.
  if (!/[\uD800-\uFFFF]/.test(x)) {
    switch (op) {
      case '>': return (v) => typeof v === 'string' && v > x;
      case '>=': return (v) => typeof v === 'string' && v >= x;
      case '<': return (v) => typeof v === 'string' && v < x;
      case '<=': return (v) => typeof v === 'string' && v <= x;
    }
  }
  switch (op) {
    case '>': return (v) => typeof v === 'string' && compareCodePoints(v, x) > 0;
    case '>=': return (v) => typeof v === 'string' && compareCodePoints(v, x) >= 0;
    case '<': return (v) => typeof v === 'string' && compareCodePoints(v, x) < 0;
    case '<=': return (v) => typeof v === 'string' && compareCodePoints(v, x) <= 0;
  }
}

/**
 * Validates `filter` once and returns a fast predicate over metadata objects (JSON values, as an
 * index stores them). Use it to test many documents against one filter.
 */
export function compileFilter(filter: MetadataFilter): (metadata: Record<string, unknown>) => boolean {
  return compileNode(parseFilter(filter, 'filter'));
}

/** Whether `metadata` passes `filter` (validates and compiles the filter on each call: see {@link compileFilter}). */
export function matchesFilter(filter: MetadataFilter, metadata: Record<string, unknown>): boolean {
  return compileFilter(filter)(metadata);
}

// --- PostgreSQL ----------------------------------------------------------------------------------

const COLUMN = /^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\u0000]|"")+")(?:\.(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\u0000]|"")+"))*$/;

/**
 * Translates `filter` into a PostgreSQL boolean expression over the `jsonb` column `column` (an
 * identifier written by the backend, such as `metadata` or `d."metadata"`; never taken from the
 * filter). Every value goes into `params` (appended; the expression refers to them as `$N`), so
 * the result is safe to embed in `WHERE …`. It selects exactly the documents {@link matchesFilter}
 * accepts, given that the column holds the documents' metadata objects (`jsonb NOT NULL`; a SQL
 * NULL is not a document) and the database encoding is UTF8.
 *
 * Shape (V = value at the path, SQL NULL when missing):
 *
 * - V is `((column -> $1::text) -> $2::text) …`, one text parameter per path segment: `->` with a
 *   text key yields NULL on anything but an object, which is exactly "paths walk objects only"
 *   (`#>` with a `text[]` path would index arrays by numeric segments, even negative ones).
 * - Equality with a string, number or boolean: `(column @> $a::text::jsonb OR column @> $b::text::jsonb)`
 *   with `$a` = `{"author":{"name":x}}` and `$b` = `{"author":{"name":[x]}}` (containment of a
 *   scalar is equality; in an array it is "some element equals"): a GIN index on the column
 *   (`jsonb_ops` or `jsonb_path_ops`) serves it. With `null`, `OR V IS NULL` (missing) is added.
 *   With an array or object: `COALESCE(V = $x, false) OR` (when V is an array)
 *   `EXISTS (SELECT 1 FROM jsonb_array_elements(V) …  = $x)`, `jsonb` `=` being deep equality.
 * - `$gt` etc.: `CASE jsonb_typeof(V) WHEN 'number' THEN V > $x::text::jsonb WHEN 'array' THEN
 *   EXISTS (… elements of type number and > $x) ELSE false END`; for a string operand the type is
 *   `'string'` and the comparison `(V #>> '{}') COLLATE "C" > $x::text` (code point order). `CASE`
 *   guarantees `jsonb_array_elements` only ever sees arrays.
 * - `$exists`: `V IS [NOT] NULL`. `$ne`, `$nin`, `$not`: `NOT (…)`; `$in`/`$or`: `OR`; several
 *   conditions/`$and`: `AND`; `{}` is `TRUE`, `$in: []` is `FALSE`. Every part is two-valued
 *   (never SQL NULL), so `NOT` is exact.
 *
 * Parameters are strings (JSON text cast in SQL with `::text::jsonb`, path segments and string
 * operands as `::text`), so any driver (node-postgres, PGlite, postgres.js) passes them verbatim.
 */
export function filterToSql(filter: MetadataFilter, column: string, params: unknown[]): string {
  if (typeof column !== 'string' || !COLUMN.test(column)) {
    fail(`filterToSql: column must be a SQL identifier such as metadata, t.metadata or "Metadata"; got ${describe(column)}.`);
  }
  if (!Array.isArray(params)) fail(`filterToSql: params must be an array (placeholders are appended to it); got ${describe(params)}.`);
  const node = parseFilter(filter, 'filter');
  const param = (value: string): string => {
    params.push(value);
    return `$${params.length}`;
  };
  const paths = new Map<string, string>();
  const valueAt = (path: string[]): string => {
    const key = path.join('\u0000'); // segments never contain U+0000 (checked)
    let sql = paths.get(key);
    if (sql === undefined) {
      sql = column;
      for (const segment of path) sql = `(${sql} -> ${param(segment)}::text)`;
      paths.set(key, sql);
    }
    return sql;
  };
  const nest = (path: string[], value: FilterValue): string => {
    let out: FilterValue = value;
    for (let i = path.length - 1; i >= 0; i--) out = { [path[i]!]: out };
    return JSON.stringify(out);
  };
  const emit = (n: FilterNode): string => {
    switch (n.kind) {
      case 'and':
        return n.nodes.length === 0 ? 'TRUE' : `(${n.nodes.map(emit).join(' AND ')})`;
      case 'or':
        return n.nodes.length === 0 ? 'FALSE' : `(${n.nodes.map(emit).join(' OR ')})`;
      case 'not':
        return `(NOT ${emit(n.node)})`;
      case 'exists':
        return `(${valueAt(n.path)} IS ${n.exists ? 'NOT ' : ''}NULL)`;
      case 'eq': {
        const x = n.value;
        if (x === null || typeof x !== 'object') {
          const contains = `${column} @> ${param(nest(n.path, x))}::text::jsonb OR ${column} @> ${param(nest(n.path, [x]))}::text::jsonb`;
          return x === null ? `(${contains} OR ${valueAt(n.path)} IS NULL)` : `(${contains})`;
        }
        const v = valueAt(n.path);
        const p = `${param(JSON.stringify(x))}::text::jsonb`;
        return `(COALESCE(${v} = ${p}, false) OR CASE WHEN jsonb_typeof(${v}) = 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements(${v}) AS _bgem3_el(v) WHERE _bgem3_el.v = ${p}) ELSE false END)`;
      }
      case 'cmp': {
        const v = valueAt(n.path);
        if (typeof n.value === 'number') {
          const p = `${param(JSON.stringify(n.value))}::text::jsonb`;
          return `(CASE jsonb_typeof(${v}) WHEN 'number' THEN ${v} ${n.op} ${p} WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements(${v}) AS _bgem3_el(v) WHERE jsonb_typeof(_bgem3_el.v) = 'number' AND _bgem3_el.v ${n.op} ${p}) ELSE false END)`;
        }
        const p = `${param(n.value)}::text`;
        return `(CASE jsonb_typeof(${v}) WHEN 'string' THEN (${v} #>> '{}') COLLATE "C" ${n.op} ${p} WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements(${v}) AS _bgem3_el(v) WHERE jsonb_typeof(_bgem3_el.v) = 'string' AND (_bgem3_el.v #>> '{}') COLLATE "C" ${n.op} ${p}) ELSE false END)`;
      }
    }
  };
  return emit(node);
}
