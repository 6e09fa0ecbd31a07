/**
 * The declarative metadata filter: validation, the JavaScript evaluator, and its SQL translation.
 * Every unit case is checked on both sides (JS and a real PostgreSQL, PGlite, when installed), and a
 * seeded property test compares them on random documents (nested objects, arrays, nulls, numbers,
 * strings with non-ASCII and astral characters, booleans, missing fields) and random filters.
 * The in-memory index's declarative filter path is checked against brute force.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Error } from '../../src/errors.js';
import { checkFilter, compareCodePoints, compileFilter, filterToSql, matchesFilter, type FilterValue, type MetadataFilter } from '../../src/stores/filter.js';
import { requireDeclarativeFilter, resolveSearchOptions } from '../../src/stores/fusion.js';
import { MemoryHybridIndex } from '../../src/stores/memory/memory-hybrid-index.js';
import { dot } from '../../src/scores.js';
import { rng } from '../support/random-corpus.js';

type Meta = Record<string, unknown>;

interface Db {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  close(): Promise<void>;
}

let db: Db | undefined;
let pgliteError: unknown;

beforeAll(async () => {
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    db = (await PGlite.create()) as unknown as Db;
  } catch (cause) {
    pgliteError = cause;
  }
});

afterAll(async () => {
  await db?.close();
});

/** Evaluates `filter` on one document in PostgreSQL. */
async function sqlMatches(filter: MetadataFilter, metadata: Meta): Promise<boolean> {
  const params: unknown[] = [];
  const where = filterToSql(filter, 'metadata', params);
  params.push(JSON.stringify(metadata));
  const { rows } = await db!.query<{ m: boolean }>(`SELECT ${where} AS m FROM (SELECT $${params.length}::text::jsonb AS metadata) AS d`, params);
  return rows[0]!.m;
}

const doc = {
  lang: 'de',
  year: 2021,
  score: 0.5,
  draft: false,
  none: null,
  tags: ['ml', 'ir', null],
  nums: [1, 5, 10],
  mixed: [3, '7', true, [1, 2], { k: 1 }],
  empty: [],
  author: { name: 'Ada', born: 1815, langs: ['en', 'fr'], address: { city: 'London' } },
  authors: [{ name: 'Ada' }, { name: 'Bob' }],
  n: '7',
  emoji: '😀',
  priv: '\uE000',
  'x.y': 1,
  x: { y: 2 },
  obj: { a: 1, b: [1, 2] },
};

