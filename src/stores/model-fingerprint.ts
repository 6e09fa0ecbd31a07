/**
 * What a saved index must agree on with the model that searches it: the dense width and the
 * vocabulary (sparse postings are keyed by token id, so another vocabulary would silently match
 * the wrong tokens).
 *
 * The vocabulary is identified by its size plus a SHA-256 over the decoded text of up to 4,096
 * evenly spaced token ids and the ids of a fixed multilingual probe sentence. Hashing every one of
 * BGE-M3's 250,002 pieces one decode at a time costs about a second; the sample takes milliseconds
 * and still differs for any real pair of different vocabularies.
 */
import { createHash } from 'node:crypto';
import type { BgeM3Model } from '../model/bge-m3-model.js';

export interface ModelFingerprint {
  dim: number;
  vocabSize: number;
  /** Hex SHA-256 of the vocabulary sample (see the module comment). */
  vocabHash: string;
}

const PROBE =
  'Hybrid retrieval 검색 と 検索 — поиск, recherche, búsqueda, Suche, 混合检索, بحث, खोज: 1234567890 ½ ﬁ 👋';
const SAMPLE_IDS = 4096;

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
  const [probe] = await model.tokenize([PROBE], { maxLength: Math.min(512, model.maxPositions) });
  hash.update(JSON.stringify(probe));
  return { dim: model.dim, vocabSize, vocabHash: hash.digest('hex') };
}
