package index

import (
	"fmt"
	"math"
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
	// ZScore fuses standardised scores: w*z(dense) + (1-w)*z(keyword), z = (s - mean) /
	// standard deviation over that side's candidates, an episode missing from one list taking
	// that list's lowest z. Chosen on the podcast dev queries with the tuned query model
	// (docs/evaluation.md): the default, with dense weight 0.5.
	ZScore Fusion = "zscore"
)

// DefaultFusion and DefaultDenseWeight are the hybrid defaults of an index without a
// calibrated fusion (Index.SetFusion): ZScore, 0.5, the choice of CalibrateFusion's rule on
// the 96 podcast dev queries through the demo index with the tuned query model (nDCG@10
// 0.689, Recall@30 0.884; docs/evaluation.md).
const (
	DefaultFusion      = ZScore
	DefaultDenseWeight = 0.5
)

// HybridOptions tunes SearchHybrid.
type HybridOptions struct {
	// Dense configures the dense side (its K is the final number of hits).
	Dense SearchOptions
	// Fusion is ZScore, Convex or RRF (default: the index's recorded fusion, else ZScore).
	Fusion Fusion
	// DenseWeight is w of the combination (default: the weight the index records for its
	// fusion, Index.SetFusion, when Fusion is that one or empty; else DefaultDenseWeight for
	// ZScore, 0.3 for Convex); for RRF it weights the dense list's terms (and 1-w the
	// keyword's) when set, equal weights otherwise.
	DenseWeight float64
	// RRFK is RRF's rank offset (default 60).
	RRFK float64
	// Depth is how many candidates each side contributes (default max(100, 4K)).
	Depth int
}

// withDefaults fills HybridOptions' zero fields for k hits and checks the others.
func (o HybridOptions) withDefaults(k int) (HybridOptions, error) {
	if o.Fusion == "" {
		o.Fusion = DefaultFusion
	}
	if o.Fusion != Convex && o.Fusion != RRF && o.Fusion != ZScore {
		return o, fmt.Errorf("index: unknown fusion %q (want zscore, convex or rrf)", o.Fusion)
	}
	if o.DenseWeight < 0 || o.DenseWeight > 1 {
		return o, fmt.Errorf("index: dense weight %v outside [0, 1]", o.DenseWeight)
	}
	if o.DenseWeight == 0 {
		switch o.Fusion {
		case Convex:
			o.DenseWeight = 0.3
		case RRF:
			o.DenseWeight = 0.5
		default:
			o.DenseWeight = DefaultDenseWeight
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
	// add adds w times each entry's normalised score and returns w times the value an
	// episode missing from list takes (0, but ZScore's lowest z).
	add := func(list []Ranked[K], w float64) float64 {
		if len(list) == 0 {
			return 0
		}
		lo, hi := float64(list[len(list)-1].Score), float64(list[0].Score)
		var z []float64
		if opts.Fusion == ZScore {
			z = make([]float64, len(list))
			for i, e := range list {
				z[i] = float64(e.Score)
			}
			z = ZScores(z)
		}
		missing := math.Inf(1)
		for rank, e := range list {
			ties[e.Key] = e.Tie
			var v float64
			switch {
			case opts.Fusion == RRF:
				v = 1 / (opts.RRFK + float64(rank+1))
			case opts.Fusion == ZScore:
				v = z[rank]
			case hi > lo:
				v = (float64(e.Score) - lo) / (hi - lo)
			default:
				v = 1
			}
			fused[e.Key] += w * v
			missing = math.Min(missing, v)
		}
		if opts.Fusion != ZScore {
			return 0
		}
		return w * missing
	}
	inDense := make(map[K]bool, len(dense))
	for _, e := range dense {
		inDense[e.Key] = true
	}
	inKeyword := make(map[K]bool, len(keyword))
	for _, e := range keyword {
		inKeyword[e.Key] = true
	}
	missDense := add(dense, opts.DenseWeight)
	missKeyword := add(keyword, 1-opts.DenseWeight)
	if missDense != 0 || missKeyword != 0 {
		for key := range fused {
			if !inDense[key] {
				fused[key] += missDense
			}
			if !inKeyword[key] {
				fused[key] += missKeyword
			}
		}
	}
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

// ZScores standardises scores in place, (s - mean) / standard deviation, and returns them;
// all 0 when the scores are equal. ZScore fusion uses it on each side's candidates.
func ZScores(scores []float64) []float64 {
	if len(scores) == 0 {
		return scores
	}
	mean, sq := 0.0, 0.0
	for _, s := range scores {
		mean += s
	}
	mean /= float64(len(scores))
	for _, s := range scores {
		sq += (s - mean) * (s - mean)
	}
	std := math.Sqrt(sq / float64(len(scores)))
	for i, s := range scores {
		if std > 0 {
			scores[i] = (s - mean) / std
		} else {
			scores[i] = 0
		}
	}
	return scores
}
