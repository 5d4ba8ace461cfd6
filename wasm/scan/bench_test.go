package wasmscan

import (
	"context"
	"fmt"
	"testing"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/wasm/scanref"
)

// Benchmarks of one query's scan over the SIFT10K test shards: native Go and the C guest.
// `podsearch bench wasm` runs the full comparison (Go in wasm included).

func benchScan(b *testing.B, bits int, guest bool) {
	s := loadSIFT(b)
	data, q := s.data8, s.pq8
	if bits == 4 {
		data, q = s.data4, s.pq4
	}
	tab := Prepare(q, nil, L2, s.query(0))
	plain := data
	plain.SQ, plain.SQCodes = nil, nil
	var sh *Shard
	if guest {
		sh = newShard(b, plain, 1)
	}
	var sc scanref.Scanner
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if guest {
			_, err = sh.Search(ctx, tab, 100, 100)
		} else {
			_, err = NativeSearch(&sc, &plain, tab, 100, 100)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(data.N)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mcodes/s")
}

// Sub-benchmarks are named engine=native / engine=wasm so that benchstat puts the two side
// by side with their ratio: `make benchstat` (docs/benchmarks.md).

func BenchmarkScan8(b *testing.B) {
	b.Run("engine=native", func(b *testing.B) { benchScan(b, 8, false) })
	b.Run("engine=wasm", func(b *testing.B) { benchScan(b, 8, true) })
}

func BenchmarkFastScan4(b *testing.B) {
	b.Run("engine=native", func(b *testing.B) { benchScan(b, 4, false) })
	b.Run("engine=wasm", func(b *testing.B) { benchScan(b, 4, true) })
}

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
