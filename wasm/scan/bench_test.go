package wasmscan

import (
	"context"
	"testing"

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

func BenchmarkScan8Native(b *testing.B)     { benchScan(b, 8, false) }
func BenchmarkScan8Wasm(b *testing.B)       { benchScan(b, 8, true) }
func BenchmarkFastScan4Native(b *testing.B) { benchScan(b, 4, false) }
func BenchmarkFastScan4Wasm(b *testing.B)   { benchScan(b, 4, true) }
