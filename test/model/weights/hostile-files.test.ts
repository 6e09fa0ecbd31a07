/**
 * Hostile model files fail fast and cleanly: a pickle that would build exponentially large
 * containers or flood the stack, a zip that inflates into gigabytes, a head file that is a FIFO, a
 * device, a directory or a symlink out of the model directory. Each is loaded through
 * `BgeM3Model.load` on a fixture copy and must be refused with CORRUPT_FILE / UNSAFE_PICKLE /
 * MISSING_FILE in well under a second, never hang, never take the process down.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../../src/index.js';
import { readGraphInfo } from '../../../src/model/graph-info.js';
import { externalDataLocations, locateModelFiles } from '../../../src/model/model-files.js';
import { MAX_HEAD_FILE_BYTES, readLinearHead } from '../../../src/model/weights/linear-head.js';
import { readSafetensors } from '../../../src/model/weights/safetensors.js';
import { PICKLE_BUDGETS, readTorchStateDict, unpickleStateDict, unpickleWithUsage, type PickleBudgets } from '../../../src/model/weights/torch-state-dict.js';
import { MAX_ZIP_ENTRY_BYTES, MAX_ZIP_TOTAL_BYTES, ZipReader } from '../../../src/model/weights/zip.js';
import { checkModelFile, readModelFile } from '../../../src/shared/regular-file.js';
import { copyFixture, TINY_DIR } from '../../helpers.js';
import { halfData, Pickle, statePickle, writePt, writeZip } from './pt-builder.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'bge-m3-hostile-'));
const timings: [string, number][] = [];
afterAll(() => {
  rmSync(tmpRoot, { recursive: true, force: true });
  console.info(`time to refuse each hostile file:\n${timings.map(([name, ms]) => `  ${ms.toFixed(1).padStart(8)} ms  ${name}`).join('\n')}`);
});

let copies = 0;
/** A writable copy of the fixture (encoder layout with .pt heads). */
function fixtureCopy(): string {
  return copyFixture(join(tmpRoot, `copy-${copies++}`));
}

/**
 * Loads `dir` (it must fail) and returns the error; records and bounds how long the failure took.
 * In-process (`worker: false`) so that these sources, not the checkout's built worker in dist/,
 * read the heads; the last block runs the default worker path.
 */
async function loadFailure(name: string, dir: string, options: Parameters<typeof BgeM3Model.load>[1] = {}, limitMs = 1000): Promise<Error & { code?: string }> {
  const t0 = performance.now();
  let error: (Error & { code?: string }) | undefined;
  try {
    const model = await BgeM3Model.load(dir, { worker: false, ...options });
    await model.dispose();
  } catch (e) {
    error = e as Error & { code?: string };
  }
  const ms = performance.now() - t0;
  timings.push([`load: ${name}`, ms]);
  expect(error, `${name}: the model loaded`).toBeDefined();
  expect(ms, `${name}: took ${ms.toFixed(0)} ms`).toBeLessThan(limitMs);
  return error!;
}

/** Runs `f` (it must throw synchronously or reject) and returns the error; records and bounds the time. */
async function failure(name: string, f: () => unknown): Promise<Error & { code?: string }> {
  const t0 = performance.now();
  let error: (Error & { code?: string }) | undefined;
  try {
    await f();
  } catch (e) {
    error = e as Error & { code?: string };
  }
  const ms = performance.now() - t0;
  timings.push([name, ms]);
  expect(error, `${name}: did not fail`).toBeDefined();
  expect(ms, `${name}: took ${ms.toFixed(0)} ms`).toBeLessThan(1000);
  return error!;
}

/** The fixture's ColBERT head rebuilt from scratch with `pkl` (and optionally other storages). */
function writeColbert(dir: string, pkl: Parameters<typeof writePt>[1], storages?: Parameters<typeof writePt>[2]): string {
  const path = join(dir, 'colbert_linear.pt');
  writePt(path, pkl, storages ?? { 0: halfData(32 * 32), 1: halfData(32) }, 'colbert_linear');
  return path;
}

describe('the test .pt writer', () => {
  it('writes heads the loader reads (control for the hostile files below)', async () => {
    const dir = fixtureCopy();
    writeColbert(dir, statePickle([{ name: 'weight', shape: [32, 32] }, { name: 'bias', shape: [32] }]));
    const model = await BgeM3Model.load(dir, { worker: false });
    try {
      const out = await model.encode(['hello'], { returnColbertVecs: true });
      expect(out.colbertVecs![0]!.length).toBeGreaterThan(0);
    } finally {
      await model.dispose();
    }
  });
});

