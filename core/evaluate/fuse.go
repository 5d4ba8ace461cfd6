package evaluate

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/podsearch/podsearch/core/index"
)

// Norm names how a fusion makes one side's scores comparable with the other's before the
// weighted sum. Every normalisation works on that side's own candidates (its top depth), as
// a search node that fuses the dense and keyword rankings it gathered does.
type Norm string

// The normalisations Fuse knows.
const (
	// NormMinMax maps the candidates' scores linearly onto [0, 1]: (s - min) / (max - min);
	// a document missing from the list scores 0 there. It is the index's convex fusion
	// (core/index.Fuse with Convex).
	NormMinMax Norm = "minmax"
	// NormZScore standardises the scores: (s - mean) / standard deviation over the
	// candidates; a missing document scores the list's lowest value.
	NormZScore Norm = "zscore"
	// NormRank ignores the scores and uses the rank, linearly: (depth - rank + 1) / depth,
	// 1 for the first candidate; a missing document scores 0.
	NormRank Norm = "rank"
	// NormRRF is reciprocal rank fusion: 1 / (RRFK + rank), rank from 1; a missing document
	// scores 0. It is core/index.Fuse with RRF.
	NormRRF Norm = "rrf"
)

// Norms lists the normalisations in a fixed order.
var Norms = []Norm{NormMinMax, NormZScore, NormRank, NormRRF}

// ParseNorms reads a comma-separated list of normalisation names; "all" means every one.
func ParseNorms(s string) ([]Norm, error) {
	var out []Norm
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case f == "all":
			out = append(out, Norms...)
		case Norm(f) == NormMinMax || Norm(f) == NormZScore || Norm(f) == NormRank || Norm(f) == NormRRF:
			out = append(out, Norm(f))
		default:
			return nil, fmt.Errorf("evaluate: unknown fusion %q (want minmax, zscore, rank, rrf or all)", f)
		}
	}
	return out, nil
}

// FuseOptions configures a fusion of a dense and a keyword ranking.
type FuseOptions struct {
	// Norm is the normalisation of each side's scores.
	Norm Norm
	// DenseWeight is w in w*dense + (1-w)*keyword, in [0, 1].
	DenseWeight float64
	// RRFK is NormRRF's rank offset (0: 60).
	RRFK float64
}

// ScoredDoc is one candidate of a ranking: a document index and its score.
type ScoredDoc struct {
	Doc   int
	Score float32
}

// SideLists holds, per query, the top candidates of the dense and of the keyword side, best
// first: what a fusion combines.
type SideLists struct {
	Dense, Keyword [][]ScoredDoc
}

// CandidateLists takes each query's top depth documents by dense score (exact search) and
// by BM25 score (documents the keywords do not match are left out).
func CandidateLists(queryVecs, docVecs [][]float32, kw []Sparse, depth int) (SideLists, error) {
	if len(kw) != len(queryVecs) {
		return SideLists{}, fmt.Errorf("evaluate: %d keyword score lists for %d queries", len(kw), len(queryVecs))
	}
	if depth < 1 {
		return SideLists{}, fmt.Errorf("evaluate: fusion depth %d, want >= 1", depth)
	}
	dense, err := PassageLists(queryVecs, docVecs, nil, len(docVecs), depth)
	if err != nil {
		return SideLists{}, err
	}
	return SideLists{Dense: dense, Keyword: keywordLists(kw, depth)}, nil
}

// keywordLists returns each query's top depth documents by keyword score, best first
// (documents the keywords do not match are left out).
func keywordLists(kw []Sparse, depth int) [][]ScoredDoc {
	out := make([][]ScoredDoc, len(kw))
	for qi, s := range kw {
		list := make([]ScoredDoc, 0, len(s))
		for d, v := range s {
			list = append(list, ScoredDoc{d, v})
		}
		sort.Slice(list, func(i, j int) bool {
			return better(scored{list[i].Doc, list[i].Score}, scored{list[j].Doc, list[j].Score})
		})
		if len(list) > depth {
			list = list[:depth]
		}
		out[qi] = list
	}
	return out
}

// Fuse ranks each query's candidates (the union of both sides) by the weighted sum of the
// normalised scores and returns the k best document indices per query, ties to the lower
// index.
func (l SideLists) Fuse(o FuseOptions, k int) ([][]int, error) {
	if o.DenseWeight < 0 || o.DenseWeight > 1 {
		return nil, fmt.Errorf("evaluate: dense weight %g outside [0, 1]", o.DenseWeight)
	}
	if _, err := ParseNorms(string(o.Norm)); err != nil || o.Norm == "" {
		return nil, fmt.Errorf("evaluate: unknown fusion %q", o.Norm)
	}
	if o.RRFK <= 0 {
		o.RRFK = 60
	}
	out := make([][]int, len(l.Dense))
	for qi := range l.Dense {
		dense, keyword := l.Dense[qi], l.Keyword[qi]
		depth := max(len(dense), len(keyword))
		fused := map[int]float64{} // every candidate of either side
		for _, e := range dense {
			fused[e.Doc] = 0
		}
		for _, e := range keyword {
			fused[e.Doc] = 0
		}
		for _, side := range []struct {
			list []ScoredDoc
			w    float64
		}{{dense, o.DenseWeight}, {keyword, 1 - o.DenseWeight}} {
			vals, missing := normalise(side.list, o, depth)
			for d := range fused {
				v, ok := vals[d]
				if !ok {
					v = missing
				}
				fused[d] += side.w * v
			}
		}
		list := make([]scored, 0, len(fused))
		for d, v := range fused {
			list = append(list, scored{d, float32(v)})
		}
		sort.Slice(list, func(i, j int) bool { return better(list[i], list[j]) })
		list = list[:min(k, len(list))]
		out[qi] = make([]int, len(list))
		for j, e := range list {
			out[qi][j] = e.i
		}
	}
	return out, nil
}

// normalise returns each listed document's normalised value and the value a document
// missing from the list gets.
func normalise(list []ScoredDoc, o FuseOptions, depth int) (map[int]float64, float64) {
	vals := make(map[int]float64, len(list))
	if len(list) == 0 {
		return vals, 0
	}
	switch o.Norm {
	case NormRank:
		for r, e := range list {
			vals[e.Doc] = float64(depth-r) / float64(depth)
		}
		return vals, 0
	case NormRRF:
		for r, e := range list {
			vals[e.Doc] = 1 / (o.RRFK + float64(r+1))
		}
		return vals, 0
	case NormZScore:
		z := make([]float64, len(list))
		for i, e := range list {
			z[i] = float64(e.Score)
		}
		lowest := math.Inf(1)
		for i, v := range index.ZScores(z) {
			vals[list[i].Doc] = v
			lowest = math.Min(lowest, v)
		}
		return vals, lowest
	default: // NormMinMax
		lo, hi := float64(list[len(list)-1].Score), float64(list[0].Score)
		for _, e := range list {
			v := 1.0
			if hi > lo {
				v = (float64(e.Score) - lo) / (hi - lo)
			}
			vals[e.Doc] = v
		}
		return vals, 0
	}
}