/** [filter, expected on `doc`, label] */
const cases: [MetadataFilter, boolean, string][] = [
  [{}, true, 'empty filter'],
  [{ lang: 'de' }, true, 'equality'],
  [{ lang: 'fr' }, false, 'equality, other value'],
  [{ lang: 'de', year: 2021 }, true, 'implicit AND'],
  [{ lang: 'de', year: 2020 }, false, 'implicit AND, one fails'],
  [{ year: '2021' }, false, 'number vs string never equal'],
  [{ draft: false }, true, 'boolean'],
  [{ draft: 0 }, false, 'boolean vs number'],
  [{ score: 0.5 }, true, 'float'],
  [{ tags: 'ml' }, true, 'array: any element equals'],
  [{ tags: 'xx' }, false, 'array: no element equals'],
  [{ tags: ['ml', 'ir', null] }, true, 'array: equal as a whole'],
  [{ tags: ['ir', 'ml', null] }, false, 'array equality is ordered'],
  [{ mixed: [1, 2] }, true, 'array: an element that is an array equals'],
  [{ mixed: 1 }, false, 'array: elements of nested arrays do not count'],
  [{ mixed: { k: 1 } }, true, 'array: an element that is an object equals'],
  [{ empty: [] }, true, 'empty array equals []'],
  [{ empty: null }, false, 'empty array is not null'],
  [{ obj: { b: [1, 2], a: 1 } }, true, 'object equality ignores key order'],
  [{ obj: { a: 1 } }, false, 'object equality is not containment'],
  [{ 'author.name': 'Ada' }, true, 'dotted path'],
  [{ 'author.address.city': 'London' }, true, 'deep dotted path'],
  [{ 'author.langs': 'fr' }, true, 'dotted path to an array'],
  [{ 'author.name.first': { $exists: true } }, false, 'path through a string is missing'],
  [{ 'authors.name': 'Ada' }, false, 'paths do not traverse arrays'],
  [{ 'authors.0': { name: 'Ada' } }, false, 'no numeric indexing'],
  [{ 'authors.0': { $exists: false } }, true, 'no numeric indexing ($exists)'],
  [{ authors: { name: 'Ada' } }, true, 'array of objects: literal element'],
  [{ 'x.y': 2 }, true, 'a dotted key is a path, not the key "x.y"'],
  [{ 'x.y': 1 }, false, 'the key "x.y" cannot be addressed'],
  [{ none: null }, true, 'null equals null'],
  [{ missing: null }, true, 'null matches missing'],
  [{ tags: null }, true, 'null matches an array containing null'],
  [{ lang: null }, false, 'null does not match a string'],
  [{ none: { $exists: true } }, true, '$exists true on null'],
  [{ none: { $exists: false } }, false, '$exists false on null'],
  [{ missing: { $exists: false } }, true, '$exists false on missing'],
  [{ missing: { $exists: true } }, false, '$exists true on missing'],
  [{ constructor: { $exists: true } }, false, 'inherited properties are not fields'],
  [{ toString: null }, true, 'inherited properties are missing'],
  [{ none: { $exists: true, $eq: null } }, true, 'present and null'],
  [{ missing: { $exists: true, $eq: null } }, false, 'present and null, missing'],
  [{ lang: { $eq: 'de' } }, true, '$eq'],
  [{ lang: { $ne: 'de' } }, false, '$ne'],
  [{ lang: { $ne: 'fr' } }, true, '$ne other'],
  [{ missing: { $ne: 'x' } }, true, '$ne matches missing'],
  [{ missing: { $ne: null } }, false, '$ne null excludes missing'],
  [{ none: { $ne: null } }, false, '$ne null excludes null'],
  [{ lang: { $ne: null } }, true, '$ne null on a value'],
  [{ tags: { $ne: 'ml' } }, false, '$ne on array: an element equals'],
  [{ tags: { $ne: 'xx' } }, true, '$ne on array: no element equals'],
  [{ tags: { $ne: null } }, false, '$ne null on array containing null'],
  [{ lang: { $in: ['fr', 'de'] } }, true, '$in'],
  [{ lang: { $in: [] } }, false, '$in empty'],
  [{ tags: { $in: ['xx', 'ir'] } }, true, '$in on array'],
  [{ missing: { $in: ['a', null] } }, true, '$in with null matches missing'],
  [{ obj: { $in: [{ a: 1, b: [1, 2] }] } }, true, '$in with an object literal'],
  [{ lang: { $nin: ['fr', 'de'] } }, false, '$nin'],
  [{ lang: { $nin: [] } }, true, '$nin empty'],
  [{ tags: { $nin: ['xx', 'yy'] } }, true, '$nin on array'],
  [{ tags: { $nin: ['xx', 'ir'] } }, false, '$nin on array, an element in'],
  [{ missing: { $nin: ['x'] } }, true, '$nin matches missing'],
  [{ year: { $gt: 2020 } }, true, '$gt'],
  [{ year: { $gt: 2021 } }, false, '$gt equal'],
  [{ year: { $gte: 2021 } }, true, '$gte'],
  [{ year: { $lt: 2021 } }, false, '$lt equal'],
  [{ year: { $lte: 2021 } }, true, '$lte'],
  [{ year: { $gte: 2020, $lt: 2022 } }, true, 'range'],
  [{ year: { $gt: 2021.5, $lt: 2022 } }, false, 'range, out'],
  [{ n: { $gt: 5 } }, false, '$gt number vs the string "7"'],
  [{ n: { $gt: '5' } }, true, '$gt string vs the string "7"'],
  [{ n: { $gt: '10' } }, true, 'strings compare as strings ("7" > "10")'],
  [{ year: { $gt: '1' } }, false, '$gt string vs number'],
  [{ none: { $gt: 0 } }, false, '$gt on null'],
  [{ missing: { $lt: 0 } }, false, '$lt on missing'],
  [{ draft: { $lt: 1 } }, false, '$lt on boolean'],
  [{ author: { $gt: 'A' } }, false, '$gt on an object'],
  [{ nums: { $gt: 9 } }, true, '$gt on array: any element'],
  [{ nums: { $gt: 10 } }, false, '$gt on array: none'],
  [{ nums: { $gt: 6, $lt: 4 } }, true, 'array: each operator may match a different element'],
  [{ mixed: { $gt: 5 } }, false, 'array: only elements of the operand type ("7" is a string)'],
  [{ mixed: { $gte: '7' } }, true, 'array: string element'],
  [{ empty: { $gt: 0 } }, false, 'empty array'],
  [{ lang: { $gt: 'Z' } }, true, "'de' > 'Z' (code points, not collation)"],
  [{ lang: { $lt: 'dea' } }, true, 'prefix sorts first'],
  [{ emoji: { $gt: '\uE000' } }, true, 'astral > U+E000 by code point (UTF-16 would say less)'],
  [{ priv: { $lt: '😀' } }, true, 'U+E000 < astral by code point'],
  [{ priv: { $gt: '\uFFFF' } }, false, 'U+E000 < U+FFFF'],
  [{ emoji: { $gt: '\uFFFF' } }, true, 'astral > U+FFFF'],
  [{ emoji: { $lte: '😀' } }, true, '$lte equal astral'],
  [{ year: { $not: { $gt: 2021 } } }, true, 'field $not'],
  [{ year: { $not: { $gte: 2021 } } }, false, 'field $not, operand holds'],
  [{ missing: { $not: { $gt: 1 } } }, true, 'field $not on missing'],
  [{ $not: { lang: 'de' } }, false, 'top-level $not'],
  [{ $not: { lang: 'fr' } }, true, 'top-level $not, operand fails'],
  [{ $and: [{ lang: 'de' }, { year: 2021 }] }, true, '$and'],
  [{ $and: [{ lang: 'de' }, { year: 1 }] }, false, '$and, one fails'],
  [{ $or: [{ lang: 'fr' }, { year: 2021 }] }, true, '$or'],
  [{ $or: [{ lang: 'fr' }, { year: 1 }] }, false, '$or, none'],
  [{ $or: [{ $and: [{ lang: 'de' }, { $not: { draft: true } }] }, { year: 1 }], 'author.born': { $lt: 1900 } }, true, 'nested logic'],
];