describe('pickle budgets', () => {
  it('refuses a "billion laughs" pickle (memo references doubling a nested tuple) in milliseconds', async () => {
    // [] -> (x, x) -> ((x, x), (x, x)) ... 85 times: 2^85 leaves from ~600 bytes; then used as a GLOBAL name.
    const pkl = new Pickle().proto(2).emptyList().put(0).repeat(85, (p) => p.get(0).get(0).tuple2().put(0)).get(0).get(0).stackGlobal().stop().bytes();
    expect(pkl.length).toBeLessThan(613);
    const dir = fixtureCopy();
    writeColbert(dir, pkl);
    const error = await loadFailure('billion laughs', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE' });
    expect(error.message).toMatch(/colbert_linear\.pt: its pickle exceeds the expanded budget/);
  });

  it('refuses a MARK flood: millions of MARKs (deflated to a few KB) before inflating them, and 100k stored ones by the MARK budget', async () => {
    const flood = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(5_000_000, 0x28), Buffer.from([0x2e])]);
    const dir = fixtureCopy();
    writeColbert(dir, { name: '', data: flood, method: 8 });
    expect(statSync(join(dir, 'colbert_linear.pt')).size).toBeLessThan(20_000);
    const error = await loadFailure('MARK flood (5M, deflated)', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE' });
    expect(error.message).toMatch(/exceeds the pickleBytes budget \(colbert_linear\/data\.pkl declares 5000003 bytes/);

    writeColbert(dir, Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(100_000, 0x28), Buffer.from([0x2e])]));
    const stored = await loadFailure('MARK flood (100k, stored)', dir);
    expect(stored).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/exceeds the markDepth budget \(more than 512 MARKs open/) });
  });

  const budgetCases: [keyof PickleBudgets, string, Buffer][] = [
    ['opcodes', 'PROTO x 20000', new Pickle().repeat(20_000, (p) => p.proto(2)).stop().bytes()],
    ['memo', '5000 distinct LONG_BINPUTs', new Pickle().proto(2).none().repeat(5000, (p, k) => p.longPut(k)).stop().bytes()],
    ['stackDepth', '3000 NONEs', new Pickle().proto(2).repeat(3000, (p) => p.none()).stop().bytes()],
    ['markDepth', '600 MARKs', new Pickle().proto(2).repeat(600, (p) => p.mark()).stop().bytes()],
    ['elements', '5 lists of 2000 elements', new Pickle().proto(2).repeat(5, (p) => p.emptyList().mark().repeat(2000, (q) => q.none()).appends()).stop().bytes()],
    ['expanded', 'a list appended to itself 20 times', new Pickle().proto(2).emptyList().put(0).repeat(20, (p) => p.get(0).op(0x61)).stop().bytes()],
    ['stringBytes', 'a 20000-byte string', new Pickle().proto(2).str('x'.repeat(20_000)).stop().bytes()],
    ['stringBytes', 'a string declaring 4 GB', new Pickle().proto(2).op(0x58, 0xff, 0xff, 0xff, 0xff).stop().bytes()],
    ['pickleBytes', 'a 2 MiB pickle', Buffer.concat([new Pickle().proto(2).none().bytes(), Buffer.alloc(2 << 20, 0x2e)])],
  ];
  for (const [budget, what, pkl] of budgetCases) {
    it(`refuses ${what} by the ${budget} budget`, async () => {
      const error = await failure(`pickle: ${what}`, () => unpickleStateDict(pkl, 'evil.pt'));
      expect(error).toMatchObject({ code: 'CORRUPT_FILE' });
      expect(error.message).toMatch(new RegExp(`^evil\\.pt: its pickle exceeds the ${budget} budget`));
    });
  }

  it('refuses constructs a state_dict never uses as unsafe, and shared containers used as names without stringifying them', async () => {
    const newobj = new Pickle().proto(2).global('collections', 'OrderedDict').emptyTuple().op(0x81).stop().bytes();
    expect(await failure('pickle: NEWOBJ', () => unpickleStateDict(newobj, 'evil.pt'))).toMatchObject({ code: 'UNSAFE_PICKLE', message: expect.stringMatching(/NEWOBJ/) });
    // 12 doublings stay within the budgets; a GLOBAL name made of them is refused without walking the tree.
    const laughs = new Pickle().proto(2).emptyList().put(0).repeat(12, (p) => p.get(0).get(0).tuple2().put(0)).get(0).get(0).stackGlobal().stop().bytes();
    expect(await failure('pickle: STACK_GLOBAL of tuples', () => unpickleStateDict(laughs, 'evil.pt'))).toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringMatching(/STACK_GLOBAL of something that is not two strings/),
    });
    // A persistent id whose numel is a nested tuple instead of an int.
    const pid = new Pickle().proto(2).emptyList().put(0).mark().str('storage').global('torch', 'HalfStorage').str('0').str('cpu').get(0).tuple().persid().stop().bytes();
    expect(await failure('pickle: bad persistent id', () => unpickleStateDict(pid, 'evil.pt'))).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/persistent id/) });
  });

  it('documents budgets >= 100x what the real heads use (measured on the fixture, whose pickles are what torch.save writes)', () => {
    for (const head of ['colbert_linear', 'sparse_linear']) {
      const zip = new ZipReader(readFileSync(join(TINY_DIR, `${head}.pt`)), head);
      const { usage } = unpickleWithUsage(zip.read(`${head}/data.pkl`), head);
      expect(usage).toEqual({ pickleBytes: head === 'colbert_linear' ? 290 : 289, opcodes: 94, memo: 28, stackDepth: 12, markDepth: 3, elements: 38, expanded: 11, stringBytes: 18 });
      for (const [key, used] of Object.entries(usage)) {
        expect(PICKLE_BUDGETS[key as keyof PickleBudgets], key).toBeGreaterThanOrEqual(100 * used);
      }
    }
    // The real BGE-M3 colbert head (weight [1024, 1024]) needs the same, with a 297-byte pickle.
    const real = unpickleWithUsage(statePickle([{ name: 'weight', shape: [1024, 1024] }, { name: 'bias', shape: [1024] }]), 'real');
    expect(real.usage).toMatchObject({ pickleBytes: 297, opcodes: 94, memo: 28, stackDepth: 12, markDepth: 3 });
  });
});

