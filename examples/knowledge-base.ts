/** A tiny knowledge base shared by the examples (replace it with your own documents). */
export const KNOWLEDGE_BASE: { title: string; text: string }[] = [
  { title: 'BGE-M3', text: 'BGE-M3 is an embedding model from BAAI that supports dense retrieval, lexical (sparse) matching and multi-vector ColBERT interaction in one model.' },
  { title: 'Languages', text: 'BGE-M3 works with more than 100 languages and accepts inputs of up to 8192 tokens.' },
  { title: 'BM25', text: 'BM25 is a bag-of-words retrieval function that ranks documents by the query terms appearing in each document.' },
  { title: 'Sparse weights', text: 'The sparse head of BGE-M3 gives each token a weight; the lexical score of a pair is the sum of the products of the weights of shared tokens.' },
  { title: 'ColBERT', text: 'ColBERT scores a query against a passage with MaxSim: for each query token vector, the best matching passage token vector, averaged over the query.' },
  { title: 'Reranking', text: 'A reranker rescores the candidates a first-stage retriever found; the M3 reranker combines dense, sparse and ColBERT scores with weights 0.4, 0.2 and 0.4.' },
  { title: 'onnxruntime', text: 'onnxruntime-node runs ONNX models on the CPU from Node.js without Python.' },
  { title: 'Weather', text: 'The weather in Lisbon is mild in winter, with frequent rain between November and February.' },
];

/** `--model <dir-or-repo>` and `--query <text>` from the command line. */
export function exampleArgs(defaultQuery: string): { model: string; query: string } {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  return { model: value('--model') ?? 'BAAI/bge-m3', query: value('--query') ?? defaultQuery };
}
