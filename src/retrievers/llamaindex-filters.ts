/**
 * LlamaIndex's `MetadataFilters` (`{ filters: [{ key, operator, value }], condition }`) translated
 * into this package's declarative metadata filter language (stores/filter.ts), which every
 * `HybridIndex` backend evaluates identically (in JavaScript and in PostgreSQL).
 *
 * | LlamaIndex operator | declarative filter | note |
 * | --- | --- | --- |
 * | `==` EQ | `{ key: { $eq: v } }` | on an array field: any element equals `v` |
 * | `!=` NE | `{ key: { $exists: true, $ne: v } }` | a missing key never matches (as in LlamaIndex) |
 * | `>` `>=` `<` `<=` | `$gt` `$gte` `$lt` `$lte` | numbers with numbers, strings with strings (code point order) |
 * | `in` IN | `{ key: { $in: [...] } }` | |
 * | `nin` NIN | `{ key: { $exists: true, $nin: [...] } }` | a missing key never matches |
 * | `any` ANY | `{ key: { $in: [...] } }` | array field holds any of the values |
 * | `all` ALL | `{ $and: [{ key: v1 }, { key: v2 }, …] }` | array field holds every value |
 * | `contains` CONTAINS | `{ key: v }` | array field holds `v` |
 * | `is_empty` IS_EMPTY | `{ $or: [{ key: null }, { key: '' }, { key: { $eq: [] } }] }` | missing, null, `""` or `[]` |
 * | `text_match` TEXT_MATCH | — | substring matching is not in the language: a `BgeM3Error` |
 *
 * `condition: 'and'` (default) / `'or'` become `$and` / `$or`; a nested `MetadataFilters` in
 * `filters` (as in LlamaIndex Python) is translated recursively. The filter language is
 * MongoDB-like, so on array fields EQ, IN and ANY also match when the field *is* one of the values
 * rather than holding it, and IS_EMPTY also matches an array that holds `null` or `""`. A key is a
 * field path: `"author.name"` reads `name` inside the object under `author`. Anything that cannot
 * be translated (TEXT_MATCH, an unknown operator or condition, a value of the wrong shape) is a
 * `BgeM3Error('INVALID_ARGUMENT')`, never ignored.
 */
import type { MetadataFilter as LlamaMetadataFilter, MetadataFilters } from '@llamaindex/core/vector-store';
import { BgeM3Error } from '../errors.js';
import { describeValue as describe } from '../shared/checks.js';
import { checkFilter, type FilterValue, type MetadataFilter } from '../stores/filter.js';

const OPERATORS = ['==', '!=', '>', '>=', '<', '<=', 'in', 'nin', 'any', 'all', 'contains', 'is_empty'] as const;
const SUPPORTED = `Supported operators: ${OPERATORS.join(', ')}; conditions: and, or.`;

type Scalar = string | number | boolean;

function fail(message: string): never {
  throw new BgeM3Error('INVALID_ARGUMENT', message);
}

/** Whether `value` has the shape of LlamaIndex `MetadataFilters` (`{ filters: [{ key, operator, … }], condition? }`). */
export function isLlamaIndexFilters(value: unknown): value is MetadataFilters {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const { filters } = value as { filters?: unknown };
  if (!Array.isArray(filters)) return false;
  if (Object.keys(value).some((k) => k !== 'filters' && k !== 'condition')) return false;
  return filters.every((f) => isLlamaIndexFilters(f) || (f !== null && typeof f === 'object' && typeof (f as LlamaMetadataFilter).key === 'string' && typeof (f as LlamaMetadataFilter).operator === 'string'));
}

/**
 * Translates LlamaIndex `MetadataFilters` into a declarative metadata filter (see the module
 * comment), or `undefined` when there is nothing to filter on (`undefined`, or no filters).
 */
export function fromLlamaIndexFilters(filters: MetadataFilters | undefined | null, where = 'filters'): MetadataFilter | undefined {
  if (filters === undefined || filters === null) return undefined;
  if (!isLlamaIndexFilters(filters)) {
    fail(`${where} must be LlamaIndex MetadataFilters such as { filters: [{ key: 'lang', value: 'de', operator: '==' }], condition: 'and' }; got ${describe(filters)}.`);
  }
  if (filters.filters.length === 0) return undefined;
  return checkFilter(translate(filters, where), where);
}

function translate(filters: MetadataFilters, where: string): MetadataFilter {
  const condition = filters.condition ?? 'and';
  if (condition !== 'and' && condition !== 'or') {
    fail(`${where}.condition must be 'and' or 'or'; got ${describe(condition)}. ${SUPPORTED}`);
  }
  const parts = filters.filters.map((f, i): MetadataFilter => {
    const here = `${where}.filters[${i}]`;
    if (isLlamaIndexFilters(f)) return f.filters.length === 0 ? {} : translate(f, here);
    return translateOne(f, here);
  });
  if (parts.length === 1) return parts[0]!;
  return condition === 'and' ? { $and: parts } : { $or: parts };
}

function scalar(value: unknown, here: string, what: string): Scalar {
  if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') return value;
  fail(`${here}.value must be ${what}; got ${describe(value)}.`);
}

function list(value: unknown, here: string): Scalar[] {
  if (!Array.isArray(value)) fail(`${here}.value must be an array of strings or numbers; got ${describe(value)}.`);
  return value.map((v, i) => scalar(v, `${here}.value[${i}]`, 'a string or a number'));
}

function translateOne(filter: LlamaMetadataFilter, here: string): MetadataFilter {
  const { key, operator, value } = filter;
  if (typeof key !== 'string' || key.length === 0) fail(`${here}.key must be a non-empty metadata key; got ${describe(key)}.`);
  const at = (condition: MetadataFilter[string]): MetadataFilter => ({ [key]: condition });
  switch (operator) {
    case '==':
      return at({ $eq: scalar(value, here, 'a string, number or boolean (use in / any / all / contains for arrays, is_empty for missing values)') });
    case '!=':
      return at({ $exists: true, $ne: scalar(value, here, 'a string, number or boolean') });
    case '>':
      return at({ $gt: order(value, here) });
    case '>=':
      return at({ $gte: order(value, here) });
    case '<':
      return at({ $lt: order(value, here) });
    case '<=':
      return at({ $lte: order(value, here) });
    case 'in':
    case 'any':
      return at({ $in: list(value, here) });
    case 'nin':
      return at({ $exists: true, $nin: list(value, here) });
    case 'all': {
      const values = list(value, here);
      if (values.length === 0) return at({ $exists: true });
      return values.length === 1 ? at({ $eq: values[0]! }) : { $and: values.map((v) => at({ $eq: v })) };
    }
    case 'contains':
      return at({ $eq: scalar(value, here, 'a string, number or boolean (the element the array must hold)') });
    case 'is_empty':
      return { $or: [at({ $eq: null }), at({ $eq: '' }), at({ $eq: [] as FilterValue[] })] };
    case 'text_match':
      fail(`${here}: the operator text_match (substring matching) cannot be expressed in the declarative metadata filter language, which has no substring or pattern operator. Filter on exact values (==, in, contains), or store the terms to match as an array field and use any / all. ${SUPPORTED}`);
  }
  fail(`${here}: unknown operator ${JSON.stringify(operator)}. ${SUPPORTED}`);
}

function order(value: unknown, here: string): number | string {
  if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value;
  fail(`${here}.value must be a number or a string for an order comparison; got ${describe(value)}.`);
}