describe('inflated bytes', () => {
  /** 1 MiB of zeros as a non-final deflate block sequence (~1 KB): copies concatenate into one stream. */
  const zerosMiB = Buffer.alloc(1 << 20);
  const segment = deflateRawSync(zerosMiB, { finishFlush: constants.Z_FULL_FLUSH });
  const final = deflateRawSync(Buffer.alloc(0));
  function bomb(mib: number): { data: Buffer; crc: number } {
    let crc = 0;
    for (let i = 0; i < mib; i++) crc = crc32(zerosMiB, crc);
    return { data: Buffer.concat([...Array.from({ length: mib }, () => segment), final]), crc };
  }

  it('refuses a ~530 KB .pt whose storage inflates to 512 MiB, before inflating it', async () => {
    const { data, crc } = bomb(512);
    const dir = fixtureCopy();
    // A [32, 32] weight over a 256M-element fp16 storage (512 MiB), honestly declared and CRC'd.
    const pkl = statePickle([{ name: 'weight', shape: [32, 32], numel: 256 << 20 }, { name: 'bias', shape: [32] }]);
    writeColbert(dir, pkl, { 0: { name: '', data, method: 8, compressed: true, declaredSize: 512 << 20, crc }, 1: halfData(32) });
    expect(statSync(join(dir, 'colbert_linear.pt')).size).toBeLessThan(600_000);
    const error = await loadFailure('zip bomb: 512 MiB storage', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE' });
    expect(error.message).toMatch(/colbert_linear\.pt: zip entry "colbert_linear\/data\/0" declares 512\.0 MiB, more than the 64\.0 MiB budget/);
  });

  it('refuses a storage larger than the tensors declared over it, before inflating it', async () => {
    const dir = fixtureCopy();
    const pkl = statePickle([{ name: 'weight', shape: [32, 32], numel: 2048 }, { name: 'bias', shape: [32] }]);
    writeColbert(dir, pkl, { 0: halfData(2048), 1: halfData(32) });
    const error = await loadFailure('storage larger than its tensors', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/storage 0 holds 2048 elements but its tensors use only 1024/) });
  });

  it('checks the head shapes before inflating anything', async () => {
    const dir = fixtureCopy();
    const { data, crc } = bomb(32); // 32 MiB: within the entry budget
    const pkl = statePickle([{ name: 'weight', shape: [16384, 1024] }, { name: 'bias', shape: [16384] }]);
    writeColbert(dir, pkl, { 0: { name: '', data, method: 8, compressed: true, declaredSize: 32 << 20, crc }, 1: halfData(16384) });
    const error = await loadFailure('32 MiB head of the wrong shape', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/weight \[16384,1024\] .* do not fit a Linear layer from the encoder's hidden size 32/) });
  });

  it('bounds each entry and the whole archive by declared size before reading, and a lying header by maxOutputLength', async () => {
    const big = join(tmpRoot, 'big-entries.zip');
    const third = Math.floor(MAX_ZIP_TOTAL_BYTES / 3) + 1024;
    writeZip(big, [0, 1, 2].map((i) => ({ name: `a/data/${i}`, data: Buffer.alloc(4), declaredSize: third })));
    const total = await failure('zip: total declared size', () => new ZipReader(readFileSync(big), big));
    expect(total).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/declare 128\.0 MiB in all, more than the 128\.0 MiB budget/) });

    writeZip(big, [{ name: 'a/data/0', data: Buffer.alloc(4), declaredSize: MAX_ZIP_ENTRY_BYTES + 1 }]);
    const entry = await failure('zip: entry declared size', () => new ZipReader(readFileSync(big), big));
    expect(entry).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/declares 64\.0 MiB, more than the 64\.0 MiB budget/) });

    // Declares 2048 bytes; the stream inflates to 64 MiB: stopped at 2048.
    const { data, crc } = bomb(64);
    writeZip(big, [{ name: 'a/data/0', data, method: 8, compressed: true, declaredSize: 2048, crc }]);
    const zip = new ZipReader(readFileSync(big), big);
    const lying = await failure('zip: lying header', () => zip.read('a/data/0'));
    expect(lying).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/does not inflate to its declared 2048 bytes/) });
  });

  it('bounds a .safetensors header', async () => {
    const header = Buffer.from(JSON.stringify({ weight: { dtype: 'F16', shape: [1], data_offsets: [0, 2] } }).padEnd(2 << 20, ' '));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const error = await failure('safetensors: 2 MiB header', () => readSafetensors(Buffer.concat([len, header, Buffer.alloc(2)]), 'evil.safetensors'));
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/more than the 1048576-byte budget/) });
  });
});