describe('matchesFilter and filterToSql agree on unit cases', () => {
  for (const [filter, expected, label] of cases) {
    it(`${label}: ${JSON.stringify(filter)}`, async () => {
      expect(matchesFilter(filter, doc)).toBe(expected);
      if (db) expect(await sqlMatches(filter, doc)).toBe(expected);
    });
  }

  it('runs the SQL side (PGlite installed)', () => {
    expect(pgliteError, `@electric-sql/pglite could not be loaded: ${String(pgliteError)}`).toBeUndefined();
  });

  it('on a document without metadata fields', async () => {
    const filters: [MetadataFilter, boolean][] = [
      [{ a: null }, true],
      [{ a: 1 }, false],
      [{ a: { $ne: 1 } }, true],
      [{ a: { $exists: false } }, true],
      [{ 'a.b': null }, true],
      [{ $not: {} }, false],
    ];
    for (const [f, want] of filters) {
      expect(matchesFilter(f, {}), JSON.stringify(f)).toBe(want);
      if (db) expect(await sqlMatches(f, {}), JSON.stringify(f)).toBe(want);
    }
  });

  it('numbers compare by value at the extremes', async () => {
    const m = { big: 1e21, tiny: 5e-324, neg: -1.7976931348623157e308, z: 0 };
    const filters: [MetadataFilter, boolean][] = [
      [{ big: { $gt: 999999999999999900000 } }, true],
      [{ big: 1e21 }, true],
      [{ tiny: { $gt: 0 } }, true],
      [{ tiny: { $lt: 1e-323 } }, true],
      [{ neg: { $lt: -1e308 } }, true],
      [{ z: -0 }, true],
      [{ z: { $gte: -0 } }, true],
    ];
    for (const [f, want] of filters) {
      expect(matchesFilter(f, m), JSON.stringify(f)).toBe(want);
      if (db) expect(await sqlMatches(f, m), JSON.stringify(f)).toBe(want);
    }
  });
});

