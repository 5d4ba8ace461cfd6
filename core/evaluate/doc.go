// Package evaluate measures retrieval quality, base encoder against tuned (adapter) side by
// side: in-batch ranking of eval pairs (sentence-transformers' RerankingEvaluator: each query
// ranks its positive among all eval episodes; MRR@5 and Recall@1), full exact retrieval over
// the test split (Recall and MRR at 1, 10, 30), a hand-written queries file against a corpus
// (Recall@10/30, MRR@30, nDCG@10) and BEIR folders (nDCG@10, Recall@100, MRR@10), with rows
// per retrieval method (dense, BM25, hybrid), per language and per pair-generation method.
// Reports are written as JSON and Markdown, and Recall@k curves as a PNG plot.
//
// Hybrid retrieval can also be measured as a search node does it: CandidateLists takes each
// side's top candidates and SideLists.Fuse combines them with min-max, z-score, rank or RRF
// normalisation at a dense weight. PoolSystems, Pool, SetTitleOverlaps, SplitStratified and
// SplitSummary are the tools behind the hand-judged query sets (pooling candidates for
// judging, recording each query's overlap with its relevant titles, and a reproducible
// dev/test split). ScoreSearch scores a search as served (through an edge).
//
// Run is the eval command's whole protocol: it reads the inputs (a pairs folder, a queries
// file against a corpus, a BEIR folder), encodes them through an Encoder, optionally trains
// an adapter on pseudo-queries first (Options.Adapt), and returns the Report. The math below
// it takes vectors ([][]float32); encoding texts is the Encoder's job (the commands give the
// real encoder behind the vector cache, core/evaluate/vcache), so everything else here is
// testable without the model.
//
// Why these dependencies: gonum.org/v1/gonum/blas/blas32 gives a blocked, parallel float32
// matrix multiply for exact search (queries x documents scores in chunks); gonum.org/v1/plot
// is the maintained plotting library for Go and writes the PNG.
package evaluate
