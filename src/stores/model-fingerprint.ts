/**
 * What a stored index must agree on with the model that searches it: the dense width, the
 * vocabulary (sparse weights are keyed by token id, so another vocabulary would silently match the
 * wrong tokens) and the weights (another model of the same shape would silently give unrelated
 * vectors). Every backend checks it the same way, with {@link checkCompatible}.
 *
 * The vocabulary is identified by its size plus a SHA-256 over the decoded text of up to 4,096
 * evenly spaced token ids and the ids of a fixed multilingual probe sentence. Hashing every one of
 * BGE-M3's 250,002 pieces one decode at a time costs about a second; the sample takes milliseconds
 * and still differs for any real pair of different vocabularies. The weights are identified by the
 * dense vector of that probe sentence: the same model gives cosine ≈ 1 (fp32, fp16 and int8 exports
 * of one model stay above 0.98), two different models give values far below.
 */
import { createHash } from 'node:crypto';
import { BgeM3Error } from '../errors.js';
import type { BgeM3Model } from '../model/bge-m3-model.js';
import { dot } from '../scores.js';
import { MAX_DENSE_DIM } from './document-checks.js';

export interface ModelFingerprint {
  dim: number;
  vocabSize: number;
  /** Hex SHA-256 of the vocabulary sample (see the module comment). */
  vocabHash: string;
  /** The probe sentence's dense vector (absent in indexes saved before it was recorded). */
  probe?: number[];
}

const PROBE =
  'Hybrid retrieval 검색 と 検索 — поиск, recherche, búsqueda, Suche, 混合检索, بحث, खोज: 1234567890 ½ ﬁ 👋';
const SAMPLE_IDS = 4096;
/** Probe cosine below which two models are different models. */
const SAME_WEIGHTS_COSINE = 0.98;

const cache = new WeakMap<BgeM3Model, Promise<ModelFingerprint>>();

/** The model's fingerprint (computed once per model instance). */
export function fingerprintModel(model: BgeM3Model): Promise<ModelFingerprint> {
  let fp = cache.get(model);
  if (!fp) {
    fp = compute(model);
    cache.set(model, fp);
  }
  return fp;
}

async function compute(model: BgeM3Model): Promise<ModelFingerprint> {
  const vocabSize = model.tokenizer.vocabSize;
  const hash = createHash('sha256');
  const step = Math.max(1, Math.floor(vocabSize / SAMPLE_IDS));
  for (let id = 0; id < vocabSize; id += step) hash.update(`${id}\u0000${model.tokenizer.decodeOne(id)}\u0000`);
  hash.update(`${vocabSize - 1}\u0000${model.tokenizer.decodeOne(vocabSize - 1)}\u0000`);
  const maxLength = Math.min(512, model.maxPositions);
  const [probe] = await model.tokenize([PROBE], { maxLength });
  hash.update(JSON.stringify(probe));
  const { denseVecs } = await model.encode([PROBE], { maxLength });
  return { dim: model.dim, vocabSize, vocabHash: hash.digest('hex'), probe: Array.from(denseVecs![0]!, (v) => Math.round(v * 1e6) / 1e6) };
}

/**
 * A stored fingerprint, checked by type and range (`bad` builds the error for a malformed one), or
 * null when none was stored.
 */
export function parseFingerprint(value: unknown, bad: (what: string) => BgeM3Error): ModelFingerprint | null {
  if (value === null || value === undefined) return null;
  const fp = value as Partial<Record<keyof ModelFingerprint, unknown>>;
  const isInt = (v: unknown, max: number) => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= max;
  if (
    typeof value !== 'object' ||
    Array.isArray(value) ||
    !isInt(fp.dim, MAX_DENSE_DIM) ||
    !isInt(fp.vocabSize, 2 ** 31) ||
    typeof fp.vocabHash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(fp.vocabHash) ||
    (fp.probe !== undefined && !(Array.isArray(fp.probe) && fp.probe.length === fp.dim && fp.probe.every((v) => typeof v === 'number' && Number.isFinite(v))))
  ) {
    throw bad('its model fingerprint is malformed (expected { dim, vocabSize, vocabHash, probe? })');
  }
  return value as ModelFingerprint;
}

/**
 * Refuses, with `INCOMPATIBLE_INDEX` naming both sides, an index stored by another model than
 * `current`: another dense width (`dim` stands in for a model when none is given), vocabulary or
 * weights. `where` names the index (a file, a table).
 */
export function checkCompatible(
  stored: { dim: number; rows: number; model: ModelFingerprint | null },
  current: ModelFingerprint | undefined,
  dim: number | undefined,
  where: string,
): void {
  const want = current?.dim ?? dim;
  if (want !== undefined && stored.rows !== 0 && stored.dim !== want) {
    throw new BgeM3Error(
      'INCOMPATIBLE_INDEX',
      `${where} holds ${stored.dim}-dimensional dense vectors but ${current ? 'the model given produces' : 'the dim option says'} ${want}: it was built with another model. Use it with that model, or rebuild the index.`,
    );
  }
  const saved = stored.model;
  if (!current || !saved) return;
  if (saved.vocabSize !== current.vocabSize || saved.vocabHash !== current.vocabHash) {
    throw new BgeM3Error(
      'INCOMPATIBLE_INDEX',
      `${where} was built with a model whose vocabulary differs from this model's (stored: ${saved.vocabSize} tokens, fingerprint ${saved.vocabHash.slice(0, 12)}…; given: ${current.vocabSize} tokens, fingerprint ${current.vocabHash.slice(0, 12)}…). Its sparse weights are keyed by token id, so they would match the wrong tokens. Use it with the model it was built with, or rebuild the index.`,
    );
  }
  if (saved.probe && current.probe && saved.probe.length === current.probe.length) {
    const cosine = dot(saved.probe, current.probe) / Math.sqrt(dot(saved.probe, saved.probe) * dot(current.probe, current.probe));
    if (!(cosine >= SAME_WEIGHTS_COSINE)) {
      throw new BgeM3Error(
        'INCOMPATIBLE_INDEX',
        `${where} was built with a model of the same shape but other weights (the probe sentence's dense vectors agree only to cosine ${cosine.toFixed(3)}; the same model gives ≥ ${SAME_WEIGHTS_COSINE}): its vectors would not be comparable with this model's. Use it with the model it was built with, or rebuild the index.`,
      );
    }
  }
}
