/**
 * Token ids against the Rust Hugging Face `tokenizers` library (the tokenizer FlagEmbedding uses),
 * run in-process through its napi build `@anush008/tokenizers`: natural multilingual text, the cases
 * where SentencePiece's `Precompiled` charsmap differs from Unicode NFKC, and random Unicode.
 */
import { Tokenizer as RustTokenizer } from '@anush008/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { BgeM3Tokenizer } from '../../src/model/tokenizer.js';
import { loadExpected, TINY_DIR } from '../helpers.js';

let rust: RustTokenizer;
let ours: BgeM3Tokenizer;
const reference = async (text: string) => (await rust.encode(text)).getIds();

beforeAll(async () => {
  rust = RustTokenizer.fromFile(`${TINY_DIR}/tokenizer.json`);
  ours = await BgeM3Tokenizer.load(`${TINY_DIR}/tokenizer.json`, `${TINY_DIR}/tokenizer_config.json`);
});

describe('tokenizer parity with the Rust tokenizer', () => {
  it('matches on the fixture texts and on multilingual sentences', async () => {
    const texts = [
      ...loadExpected().texts.map((t) => t.text),
      'नमस्ते, आप कैसे हैं? हिन्दी में लिखा गया वाक्य।',
      'ภาษาไทยมีวรรณยุกต์ ่ ้ ๊ ๋ และสระ',
      'שָׁלוֹם עֲלֵיכֶם',
      'مَرْحَبًا بِكُمْ في العالم العربي',
      'Tiếng Việt có nhiều dấu: ắ ằ ẳ ẵ ặ',
      'Line one\r\nLine two\r\n\r\nEnd',
      'tab\tand\u00a0no-break\u3000ideographic space',
      'ﬁ ﬂ ① ⅻ ｶﾀｶﾅ ＡＢＣ',
      'e\u0301 versus é, n\u0303 versus ñ',
      'trailing spaces   ',
      'a literal </s> and <s> in the text',
    ];
    for (const text of texts) expect(await ours.encode(text, 1_000_000), JSON.stringify(text)).toEqual(await reference(text));
  });

  it('keeps combining marks apart where the charsmap does (not NFKC)', async () => {
    // NFKC turns "h" + COMBINING CARON into "ȟ"; the charsmap keeps them apart.
    const text = '\u{1d5c1}\u030c\u3006 ok';
    expect(await ours.encode(text, 1_000_000)).toEqual(await reference(text));
  });

  it('truncates book-length inputs to the same ids as tokenizing everything and cutting', async () => {
    const spaced = 'Der schnelle braune Fuchs springt über den faulen Hund. 東京は日本の首都です。 Быстрая лиса. नमस्ते दुनिया। '.repeat(2500);
    const unspaced = '東京は日本の首都です。ひらがなとカタカナ。'.repeat(12000); // one "word" of > 100k tokens
    const thai = 'ภาษาไทยเป็นภาษาที่มีวรรณยุกต์ และใช้อักษรไทย '.repeat(2000); // spaces, no SIMPLE characters
    for (const text of [spaced, unspaced, thai]) {
      const full = await reference(text);
      for (const maxLength of [8192, 300]) {
        expect(await ours.encode(text, maxLength)).toEqual([...full.slice(0, maxLength - 1), 2]);
      }
    }
  });

  it('decodes every token id as the Rust tokenizer decodes it alone (convert_id_to_token)', async () => {
    const ids = Array.from({ length: ours.vocabSize }, (_, id) => id);
    const want = await rust.decodeBatch(ids.map((id) => [id]), false);
    expect(ids.filter((id) => ours.decodeOne(id) !== want[id])).toEqual([]);
  });

  it('matches on 3000 random strings across Unicode blocks', async () => {
    let seed = 20261127;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const ranges: [number, number][] = [
      [0x0, 0x7f], [0x80, 0x24f], [0x300, 0x36f], [0x370, 0x52f], [0x590, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f],
      [0x1100, 0x11ff], [0x2000, 0x218f], [0x2460, 0x24ff], [0x3000, 0x30ff], [0x3200, 0x33ff], [0x4e00, 0x4fff],
      [0xac00, 0xad00], [0xf900, 0xfaff], [0xfb00, 0xfb4f], [0xfe30, 0xfe4f], [0xff00, 0xffef], [0x1d400, 0x1d7ff],
      [0x1f300, 0x1f64f], [0xfff0, 0xfffd],
    ];
    const words = ['hello', 'naïve', '東京', 'こんにちは', 'Привет', 'مرحبا', 'नमस्ते', '안녕', ' ', '  ', '\n', '\r\n', '\t'];
    const mismatches: string[] = [];
    for (let i = 0; i < 3000; i++) {
      let s = '';
      for (let k = 1 + Math.floor(rand() * 12); k > 0; k--) {
        if (rand() < 0.4) s += words[Math.floor(rand() * words.length)]!;
        else {
          const [a, b] = ranges[Math.floor(rand() * ranges.length)]!;
          s += String.fromCodePoint(a + Math.floor(rand() * (b - a + 1)));
        }
      }
      if ((await ours.encode(s, 1_000_000)).join() !== (await reference(s)).join()) mismatches.push(JSON.stringify(s));
    }
    expect(mismatches).toEqual([]);
  });

  it('pathological long inputs (1 MB each) finish, never overflow the stack, and keep the exact ids', async () => {
    const MB = 1 << 20;
    const cases: Record<string, string> = {
      crlf: '\r\n'.repeat(MB / 2),
      zeroWidth: '\u200b'.repeat(MB / 3),
      loneSurrogates: '\ud800'.repeat(MB / 3),
      thai: 'ภาษาไทยเป็นภาษาราชการ'.repeat(MB / 63), // unspaced: overflowed the stack past ~130k characters
      base64: Buffer.from(Array.from({ length: (MB * 3) / 4 }, (_, i) => (i * 2654435761) >>> 24)).toString('base64'),
      emoji: '👋🏽'.repeat(MB / 8),
      spaces: ' '.repeat(MB),
    };
    for (const [name, text] of Object.entries(cases)) {
      const full = await reference(text);
      for (const maxLength of [8192, 512]) {
        expect(await ours.encode(text, maxLength), `${name}, maxLength ${maxLength}`).toEqual([...full.slice(0, Math.min(full.length - 1, maxLength - 1)), 2]);
      }
    }
    // Without truncation too: no recursion that grows with the input.
    expect((await ours.encode(cases.thai!, 10_000_000)).length).toBeGreaterThan(100_000);
  }, 120_000);
});
