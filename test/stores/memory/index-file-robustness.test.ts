/**
 * Robustness of saved hybrid index files:
 * - the docs section is encoded and decoded in bounded pieces (an index whose texts exceed V8's
 *   longest string still loads), proven here with a lowered piece size and on a real index of more
 *   than 512 MiB of text;
 * - temporary files of saves killed mid-write are removed by the next save or load, but never
 *   another host's, a live process's or this process's own;
 * - `load` refuses every forged file (valid recomputed SHA-256) with `CORRUPT_FILE`, applying the
 *   checks of `addEncoded` to every row before anything is allocated from or used.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BgeM3Error } from '../../../src/errors.js';
import { BgeM3Model, disposeSharedModels } from '../../../src/index.js';
import { hostTag } from '../../../src/shared/atomic-write.js';
import * as persistence from '../../../src/stores/memory/index-persistence.js';
import { HYBRID_INDEX_FILE, MemoryHybridIndex } from '../../../src/stores/memory/memory-hybrid-index.js';
import { TINY_DIR } from '../../helpers.js';
import { randomCorpus, randomDense, randomSparse, rng } from '../../support/random-corpus.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'bge-m3-rag-index-file-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

let dirCount = 0;
function freshDir(): string {
  const dir = join(work, `d${dirCount++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const DIM = 8;

/** A model-free index with tombstones, metadata and multi-byte texts. */
function encodedIndex(n = 40, seed = 1): MemoryHybridIndex {
  const index = new MemoryHybridIndex({ dim: DIM });
  const docs = randomCorpus(rng(seed), n, DIM, 300, 12).map((d, i) => ({ ...d, text: `${d.text} ${'検索 🙂 "quoted"\nline '.repeat(i % 5)}` }));
  index.addEncoded(docs);
  return index;
}

async function searchAll(index: MemoryHybridIndex, seed = 2) {
  const rand = rng(seed);
  const out = [];
  for (let q = 0; q < 5; q++) out.push(await index.searchEncoded({ dense: randomDense(rand, DIM), sparse: randomSparse(rand, 300, 8) }, { k: 10 }));
  return out;
}

// --- An independent reader/writer of the documented layout (index-file.ts), to forge files. ----

const pad8 = (n: number) => (8 - (n % 8)) % 8;

interface ParsedFile {
  version: number;
  header: Record<string, unknown> & { sections: { name: string; byteLength: number }[] };
  sections: Map<string, Uint8Array>;
}

function parseFile(buf: Buffer): ParsedFile {
  expect(buf.toString('ascii', 0, 8)).toBe('BGEM3HYB');
  const version = buf.readUInt32LE(8);
  const headerLength = buf.readUInt32LE(12);
  const header = JSON.parse(buf.toString('utf8', 16, 16 + headerLength));
  const sections = new Map<string, Uint8Array>();
  let pos = 16 + headerLength + pad8(headerLength);
  for (const s of header.sections) {
    sections.set(s.name, new Uint8Array(buf.subarray(pos, pos + s.byteLength))); // a copy, 8-aligned
    pos += s.byteLength + pad8(s.byteLength);
  }
  expect(pos + 32).toBe(buf.length);
  return { version, header, sections };
}

