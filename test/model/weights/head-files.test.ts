/**
 * The head files (`colbert_linear`, `sparse_linear`) as the loader reads them: `.pt` (zip + a
 * restricted pickle interpreter) and `.safetensors`; hostile or corrupt files are refused before
 * anything is run or allocated.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BgeM3Model } from '../../../src/index.js';
import { readSafetensors } from '../../../src/model/weights/safetensors.js';
import { readTorchStateDict } from '../../../src/model/weights/torch-state-dict.js';
import { copyFixture, TINY_DIR } from '../../helpers.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'bge-m3-heads-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

/** A writable copy of the fixture (without the m3/ layout) to break in one way. */
function fixtureCopy(name: string): string {
  return copyFixture(join(tmpRoot, name));
}

/** Rewrites one zip entry of a torch .pt in place (same length) and fixes its CRC-32 in both headers. */
function patchPtEntry(path: string, entrySuffix: string, patch: (data: Buffer) => void): void {
  const buf = readFileSync(path);
  const cdSig = Buffer.from([0x50, 0x4b, 0x01, 0x02]);
  for (let p = buf.indexOf(cdSig); p >= 0; p = buf.indexOf(cdSig, p + 4)) {
    const nameLen = buf.readUInt16LE(p + 28);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    if (!name.endsWith(entrySuffix)) continue;
    const local = buf.readUInt32LE(p + 42);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + buf.readUInt32LE(p + 20));
    patch(data);
    const crc = crc32(data);
    buf.writeUInt32LE(crc, p + 16);
    buf.writeUInt32LE(crc, local + 14);
    writeFileSync(path, buf);
    return;
  }
  throw new Error(`no entry ${entrySuffix} in ${path}`);
}

describe('head files', () => {
  it('reads heads from .safetensors files as well as .pt', async () => {
    const dir = fixtureCopy('safetensors-heads');
    for (const head of ['colbert_linear', 'sparse_linear']) {
      const tensors = readTorchStateDict(readFileSync(join(dir, `${head}.pt`)), head);
      // Write the same weights as fp32 safetensors, then remove the .pt.
      const entries = [...tensors.entries()];
      let offset = 0;
      const header: Record<string, unknown> = {};
      for (const [name, t] of entries) {
        header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
        offset += t.data.byteLength;
      }
      const json = Buffer.from(JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      writeFileSync(join(dir, `${head}.safetensors`), Buffer.concat([len, json, ...entries.map(([, t]) => Buffer.from(t.data.buffer))]));
      rmSync(join(dir, `${head}.pt`));
      expect([...readSafetensors(readFileSync(join(dir, `${head}.safetensors`)), head).keys()]).toEqual(['weight', 'bias']);
    }
    const fromPt = await BgeM3Model.load(TINY_DIR);
    const fromSafetensors = await BgeM3Model.load(dir);
    try {
      const a = await fromPt.encode(['What is BGE M3?'], { returnSparse: true, returnColbertVecs: true });
      const b = await fromSafetensors.encode(['What is BGE M3?'], { returnSparse: true, returnColbertVecs: true });
      expect(b.lexicalWeights).toEqual(a.lexicalWeights);
      expect(b.colbertVecs).toEqual(a.colbertVecs);
    } finally {
      await fromPt.dispose();
      await fromSafetensors.dispose();
    }
  });

  it('refuses a .pt whose pickle asks for a forbidden global, without running it', async () => {
    const dir = fixtureCopy('evil-pt');
    const evil = join(dir, 'sparse_linear.pt');
    // "collections\nOrderedDict\n" -> "subprocess\ncheck_output\n": same length, so offsets stay valid.
    patchPtEntry(evil, 'data.pkl', (data) => {
      const at = data.indexOf('collections\nOrderedDict\n');
      data.write('subprocess\ncheck_output\n', at, 'latin1');
    });
    await expect(BgeM3Model.load(dir)).rejects.toThrow(/sparse_linear\.pt asks for the Python global "subprocess\.check_output".*refusing/);
    await expect(BgeM3Model.load(dir)).rejects.toMatchObject({ code: 'UNSAFE_PICKLE' });
  });

  it('refuses JavaScript prototype names posing as torch storage types', async () => {
    const dir = fixtureCopy('proto-pt');
    // "torch\nHalfStorage\n" -> "torch\nconstructor\n" (same length).
    patchPtEntry(join(dir, 'colbert_linear.pt'), 'data.pkl', (data) => {
      data.write('constructor', data.indexOf('HalfStorage'), 'latin1');
    });
    await expect(BgeM3Model.load(dir)).rejects.toMatchObject({ code: 'UNSAFE_PICKLE', message: expect.stringMatching(/torch\.constructor/) });
  });

  it('refuses tensor views that do not fit their storage before allocating them', async () => {
    const dir = fixtureCopy('huge-view-pt');
    // weight: shape (32, 32), stride (32, 1) over 1024 elements -> shape (255, 255), stride (0, 0).
    patchPtEntry(join(dir, 'colbert_linear.pt'), 'data.pkl', (data) => {
      const shape = data.indexOf(Buffer.from([0x4b, 32, 0x4b, 32, 0x86]));
      data.set([0x4b, 255, 0x4b, 255], shape);
      const stride = data.indexOf(Buffer.from([0x4b, 32, 0x4b, 1, 0x86]), shape + 5);
      data.set([0x4b, 0, 0x4b, 0], stride);
    });
    await expect(BgeM3Model.load(dir)).rejects.toThrow(/tensor "weight" \(shape \[255,255\], stride \[0,0\], offset 0\) does not fit in its storage of 1024 elements/);
  });

  it('detects a corrupt byte in a .pt (CRC-32) and a truncated .pt', async () => {
    const dir = fixtureCopy('corrupt-pt');
    const pt = join(dir, 'colbert_linear.pt');
    const buf = readFileSync(pt);
    buf[200] = buf[200]! ^ 0xff; // inside the first tensor's data
    writeFileSync(pt, buf);
    await expect(BgeM3Model.load(dir)).rejects.toThrow(/colbert_linear\.pt is not a readable zip archive \(CRC-32 mismatch/);
    writeFileSync(pt, buf.subarray(0, 100));
    await expect(BgeM3Model.load(dir)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
  });
});
