/**
 * The one error class this package throws for bad input, missing or corrupt model files and
 * misuse. `code` lets callers branch without parsing messages; the message always says what was
 * wrong and what to do, and names the file or option at fault.
 */
export class BgeM3Error extends Error {
  readonly code: BgeM3ErrorCode;

  constructor(code: BgeM3ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BgeM3Error';
    this.code = code;
  }
}

export type BgeM3ErrorCode =
  /** An argument or option has the wrong type or value. */
  | 'INVALID_ARGUMENT'
  /** A file the model needs is not there. */
  | 'MISSING_FILE'
  /** A file is there but cannot be read as what it should be (truncated, corrupt, wrong format). */
  | 'CORRUPT_FILE'
  /** A `.pt` file asks for a Python global outside the state_dict allow-list. */
  | 'UNSAFE_PICKLE'
  /** The graph's outputs match none of the known BGE-M3 export layouts. */
  | 'UNKNOWN_LAYOUT'
  /** The model was used after `dispose()`. */
  | 'DISPOSED'
  /** The inference worker thread stopped (crashed or was terminated); load the model again. */
  | 'WORKER_FAILED'
  /** onnxruntime failed while running a batch (the message names the batch's shape). */
  | 'INFERENCE_FAILED'
  /** A download or hub lookup failed. */
  | 'DOWNLOAD_FAILED'
  /** A saved index cannot be used (corrupt, wrong version, other model). */
  | 'INCOMPATIBLE_INDEX'
  /** A database query failed (the message names the table, the operation and the server's words). */
  | 'DATABASE_ERROR';