describe('only regular files inside the model directory are opened', () => {
  it('refuses a head file that is a FIFO, without blocking', async () => {
    const dir = fixtureCopy();
    rmSync(join(dir, 'colbert_linear.pt'));
    execFileSync('mkfifo', [join(dir, 'colbert_linear.pt')]);
    const error = await loadFailure('head is a FIFO', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/colbert_linear\.pt \(the colbert_linear head\) is a FIFO \(named pipe\), not a regular file/) });
  });

  it('refuses a head file that is a symlink to /dev/zero, without reading it', async () => {
    const dir = fixtureCopy();
    rmSync(join(dir, 'sparse_linear.pt'));
    symlinkSync('/dev/zero', join(dir, 'sparse_linear.pt'));
    const error = await loadFailure('head links to /dev/zero', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/sparse_linear\.pt \(the sparse_linear head\) is a character device \(it resolves to \/dev\/zero\)/) });
  });

  it('refuses a head file that is a symlink out of the model directory, and follows one that stays inside', async () => {
    const dir = fixtureCopy();
    const elsewhere = join(tmpRoot, 'elsewhere-colbert.pt');
    renameSync(join(dir, 'colbert_linear.pt'), elsewhere);
    symlinkSync(relative(dir, elsewhere), join(dir, 'colbert_linear.pt'));
    const error = await loadFailure('head links outside the directory', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/colbert_linear\.pt \(the colbert_linear head\) resolves to .*elsewhere-colbert\.pt, outside the model directory/) });

    rmSync(join(dir, 'colbert_linear.pt'));
    mkdirSync(join(dir, 'weights'));
    cpSync(elsewhere, join(dir, 'weights', 'colbert.pt'));
    symlinkSync('weights/colbert.pt', join(dir, 'colbert_linear.pt'));
    const model = await BgeM3Model.load(dir, { worker: false });
    await model.dispose();
  });

  it('refuses a directory named colbert_linear.pt with CORRUPT_FILE, not a raw EISDIR', async () => {
    const dir = fixtureCopy();
    rmSync(join(dir, 'colbert_linear.pt'));
    mkdirSync(join(dir, 'colbert_linear.pt'));
    const error = await loadFailure('head is a directory', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/colbert_linear\.pt \(the colbert_linear head\) is a directory, not a regular file/) });
  });

  it('refuses a head file larger than the cap before reading it', async () => {
    const dir = fixtureCopy();
    truncateSync(join(dir, 'colbert_linear.pt'), MAX_HEAD_FILE_BYTES + 1); // sparse: instant, no disk use
    const error = await loadFailure('head over the size cap', dir);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/is 64\.0 MiB, more than the 64\.0 MiB such a file can be/) });
  });

  it('refuses a tokenizer.json FIFO, a config.json directory, external data that is a FIFO and a graph linking to /dev/zero', async () => {
    const tok = fixtureCopy();
    rmSync(join(tok, 'tokenizer.json'));
    execFileSync('mkfifo', [join(tok, 'tokenizer.json')]);
    expect(await loadFailure('tokenizer.json is a FIFO', tok)).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/tokenizer\.json \(the tokenizer\) is a FIFO/) });

    const config = fixtureCopy();
    rmSync(join(config, 'config.json'));
    mkdirSync(join(config, 'config.json'));
    expect(await loadFailure('config.json is a directory', config)).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/config\.json \(the model config\) is a directory/) });

    const data = fixtureCopy();
    rmSync(join(data, 'onnx', 'model.onnx_data'));
    execFileSync('mkfifo', [join(data, 'onnx', 'model.onnx_data')]);
    expect(await loadFailure('external data is a FIFO', data)).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/model\.onnx_data \(an external-data file of the ONNX graph\) is a FIFO/) });

    const graph = fixtureCopy();
    rmSync(join(graph, 'onnx', 'model.onnx'));
    symlinkSync('/dev/zero', join(graph, 'onnx', 'model.onnx'));
    expect(await loadFailure('graph links to /dev/zero', graph)).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/model\.onnx \(the ONNX graph\) is a character device/) });
  });

  it('locates external data as the graph names it (the same list graph-info.ts reads)', async () => {
    const files = locateModelFiles(TINY_DIR);
    expect(files.externalData).toEqual([join(TINY_DIR, 'onnx', 'model.onnx_data')]);
    for (const graph of [files.graph, join(TINY_DIR, 'm3', 'model.onnx')]) {
      expect(externalDataLocations(graph)).toEqual((await readGraphInfo(graph)).externalData);
    }
  });

  it("follows a Hugging Face snapshot's relative symlinks into its own repo's blobs/, and no other repo's", async () => {
    const repo = join(tmpRoot, 'hub', 'models--org--tiny');
    const snapshot = join(repo, 'snapshots', '0123456789abcdef');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    let n = 0;
    const link = (src: string, rel: string) => {
      const blob = join(repo, 'blobs', `blob${n++}`);
      cpSync(src, blob);
      const dst = join(snapshot, rel);
      mkdirSync(join(dst, '..'), { recursive: true });
      symlinkSync(relative(join(dst, '..'), blob), dst);
    };
    for (const f of readdirSync(TINY_DIR)) {
      if (f === 'm3' || f === 'expected.json' || f === 'onnx' || f === 'README.md') continue;
      link(join(TINY_DIR, f), f);
    }
    for (const f of readdirSync(join(TINY_DIR, 'onnx'))) link(join(TINY_DIR, 'onnx', f), `onnx/${f}`);
    const model = await BgeM3Model.load(snapshot, { worker: false });
    try {
      const out = await model.encode(['What is BGE M3?'], { returnSparse: true, returnColbertVecs: true });
      expect(out.colbertVecs![0]!.length).toBeGreaterThan(0);
    } finally {
      await model.dispose();
    }
    // A head linked into another repo folder's blobs/.
    const other = join(tmpRoot, 'hub', 'models--evil--repo', 'blobs');
    mkdirSync(other, { recursive: true });
    cpSync(join(TINY_DIR, 'colbert_linear.pt'), join(other, 'x'));
    rmSync(join(snapshot, 'colbert_linear.pt'));
    symlinkSync(relative(snapshot, join(other, 'x')), join(snapshot, 'colbert_linear.pt'));
    const error = await loadFailure('head links into another repo\'s blobs', snapshot);
    expect(error).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/resolves to .*models--evil--repo\/blobs\/x, outside the model directory/) });
  });

  it('turns every file-system error into a BgeM3Error with a code and the path', async () => {
    const dir = join(tmpRoot, 'fs-errors');
    mkdirSync(dir);
    const rule = { root: dir, what: 'the colbert_linear head' };
    symlinkSync('b.pt', join(dir, 'a.pt'));
    symlinkSync('a.pt', join(dir, 'b.pt'));
    expect(await failure('fs: symlink loop', () => readModelFile(join(dir, 'a.pt'), rule))).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/a\.pt \(the colbert_linear head\) is a symlink loop \(ELOOP\)/) });
    symlinkSync('missing.pt', join(dir, 'dangling.pt'));
    expect(await failure('fs: dangling symlink', () => readModelFile(join(dir, 'dangling.pt'), rule))).toMatchObject({ code: 'MISSING_FILE', message: expect.stringMatching(/dangling\.pt .* is a symlink to a file that does not exist/) });
    expect(await failure('fs: ENOENT', () => readModelFile(join(dir, 'none.pt'), rule))).toMatchObject({ code: 'MISSING_FILE', message: expect.stringMatching(/none\.pt .* does not exist \(ENOENT\)/) });
    writeFileSync(join(dir, 'file'), 'x');
    expect(await failure('fs: ENOTDIR', () => readModelFile(join(dir, 'file', 'x.pt'), rule))).toMatchObject({ code: 'MISSING_FILE', message: expect.stringMatching(/ENOTDIR/) });
    expect(() => checkModelFile(join(dir, 'file'), rule)).not.toThrow();
    // Through the head reader too (readLinearHead is what the loader calls).
    expect(await failure('fs: head reader ELOOP', () => readLinearHead(join(dir, 'a.pt'), 32))).toMatchObject({ code: 'CORRUPT_FILE' });
    if (process.getuid?.() !== 0) {
      // Root reads anything: only meaningful for other users.
      writeFileSync(join(dir, 'locked.pt'), 'x');
      chmodSync(join(dir, 'locked.pt'), 0o000);
      expect(await failure('fs: EACCES', () => readModelFile(join(dir, 'locked.pt'), rule))).toMatchObject({ code: 'MISSING_FILE', message: expect.stringMatching(/permission denied \(EACCES\)/) });
    }
  });

  it('reads a real-size head (BGE-M3 colbert_linear: 1024 x 1024 + 1024 fp16, 2 MB) quickly', async () => {
    const dir = join(tmpRoot, 'real-size');
    mkdirSync(dir);
    const path = join(dir, 'colbert_linear.pt');
    writePt(path, statePickle([{ name: 'weight', shape: [1024, 1024] }, { name: 'bias', shape: [1024] }]), { 0: halfData(1024 * 1024), 1: halfData(1024) }, 'colbert_linear');
    const t0 = performance.now();
    const head = await readLinearHead(path, 1024);
    const ms = performance.now() - t0;
    timings.push(['read a real-size 2 MB colbert head (not hostile)', ms]);
    expect(head.weight.shape).toEqual([1024, 1024]);
    expect(head.weight.data.length).toBe(1024 * 1024);
    expect(readTorchStateDict(readFileSync(path), path).get('bias')!.data.length).toBe(1024);
  });
});

