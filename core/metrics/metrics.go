package metrics

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Qrels maps a document id to its relevance grade for one query; grades >= 1 are relevant.
type Qrels map[string]int

// Count is the number of documents graded relevant (grade >= 1).
func (q Qrels) Count() int {
	n := 0
	for _, g := range q {
		if g >= 1 {
			n++
		}
	}
	return n
}

// ReciprocalRank is 1/r for the rank r (1-based) of the first relevant document in the top k
// of ranked, or 0 when none is there.
func ReciprocalRank(ranked []string, rel Qrels, k int) float64 {
	for i, id := range top(ranked, k) {
		if rel[id] >= 1 {
			return 1 / float64(i+1)
		}
	}
	return 0
}

// Recall is the fraction of the relevant documents found in the top k of ranked; 0 when the
// query has no relevant document.
func Recall(ranked []string, rel Qrels, k int) float64 {
	n := rel.Count()
	if n == 0 {
		return 0
	}
	found := 0
	for _, id := range top(ranked, k) {
		if rel[id] >= 1 {
			found++
		}
	}
	return float64(found) / float64(n)
}

// Hit is 1 when at least one relevant document is in the top k of ranked, else 0 (the
// in-batch "Recall@k" of a query with one positive).
func Hit(ranked []string, rel Qrels, k int) float64 {
	if ReciprocalRank(ranked, rel, k) > 0 {
		return 1
	}
	return 0
}

// NDCG is the normalised discounted cumulative gain at k with linear gains: the sum over the
// top k of grade/log2(rank+1), divided by the same sum for the ideal ordering of all judged
// documents; 0 when the query has no relevant document.
func NDCG(ranked []string, rel Qrels, k int) float64 {
	grades := make([]int, 0, len(rel))
	for _, g := range rel {
		if g >= 1 {
			grades = append(grades, g)
		}
	}
	if len(grades) == 0 {
		return 0
	}
	sort.Sort(sort.Reverse(sort.IntSlice(grades)))
	var dcg, idcg float64
	for i, id := range top(ranked, k) {
		if g := rel[id]; g >= 1 {
			dcg += float64(g) / math.Log2(float64(i+2))
		}
	}
	for i, g := range top(grades, k) {
		idcg += float64(g) / math.Log2(float64(i+2))
	}
	return dcg / idcg
}

func top[T any](s []T, k int) []T {
	if k >= 0 && k < len(s) {
		return s[:k]
	}
	return s
}

// Metric names one measure at one cutoff, spelled "ndcg@10", "recall@30", "mrr@5", "hit@1".
type Metric struct {
	Name string // "mrr", "recall", "ndcg" or "hit"
	K    int
}

// String spells the metric as "name@k", the key used in JSON reports.
func (m Metric) String() string { return m.Name + "@" + strconv.Itoa(m.K) }

// Score computes the metric for one query.
func (m Metric) Score(ranked []string, rel Qrels) float64 {
	switch m.Name {
	case "mrr":
		return ReciprocalRank(ranked, rel, m.K)
	case "recall":
		return Recall(ranked, rel, m.K)
	case "ndcg":
		return NDCG(ranked, rel, m.K)
	default:
		return Hit(ranked, rel, m.K)
	}
}

// Parse reads "name@k" (names mrr, recall, ndcg, hit; k >= 1).
func Parse(s string) (Metric, error) {
	name, ks, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "@")
	if !ok {
		return Metric{}, fmt.Errorf("metrics: %q is not name@k", s)
	}
	switch name {
	case "mrr", "recall", "ndcg", "hit":
	default:
		return Metric{}, fmt.Errorf("metrics: unknown metric %q (want mrr, recall, ndcg or hit)", name)
	}
	k, err := strconv.Atoi(ks)
	if err != nil || k < 1 {
		return Metric{}, fmt.Errorf("metrics: bad cutoff in %q", s)
	}
	return Metric{Name: name, K: k}, nil
}

// MustParseAll parses a fixed list of metric names; it is meant for package-level tables of
// constants and panics on a typo, which a test catches.
func MustParseAll(names ...string) []Metric {
	out := make([]Metric, len(names))
	for i, n := range names {
		m, err := Parse(n)
		if err != nil {
			panic(err)
		}
		out[i] = m
	}
	return out
}

// MaxK is the largest cutoff among ms (how many results a search must return).
func MaxK(ms []Metric) int {
	k := 0
	for _, m := range ms {
		k = max(k, m.K)
	}
	return k
}

// Mean averages metrics over queries.
type Mean struct {
	metrics []Metric
	sums    []float64
	n       int
}

// NewMean starts an average of ms.
func NewMean(ms []Metric) *Mean {
	return &Mean{metrics: ms, sums: make([]float64, len(ms))}
}

// Add scores one query.
func (a *Mean) Add(ranked []string, rel Qrels) {
	for i, m := range a.metrics {
		a.sums[i] += m.Score(ranked, rel)
	}
	a.n++
}

// N is the number of queries added.
func (a *Mean) N() int { return a.n }

// Values returns the mean of each metric keyed by its name ("ndcg@10"); all 0 with no query.
func (a *Mean) Values() map[string]float64 {
	out := make(map[string]float64, len(a.metrics))
	for i, m := range a.metrics {
		if a.n > 0 {
			out[m.String()] = a.sums[i] / float64(a.n)
		} else {
			out[m.String()] = 0
		}
	}
	return out
}
