package evaluate

import (
	"fmt"

	"github.com/podsearch/podsearch/core/metrics"
)

// ScoreSearch scores a search as it is served (`podsearch bench quality` through an edge):
// search returns the ranked document ids for a query text, and ScoreSearch returns the
// number of queries scored and the mean of each of ms over them. A search error stops it,
// naming the query.
func ScoreSearch(qs []Query, ms []metrics.Metric, search func(text string) ([]string, error)) (int, map[string]float64, error) {
	mean := metrics.NewMean(ms)
	for _, q := range qs {
		ids, err := search(q.Text)
		if err != nil {
			return 0, nil, fmt.Errorf("query %s: %w", q.ID, err)
		}
		mean.Add(ids, q.Relevant)
	}
	return mean.N(), mean.Values(), nil
}
