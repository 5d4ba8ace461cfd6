package wasmscan

import (
	"context"
	"fmt"
	"testing"

	"github.com/podsearch/podsearch/core/index"
)

// BenchmarkIndexSearch searches a 2-shard IVF index of SIFT10K (4-bit fast-scan, int8
// re-rank, nprobe 16) one query at a time, natively and through the wasm Backend.
func BenchmarkIndexSearch(b *testing.B) {
	s := loadSIFT(b)
	n := len(s.base) / s.d
	dir := b.TempDir()
	docs := make([]index.Doc, n)
	for i := range docs {
		docs[i].ID = fmt.Sprint(i)
	}
	m, err := index.Train(s.base, s.d, index.Config{Metric: index.L2, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := index.Create(dir, m, 2, docs, s.base); err != nil {
		b.Fatal(err)
	}
	nq := len(s.queries) / s.d
	for _, engine := range []string{"native", "wasm"} {
		b.Run("engine="+engine, func(b *testing.B) {
			var o index.OpenOptions
			if engine == "wasm" {
				o.Backend = NewBackend(runtimeT(b), 1)
			}
			ix, err := index.Open(dir, "", o)
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			sr := ix.Searcher()
			opts := index.SearchOptions{K: 10, NProbe: 16, RerankFactor: 4}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := sr.Search(context.Background(), s.query(i%nq), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
