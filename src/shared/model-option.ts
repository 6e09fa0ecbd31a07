/**
 * The `model` option every adapter takes: a loaded `BgeM3Model`, or a source string for
 * `BgeM3Model.load` (a local directory or a Hugging Face repo id). A source is loaded lazily, on
 * first use, and shared: every adapter given the same source and load options gets the same
 * instance, so a LangChain embeddings object, a reranker and a LlamaIndex adapter built from
 * `'BAAI/bge-m3'` hold one model in memory, not three.
 */
import { BgeM3Error } from '../errors.js';
import { describeValue } from './checks.js';
import { BgeM3Model, type BgeM3LoadOptions } from '../model/bge-m3-model.js';

/** The model every adapter uses when `model` is not given. */
export const DEFAULT_MODEL_SOURCE = 'BAAI/bge-m3';

/** A loaded model, or a source string for `BgeM3Model.load`. */
export type BgeM3ModelOption = BgeM3Model | string;

/** The model fields shared by every adapter's options. */
export interface BgeM3ModelFields {
  /**
   * A loaded `BgeM3Model` (never disposed by the adapter), or a source for `BgeM3Model.load`
   * (loaded on first use and shared by every adapter with the same source and `loadOptions`).
   * Default `'BAAI/bge-m3'`.
   */
  model?: BgeM3ModelOption;
  /** Options for `BgeM3Model.load` when `model` is a source string; ignored for a loaded model. */
  loadOptions?: BgeM3LoadOptions;
}

/** Models loaded from a source string, by source and load options. */
const sharedModels = new Map<string, Promise<BgeM3Model>>();

/** Resolves an adapter's `model` option to a model, loading it lazily (once) when it is a source string. */
export class ModelHandle {
  private readonly instance: BgeM3Model | undefined;
  private readonly source: string | undefined;
  private readonly loadOptions: BgeM3LoadOptions | undefined;

  /** @param owner the class name for error messages, e.g. `'BgeM3Embeddings'`. */
  constructor(fields: BgeM3ModelFields, owner: string) {
    const model = fields.model ?? DEFAULT_MODEL_SOURCE;
    if (typeof model === 'string') {
      if (model.length === 0) {
        throw new BgeM3Error('INVALID_ARGUMENT', `${owner}: the model option is an empty string; pass a model directory, a Hugging Face repo id such as '${DEFAULT_MODEL_SOURCE}', or a loaded BgeM3Model.`);
      }
      this.source = model;
      this.loadOptions = fields.loadOptions;
    } else if (isBgeM3Model(model)) {
      this.instance = model;
    } else {
      throw new BgeM3Error(
        'INVALID_ARGUMENT',
        `${owner}: the model option must be a loaded BgeM3Model or a source string for BgeM3Model.load (a directory or a repo id such as '${DEFAULT_MODEL_SOURCE}'); got ${describeValue(model)}.`,
      );
    }
  }

  /** The model: the given instance, or the shared one loaded from the source (loaded now if needed). */
  get(): Promise<BgeM3Model> {
    if (this.instance) return Promise.resolve(this.instance);
    return loadShared(this.source!, this.loadOptions);
  }
}

/**
 * Disposes every model that adapters loaded from a source string, and forgets them (a later call
 * loads again). Models you passed in as instances are yours to dispose.
 */
export async function disposeSharedModels(): Promise<void> {
  const loading = [...sharedModels.values()];
  sharedModels.clear();
  await Promise.all(loading.map((p) => p.then((m) => m.dispose(), () => undefined)));
}

function loadShared(source: string, loadOptions: BgeM3LoadOptions | undefined): Promise<BgeM3Model> {
  const key = `${source}\u0000${JSON.stringify(loadOptions ?? {})}`;
  let loading = sharedModels.get(key);
  if (!loading) {
    loading = BgeM3Model.load(source, loadOptions);
    sharedModels.set(key, loading);
    // A failed load is not cached, so fixing the files and trying again works.
    loading.catch(() => {
      if (sharedModels.get(key) === loading) sharedModels.delete(key);
    });
  }
  return loading;
}

/** Duck-typed model check (the ESM and CJS builds of this package have different `BgeM3Model` classes). */
export function isBgeM3Model(value: unknown): value is BgeM3Model {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as BgeM3Model).encode === 'function' &&
    typeof (value as BgeM3Model).computeScore === 'function'
  );
}
