package index

import (
	"fmt"
	"slices"
)

// Fusion names a way to combine dense and keyword rankings.
type Fusion string

const (
	// Convex fuses min-max-normalised scores: w*dense + (1-w)*keyword, an episode missing
	// from one list scoring 0 there. It measured best here (never below BM25 alone).
	Convex Fusion = "convex"
	// RRF is reciprocal rank fusion: sum over lists of 1/(RRFK + rank), rank from 1.
	RRF Fusion = "rrf"
)

// HybridOptions tunes SearchHybrid.
type HybridOptions struct {
	// Dense configures the dense side (its K is the final number of hits).
	Dense SearchOptions
	// Fusion is Convex (default) or RRF.
	Fusion Fusion
	// DenseWeight is w of the convex combination (default 0.3); for RRF it weights the
	// dense list's terms (and 1-w the keyword's) when set, equal weights otherwise.
	DenseWeight float64
	// RRFK is RRF's rank offset (default 60).
	RRFK float64
	// Depth is how many candidates each side contributes (default max(100, 4K)).
	Depth int
}

// withDefaults fills HybridOptions' zero fields for k hits and checks the others.
func (o HybridOptions) withDefaults(k int) (HybridOptions, error) {
	if o.Fusion == "" {
		o.Fusion = Convex
	}
	if o.Fusion != Convex && o.Fusion != RRF {
		return o, fmt.Errorf("index: unknown fusion %q (want convex or rrf)", o.Fusion)
	}
	if o.DenseWeight < 0 || o.DenseWeight > 1 {
		return o, fmt.Errorf("index: dense weight %v outside [0, 1]", o.DenseWeight)
	}
	if o.DenseWeight == 0 {
		o.DenseWeight = 0.3
		if o.Fusion == RRF {
			o.DenseWeight = 0.5
		}
	}
	if o.RRFK <= 0 {
		o.RRFK = 60
	}
	if o.Depth <= 0 {
		o.Depth = max(100, 4*k)
	}
	return o, nil
}

// Ranked is one entry of a ranking to fuse: what it names, its score (higher is better)
// and a tie-breaker (smaller first; the index uses the hash of the episode id, so the
// order does not depend on where an episode is stored).
type Ranked[K comparable] struct {
	Key   K
	Score float32
	Tie   uint64
}

// Fuse combines a dense and a keyword ranking, each best first, into the k best by fused
// score, as SearchHybrid does (opts' Fusion, DenseWeight and RRFK; zero values take the
// defaults; an unknown fusion or a weight outside [0, 1] is an error). It lets a node that gathered both rankings from several shards or peers fuse
// them once, over the whole corpus, instead of merging per-shard fused scores that were
// normalised separately.
func Fuse[K comparable](dense, keyword []Ranked[K], k int, opts HybridOptions) ([]Ranked[K], error) {
	opts, err := opts.withDefaults(k)
	if err != nil {
		return nil, err
	}
	fused := map[K]float64{}
	ties := map[K]uint64{}
	add := func(list []Ranked[K], w float64) {
		if len(list) == 0 {
			return
		}
		lo, hi := float64(list[len(list)-1].Score), float64(list[0].Score)
		for rank, e := range list {
			ties[e.Key] = e.Tie
			var v float64
			switch {
			case opts.Fusion == RRF:
				v = w / (opts.RRFK + float64(rank+1))
			case hi > lo:
				v = w * (float64(e.Score) - lo) / (hi - lo)
			default:
				v = w
			}
			fused[e.Key] += v
		}
	}
	add(dense, opts.DenseWeight)
	add(keyword, 1-opts.DenseWeight)
	out := make([]Ranked[K], 0, len(fused))
	for key, v := range fused {
		out = append(out, Ranked[K]{Key: key, Score: float32(v), Tie: ties[key]})
	}
	slices.SortFunc(out, func(a, b Ranked[K]) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		case a.Tie < b.Tie:
			return -1
		case a.Tie > b.Tie:
			return 1
		}
		return 0
	})
	if len(out) > k {
		out = out[:k]
	}
	return out, nil
}
