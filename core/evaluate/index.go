package evaluate

import (
	"context"
	"fmt"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/metrics"
)

// Retrieval labels of the rows IndexRows adds.
const (
	// IndexDense is dense search through the index: IVF-PQ candidates re-ranked with the
	// scalar-quantized codes (IndexDensePQ when the index has no re-rank codes).
	IndexDense = "index dense (IVF-PQ+rerank)"
	// IndexDensePQ is dense search through an index built without re-rank codes.
	IndexDensePQ = "index dense (IVF-PQ)"
	// IndexKeyword is the index's own BM25 keyword search.
	IndexKeyword = "index keyword (BM25)"
	// IndexHybrid is the index's fusion of its dense and BM25 results.
	IndexHybrid = "index hybrid"
)

// IndexOptions tunes the searches IndexRows runs; zero fields take the index's defaults.
type IndexOptions struct {
	// NProbe is the number of inverted lists scanned per query.
	NProbe int
	// RerankFactor: the K*RerankFactor best PQ candidates are re-ranked.
	RerankFactor int
	// HybridWeight is the dense weight of the index's default fusion (0: the index's own, its
	// calibrated one or else index.DefaultDenseWeight).
	HybridWeight float64
}

// ModelQueries is one model's query vectors (in the order of a Set's queries).
type ModelQueries struct {
	// Model is Base or Tuned.
	Model string
	// Vectors holds one vector per query.
	Vectors [][]float32
}

// IndexRows scores retrieval through a built index: one BM25 row set from the index's
// keyword search, and dense and hybrid row sets for each model's query vectors. The index
// is searched whole, so it may hold more documents than s (a document it returns that s
// lacks counts as not relevant).
func IndexRows(s Set, ix *index.Searcher, models []ModelQueries, o IndexOptions) ([]Row, error) {
	if ix == nil {
		return nil, fmt.Errorf("evaluate: no index to search")
	}
	k := metrics.MaxK(s.Metrics)
	dense := index.SearchOptions{K: k, NProbe: o.NProbe, RerankFactor: o.RerankFactor}
	denseLabel := IndexDense
	if ix.Model().RerankBits() <= 0 {
		denseLabel = IndexDensePQ
	}
	kw := make([][]string, len(s.Queries))
	for i, q := range s.Queries {
		kw[i] = hitIDs(ix.SearchKeyword(q.Text, k, nil))
	}
	rows, err := s.ScoreIDs(IndexKeyword, "-", kw)
	if err != nil {
		return nil, err
	}
	for _, m := range models {
		if len(m.Vectors) != len(s.Queries) {
			return nil, fmt.Errorf("evaluate: %d %s query vectors for %d queries", len(m.Vectors), m.Model, len(s.Queries))
		}
		dn := make([][]string, len(s.Queries))
		hy := make([][]string, len(s.Queries))
		for i, q := range s.Queries {
			hits, err := ix.Search(context.Background(), m.Vectors[i], dense)
			if err != nil {
				return nil, fmt.Errorf("evaluate: query %s: %w", q.ID, err)
			}
			dn[i] = hitIDs(hits)
			hits, err = ix.SearchHybrid(context.Background(), m.Vectors[i], q.Text, index.HybridOptions{Dense: dense, DenseWeight: o.HybridWeight})
			if err != nil {
				return nil, fmt.Errorf("evaluate: query %s: %w", q.ID, err)
			}
			hy[i] = hitIDs(hits)
		}
		for _, r := range []struct {
			label string
			ids   [][]string
		}{{denseLabel, dn}, {IndexHybrid, hy}} {
			rs, err := s.ScoreIDs(r.label, m.Model, r.ids)
			if err != nil {
				return nil, err
			}
			rows = append(rows, rs...)
		}
	}
	return rows, nil
}

func hitIDs(hits []index.Hit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return ids
}