describe('compareCodePoints', () => {
  it('orders by code point, unlike UTF-16 code units', () => {
    const sorted = ['', 'a', 'ab', 'b', 'é', '\uD7FF', '\uE000', '\uFFFD', '\uFFFF', '😀', '😀a', '😁', '\u{10FFFF}'];
    const shuffled = [...sorted].reverse();
    expect(shuffled.sort(compareCodePoints)).toEqual(sorted);
    expect('😀' < '\uE000').toBe(true); // the UTF-16 order the evaluator must not use
    expect(compareCodePoints('😀', '\uE000')).toBeGreaterThan(0);
    const bytes = (s: string) => Buffer.from(s, 'utf8');
    for (const a of sorted) for (const b of sorted) expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(Buffer.compare(bytes(a), bytes(b))));
  });
});

describe('checkFilter', () => {
  const bad = (filter: unknown, pattern: RegExp) => {
    let error: unknown;
    try {
      checkFilter(filter);
    } catch (e) {
      error = e;
    }
    expect(error, String(pattern)).toBeInstanceOf(BgeM3Error);
    expect((error as BgeM3Error).code).toBe('INVALID_ARGUMENT');
    expect((error as BgeM3Error).message).toMatch(pattern);
  };

  it('returns a valid filter as is', () => {
    const f = { 'a.b': { $in: [1, 'x', null, [1], { k: 2 }] }, $or: [{ c: { $gte: 'm' } }, { $not: { d: { $exists: false } } }] };
    expect(checkFilter(f)).toBe(f);
  });

  it('rejects unknown operators, listing the supported ones', () => {
    bad({ title: { $regex: '^a' } }, /filter\.title\.\$regex: unknown operator \$regex\. Supported: field operators \$eq, \$ne, \$in, \$nin, \$gt, \$gte, \$lt, \$lte, \$exists, \$not/);
    bad({ $nor: [{ a: 1 }] }, /filter\.\$nor: unknown operator \$nor.*logical operators \$and, \$or, \$not/);
    bad({ a: { $elemMatch: { b: 1 } } }, /unknown operator \$elemMatch/);
  });

  it('rejects misplaced operators', () => {
    bad({ $eq: 1 }, /filter\.\$eq: \$eq is a field operator; put it under a field/);
    bad({ a: { $or: [{ b: 1 }] } }, /filter\.a\.\$or: \$or is a logical operator; use it at the top level/);
    bad({ a: { $gt: 1, b: 2 } }, /filter\.a mixes operators \(\$gt\) and field names \(b\)/);
    bad({ author: { name: { $ne: 'x' } } }, /filter\.author\.name: the key \$ne inside a literal object.*"author\.name"/);
  });

  it('rejects malformed logical operators', () => {
    bad({ $and: { a: 1 } }, /filter\.\$and must be a non-empty array of filters, e\.g\. .*; got an object/);
    bad({ $or: [] }, /filter\.\$or must be a non-empty array/);
    bad({ $and: [{ a: 1 }, 'b'] }, /filter\.\$and\[1\] must be a filter object.*the string "b"/);
    bad({ $not: [{ a: 1 }] }, /filter\.\$not must be a filter object/);
    bad({ $or: [{ $and: [{ a: { $bad: 1 } }] }] }, /filter\.\$or\[0\]\.\$and\[0\]\.a\.\$bad: unknown operator/);
  });

  it('rejects malformed operands', () => {
    bad({ a: { $in: 'x' } }, /filter\.a\.\$in must be an array of values/);
    bad({ a: { $nin: null } }, /filter\.a\.\$nin must be an array/);
    bad({ a: { $gt: true } }, /filter\.a\.\$gt must be a finite number or a string.*use \$eq, \$ne or \$in for booleans and null\); got boolean true/);
    bad({ a: { $lt: null } }, /filter\.a\.\$lt must be a finite number or a string/);
    bad({ a: { $gte: [1] } }, /filter\.a\.\$gte must be a finite number or a string/);
    bad({ a: { $lte: new Date(0) } }, /filter\.a\.\$lte must be .*a Date/);
    bad({ a: { $exists: 1 } }, /filter\.a\.\$exists must be true or false; got number 1/);
    bad({ a: { $not: 5 } }, /filter\.a\.\$not must be an operator object.*\$ne or \$nin/);
    bad({ a: { $not: { b: 1 } } }, /filter\.a\.\$not must be an operator object/);
  });

  it('rejects values that are not JSON, naming the path', () => {
    bad({ a: undefined }, /filter\.a is undefined \(omit the condition, or use \{ \$exists: false \}/);
    bad({ a: () => true }, /filter\.a is a function/);
    bad({ a: Number.NaN }, /filter\.a is the number NaN, which JSON cannot represent/);
    bad({ a: { $eq: Infinity } }, /filter\.a\.\$eq is the number Infinity/);
    bad({ a: { $gt: Number.NaN } }, /filter\.a\.\$gt must be a finite number or a string .*; got number NaN/);
    bad({ 'a.b': new Date(0) }, /filter\["a\.b"\] is a Date \(compare ISO strings/);
    bad({ a: /x/ }, /filter\.a is a RegExp \(regular expressions are not supported\)/);
    bad({ a: 1n }, /filter\.a is the bigint 1n/);
    bad({ a: Symbol('s') }, /filter\.a is a symbol/);
    bad({ a: new Map() }, /filter\.a is an instance of Map/);
    bad({ a: { $in: [1, undefined] } }, /filter\.a\.\$in\[1\] is undefined/);
    bad({ a: { $eq: { b: [1, { c: undefined }] } } }, /filter\.a\.\$eq\.b\[1\]\.c is undefined/);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    bad({ a: { $eq: loop } }, /filter\.a\.\$eq\.self refers to itself/);
  });

  it('rejects strings PostgreSQL cannot hold', () => {
    bad({ a: 'x\u0000y' }, /filter\.a contains U\+0000 at index 1/);
    bad({ a: { $gt: '\uD800' } }, /filter\.a\.\$gt contains an unpaired surrogate \(U\+D800\)/);
    bad({ a: { $in: ['ok', 'b\uDC00'] } }, /filter\.a\.\$in\[1\] contains an unpaired surrogate/);
    bad({ 'a\uD800': 1 }, /field path .* contains an unpaired surrogate/);
    expect(() => checkFilter({ a: '😀', b: { $lt: '\u{10FFFF}' } })).not.toThrow();
  });

  it('rejects bad paths and non-object filters', () => {
    bad({ 'a..b': 1 }, /the field path "a\.\.b" has an empty segment/);
    bad({ '': 1 }, /empty segment/);
    bad({ '.a': 1 }, /empty segment/);
    bad('lang', /filter must be a filter object such as \{ lang: 'de' \}.*got the string "lang"/);
    bad([{ a: 1 }], /filter must be a filter object.*an array of length 1/);
    bad(null, /filter must be a filter object.*got null/);
    bad(new Date(), /filter must be a filter object.*a Date/);
    expect(() => checkFilter({ $bad: 1 }, 'options.filter')).toThrow(/options\.filter\.\$bad/);
  });

  it('filterToSql refuses a column that is not an identifier', () => {
    expect(() => filterToSql({ a: 1 }, 'metadata; DROP TABLE t', [])).toThrow(/column must be a SQL identifier/);
    expect(() => filterToSql({ a: 1 }, 'd."meta""data"', [])).not.toThrow();
  });
});

describe('filterToSql output', () => {
  it('never interpolates values or path segments, and appends placeholders after existing params', () => {
    const params: unknown[] = ['dense', 'sparse'];
    const evil = "x'); DROP TABLE t; --";
    const sql = filterToSql({ [`${evil}.b`]: evil, c: { $gt: evil }, d: { $in: [1, { evil }] } }, 't.metadata', params);
    expect(sql).not.toContain('DROP');
    expect(sql).not.toContain('$1 ');
    expect(sql).toMatch(/\$3::text::jsonb/);
    expect(params.slice(0, 2)).toEqual(['dense', 'sparse']);
    expect(params.every((p) => typeof p === 'string')).toBe(true);
    expect(Math.max(...[...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))).toBe(params.length);
  });

  it('uses GIN-friendly containment for scalar equality', () => {
    const params: unknown[] = [];
    expect(filterToSql({ 'author.name': 'Ada' }, 'metadata', params)).toBe('(metadata @> $1::text::jsonb OR metadata @> $2::text::jsonb)');
    expect(params).toEqual(['{"author":{"name":"Ada"}}', '{"author":{"name":["Ada"]}}']);
    expect(filterToSql({}, 'metadata', [])).toBe('TRUE');
  });
});

// --- property test --------------------------------------------------------------------------------

const STRINGS = ['', 'a', 'ab', 'B', 'Z', '7', '10', 'é', 'e\u0301', 'ß', '中文', '😀', 'a😀', '😁', '\uE000', '\uFFFD', '\uFFFF', 'de', 'x y'];
const NUMBERS = [0, 1, -1, 2.5, 7, 10, -0.5, 1e21, 0.1, 3];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

function randomScalar(rand: () => number): FilterValue {
  const r = rand();
  if (r < 0.1) return null;
  if (r < 0.2) return rand() < 0.5;
  if (r < 0.55) return pick(rand, NUMBERS);
  return pick(rand, STRINGS);
}

const DOC_KEYS = ['a', 'b', 'n', 's', 'tags', 'o', 'x', 'x.y', 'flag'];
const OBJ_KEYS = ['a', 'b', 'o', 'tags'];

function randomValue(rand: () => number, depth: number): FilterValue {
  const r = rand();
  if (depth < 2 && r < 0.15) {
    const o: Record<string, FilterValue> = {};
    for (const k of OBJ_KEYS) if (rand() < 0.5) o[k] = randomValue(rand, depth + 1);
    return o;
  }
  if (depth < 2 && r < 0.35) {
    const n = Math.floor(rand() * 4);
    return Array.from({ length: n }, () => (rand() < 0.15 ? randomValue(rand, depth + 1) : randomScalar(rand)));
  }
  return randomScalar(rand);
}

function randomDoc(rand: () => number): Meta {
  const m: Meta = {};
  for (const k of DOC_KEYS) if (rand() < 0.75) m[k] = randomValue(rand, 0);
  if (rand() < 0.6) m.o = { a: randomScalar(rand), b: randomValue(rand, 1), ...(rand() < 0.3 ? { o: { a: randomScalar(rand) } } : {}) };
  if (rand() < 0.4) m.x = { y: randomScalar(rand) };
  if (rand() < 0.05) m['constructor'] = 'c';
  return m;
}

const COMMON_PATHS = ['a', 'b', 'n', 's', 'tags', 'o', 'o.a', 'o.b', 'x.y', 'flag'];
const PATHS = [...COMMON_PATHS, 'o.o.a', 'o.tags', 'x', 'missing', 'constructor', 'tags.0', 'a.a'];
const randomPath = (rand: () => number) => pick(rand, rand() < 0.8 ? COMMON_PATHS : PATHS);
const CMP = ['$gt', '$gte', '$lt', '$lte'] as const;

function randomOperand(rand: () => number): number | string {
  if (rand() < 0.5) {
    const v = sampledValue(rand);
    if (typeof v === 'number' || typeof v === 'string') return v;
  }
  return rand() < 0.5 ? pick(rand, NUMBERS) : pick(rand, STRINGS);
}

/** Documents whose values filters sample (so that equalities hit), set by the test. */
let SAMPLE: Meta[] = [];

/** A value (or an array element) found in a random document, else a random value. */
function sampledValue(rand: () => number): FilterValue {
  for (let tries = 0; tries < 4 && SAMPLE.length > 0; tries++) {
    const d = pick(rand, SAMPLE);
    let v: unknown = d;
    for (const seg of randomPath(rand).split('.')) v = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, seg) ? (v as Meta)[seg] : undefined;
    if (v === undefined) continue;
    if (Array.isArray(v) && v.length > 0 && rand() < 0.7) v = pick(rand, v);
    return v as FilterValue;
  }
  return randomValue(rand, 1);
}

