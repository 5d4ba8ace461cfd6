package wasmscan

import (
	"testing"

	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/sq"
)

// SIFT is the SIFT10K test shards (loadSIFT) for the external tests of the pipeline
// (internal/scanbench), which cannot be in this package: scanbench imports it.
type SIFT struct {
	s            *sift
	PQ8, PQ4     *pq.Quantizer
	SQ           *sq.Quantizer
	Data8, Data4 Data
}

// LoadSIFT loads the SIFT10K test shards, skipping the test without the shared data.
func LoadSIFT(tb testing.TB) *SIFT {
	s := loadSIFT(tb)
	return &SIFT{s: s, PQ8: s.pq8, PQ4: s.pq4, SQ: s.sq, Data8: s.data8, Data4: s.data4}
}

// Query is query vector i.
func (s *SIFT) Query(i int) []float32 { return s.s.query(i) }

// NewShardT is New on the shared runtime, closed when the test ends.
func NewShardT(tb testing.TB, data Data, instances int) *Shard { return newShard(tb, data, instances) }

// EqualResults fails the test when got and want differ.
func EqualResults(tb testing.TB, what string, got, want []Result) { equalResults(tb, what, got, want) }
