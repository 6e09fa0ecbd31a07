#!/usr/bin/env node
/** The bge-m3-rag command line (filled by the model-sources work). */
export {};