function literal(rand: () => number): FilterValue {
  return rand() < 0.6 ? sampledValue(rand) : randomValue(rand, 1);
}

function randomOperators(rand: () => number, depth: number): Record<string, unknown> {
  const ops: Record<string, unknown> = {};
  const n = 1 + Math.floor(rand() * 2);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.12) ops.$eq = literal(rand);
    else if (r < 0.24) ops.$ne = literal(rand);
    else if (r < 0.36) ops.$in = Array.from({ length: Math.floor(rand() * 4) }, () => literal(rand));
    else if (r < 0.46) ops.$nin = Array.from({ length: Math.floor(rand() * 4) }, () => literal(rand));
    else if (r < 0.84) ops[pick(rand, CMP)] = randomOperand(rand);
    else if (r < 0.94 || depth > 1) ops.$exists = rand() < 0.5;
    else ops.$not = randomOperators(rand, depth + 1);
  }
  return ops;
}

function hasDollarKey(v: FilterValue): boolean {
  if (v === null || typeof v !== 'object') return false;
  return Array.isArray(v) ? v.some(hasDollarKey) : Object.entries(v).some(([k, x]) => k.startsWith('$') || hasDollarKey(x));
}

function randomFilter(rand: () => number, depth = 0): MetadataFilter {
  const f: MetadataFilter = {};
  const n = depth === 0 ? 1 + (rand() < 0.3 ? 1 : 0) : Math.floor(rand() * 3);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (depth < 3 && r < 0.12) f.$or = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => randomFilter(rand, depth + 1));
    else if (depth < 3 && r < 0.2) f.$and = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => randomFilter(rand, depth + 1));
    else if (depth < 3 && r < 0.27) f.$not = randomFilter(rand, depth + 1);
    else {
      const isLiteral = rand() < 0.35;
      const v = isLiteral ? literal(rand) : randomOperators(rand, 0);
      f[randomPath(rand)] = isLiteral && hasDollarKey(v as FilterValue) ? 0 : (v as FilterValue);
    }
  }
  return f;
}

