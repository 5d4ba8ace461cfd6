package evaluate

import (
	"fmt"
	"math"

	"github.com/podsearch/podsearch/core/metrics"
)

// MeanScores is the mean of each of ms over the queries' values (ScoreQueries), keyed by
// the metric's name; all 0 with no query.
func MeanScores(per []map[string]float64, ms []metrics.Metric) map[string]float64 {
	out := make(map[string]float64, len(ms))
	for _, m := range ms {
		name := m.String()
		for _, p := range per {
			out[name] += p[name]
		}
		if len(per) > 0 {
			out[name] /= float64(len(per))
		}
	}
	return out
}

// ScoreQueries scores a search as it is served (`podsearch bench quality` through an edge):
// search returns the ranked document ids for a query text, and ScoreQueries returns each
// query's value of each of ms (keyed by the metric's name, "ndcg@10"), in the order of qs.
// A search error stops it, naming the query.
func ScoreQueries(qs []Query, ms []metrics.Metric, search func(text string) ([]string, error)) ([]map[string]float64, error) {
	out := make([]map[string]float64, len(qs))
	for i, q := range qs {
		ids, err := search(q.Text)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.ID, err)
		}
		out[i] = make(map[string]float64, len(ms))
		for _, m := range ms {
			out[i][m.String()] = m.Score(ids, q.Relevant)
		}
	}
	return out, nil
}

// Paired compares two systems query by query on one metric: a[i] and b[i] are query i's
// values. Wins counts the queries where a is ahead by more than tie, Losses where b is;
// Mean is the mean of a - b and StdErr its standard error over the queries.
type Paired struct {
	Wins, Ties, Losses int
	Mean, StdErr       float64
}

// ComparePaired compares a and b (equal lengths) as Paired describes.
func ComparePaired(a, b []float64, tie float64) (Paired, error) {
	if len(a) != len(b) || len(a) == 0 {
		return Paired{}, fmt.Errorf("evaluate: paired comparison of %d and %d values", len(a), len(b))
	}
	var p Paired
	var sum, sumSq float64
	for i := range a {
		d := a[i] - b[i]
		switch {
		case d > tie:
			p.Wins++
		case d < -tie:
			p.Losses++
		default:
			p.Ties++
		}
		sum, sumSq = sum+d, sumSq+d*d
	}
	n := float64(len(a))
	p.Mean = sum / n
	if len(a) > 1 {
		p.StdErr = math.Sqrt(max(0, (sumSq-n*p.Mean*p.Mean)/(n-1)) / n)
	}
	return p, nil
}
