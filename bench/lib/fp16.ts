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
