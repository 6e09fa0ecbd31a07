/**
 * IEEE 754 half precision (fp16) and bfloat16 conversions, by table and bit arithmetic (Node 20 has
 * no Float16Array): model weights stored in fp16/bf16, and multi-vectors stored in fp16.
 */
let table16: Float32Array | undefined;

/** Every fp16 bit pattern's float32 value (256 KB, built on first use): `halfTable()[bits]`. */
export function halfTable(): Float32Array {
  if (table16) return table16;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return (table16 = t);
}

/** Converts IEEE 754 half-precision values to float32 exactly (every fp16 value is representable). */
export function halfToFloat32(src: Uint16Array): Float32Array {
  const table = halfTable();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

/** Converts bfloat16 values (the top 16 bits of a float32) to float32. */
export function bfloat16ToFloat32(src: Uint16Array): Float32Array {
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return new Float32Array(bits.buffer);
}

/** float32 -> IEEE 754 half precision, rounding to nearest even (what `tensor.half()` does). */
export function float32ToHalf(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = halfBits(bits[i]!);
  return out;
}

function halfBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  let mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflows to zero
    // Subnormal half: shift the mantissa (with its implicit 1) right, round to nearest even.
    mant |= 0x800000;
    const shift = 14 - e;
    const rounded = roundShift(mant, shift);
    return sign | rounded;
  }
  // Normal: drop 13 mantissa bits with round-to-nearest-even; a carry may bump the exponent.
  const rounded = roundShift((e << 23) | mant, 13);
  return sign | rounded;
}

function roundShift(value: number, shift: number): number {
  const half = 1 << (shift - 1);
  const rest = value & ((1 << shift) - 1);
  let out = value >>> shift;
  if (rest > half || (rest === half && out & 1)) out += 1;
  return out;
}
