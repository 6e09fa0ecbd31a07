/** The float32 -> fp16 conversion the generator writes weights with: the package's (one rule). */
export { float32ToHalf } from '../../src/shared/fp16.js';