describe('property: matchesFilter equals PostgreSQL', () => {
  it('on random documents and filters (seeded)', async () => {
    expect(db, `@electric-sql/pglite could not be loaded: ${String(pgliteError)}`).toBeDefined();
    const rand = rng(20240611);
    const docs = Array.from({ length: 160 }, () => randomDoc(rand));
    await db!.query('CREATE TEMP TABLE t (id int PRIMARY KEY, metadata jsonb NOT NULL)');
    await db!.query(`INSERT INTO t SELECT (d.ordinality - 1)::int, d.value FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS d`, [JSON.stringify(docs)]);
    const stored = docs.map((d) => JSON.parse(JSON.stringify(d)) as Meta);
    SAMPLE = stored;
    let all = 0;
    let none = 0;
    let nonTrivial = 0;
    for (let i = 0; i < 600; i++) {
      const filter = randomFilter(rand);
      const want = stored.flatMap((d, id) => (matchesFilter(filter, d) ? [id] : []));
      const params: unknown[] = [];
      const where = filterToSql(filter, 'metadata', params);
      const { rows } = await db!.query<{ id: number }>(`SELECT id FROM t WHERE ${where} ORDER BY id`, params);
      expect(rows.map((r) => r.id), `filter #${i}: ${JSON.stringify(filter)}`).toEqual(want);
      if (want.length > 0 && want.length < docs.length) nonTrivial++;
      else if (want.length === 0) none++;
      else all++;
    }
    console.log(`property: ${nonTrivial} selective, ${none} match none, ${all} match all`);
    expect(nonTrivial).toBeGreaterThan(250); // the generator produces selective filters, not just all/none
  });
});

