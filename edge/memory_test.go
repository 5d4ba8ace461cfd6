package edge

import (
	"context"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/podsearch/podsearch/core/textclean"
)

// Episode is one searchable episode of a MemorySearcher.
type Episode struct {
	ID, Title, ShowID, ShowTitle, Language string
	Date                                   time.Time
	// Text is the description (HTML allowed); it feeds keyword search and snippets.
	Text string
	// Vector is the unit-length episode embedding; nil for keyword-only episodes.
	Vector []float32
}

// MemorySearcher is an exact, brute-force Searcher over episodes held in memory: every
// query scores every episode that passes the filters. Keyword scores are BM25 (k1 0.9,
// b 0.4) over lower-cased words; hybrid scores are a convex combination of min-max
// normalised dense and keyword scores, dense weight 0.3. It is a test double: those
// scores differ from the production shards' (core/index's IVF-PQ + BM25, IndexOpener).
type MemorySearcher struct {
	version, fingerprint string
	eps                  []Episode
	plain                []string         // cleaned descriptions, for snippets
	terms                []map[string]int // term frequencies per episode
	lens                 []int
	df                   map[string]int
	avgLen               float64
}

// DenseWeight is the weight of the dense score in MemorySearcher's hybrid mode.
const DenseWeight = 0.3

// NewMemorySearcher indexes eps. version names the data (IndexVersion); fingerprint is the
// model of the episode vectors.
func NewMemorySearcher(version, fingerprint string, eps []Episode) *MemorySearcher {
	m := &MemorySearcher{version: version, fingerprint: fingerprint, eps: eps, df: map[string]int{}}
	total := 0
	for _, e := range eps {
		tf := map[string]int{}
		plain := textclean.Clean(e.Text)
		m.plain = append(m.plain, plain)
		words := keywordTerms(e.Title + " " + plain)
		for _, w := range words {
			tf[w]++
		}
		for w := range tf {
			m.df[w]++
		}
		m.terms = append(m.terms, tf)
		m.lens = append(m.lens, len(words))
		total += len(words)
	}
	if len(eps) > 0 {
		m.avgLen = float64(total) / float64(len(eps))
	}
	return m
}

func keywordTerms(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), notWordRune)
}

// Search implements Searcher.
func (m *MemorySearcher) Search(ctx context.Context, q ShardQuery) ([]Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var qterms []string
	if q.Mode != ModeDense {
		seen := map[string]bool{}
		for _, t := range keywordTerms(q.Keywords) {
			if !seen[t] {
				seen[t] = true
				qterms = append(qterms, t)
			}
		}
	}
	type cand struct {
		i             int
		dense, kw, sc float64
	}
	var cands []cand
	for i, e := range m.eps {
		if !q.Filters.Match(e.Language, e.ShowID, e.Date) {
			continue
		}
		c := cand{i: i}
		if q.Mode != ModeKeyword {
			if len(e.Vector) != len(q.Vector) {
				continue
			}
			c.dense = dot(e.Vector, q.Vector)
		}
		if q.Mode != ModeDense {
			c.kw = m.bm25(i, qterms)
			if q.Mode == ModeKeyword && c.kw == 0 {
				continue
			}
		}
		cands = append(cands, c)
	}
	switch q.Mode {
	case ModeDense:
		for j := range cands {
			cands[j].sc = cands[j].dense
		}
	case ModeKeyword:
		for j := range cands {
			cands[j].sc = cands[j].kw
		}
	default:
		dmin, dmax, kmin, kmax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, c := range cands {
			dmin, dmax = math.Min(dmin, c.dense), math.Max(dmax, c.dense)
			kmin, kmax = math.Min(kmin, c.kw), math.Max(kmax, c.kw)
		}
		for j := range cands {
			cands[j].sc = DenseWeight*minMax(cands[j].dense, dmin, dmax) + (1-DenseWeight)*minMax(cands[j].kw, kmin, kmax)
		}
	}
	sort.Slice(cands, func(a, b int) bool {
		if cands[a].sc != cands[b].sc {
			return cands[a].sc > cands[b].sc
		}
		return m.eps[cands[a].i].ID < m.eps[cands[b].i].ID
	})
	if len(cands) > q.K {
		cands = cands[:q.K]
	}
	hits := make([]Hit, len(cands))
	for j, c := range cands {
		e := m.eps[c.i]
		hits[j] = Hit{ID: e.ID, Title: e.Title, ShowTitle: e.ShowTitle, Score: float32(c.sc), Text: m.plain[c.i]}
		if !e.Date.IsZero() {
			hits[j].Date = e.Date.Format(time.DateOnly)
		}
	}
	return hits, nil
}

func (m *MemorySearcher) bm25(i int, qterms []string) float64 {
	const k1, b = 0.9, 0.4
	n := float64(len(m.eps))
	score := 0.0
	for _, t := range qterms {
		tf := float64(m.terms[i][t])
		if tf == 0 {
			continue
		}
		df := float64(m.df[t])
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		score += idf * tf * (k1 + 1) / (tf + k1*(1-b+b*float64(m.lens[i])/m.avgLen))
	}
	return score
}

func minMax(x, lo, hi float64) float64 {
	if hi <= lo {
		return 0
	}
	return (x - lo) / (hi - lo)
}

// dot is the float32 inner product, each product rounded (no fused multiply-add), so its
// result is the same on every platform.
func dot(a, b []float32) float64 {
	var s float32
	for i := range a {
		s += float32(a[i] * b[i])
	}
	return float64(s)
}

// IndexVersion implements Searcher.
func (m *MemorySearcher) IndexVersion() string { return m.version }

// Fingerprint implements Searcher.
func (m *MemorySearcher) Fingerprint() string { return m.fingerprint }

// Close implements Searcher.
func (m *MemorySearcher) Close() error { return nil }
