// Package metrics scores ranked retrieval results: reciprocal rank (MRR@k), recall (Recall@k),
// hit rate and nDCG@k with graded relevance, plus a mean over queries.
//
// Conventions follow the tools people compare against: nDCG uses linear gains and the ideal
// ranking of all judged-relevant documents, as trec_eval / pytrec_eval (and so BEIR) do;
// Recall@k is the fraction of a query's relevant documents found in its top k (BEIR); MRR@k
// is the reciprocal rank of the first relevant document within the top k, else 0
// (sentence-transformers' RerankingEvaluator and Spotify's MRR@30). A grade of 1 or more is
// relevant; 0 or less is not.
//
// The package has no dependencies: it works on ranked id lists and grade maps only.
package metrics