// --- integration ------------------------------------------------------------------------------------

describe('search options and the in-memory index', () => {
  it('resolveSearchOptions keeps a declarative filter and compiles it to the predicate', () => {
    const filter = { lang: 'de', year: { $gte: 2020 } };
    const opts = resolveSearchOptions({ filter });
    expect(opts.declarativeFilter).toEqual(filter);
    expect(opts.declarativeFilter).not.toBe(filter); // a snapshot
    expect(requireDeclarativeFilter(opts, 'PgHybridIndex')).toEqual(filter);
    expect(opts.filter!({ id: 'x', text: '', metadata: { lang: 'de', year: 2021 } })).toBe(true);
    expect(opts.filter!({ id: 'x', text: '', metadata: { lang: 'de', year: 2019 } })).toBe(false);
    expect(requireDeclarativeFilter(resolveSearchOptions({}), 'PgHybridIndex')).toBeUndefined();
    const fn = resolveSearchOptions({ filter: (d) => d.id === 'x' });
    expect(fn.declarativeFilter).toBeUndefined();
    expect(() => requireDeclarativeFilter(fn, 'PgHybridIndex')).toThrow(/PgHybridIndex: filter is a function, which only an in-memory index can run; pass a declarative metadata filter/);
    expect(() => resolveSearchOptions({ filter: { a: { $regex: 'x' } } as never })).toThrow(/filter\.a\.\$regex: unknown operator/);
    expect(() => resolveSearchOptions({ filter: 5 as never })).toThrow(/filter must be a function/);
  });

  it('MemoryHybridIndex.searchEncoded with declarative filters returns what brute force returns', async () => {
    const rand = rng(77);
    const dim = 8;
    const n = 300;
    const docs = Array.from({ length: n }, (_, i) => ({
      id: `d${i}`,
      text: `doc ${i}`,
      metadata: randomDoc(rand),
      dense: Float32Array.from({ length: dim }, () => rand() * 2 - 1),
      sparse: {},
    }));
    const index = new MemoryHybridIndex({ dim });
    index.addEncoded(docs);
    for (let q = 0; q < 40; q++) {
      const filter = randomFilter(rand);
      const query = { dense: Float32Array.from({ length: dim }, () => rand() * 2 - 1), sparse: {} };
      const match = compileFilter(filter);
      const ranked = docs
        .filter((d) => match(JSON.parse(JSON.stringify(d.metadata))))
        .map((d) => ({ id: d.id, score: dot(query.dense, d.dense) }))
        .sort((x, y) => y.score - x.score);
      const all = await index.searchEncoded(query, { k: n, candidates: n, weights: { dense: 1, sparse: 0 }, filter });
      expect(new Set(all.map((r) => r.id)), JSON.stringify(filter)).toEqual(new Set(ranked.map((r) => r.id)));
      const top = await index.searchEncoded(query, { k: 5, candidates: 20, weights: { dense: 1, sparse: 0 }, filter });
      expect(top.map((r) => r.id), JSON.stringify(filter)).toEqual(ranked.slice(0, 5).map((r) => r.id));
    }
  });

  it('the earlier { key: value } (===) filters keep their results on scalar metadata', async () => {
    const rand = rng(5);
    const scalars = [null, true, false, 0, 1, 2.5, 'de', 'en', '', '😀'];
    const docs = Array.from({ length: 200 }, (_, i) => {
      const metadata: Meta = {};
      for (const k of ['lang', 'group', 'flag']) if (rand() < 0.8) metadata[k] = pick(rand, scalars);
      return { id: `d${i}`, text: `doc ${i}`, metadata, dense: Float32Array.from({ length: 4 }, () => rand() * 2 - 1), sparse: {} };
    });
    const index = new MemoryHybridIndex({ dim: 4 });
    index.addEncoded(docs);
    for (let q = 0; q < 30; q++) {
      const filter: Meta = {};
      for (const k of ['lang', 'group', 'flag']) if (rand() < 0.5) filter[k] = pick(rand, scalars.filter((v) => v !== null));
      const legacy = docs.filter((d) => Object.entries(filter).every(([k, v]) => d.metadata[k] === v)).map((d) => d.id);
      const got = await index.searchEncoded({ dense: new Float32Array(4).fill(0.5), sparse: {} }, { k: 200, candidates: 200, weights: { dense: 1, sparse: 0 }, filter: filter as MetadataFilter });
      expect(new Set(got.map((r) => r.id)), JSON.stringify(filter)).toEqual(new Set(legacy));
    }
  });
});
