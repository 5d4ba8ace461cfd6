package edge

import "github.com/podsearch/podsearch/core/index"

// A node that fans out fuses hybrid queries once, over the whole corpus: it asks itself and
// every peer for the query's dense and keyword rankings separately (depth hits each),
// merges each ranking across nodes by its own score (cosine similarity; BM25), and fuses the
// two merged rankings with index.Fuse. Merging per-node fused scores instead would compare
// numbers each node normalised over its own lists only.

// splitHybrid replaces every hybrid query that has a vector by a dense and a keyword query
// of depth = max(k, min(max(100, 4k), maxK)) hits. parts[i] lists the positions in out of
// query i's parts: one position, or two (dense, keyword) for a split query.
func splitHybrid(qs []ShardQuery, maxK int) (out []ShardQuery, parts [][]int) {
	parts = make([][]int, len(qs))
	for i, q := range qs {
		if q.Mode != ModeHybrid || q.Vector == nil {
			parts[i] = []int{len(out)}
			out = append(out, q)
			continue
		}
		depth := max(q.K, min(max(100, 4*q.K), maxK))
		dense, kw := q, q
		dense.Mode, dense.K = ModeDense, depth
		kw.Mode, kw.K, kw.Vector = ModeKeyword, depth, nil
		parts[i] = []int{len(out), len(out) + 1}
		out = append(out, dense, kw)
	}
	return out, parts
}

// fuseHybrid fuses a query's merged dense and keyword rankings into its k best hits; a
// hit's score becomes its fused score.
func fuseHybrid(dense, keyword []Hit, k int, opts index.HybridOptions) ([]Hit, error) {
	byID := make(map[string]Hit, len(dense)+len(keyword))
	ranked := func(hs []Hit) []index.Ranked[string] {
		out := make([]index.Ranked[string], len(hs))
		for i, h := range hs {
			if _, ok := byID[h.ID]; !ok {
				byID[h.ID] = h
			}
			out[i] = index.Ranked[string]{Key: h.ID, Score: h.Score, Tie: index.HashID(h.ID)}
		}
		return out
	}
	fused, err := index.Fuse(ranked(dense), ranked(keyword), k, opts)
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(fused))
	for i, f := range fused {
		out[i] = byID[f.Key]
		out[i].Score = f.Score
	}
	return out, nil
}