/** Lays out a file from a header and sections (in the given order), with a correct SHA-256. */
function buildFile(header: Record<string, unknown>, sections: [string, Uint8Array][], version = 1): Buffer {
  const headerBytes = Buffer.from(JSON.stringify({ ...header, sections: sections.map(([name, b]) => ({ name, byteLength: b.byteLength })) }), 'utf8');
  const prelude = Buffer.alloc(16);
  prelude.write('BGEM3HYB', 0, 'ascii');
  prelude.writeUInt32LE(version, 8);
  prelude.writeUInt32LE(headerBytes.length, 12);
  const parts: Uint8Array[] = [prelude, headerBytes, new Uint8Array(pad8(headerBytes.length))];
  for (const [, b] of sections) parts.push(b, new Uint8Array(pad8(b.byteLength)));
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

const f32 = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const i32 = (b: Uint8Array) => new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const docLines = (b: Uint8Array) => Buffer.from(b).toString('utf8').split('\n').slice(0, -1);
const fromLines = (lines: string[]) => new Uint8Array(Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8'));

/** Rewrites the saved file in `dir` through `edit` (sections in place or replaced), checksum recomputed. */
function forge(dir: string, good: Buffer, edit: (f: ParsedFile) => void): void {
  const f = parseFile(good);
  edit(f);
  const order = f.header.sections.map((s) => s.name);
  for (const name of f.sections.keys()) if (!order.includes(name)) order.push(name);
  const { sections: _drop, ...rest } = f.header;
  writeFileSync(join(dir, HYBRID_INDEX_FILE), buildFile(rest, order.filter((n) => f.sections.has(n)).map((n) => [n, f.sections.get(n)!]), f.version));
}

async function expectCorrupt(dir: string, message?: RegExp, model?: BgeM3Model): Promise<BgeM3Error> {
  const t0 = performance.now();
  const error = await MemoryHybridIndex.load(dir, model).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(performance.now() - t0).toBeLessThan(2000);
  expect(error, 'load should have refused the file').toBeInstanceOf(BgeM3Error);
  expect(error).toMatchObject({ code: 'CORRUPT_FILE' });
  if (message) expect((error as Error).message).toMatch(message);
  return error as BgeM3Error;
}

// --- 1. The docs section in bounded pieces --------------------------------------------------------

describe('docs section in bounded pieces', () => {
  // The internal piece size (a fallback object keeps these tests meaningful against code without one).
  const limits = (persistence as unknown as { docsChunking?: { maxBytes: number } }).docsChunking ?? { maxBytes: 8 << 20 };
  let saved: number;
  beforeAll(() => {
    saved = limits.maxBytes;
  });
  afterEach(() => {
    limits.maxBytes = saved;
    vi.restoreAllMocks();
  });

  /** The largest byte count any Buffer→string decode or string→Buffer encode handled while `fn` ran. */
  async function largestCodecCall(fn: () => Promise<unknown>): Promise<{ decoded: number; encoded: number }> {
    let decoded = 0;
    let encoded = 0;
    const toString = Buffer.prototype.toString;
    vi.spyOn(Buffer.prototype, 'toString').mockImplementation(function (this: Buffer, ...args: unknown[]) {
      const start = (args[1] as number | undefined) ?? 0;
      const end = (args[2] as number | undefined) ?? this.length;
      decoded = Math.max(decoded, Math.min(end, this.length) - start);
      return (toString as (...a: unknown[]) => string).apply(this, args);
    });
    for (const method of ['write', 'end'] as const) {
      const original = StringDecoder.prototype[method] as (this: StringDecoder, buf?: Buffer) => string;
      vi.spyOn(StringDecoder.prototype, method).mockImplementation(function (this: StringDecoder, buf?: string | ArrayBufferView) {
        decoded = Math.max(decoded, (buf as Buffer | undefined)?.length ?? 0);
        return original.call(this, buf as Buffer);
      });
    }
    const from = Buffer.from;
    vi.spyOn(Buffer, 'from').mockImplementation(((...args: unknown[]) => {
      if (typeof args[0] === 'string') encoded = Math.max(encoded, Buffer.byteLength(args[0], (args[1] as BufferEncoding) ?? 'utf8'));
      return (from as (...a: unknown[]) => Buffer).apply(Buffer, args);
    }) as typeof Buffer.from);
    try {
      await fn();
    } finally {
      vi.restoreAllMocks();
    }
    return { decoded, encoded };
  }

  it('saves and loads a docs section many times the piece size, with records longer than a piece (same bytes as unchunked)', async () => {
    const index = new MemoryHybridIndex({ dim: DIM });
    const rand = rng(7);
    const docs = randomCorpus(rand, 120, DIM, 300, 10).map((d, i) => ({
      ...d,
      // Lengths around and far above the piece size, multi-byte characters (2, 3 and 4 bytes, and
      // surrogate pairs at every offset), escapes and newlines inside the texts.
      text: `${i}: ${'ü検🙂"\\\n\t'.repeat((i * 37) % 700)}${'x'.repeat(i % 7)}`,
      metadata: { i, tags: ['🙂'.repeat(i % 50)], nested: { s: 'é'.repeat((i * 13) % 300) } },
    }));
    index.addEncoded(docs);
    await index.delete(['d3', 'd77']);

    const reference = freshDir();
    await index.save(reference);
    const referenceBytes = readFileSync(join(reference, HYBRID_INDEX_FILE));
    const docsBytes = parseFile(referenceBytes).header.sections.find((s) => s.name === 'docs')!.byteLength;

    limits.maxBytes = 1024;
    expect(docsBytes).toBeGreaterThan(100 * limits.maxBytes);
    const dir = freshDir();
    const saveCalls = await largestCodecCall(() => index.save(dir));
    // The layout does not depend on the piece size: same bytes (version 1, as before).
    expect(readFileSync(join(dir, HYBRID_INDEX_FILE)).equals(referenceBytes)).toBe(true);

    let loaded: MemoryHybridIndex | undefined;
    const loadCalls = await largestCodecCall(async () => {
      loaded = await MemoryHybridIndex.load(dir);
    });
    // No decode or encode went past the piece size (the header, < 1 KiB here, included).
    expect(saveCalls.encoded).toBeLessThanOrEqual(limits.maxBytes);
    expect(loadCalls.decoded).toBeLessThanOrEqual(limits.maxBytes);
    expect(loaded!.size).toBe(index.size);
    for (const d of docs) expect(loaded!.get(d.id)).toEqual(index.get(d.id));
    expect(await searchAll(loaded!)).toEqual(await searchAll(index));

    // The smallest allowed piece: every record is sliced and decoded character by character.
    limits.maxBytes = 8;
    const tiny = freshDir();
    await index.save(tiny);
    expect(readFileSync(join(tiny, HYBRID_INDEX_FILE)).equals(referenceBytes)).toBe(true);
    const reloaded = await MemoryHybridIndex.load(tiny);
    for (const d of docs) expect(reloaded.get(d.id)).toEqual(index.get(d.id));
  });

  it('refuses a docs section whose last record has no newline, or that holds more records than rows', async () => {
    const dir = freshDir();
    const index = encodedIndex(10);
    await index.save(dir);
    const good = readFileSync(join(dir, HYBRID_INDEX_FILE));
    limits.maxBytes = 16;
    forge(dir, good, (f) => {
      const docs = f.sections.get('docs')!;
      f.sections.set('docs', docs.subarray(0, docs.length - 1));
    });
    await expectCorrupt(dir, /not terminated/);
    forge(dir, good, (f) => {
      const lines = docLines(f.sections.get('docs')!);
      f.sections.set('docs', fromLines([...lines, JSON.stringify(['extra', 'x', {}])]));
    });
    await expectCorrupt(dir, /more than the 10 documents/);
  });

  // A real index whose texts exceed V8's longest string (~512 MiB) in total: ~1.5 GB of memory and
  // a few seconds.
  it('loads an index holding more than 512 MiB of text', async () => {
    const text = 'x'.repeat(1 << 18); // one string shared by every document
    const n = 2200; // 550 MiB of text in all
    const index = new MemoryHybridIndex({ dim: 4 });
    index.addEncoded(Array.from({ length: n }, (_, i) => ({ id: `big${i}`, text, dense: [1, 0, 0, i], sparse: { [String(i)]: 1 } })));
    const dir = freshDir();
    await index.save(dir);
    const loaded = await MemoryHybridIndex.load(dir);
    expect(loaded.size).toBe(n);
    expect(loaded.get(`big${n - 1}`)!.text.length).toBe(text.length);
    rmSync(dir, { recursive: true, force: true });
  }, 300_000);
});

// --- 2. Temporary files of interrupted saves --------------------------------------------------------

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  expect(r.status).toBe(0);
  return r.pid!;
}

const tag = () => hostTag();
const otherTag = () => (tag() === 'abcdef01' ? 'abcdef02' : 'abcdef01');

describe('temporary files of interrupted saves', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  function liveChild(): ChildProcess {
    const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(c);
    return c;
  }

  it('save and load remove the stale temporary files of dead writers on this host, and only those', async () => {
    const dir = freshDir();
    const index = encodedIndex(20);
    await index.save(dir);
    const dead = deadPid();
    const live = liveChild();
    const F = HYBRID_INDEX_FILE;
    const stale = (hex: string) => `.${F}.${tag()}.${dead}.${hex}.tmp`;
    const keep = [
      `.${F}.${tag()}.${live.pid}.aaaaaaaaaaaa.tmp`, // a live writer
      `.${F}.${tag()}.${process.pid}.bbbbbbbbbbbb.tmp`, // this process's own
      `.${F}.${otherTag()}.${dead}.cccccccccccc.tmp`, // another host (shared file system)
      `.${F}.${dead}.dddddddddddd.tmp`, // no host tag: cannot tell whose
      `.other-index.bgem3.${tag()}.${dead}.eeeeeeeeeeee.tmp`, // another index's
      `${F}.${tag()}.${dead}.ffffffffffff.tmp`, // not a temporary name
    ];
    for (const name of [...keep, stale('111111111111'), stale('222222222222')]) writeFileSync(join(dir, name), 'partial');
    mkdirSync(join(dir, stale('333333333333'))); // a directory is never removed
    keep.push(stale('333333333333'));

    const loaded = await MemoryHybridIndex.load(dir);
    expect(loaded.size).toBe(index.size);
    expect(readdirSync(dir).sort()).toEqual([F, ...keep].sort());

    writeFileSync(join(dir, stale('444444444444')), 'partial');
    await index.save(dir);
    expect(readdirSync(dir).sort()).toEqual([F, ...keep].sort());
    live.kill('SIGKILL');
  });

  /** Starts a child process that builds a large index and saves it into `dir`, pausing mid-write. */
  async function saveInChild(dir: string): Promise<ChildProcess> {
    const script = join(work, 'save-child.mts');
    writeFileSync(
      script,
      `import { MemoryHybridIndex } from ${JSON.stringify(pathToFileURL(resolve('src/stores/memory/memory-hybrid-index.ts')).href)};
const dim = 256, n = 20000;
const index = new MemoryHybridIndex({ dim });
const docs = [];
for (let i = 0; i < n; i++) {
  const dense = new Float32Array(dim);
  for (let j = 0; j < dim; j++) dense[j] = Math.sin(i * 31 + j);
  docs.push({ id: 'c' + i, text: 'child document ' + i, dense, sparse: { [String(i % 5000)]: 1 } });
}
index.addEncoded(docs);
let paused = false;
await index.save(process.argv[2], {
  onProgress: (p) => {
    if (!paused && p.done > p.total / 3) {
      paused = true;
      process.stdout.write('MID-SAVE\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000); // stay mid-write
    }
  },
});
process.stdout.write('DONE\\n');
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir], { cwd: resolve('.'), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    await new Promise<void>((resolvePromise, reject) => {
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('MID-SAVE')) resolvePromise();
      });
      child.on('exit', (code) => reject(new Error(`the child exited (${code}) before pausing: ${out} ${err}`)));
    });
    return child;
  }

  const killed = (child: ChildProcess) =>
    new Promise<void>((resolvePromise) => {
      child.on('exit', () => resolvePromise());
      child.kill('SIGKILL');
    });

  const temps = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

  it('a save killed with SIGKILL mid-write leaves a temporary file that the next load, or save, removes', async () => {
    const dir = freshDir();
    const index = encodedIndex(20);
    await index.save(dir);

    const first = await saveInChild(dir);
    expect(temps(dir)).toEqual([expect.stringContaining(`.${tag()}.${first.pid}.`)]);
    await killed(first);
    expect(temps(dir)).toHaveLength(1); // what kill -9 leaves behind
    const loaded = await MemoryHybridIndex.load(dir);
    expect(temps(dir)).toEqual([]);
    expect(loaded.size).toBe(index.size); // the last good save, untouched
    expect(await searchAll(loaded)).toEqual(await searchAll(index));

    const second = await saveInChild(dir);
    await killed(second);
    expect(temps(dir)).toHaveLength(1);
    await index.save(dir);
    expect(temps(dir)).toEqual([]);
  });

  it("never removes the temporary file of a save still running in another process", async () => {
    const dir = freshDir();
    const index = encodedIndex(20);
    await index.save(dir);
    const writer = await saveInChild(dir);
    const inFlight = temps(dir);
    expect(inFlight).toHaveLength(1);
    await MemoryHybridIndex.load(dir);
    await index.save(dir);
    expect(temps(dir)).toEqual(inFlight);
    await killed(writer);
    await MemoryHybridIndex.load(dir);
    expect(temps(dir)).toEqual([]);
  });
});

// --- 3. Forged files ------------------------------------------------------------------------------

describe('load refuses forged files whatever their checksum', () => {
  let dir: string;
  let good: Buffer;
  beforeAll(async () => {
    dir = freshDir();
    const index = encodedIndex(30);
    await index.delete(['d4']);
    await index.save(dir);
    good = readFileSync(join(dir, HYBRID_INDEX_FILE));
  });

  it('the forging helper reproduces the saved file byte for byte', async () => {
    forge(dir, good, () => {});
    expect(readFileSync(join(dir, HYBRID_INDEX_FILE)).equals(good)).toBe(true);
    expect((await MemoryHybridIndex.load(dir)).size).toBe(29);
  });

  it('dense values: not finite, or beyond the magnitude addEncoded accepts', async () => {
    for (const [value, message] of [
      [Number.NaN, /finite/],
      [Number.POSITIVE_INFINITY, /finite/],
      [-1e30, /2\^50/],
    ] as const) {
      forge(dir, good, (f) => {
        f32(f.sections.get('dense')!)[DIM * 5 + 3] = value;
      });
      await expectCorrupt(dir, message);
    }
    // The same rule for addEncoded.
    expect(() => new MemoryHybridIndex({ dim: 2 }).addEncoded([{ text: 'x', dense: [1e30, 0], sparse: {} }])).toThrow(/2\^50/);
  });

  it('sparse weights: negative, not finite, or 0', async () => {
    for (const [value, message] of [
      [-0.5, /non-negative/],
      [Number.NaN, /finite/],
      [Number.POSITIVE_INFINITY, /finite/],
      [0, /weight 0/],
    ] as const) {
      forge(dir, good, (f) => {
        f32(f.sections.get('postingWeights')!)[7] = value;
      });
      await expectCorrupt(dir, message);
    }
  });

  it('token ids beyond the cap of addEncoded (refused before the postings allocate by token id)', async () => {
    for (const token of [1 << 24, 0x7ffffff0]) {
      forge(dir, good, (f) => {
        const tokens = i32(f.sections.get('postingTokens')!);
        tokens[tokens.length - 1] = token;
      });
      await expectCorrupt(dir, /token id/);
    }
    forge(dir, good, (f) => {
      i32(f.sections.get('postingTokens')!)[0] = -3;
    });
    await expectCorrupt(dir);
  });

  it('postings pointing at rows that do not exist, or lists of 0 postings', async () => {
    forge(dir, good, (f) => {
      i32(f.sections.get('postingRows')!)[0] = 29;
    });
    await expectCorrupt(dir);
    forge(dir, good, (f) => {
      i32(f.sections.get('postingLengths')!)[0] = 0;
    });
    await expectCorrupt(dir);
  });

  it('documents: empty, duplicate or non-string ids, non-string text, non-object metadata, wrong record shape', async () => {
    const cases: [(r: unknown[]) => unknown, RegExp][] = [
      [(r) => ['', r[1], r[2]], /non-empty string/],
      [(r) => [42, r[1], r[2]], /non-empty string/],
      [(r) => [r[0], 7, r[2]], /text/],
      [(r) => [r[0], r[1], null], /metadata must be a plain object/],
      [(r) => [r[0], r[1], ['a']], /metadata must be a plain object/],
      [(r) => [r[0], r[1], 'm'], /metadata must be a plain object/],
      [(r) => [r[0], r[1]], /record/],
      [(r) => [...r, 1], /record/],
      [(r) => ({ id: r[0], text: r[1], metadata: r[2] }), /record/],
    ];
    for (const [edit, message] of cases) {
      forge(dir, good, (f) => {
        const lines = docLines(f.sections.get('docs')!);
        lines[12] = JSON.stringify(edit(JSON.parse(lines[12]!)));
        f.sections.set('docs', fromLines(lines));
      });
      await expectCorrupt(dir, message);
    }
    forge(dir, good, (f) => {
      const lines = docLines(f.sections.get('docs')!);
      const first = JSON.parse(lines[0]!);
      const other = JSON.parse(lines[20]!);
      lines[20] = JSON.stringify([first[0], other[1], other[2]]);
      f.sections.set('docs', fromLines(lines));
    });
    await expectCorrupt(dir, /appears twice/);
    forge(dir, good, (f) => {
      const lines = docLines(f.sections.get('docs')!);
      lines[3] = '{not json';
      f.sections.set('docs', fromLines(lines));
    });
    await expectCorrupt(dir, /not valid JSON/);
  });

  it('header fields of the wrong type or range, or inconsistent with the sections: refused in milliseconds', async () => {
    const empty = new Uint8Array(0);
    const cases: [(f: ParsedFile) => void, RegExp?][] = [
      // No rows, so no section constrains the width: a huge dim must still be refused.
      [
        (f) => {
          Object.assign(f.header, { rows: 0, dim: 2 ** 40, postings: 0 });
          for (const name of f.sections.keys()) f.sections.set(name, empty);
        },
        /dim/,
      ],
      [
        (f) => {
          Object.assign(f.header, { rows: 2 ** 40, dim: 0 });
          f.sections.set('dense', empty);
        },
        /row count|dim/,
      ],
      [(f) => Object.assign(f.header, { rows: 2 ** 31 + 5, dim: 0 }), /row count/],
      [(f) => Object.assign(f.header, { dim: String(DIM) }), /dim/],
      [(f) => Object.assign(f.header, { dim: DIM + 0.5 }), /dim/],
      [(f) => Object.assign(f.header, { rows: -1 }), /row count/],
      [(f) => Object.assign(f.header, { rows: '29' }), /row count/],
      [(f) => Object.assign(f.header, { rows: 28, dim: DIM }), /dense/],
      [(f) => Object.assign(f.header, { dim: DIM / 2, rows: 58 }), /documents|docs/],
      [(f) => Object.assign(f.header, { version: 2 }), /version/],
      [(f) => Object.assign(f.header, { version: '1' }), /version/],
      [(f) => Object.assign(f.header, { postings: 3 }), /postings/],
      [(f) => Object.assign(f.header, { postings: undefined }), /postings/],
      [(f) => Object.assign(f.header, { format: 'other' }), /format/],
      [(f) => Object.assign(f.header, { settings: { maxQueryLength: 1 } }), /maxQueryLength/],
      [(f) => Object.assign(f.header, { settings: { maxPassageLength: '512' } }), /maxPassageLength/],
      [(f) => Object.assign(f.header, { settings: [1, 2] }), /settings/],
      [(f) => Object.assign(f.header, { model: { dim: '32', vocabSize: 100, vocabHash: 'a'.repeat(64) } }), /fingerprint/],
      [(f) => Object.assign(f.header, { model: { dim: 32, vocabSize: [], vocabHash: 'a'.repeat(64) } }), /fingerprint/],
      [(f) => Object.assign(f.header, { model: { dim: 32, vocabSize: 100, vocabHash: 5 } }), /fingerprint/],
      [(f) => Object.assign(f.header, { model: 'bge-m3' }), /fingerprint/],
      [(f) => f.sections.delete('postingRows'), /missing/],
      [(f) => f.sections.set('postingRows', new Uint8Array(f.sections.get('postingRows')!.subarray(4))), /disagree/],
    ];
    for (const [edit, message] of cases) {
      forge(dir, good, edit);
      await expectCorrupt(dir, message);
    }
    // A section named twice (same bytes, so the file size still adds up).
    const f = parseFile(good);
    const { sections: list, ...rest } = f.header;
    writeFileSync(join(dir, HYBRID_INDEX_FILE), buildFile(rest, [...list.map((s) => [s.name, f.sections.get(s.name)!] as [string, Uint8Array]), ['docs', f.sections.get('docs')!]]));
    await expectCorrupt(dir, /twice/);
    writeFileSync(join(dir, HYBRID_INDEX_FILE), good);
  });

  it('an index path that is a directory is a BgeM3Error on load and on save', async () => {
    const parent = freshDir();
    mkdirSync(join(parent, HYBRID_INDEX_FILE));
    await expectCorrupt(parent, /directory/);
    const error = await encodedIndex(3)
      .save(parent)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BgeM3Error);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/directory/) });
  });

  describe('with a model', () => {
    let model: BgeM3Model;
    let modelDir: string;
    let modelGood: Buffer;
    beforeAll(async () => {
      model = await BgeM3Model.load(TINY_DIR);
      const index = new MemoryHybridIndex({ model });
      await index.add([{ id: 'a', text: 'weather today' }, { id: 'b', text: 'Wie geht es dir?' }]);
      modelDir = freshDir();
      await index.save(modelDir);
      modelGood = readFileSync(join(modelDir, HYBRID_INDEX_FILE));
    });
    afterAll(async () => {
      await model?.dispose();
      await disposeSharedModels();
    });

    it('a model fingerprint with fields of the wrong type is CORRUPT_FILE, not a TypeError', async () => {
      const fp = parseFile(modelGood).header.model as Record<string, unknown>;
      expect((await MemoryHybridIndex.load(modelDir, model)).size).toBe(2);
      for (const broken of [
        { ...fp, vocabHash: 12345 },
        { ...fp, vocabSize: String(fp.vocabSize), vocabHash: 'f'.repeat(64) },
        { ...fp, vocabHash: null },
        { ...fp, dim: null },
      ]) {
        forge(modelDir, modelGood, (f) => Object.assign(f.header, { model: broken }));
        await expectCorrupt(modelDir, /fingerprint/, model);
      }
    });
  });
});
