package bm25

import "math"

// Params are the BM25 free parameters.
type Params struct {
	// K1 saturates term frequency; B scales length normalisation (0 none, 1 full).
	K1, B float64
}

// DefaultParams is k1 0.9, b 0.4.
var DefaultParams = Params{K1: 0.9, B: 0.4}

// View is one segment as searched: its deleted documents are invisible to scoring and to
// the corpus statistics.
type View struct {
	Seg *Segment
	// Deleted reports a deleted document; nil means none is.
	Deleted func(doc uint32) bool
}

// liveStats returns the number of live documents and their total length.
func (v View) liveStats() (n int, total int64) {
	for d, l := range v.Seg.docLen {
		if v.Deleted == nil || !v.Deleted(uint32(d)) {
			n++
			total += int64(l)
		}
	}
	return n, total
}

// Scorer scores queries over a fixed set of views with statistics taken over all of them,
// or over a whole corpus (NewScorerWithStats).
type Scorer struct {
	views    []View
	p        Params
	n        int
	avgLen   float64
	stats    *Stats // nil: document frequencies counted over views
	scratchs [][]float32
	touched  [][]uint32
}

// NewScorer computes the corpus statistics of views (one pass over document lengths).
func NewScorer(views []View, p Params) *Scorer {
	s := &Scorer{views: views, p: p}
	var total int64
	for _, v := range views {
		n, t := v.liveStats()
		s.n += n
		total += t
	}
	if s.n > 0 {
		s.avgLen = float64(total) / float64(s.n)
	}
	return s
}

// NewScorerWithStats scores views with the statistics of a whole corpus of which views are
// a part (a nil st counts them over views, as NewScorer does).
func NewScorerWithStats(views []View, p Params, st *Stats) *Scorer {
	if st == nil {
		return NewScorer(views, p)
	}
	s := &Scorer{views: views, p: p, n: st.Docs, stats: st}
	if s.n > 0 {
		s.avgLen = float64(st.TotalLen) / float64(s.n)
	}
	return s
}

// df is the number of live documents holding term.
func (s *Scorer) df(term string) int {
	if s.stats != nil {
		return s.stats.DF[term]
	}
	df := 0
	for _, v := range s.views {
		docs, _ := v.Seg.Postings(term)
		for _, d := range docs {
			if v.Deleted == nil || !v.Deleted(d) {
				df++
			}
		}
	}
	return df
}

// Score analyzes query and calls visit(view, doc, score) once for every live document that
// contains at least one query term, view by view (documents in no particular order). A query term
// repeated counts once per occurrence, as in the usual definition. Scorer is not safe for
// concurrent use (it reuses per-view buffers); make one per goroutine.
func (s *Scorer) Score(query string, visit func(view int, doc uint32, score float32)) {
	terms := Analyze(query)
	if len(terms) == 0 || s.n == 0 {
		return
	}
	if s.scratchs == nil {
		s.scratchs = make([][]float32, len(s.views))
		s.touched = make([][]uint32, len(s.views))
	}
	for _, t := range terms {
		df := s.df(t)
		if df == 0 {
			continue
		}
		idf := math.Log(1 + (float64(s.n)-float64(df)+0.5)/(float64(df)+0.5))
		for vi, v := range s.views {
			docs, tfs := v.Seg.Postings(t)
			if len(docs) == 0 {
				continue
			}
			acc := s.scratch(vi)
			for i, d := range docs {
				if v.Deleted != nil && v.Deleted(d) {
					continue
				}
				tf := float64(tfs[i])
				norm := s.p.K1 * (1 - s.p.B + s.p.B*float64(v.Seg.docLen[d])/s.avgLen)
				if acc[d] == 0 {
					s.touched[vi] = append(s.touched[vi], d)
				}
				acc[d] += float32(idf * tf * (s.p.K1 + 1) / (tf + norm))
			}
		}
	}
	for vi, docs := range s.touched {
		acc := s.scratchs[vi]
		for _, d := range docs {
			visit(vi, d, acc[d])
			acc[d] = 0
		}
		s.touched[vi] = docs[:0]
	}
}

func (s *Scorer) scratch(vi int) []float32 {
	if s.scratchs[vi] == nil {
		s.scratchs[vi] = make([]float32, s.views[vi].Seg.NumDocs())
	}
	return s.scratchs[vi]
}
