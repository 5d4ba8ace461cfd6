package evaluate

import (
	"fmt"
	"sort"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/metrics"
)

// Model names used in rows.
const (
	Base  = "base"
	Tuned = "tuned"
)

// Set is one evaluation: documents to search and judged queries.
type Set struct {
	// Section names the evaluation in reports: "in-batch", "test", "queries", "beir".
	Section string
	Docs    []Doc
	Queries []Query
	Metrics []metrics.Metric
	// MinSubset is the fewest queries a language or method subset needs for its own row
	// (default 10); smaller ones are pooled as "other".
	MinSubset int
}

// Row is the score of one retrieval method and model on one subset of a Set's queries.
type Row struct {
	Section   string             `json:"section"`
	Retrieval string             `json:"retrieval"` // dense, bm25, hybrid
	Model     string             `json:"model"`     // base, tuned, or "-" when no encoder is involved
	Subset    string             `json:"subset"`    // all, lang=xx, method=yy
	Queries   int                `json:"queries"`
	Metrics   map[string]float64 `json:"metrics"`
}

// Curve is mean Recall@k for k = 1..len(Recall) of one retrieval method and model.
type Curve struct {
	Label  string
	Recall []float64
}

// Score turns ranked document indices (one list per query, best first) into rows: one for
// all queries, then one per language and per query-making method when the queries carry them.
func (s Set) Score(retrieval, model string, ranked [][]int) ([]Row, error) {
	if len(ranked) != len(s.Queries) {
		return nil, fmt.Errorf("evaluate: %d rankings for %d queries", len(ranked), len(s.Queries))
	}
	ids := make([][]string, len(ranked))
	for i, r := range ranked {
		ids[i] = make([]string, len(r))
		for j, d := range r {
			if d < 0 || d >= len(s.Docs) {
				return nil, fmt.Errorf("evaluate: ranking %d names document %d of %d", i, d, len(s.Docs))
			}
			ids[i][j] = s.Docs[d].ID
		}
	}
	return s.ScoreIDs(retrieval, model, ids)
}

// ScoreIDs is Score for rankings of document ids (which need not all be among s.Docs, as
// when an index holding more documents is searched).
func (s Set) ScoreIDs(retrieval, model string, ids [][]string) ([]Row, error) {
	if len(ids) != len(s.Queries) {
		return nil, fmt.Errorf("evaluate: %d rankings for %d queries", len(ids), len(s.Queries))
	}
	groups := s.subsets()
	var rows []Row
	for _, g := range groups {
		mean := metrics.NewMean(s.Metrics)
		for _, qi := range g.queries {
			mean.Add(ids[qi], s.Queries[qi].Relevant)
		}
		rows = append(rows, Row{Section: s.Section, Retrieval: retrieval, Model: model, Subset: g.name,
			Queries: mean.N(), Metrics: mean.Values()})
	}
	return rows, nil
}

type subset struct {
	name    string
	queries []int
}

// subsets groups the queries: all, then languages, methods and kinds (each sorted by size).
func (s Set) subsets() []subset {
	all := subset{name: "all"}
	for i := range s.Queries {
		all.queries = append(all.queries, i)
	}
	out := []subset{all}
	docLang := make(map[string]string, len(s.Docs))
	for _, d := range s.Docs {
		docLang[d.ID] = d.Language
	}
	// A query's language: its own label, else that of its best-graded relevant document
	// (lowest id among equals, so the choice is deterministic).
	lang := func(q Query) string {
		if q.Language != "" {
			return q.Language
		}
		best, bestID, bestGrade := "", "", 0
		for id, g := range q.Relevant {
			if l := docLang[id]; g >= 1 && l != "" && (g > bestGrade || (g == bestGrade && id < bestID)) {
				best, bestID, bestGrade = l, id, g
			}
		}
		return best
	}
	out = append(out, s.group("lang=", lang)...)
	out = append(out, s.group("method=", func(q Query) string { return q.Method })...)
	out = append(out, s.group("kind=", func(q Query) string { return q.Kind })...)
	return out
}

func (s Set) group(prefix string, label func(Query) string) []subset {
	minN := s.MinSubset
	if minN <= 0 {
		minN = 10
	}
	by := map[string][]int{}
	for i, q := range s.Queries {
		if l := label(q); l != "" {
			by[l] = append(by[l], i)
		}
	}
	if len(by) < 2 {
		return nil // one label is the same as "all"
	}
	var out []subset
	var other []int
	for l, qs := range by {
		if len(qs) >= minN {
			out = append(out, subset{name: prefix + l, queries: qs})
		} else {
			other = append(other, qs...)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].queries) != len(out[j].queries) {
			return len(out[i].queries) > len(out[j].queries)
		}
		return out[i].name < out[j].name
	})
	if len(other) > 0 {
		sort.Ints(other)
		out = append(out, subset{name: prefix + "other", queries: other})
	}
	return out
}

// RecallCurve is mean Recall@k over the queries for k = 1..maxK.
func (s Set) RecallCurve(ranked [][]int, maxK int) []float64 {
	curve := make([]float64, maxK)
	if len(s.Queries) == 0 {
		return curve
	}
	for qi, r := range ranked {
		rel := s.Queries[qi].Relevant
		n := rel.Count()
		if n == 0 {
			continue
		}
		found := 0
		for k := 0; k < maxK; k++ {
			if k < len(r) && rel[s.Docs[r[k]].ID] >= 1 {
				found++
			}
			curve[k] += float64(found) / float64(n)
		}
	}
	for k := range curve {
		curve[k] /= float64(len(s.Queries))
	}
	return curve
}

// Dense scores exact dense retrieval with the base vectors and, when a is not nil, with the
// adapter applied (queries always; documents too when the adapter is BothSides). It returns
// the rows and, for plotting, the Recall@k curves up to curveK.
func Dense(s Set, queryVecs, docVecs [][]float32, a *adapter.Adapter, curveK int) ([]Row, []Curve, error) {
	if len(queryVecs) != len(s.Queries) || len(docVecs) != len(s.Docs) {
		return nil, nil, fmt.Errorf("evaluate: %d query vectors for %d queries, %d document vectors for %d documents",
			len(queryVecs), len(s.Queries), len(docVecs), len(s.Docs))
	}
	k := max(metrics.MaxK(s.Metrics), curveK)
	type variant struct {
		model  string
		qv, dv [][]float32
	}
	vs := []variant{{Base, queryVecs, docVecs}}
	if a != nil {
		tq, err := a.ApplyAll(queryVecs, false)
		if err != nil {
			return nil, nil, err
		}
		td, err := a.ApplyAll(docVecs, true)
		if err != nil {
			return nil, nil, err
		}
		vs = append(vs, variant{Tuned, tq, td})
	}
	var rows []Row
	var curves []Curve
	for _, v := range vs {
		ranked, err := Search(v.qv, v.dv, k)
		if err != nil {
			return nil, nil, err
		}
		r, err := s.Score("dense", v.model, ranked)
		if err != nil {
			return nil, nil, err
		}
		rows = append(rows, r...)
		if curveK > 0 {
			curves = append(curves, Curve{Label: s.Section + " dense " + v.model, Recall: s.RecallCurve(ranked, curveK)})
		}
	}
	return rows, curves, nil
}
