/** bge-m3-rag/langchain: LangChain.js adapters (filled by the adapters work). */
export {};
