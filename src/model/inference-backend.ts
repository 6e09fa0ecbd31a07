/**
 * Where the ONNX sessions run. onnxruntime-node's `session.run` is synchronous native code (its
 * promise only defers the call with `setImmediate`), so a batch of the real model would freeze the
 * caller's event loop for seconds to minutes. By default the sessions therefore live in a worker
 * thread: the calling thread tokenizes, plans batches and collects results, and stays responsive;
 * batch inputs are small and results come back as transferred buffers, without copies.
 * `{ worker: false }` keeps everything in the calling thread (for environments without workers).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type MessagePort } from 'node:worker_threads';
import { BgeM3Error, type BgeM3ErrorCode } from '../errors.js';
import { BatchRunner, type BatchOutputs, type BatchWants, type RunnerInfo, type RunnerSpec } from './batch-runner.js';

/** The sessions of one model, wherever they run. */
export interface InferenceBackend {
  readonly info: RunnerInfo;
  /** Encodes one batch of token-id sequences. */
  run(sequences: number[][], want: BatchWants): Promise<BatchOutputs>;
  /** Waits for batches already sent, then releases the sessions. */
  close(): Promise<void>;
}

/** Opens the model's sessions in a worker thread (default) or in the calling thread. */
export async function openBackend(spec: RunnerSpec, options: { worker: boolean }): Promise<InferenceBackend> {
  if (!options.worker) {
    const runner = await BatchRunner.open(spec);
    return { info: runner.info, run: (s, w) => runner.run(s, w), close: () => runner.release() };
  }
  return WorkerBackend.open(spec);
}

// --- the wire protocol -------------------------------------------------------------------------

type RequestBody =
  | { type: 'open'; spec: RunnerSpec }
  | { type: 'run'; sequences: number[][]; want: BatchWants }
  | { type: 'close' };
type Request = RequestBody & { id: number };

type Response = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

interface WireError {
  name: string;
  message: string;
  code?: BgeM3ErrorCode;
}

function toWire(e: unknown): WireError {
  if (e instanceof BgeM3Error) return { name: e.name, message: e.message, code: e.code };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

function fromWire(w: WireError): Error {
  if (w.code) return new BgeM3Error(w.code, w.message);
  const e = new Error(w.message);
  e.name = w.name;
  return e;
}

/** Every distinct buffer behind the outputs, so they move to the other thread instead of being copied. */
function transferables(out: BatchOutputs): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const v of out.dense ?? []) buffers.add(v.buffer as ArrayBuffer);
  for (const rows of out.colbert ?? []) for (const r of rows) buffers.add(r.buffer as ArrayBuffer);
  return [...buffers];
}

/**
 * The worker side: opens a {@link BatchRunner} and serves requests one at a time, in arrival order
 * (so `close` runs after every batch sent before it). Called by `inference-worker.ts`.
 */
export function serveBatchRunner(port: MessagePort): void {
  let runner: BatchRunner | undefined;
  let queue: Promise<void> = Promise.resolve();
  const handle = async (req: Request): Promise<void> => {
    try {
      switch (req.type) {
        case 'open':
          runner = await BatchRunner.open(req.spec);
          port.postMessage({ id: req.id, ok: true, value: runner.info } satisfies Response);
          return;
        case 'run': {
          const out = await runner!.run(req.sequences, req.want);
          port.postMessage({ id: req.id, ok: true, value: out } satisfies Response, transferables(out));
          return;
        }
        case 'close':
          await runner?.release();
          runner = undefined;
          port.postMessage({ id: req.id, ok: true, value: null } satisfies Response);
          port.close();
      }
    } catch (e) {
      port.postMessage({ id: req.id, ok: false, error: toWire(e) } satisfies Response);
    }
  };
  port.on('message', (req: Request) => {
    queue = queue.then(() => handle(req));
  });
}

// --- the calling side ---------------------------------------------------------------------------

/**
 * Starts the worker script that sits beside this module (`.js` or `.cjs`, as this module is). When
 * this module runs from the repository's TypeScript sources (tests, examples under tsx), the
 * checkout's built worker (`dist/`, made by `npm run build`; `npm test` builds first) runs the
 * sessions: production code imports no dev tool to load `.ts` in a thread. The worker gets no Node
 * flags of the parent (`execArgv: []`): it needs none, and some, such as `--input-type` from
 * `node -e`, make a worker fail to start.
 */
function startWorker(): Worker {
  const here = import.meta.url;
  if (/\.[cm]?ts$/.test(new URL(here).pathname)) {
    const built = new URL('../../dist/inference-worker.js', here);
    if (!existsSync(fileURLToPath(built))) {
      throw new BgeM3Error(
        'WORKER_FAILED',
        `bge-m3-rag runs from its TypeScript sources and its inference worker is not built (${fileURLToPath(built)}): run npm run build, or load with { worker: false }.`,
      );
    }
    return new Worker(built, { execArgv: [] });
  }
  return new Worker(new URL(here.endsWith('.cjs') ? './inference-worker.cjs' : './inference-worker.js', here), { execArgv: [] });
}

class WorkerBackend implements InferenceBackend {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  info!: RunnerInfo;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (res: Response) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      this.updateRef();
      if (res.ok) p.resolve(res.value);
      else p.reject(fromWire(res.error));
    });
    const fail = (why: string) => {
      this.exited = true;
      for (const p of this.pending.values()) {
        p.reject(new BgeM3Error('WORKER_FAILED', `The bge-m3-rag inference worker stopped (${why}); dispose this model and load it again.`));
      }
      this.pending.clear();
      this.updateRef();
    };
    worker.on('error', (e) => fail(e.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    // An idle model must not keep the process alive; a batch in flight does.
    worker.unref();
  }

  static async open(spec: RunnerSpec): Promise<WorkerBackend> {
    const backend = new WorkerBackend(startWorker());
    try {
      backend.info = (await backend.request({ type: 'open', spec })) as RunnerInfo;
    } catch (e) {
      await backend.worker.terminate();
      throw e;
    }
    return backend;
  }

  run(sequences: number[][], want: BatchWants): Promise<BatchOutputs> {
    return this.request({ type: 'run', sequences, want }) as Promise<BatchOutputs>;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    try {
      await this.request({ type: 'close' });
    } finally {
      await this.worker.terminate();
    }
  }

  private request(req: RequestBody): Promise<unknown> {
    if (this.exited) {
      return Promise.reject(new BgeM3Error('WORKER_FAILED', 'The bge-m3-rag inference worker has stopped; dispose this model and load it again.'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.updateRef();
      this.worker.postMessage({ ...req, id });
    });
  }

  private updateRef(): void {
    if (this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }
}
