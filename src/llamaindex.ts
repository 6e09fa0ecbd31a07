/** bge-m3-rag/llamaindex: LlamaIndex.TS adapters (filled by the adapters work). */
export {};