describe('in the inference worker (the default; runs the checkout\'s build in dist/, which npm test makes first)', () => {
  // Starting the worker thread and its encoder session takes 0.3-0.6 s on a busy 2-core machine
  // before the heads are read (the refusal itself takes milliseconds, as above): a looser bound.
  const WORKER_LIMIT_MS = 3000;
  it('refuses a billion-laughs pickle, a FIFO head and a directory head with their codes across the thread boundary', async () => {
    const laughs = fixtureCopy();
    writeColbert(laughs, new Pickle().proto(2).emptyList().put(0).repeat(85, (p) => p.get(0).get(0).tuple2().put(0)).get(0).get(0).stackGlobal().stop().bytes());
    expect(await loadFailure('worker: billion laughs', laughs, { worker: true }, WORKER_LIMIT_MS)).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/expanded budget/) });
    const fifo = fixtureCopy();
    rmSync(join(fifo, 'sparse_linear.pt'));
    execFileSync('mkfifo', [join(fifo, 'sparse_linear.pt')]);
    expect(await loadFailure('worker: FIFO head', fifo, { worker: true }, WORKER_LIMIT_MS)).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/FIFO/) });
    const dirHead = fixtureCopy();
    rmSync(join(dirHead, 'colbert_linear.pt'));
    mkdirSync(join(dirHead, 'colbert_linear.pt'));
    expect(await loadFailure('worker: directory head', dirHead, { worker: true }, WORKER_LIMIT_MS)).toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringMatching(/is a directory/) });
  });
});
